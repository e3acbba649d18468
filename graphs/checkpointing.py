"""Where research runs are checkpointed, and how their history is read back.

One SQLite file per workspace, ``<workspace>/.torchscout/graph.sqlite``, one thread per run
(thread_id = run name), opened with :func:`torchscout.agent.sqlite_checkpoints.open_sqlite_saver`.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointMetadata
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot

from torchscout.agent.records import ResearchState
from torchscout.agent.sqlite_checkpoints import open_sqlite_saver
from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError
from torchscout.tools.workspace import relative_to_workspace, workspace_root

CHECKPOINT_FILE = "graph.sqlite"
RUNS_FOLDER = "runs"


class HistoryRow(TypedDict):
    """One checkpoint of a run, as ``torchscout history`` lists it."""

    checkpoint_id: str
    step: int | None
    node: str                  # the node(s) whose step produced it, or "input"
    source: str
    time: str
    best_id: str | None
    best_metric: float | None
    evaluations: int
    next: list[str]


class TraceRow(HistoryRow):
    """A checkpoint with its full state, for ``torchscout trace NAME --json``."""

    parent_checkpoint_id: str | None
    metadata: CheckpointMetadata
    values: ResearchState


def checkpoint_path() -> Path:
    return get_settings().state_dir / CHECKPOINT_FILE


def open_checkpointer(path: Path | None = None) -> SqliteSaver:
    """A SqliteSaver on the workspace's checkpoint database (or ``path``).

    A damaged database raises :class:`DamagedDatabaseError` saying what to do; so does an empty
    (zero-byte) one while run folders exist, which would otherwise read as "no runs" and let a
    new run silently start over.
    """
    path = path or checkpoint_path()
    if path.is_file() and path.stat().st_size == 0 and run_folders():
        raise DamagedDatabaseError(path, f"it is empty (0 bytes) but {len(run_folders())} run folder(s) exist, "
                                         "so it was truncated")
    try:
        return open_sqlite_saver(path)
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            raise DamagedDatabaseError(path, str(exc)) from exc
        raise


# What SQLite says about a file that is not (or no longer) a sound database; "database is locked"
# and other operational errors are not damage.
_DAMAGE_WORDS = ("malformed", "not a database", "disk i/o error", "file is encrypted")


def is_damage(error: sqlite3.DatabaseError) -> bool:
    return any(word in str(error).lower() for word in _DAMAGE_WORDS)


class DamagedDatabaseError(ToolError):
    """The run database cannot be read; the message says how to recover and where the reports are."""

    def __init__(self, path: Path, detail: str) -> None:
        folders = run_folders()
        reports = [f"runs/{folder.name}/report.md" for folder in folders if (folder / "report.md").is_file()]
        shown = ", ".join(reports[:5]) + (", ..." if len(reports) > 5 else "")
        super().__init__(
            f"the run database {relative_to_workspace(path)} is damaged ({detail}). To keep it for recovery and "
            f"start a new one: mv {path} {path}.damaged (its runs can then not be resumed). The run folders "
            f"under runs/ are untouched and readable" + (f"; reports: {shown}" if reports else ""))


def run_folders() -> list[Path]:
    """The workspace's run folders (``runs/<name>/`` with a task.yaml), by name."""
    return sorted(path.parent for path in (workspace_root() / RUNS_FOLDER).glob("*/task.yaml"))


def close_checkpointer(saver: SqliteSaver) -> None:
    saver.conn.close()


def list_threads(saver: SqliteSaver) -> list[str]:
    """Run names that have checkpoints, oldest first."""
    with saver.lock:
        rows = saver.conn.execute(
            "SELECT thread_id, MIN(checkpoint_id) FROM checkpoints WHERE checkpoint_ns = '' "
            "GROUP BY thread_id ORDER BY 2").fetchall()
    return [row[0] for row in rows]


def thread_config(run_name: str, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable = {"thread_id": run_name, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return RunnableConfig(configurable=configurable)


def snapshots(graph: CompiledStateGraph, run_name: str) -> list[StateSnapshot]:
    """Every checkpoint of a run, oldest first."""
    return list(reversed(list(graph.get_state_history(thread_config(run_name)))))


def _timestamp(snapshot: StateSnapshot) -> str:
    if not snapshot.created_at:
        return ""
    return datetime.fromisoformat(snapshot.created_at).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _rows(snapshot_list: list[StateSnapshot]) -> list[HistoryRow]:
    rows = []
    previous_next: tuple[str, ...] = ()
    for snapshot in snapshot_list:
        values = snapshot.values or {}
        metadata = snapshot.metadata or {}
        source = metadata.get("source", "")
        produced_by = "input" if source == "input" else ",".join(sorted(set(previous_next))) or source
        rows.append(HistoryRow(
            checkpoint_id=snapshot.config["configurable"]["checkpoint_id"],
            step=metadata.get("step"),
            node=produced_by,
            source=source,
            time=_timestamp(snapshot),
            best_id=values.get("best_id"),
            best_metric=values.get("best_metric"),
            evaluations=len(values.get("evaluations") or {}),
            next=list(snapshot.next),
        ))
        previous_next = snapshot.next
    return rows


def history_rows(graph: CompiledStateGraph, run_name: str) -> list[HistoryRow]:
    """One row per checkpoint: id, step, the node(s) that produced it, time, best so far, what runs next."""
    return _rows(snapshots(graph, run_name))


def trace_rows(graph: CompiledStateGraph, run_name: str) -> list[TraceRow]:
    """Every checkpoint with its full state, for other tools (``torchscout trace NAME --json``)."""
    snapshot_list = snapshots(graph, run_name)
    trace = []
    for row, snapshot in zip(_rows(snapshot_list), snapshot_list, strict=True):
        parent = (snapshot.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        trace.append(TraceRow(**row, parent_checkpoint_id=parent, metadata=CheckpointMetadata(**(snapshot.metadata or {})),
                              values=snapshot.values))
    return trace
