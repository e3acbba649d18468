"""Where research runs are checkpointed, and how their history is read back.

One SQLite file per workspace, ``<workspace>/.torchscout/graph.sqlite``, one thread per run
(thread_id = run name), opened with :func:`torchscout.agent.sqlite_checkpoints.open_sqlite_saver`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot

from torchscout.agent.sqlite_checkpoints import open_sqlite_saver
from torchscout.graphs.branches import MAIN_BRANCH, branch_of, producing_node
from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError
from torchscout.tools.workspace import relative_to_workspace, workspace_root

CHECKPOINT_FILE = "graph.sqlite"
RUNS_FOLDER = "runs"


class HistoryRow(TypedDict):
    """One checkpoint of a run, as ``torchscout history`` lists it."""

    checkpoint_id: str
    parent_checkpoint_id: str | None
    branch: str                # "main", or the fork's branch id (runs/<name>/branches/<id>/)
    step: int | None
    node: str                  # the node whose step wrote it (recorded by the node), "input" or the source
    source: str                # input, loop, update (a fork's first checkpoint), fork
    time: str                  # UTC, ISO-8601
    best_id: str | None
    best_metric: float | None
    evaluations: int
    next: list[str]


def checkpoint_path() -> Path:
    return get_settings().state_dir / CHECKPOINT_FILE


@contextlib.asynccontextmanager
async def server_checkpointer() -> AsyncIterator[AsyncSqliteSaver]:
    """The workspace's checkpoint database for a LangGraph server (``langgraph.json``'s ``checkpointer``).

    ``langgraph dev`` then writes its threads where the CLI reads them, so ``torchscout runs``,
    ``history``, ``resume``, ``report`` and ``replay`` work on runs started through the server (the
    workspace is the server's ``TORCHSCOUT_WORKSPACE``, else its working folder).
    """
    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.conn.execute("PRAGMA journal_mode=WAL")  # the CLI may read while the server writes
        yield saver


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


def snapshots(graph: CompiledStateGraph, thread_id: str) -> list[StateSnapshot]:
    """Every checkpoint of a run's thread, oldest first."""
    return list(reversed(list(graph.get_state_history(thread_config(thread_id)))))


def utc_time(snapshot: StateSnapshot, timespec: str = "seconds") -> str:
    """When the checkpoint was written, UTC, ISO-8601 (``2026-11-30T04:39:21+00:00``)."""
    if not snapshot.created_at:
        return ""
    return datetime.fromisoformat(snapshot.created_at).astimezone(UTC).isoformat(timespec=timespec)


def checkpoint_id_of(snapshot: StateSnapshot | None) -> str | None:
    return (snapshot.config if snapshot is not None else {}).get("configurable", {}).get("checkpoint_id")


def parent_id_of(snapshot: StateSnapshot) -> str | None:
    return (snapshot.parent_config or {}).get("configurable", {}).get("checkpoint_id")


def history_row(snapshot: StateSnapshot, parent: StateSnapshot | None) -> HistoryRow:
    values = snapshot.values or {}
    source = (snapshot.metadata or {}).get("source", "")
    return HistoryRow(
        checkpoint_id=checkpoint_id_of(snapshot) or "", parent_checkpoint_id=parent_id_of(snapshot),
        branch=branch_of(values), step=(snapshot.metadata or {}).get("step"),
        node="input" if source == "input" else (producing_node(snapshot, parent) or source),
        source=source, time=utc_time(snapshot), best_id=values.get("best_id"), best_metric=values.get("best_metric"),
        evaluations=len(values.get("evaluations") or {}), next=list(snapshot.next))


def by_branch(snapshot_list: list[StateSnapshot]) -> list[StateSnapshot]:
    """Checkpoints grouped by branch (the original run first, then each fork as it was made), oldest first."""
    order: dict[str, int] = {}
    for snapshot in snapshot_list:
        order.setdefault(branch_of(snapshot.values), len(order))
    order[MAIN_BRANCH] = -1
    return sorted(snapshot_list, key=lambda snapshot: order[branch_of(snapshot.values)])


def history_rows(graph: CompiledStateGraph, thread_id: str) -> list[HistoryRow]:
    """One row per checkpoint, by branch: id, parent, branch, step, the node that wrote it, time, best so far."""
    snapshot_list = snapshots(graph, thread_id)
    by_id = {checkpoint_id_of(snapshot): snapshot for snapshot in snapshot_list}
    return [history_row(snapshot, by_id.get(parent_id_of(snapshot))) for snapshot in by_branch(snapshot_list)]
