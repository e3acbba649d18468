"""Run the research graph from Python: start, resume, fork from a checkpoint, and read the outcome.

    from torchscout import research
    outcome = research("examples/digits.yaml", name="digits-1")
    outcome["best"], outcome["report_path"]

Each run is a thread in the workspace's checkpoint database (thread_id = run name), streamed
with ``durability="sync"`` so every finished step, including each finished evaluation, is on
disk before the next one starts: after a crash or ``kill -9``, :func:`resume` finishes the run
keeping every completed evaluation.

Approval gates: ``research(task, approve=["full_train"])`` (or ``approve:`` in the task) stops
before the gated step with ``status == "waiting_for_approval"`` and the pending request (what
will run, its estimated cost) in ``outcome["approval"]``; ``resume(name, approve="yes")`` goes
on, ``resume(name, approve="no")`` skips that step.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from torchscout.agent.approvals import parse_answer
from torchscout.agent.planners import get_planner
from torchscout.agent.report import leaderboard_rows
from torchscout.agent.task import Task, TaskError, load_task
from torchscout.graphs.approval import pending_requests, resume_command
from torchscout.graphs.budget import RunContext
from torchscout.graphs.checkpointing import (
    close_checkpointer,
    history_rows,
    list_threads,
    open_checkpointer,
    thread_config,
    trace_rows,
)
from torchscout.graphs.graph import build_graph, run_config
from torchscout.graphs.state import initial_state
from torchscout.tools.errors import ToolError
from torchscout.tools.workspace import atomic_write_text, resolve

logger = logging.getLogger(__name__)
EventCallback = Callable[[dict[str, Any]], None]
PID_FILE = "run.pid"
WAITING = "waiting_for_approval"


@contextlib.contextmanager
def _graph() -> Iterator[tuple[Any, SqliteSaver]]:
    saver = open_checkpointer()
    try:
        yield build_graph(checkpointer=saver), saver
    finally:
        close_checkpointer(saver)


def _stream(graph: Any, graph_input: Any, config: dict[str, Any], run_dir: str,
            on_event: EventCallback | None) -> None:
    snapshot = graph.get_state(config)
    used_before = float((snapshot.values or {}).get("elapsed_s", 0.0)) if snapshot else 0.0
    pid_path = resolve(f"{run_dir}/{PID_FILE}")
    atomic_write_text(pid_path, str(os.getpid()))
    try:
        for mode, payload in graph.stream(graph_input, config, context=RunContext(used_before_s=used_before),
                                          stream_mode=["custom", "updates"], durability="sync"):
            if mode == "custom" and on_event is not None:
                on_event(payload)
    finally:
        with contextlib.suppress(FileNotFoundError):
            pid_path.unlink()


def _outcome(graph: Any, run_name: str) -> dict[str, Any]:
    snapshot = graph.get_state(thread_config(run_name))
    state = snapshot.values or {}
    final = state.get("final") or {}
    requests = pending_requests(snapshot)
    if requests:
        status = WAITING
    else:
        status = "finished" if not snapshot.next and state.get("phase") == "done" else "incomplete"
    return {
        "name": run_name,
        "status": status,
        "approval": requests[0] if requests else None,
        "approvals": state.get("approvals") or {},
        "next": list(snapshot.next),
        "leaderboard": leaderboard_rows(state) if state.get("task") else [],
        "best": final.get("winner"),
        "full_training": state.get("full_training") or {},
        "report_path": state.get("report_path"),
        "run_dir": state.get("run_dir"),
        "evaluations": len(state.get("evaluations") or {}),
    }


def research(task: str | Path | dict[str, Any] | Task, name: str | None = None, *, planner: str | None = None,
             approve: list[str] | str | None = None, on_event: EventCallback | None = None) -> dict[str, Any]:
    """Run the research graph on ``task`` (a YAML path, a dict or a Task) as run ``name``.

    ``approve``: actions to pause before (``["full_train", "pip_install"]`` or "full_train,pip_install"),
    replacing the task's own ``approve`` list; None keeps the task's.
    Returns ``{"name", "status", "leaderboard", "best", "full_training", "report_path", "approval", ...}``;
    ``status`` is "finished", "incomplete" or "waiting_for_approval" (then ``approval`` is the request).
    A run name already used in this workspace is refused (use :func:`resume` to finish it).
    """
    validated = load_task(task, planner=planner, approve=approve)
    # fail now, not at round 1's propose, when the planner cannot work here (e.g. `llm` with no LLM set)
    get_planner(validated.planner)
    run_name = name or validated.name
    try:
        load_task(validated, name=run_name)  # the run name becomes a folder name: same rules as task names
    except TaskError as exc:
        raise TaskError(f"invalid run name {run_name!r}: use letters, digits, '_', '-' or '.' (max 64)") from exc
    with _graph() as (graph, saver):
        if run_name in list_threads(saver):
            raise ToolError(f"a run named {run_name!r} already exists in this workspace; choose another --name, "
                            f"or `torchscout resume {run_name}` to finish it")
        task_data = validated.model_dump()
        state = initial_state(task_data, run_name)
        _stream(graph, state, run_config(run_name, task_data), state["run_dir"], on_event)
        return _outcome(graph, run_name)


def resume(name: str, *, approve: str | bool | None = None, on_event: EventCallback | None = None) -> dict[str, Any]:
    """Finish run ``name`` from its last checkpoint, keeping every completed step and evaluation.

    A run waiting at an approval gate needs ``approve``: "yes" runs the gated step, "no" skips it.
    Without it, the outcome says again what the run is waiting for and nothing runs.
    """
    answer = parse_answer(approve, "--approve") if approve is not None else None
    with _graph() as (graph, saver):
        snapshot = _existing(graph, saver, name)
        waiting = list(getattr(snapshot, "interrupts", ()) or ())
        if answer is not None and not pending_requests(snapshot):
            raise ToolError(f"run {name!r} is not waiting for an approval, so --approve has nothing to answer; "
                            f"`torchscout resume {name}` continues it and asks when it reaches a gated step")
        if not snapshot.next or (waiting and answer is None):
            return _outcome(graph, name)
        # a run killed before its first step has no values yet: only its input is checkpointed
        values = snapshot.values or {}
        graph_input = Command(resume={item.id: answer for item in waiting}) if waiting else None
        _stream(graph, graph_input, run_config(name, values.get("task")), values.get("run_dir", f"runs/{name}"),
                on_event)
        return _outcome(graph, name)


def replay(name: str, checkpoint_id: str, *, on_event: EventCallback | None = None,
           updates: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fork run ``name`` at ``checkpoint_id`` and run it on from there (optionally with state ``updates``).

    The fork is a new branch of the same thread: history keeps the original checkpoints.
    """
    with _graph() as (graph, saver):
        _existing(graph, saver, name)
        source = thread_config(name, checkpoint_id)
        snapshot = graph.get_state(source)
        if snapshot.metadata is None:
            raise ToolError(f"run {name!r} has no checkpoint {checkpoint_id!r}; list them with "
                            f"`torchscout history {name}`")
        fork_config = graph.update_state(source, updates or {}) if updates else source
        values = snapshot.values
        config = {**run_config(name, values.get("task")), "configurable": fork_config["configurable"]}
        _stream(graph, None, config, values.get("run_dir", f"runs/{name}"), on_event)
        return _outcome(graph, name)


def _existing(graph: Any, saver: SqliteSaver, name: str) -> Any:
    if name not in list_threads(saver):
        known = ", ".join(list_threads(saver)) or "none yet"
        raise ToolError(f"no run named {name!r} in this workspace (runs: {known})")
    return graph.get_state(thread_config(name))


def run_state(name: str) -> dict[str, Any]:
    """The latest checkpointed state of run ``name`` (raises when there is no such run)."""
    with _graph() as (graph, saver):
        return dict(_existing(graph, saver, name).values or {})


def checkpoint_history(name: str) -> list[dict[str, Any]]:
    """Run ``name``'s checkpoints, oldest first (see :func:`torchscout.graphs.checkpointing.history_rows`)."""
    with _graph() as (graph, saver):
        _existing(graph, saver, name)
        return history_rows(graph, name)


def checkpoint_trace(name: str) -> list[dict[str, Any]]:
    """Every checkpoint of run ``name`` with its full state (JSON-able)."""
    with _graph() as (graph, saver):
        _existing(graph, saver, name)
        return trace_rows(graph, name)


def report_text(name: str) -> str:
    """The text of run ``name``'s report.md."""
    state = run_state(name)
    if not state.get("report_path"):
        raise ToolError(f"run {name!r} has no report yet; finish it with `torchscout resume {name}`")
    return resolve(state["report_path"], must_exist=True, kind="report").read_text(encoding="utf-8")


def list_runs() -> list[dict[str, Any]]:
    """Every run in the workspace with its status and best metric."""
    rows = []
    with _graph() as (graph, saver):
        for name in list_threads(saver):
            snapshot = graph.get_state(thread_config(name))
            state = snapshot.values or {}
            pid_file = resolve(f"{state.get('run_dir', 'runs/' + name)}/{PID_FILE}")
            requests = pending_requests(snapshot)
            if not snapshot.next and state.get("phase") == "done":
                status = "finished"
            elif requests:
                status = f"waiting for approval ({requests[0]['action']}): {resume_command(name)}"
            elif pid_file.exists() and _alive(pid_file.read_text().strip()):
                status = f"running (pid {pid_file.read_text().strip()})"
            else:
                status = f"stopped before {','.join(snapshot.next) or '?'}"
            winner = (state.get("final") or {}).get("winner") or {}
            rows.append({"name": name, "status": status, "metric": (state.get("task") or {}).get("metric"),
                         "best": winner.get("label") or state.get("best_id"),
                         "best_metric": (winner.get("stats") or {}).get("mean", state.get("best_metric")),
                         "evaluations": len(state.get("evaluations") or {}), "report": state.get("report_path")})
    return rows


def _alive(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
