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
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot

from torchscout.agent.approvals import parse_answer
from torchscout.agent.planners import get_planner
from torchscout.agent.records import ApprovalRecord, ApprovalRequest, Configuration, FullTrainingRecord
from torchscout.agent.report import LeaderboardRow, leaderboard_rows
from torchscout.agent.task import Task, TaskError, load_task
from torchscout.graphs import warm_up
from torchscout.graphs.approval import pending_requests, resume_command
from torchscout.graphs.branches import branch_of, fork_updates, new_branch_id, producing_node
from torchscout.graphs.budget import RunContext
from torchscout.graphs.checkpointing import (
    DamagedDatabaseError,
    HistoryRow,
    checkpoint_path,
    close_checkpointer,
    history_rows,
    is_damage,
    list_threads,
    open_checkpointer,
    thread_config,
)
from torchscout.graphs.evaluate import evaluate_job
from torchscout.graphs.graph import build_graph, run_config
from torchscout.graphs.preflight import check_task_data
from torchscout.graphs.run_index import (
    claim_run,
    folder_in_use,
    names_by_thread,
    thread_of,
    used_name_message,
)
from torchscout.graphs.run_lock import lock_holder, run_lock
from torchscout.graphs.state import ResearchInput, ResearchState, task_of
from torchscout.graphs.trace import TraceDocument, trace_document
from torchscout.tools.errors import ToolError
from torchscout.tools.training.status import COMPLETED
from torchscout.tools.workspace import resolve

logger = logging.getLogger(__name__)
EventCallback = Callable[[dict[str, Any]], None]  # gets each progress event (see graphs.events)
RunStatus = Literal["finished", "incomplete", "waiting_for_approval"]
WAITING: RunStatus = "waiting_for_approval"


class Outcome(TypedDict):
    """What :func:`research`, :func:`resume` and :func:`replay` return."""

    name: str
    status: RunStatus
    approval: ApprovalRequest | None      # the pending request while waiting for approval
    approvals: dict[str, ApprovalRecord]
    next: list[str]
    leaderboard: list[LeaderboardRow]
    best: Configuration | None
    full_training: FullTrainingRecord
    report_path: str | None
    run_dir: str | None
    branch: str                           # "main", or the fork's branch id after a replay
    evaluations: int
    problem: str | None                   # set when the run produced no usable result (see run_problem)


class RunRow(TypedDict):
    """One run of the workspace, as ``torchscout runs`` lists it."""

    name: str
    status: str                           # finished, running (pid N), waiting for approval ..., stopped before X
    metric: str | None
    best: str | None
    best_metric: float | None
    evaluations: int
    report: str | None


@contextlib.contextmanager
def _graph() -> Iterator[tuple[CompiledStateGraph, SqliteSaver]]:
    saver = open_checkpointer()
    try:
        yield build_graph(checkpointer=saver), saver
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):  # found while reading or writing a checkpoint, not when opening the file
            raise DamagedDatabaseError(checkpoint_path(), str(exc)) from exc
        raise
    finally:
        close_checkpointer(saver)


def warm_up_in_background() -> threading.Thread:
    """Start the sandbox and import the training stack in it while the run sets up (checks the data,
    scaffolds, fits the baselines, plans): the first evaluation then starts warm."""
    return warm_up.warm_up_in_background(also_warm=(evaluate_job.__module__,))


def _stream(graph: CompiledStateGraph, graph_input: ResearchState | Command | None, config: RunnableConfig,
            on_event: EventCallback | None) -> None:
    snapshot = graph.get_state(config)
    used_before = float((snapshot.values or {}).get("elapsed_s", 0.0)) if snapshot else 0.0
    for mode, payload in graph.stream(graph_input, config, context=RunContext(used_before_s=used_before),
                                      stream_mode=["custom", "updates"], durability="sync"):
        if mode == "custom" and on_event is not None:
            on_event(payload)


def _outcome(graph: CompiledStateGraph, run_name: str) -> Outcome:
    snapshot = graph.get_state(thread_config(thread_of(run_name)))
    state: ResearchState = snapshot.values or {}
    final = state.get("final") or {}
    requests = pending_requests(snapshot)
    status: RunStatus
    if requests:
        status = WAITING
    else:
        status = "finished" if not snapshot.next and state.get("phase") == "done" else "incomplete"
    return Outcome(
        name=run_name,
        status=status,
        approval=requests[0] if requests else None,
        approvals=state.get("approvals") or {},
        next=list(snapshot.next),
        leaderboard=leaderboard_rows(state) if state.get("task") else [],
        best=final.get("winner"),
        full_training=state.get("full_training") or {},
        report_path=state.get("report_path"),
        run_dir=state.get("run_dir"),
        branch=branch_of(state),
        evaluations=len(state.get("evaluations") or {}),
        problem=run_problem(state) if status == "finished" else None,
    )


def research(task: str | Path | dict[str, Any] | Task, name: str | None = None, *, planner: str | None = None,
             approve: list[str] | str | None = None, on_event: EventCallback | None = None) -> Outcome:
    """Run the research graph on ``task`` (a YAML path, a dict or a Task) as run ``name``.

    ``approve``: actions to pause before (``["full_train", "pip_install"]`` or "full_train,pip_install"),
    replacing the task's own ``approve`` list; None keeps the task's.
    Returns ``{"name", "status", "leaderboard", "best", "full_training", "report_path", "approval", ...}``;
    ``status`` is "finished", "incomplete" or "waiting_for_approval" (then ``approval`` is the request).
    A run name already used in this workspace (by the CLI or a LangGraph server) is refused, naming
    the ways out: another name, :func:`resume`, :func:`replay`.
    """
    validated = load_task(task, planner=planner, approve=approve)
    warm_up_in_background()
    # fail now, not at round 1's propose, when the planner cannot work here (e.g. `llm` with no LLM set)
    get_planner(validated.planner)
    run_name = name or validated.name
    try:
        load_task(validated, name=run_name)  # the run name becomes a folder name: same rules as task names
    except TaskError as exc:
        raise TaskError(f"invalid run name {run_name!r}: use letters, digits, '_', '-' or '.' (max 64)") from exc
    check_task_data(validated)  # an unknown dataset or a wrong input_shape/num_classes fails here, not per candidate
    with run_lock(run_name), _graph() as (graph, saver):
        if run_name in list_threads(saver) or folder_in_use(run_name):
            raise ToolError(used_name_message(run_name))
        claim_run(run_name, run_name)
        _stream(graph, ResearchInput(task=validated.model_dump(), run_name=run_name),
                run_config(run_name, validated), on_event)
        return _outcome(graph, run_name)


def resume(name: str, *, approve: str | bool | None = None, on_event: EventCallback | None = None) -> Outcome:
    """Finish run ``name`` from its last checkpoint, keeping every completed step and evaluation.

    A run waiting at an approval gate needs ``approve``: "yes" runs the gated step, "no" skips it.
    Without it, the outcome says again what the run is waiting for and nothing runs.
    """
    answer = parse_answer(approve, "--approve") if approve is not None else None
    with run_lock(name), _graph() as (graph, saver):
        snapshot = _existing(graph, saver, name)
        waiting = list(snapshot.interrupts or ())
        if answer is not None and not pending_requests(snapshot):
            raise ToolError(f"run {name!r} is not waiting for an approval, so --approve has nothing to answer; "
                            f"`torchscout resume {name}` continues it and asks when it reaches a gated step")
        if not snapshot.next or (waiting and answer is None):
            return _outcome(graph, name)
        warm_up_in_background()
        # a run killed before its first step has no values yet: only its input is checkpointed
        values: ResearchState = snapshot.values or {}
        graph_input = Command(resume={item.id: answer for item in waiting}) if waiting else None
        _stream(graph, graph_input, run_config(thread_of(name), _task_or_none(values)), on_event)
        return _outcome(graph, name)


def replay(name: str, checkpoint_id: str, *, on_event: EventCallback | None = None,
           updates: ResearchState | None = None) -> Outcome:
    """Fork run ``name`` at ``checkpoint_id`` and run it on from there (optionally with state ``updates``).

    The fork is a new branch of the run's thread with its own folder, ``runs/<name>/branches/<id>/``
    (see :mod:`torchscout.graphs.branches`): it trains and reports there, and never writes the
    parent's report, checkpoints or training files. ``history`` lists both branches.
    """
    with run_lock(name), _graph() as (graph, saver):
        _existing(graph, saver, name)
        thread_id = thread_of(name)
        source = thread_config(thread_id, checkpoint_id)
        snapshot = graph.get_state(source)
        if snapshot.metadata is None:
            raise ToolError(f"run {name!r} has no checkpoint {checkpoint_id!r}; list them with "
                            f"`torchscout history {name}`")
        if not snapshot.next:
            raise ToolError(f"checkpoint {checkpoint_id} is the end of a branch (nothing runs after it); "
                            f"fork an earlier one from `torchscout history {name}`")
        parent = graph.get_state(snapshot.parent_config) if snapshot.parent_config else None
        producer = producing_node(snapshot, parent)
        if producer not in graph.nodes:  # the input, a fork's own first checkpoint, a step of two nodes
            raise ToolError(f"checkpoint {checkpoint_id} is not the end of one node's step ({producer or 'input'});"
                            f" fork another one from `torchscout history {name}`")
        branch_id = new_branch_id()
        fork_config = graph.update_state(source, fork_updates(snapshot, checkpoint_id, branch_id, updates),
                                         as_node=producer)
        config = run_config(thread_id, _task_or_none(snapshot.values))
        config["configurable"] = fork_config["configurable"]
        _stream(graph, None, config, on_event)
        return _outcome(graph, name)


def _task_or_none(values: ResearchState) -> Task | None:
    """The run's task (None for a run killed before its first step: only its input was saved)."""
    return task_of(values) if values.get("task") else None


def _existing(graph: CompiledStateGraph, saver: SqliteSaver, name: str) -> StateSnapshot:
    if thread_of(name) not in list_threads(saver):
        known = ", ".join(run_names(saver)) or "none yet"
        raise ToolError(f"no run named {name!r} in this workspace (runs: {known})")
    return graph.get_state(thread_config(thread_of(name)))


def run_names(saver: SqliteSaver) -> list[str]:
    """Every run of the workspace by name, oldest first: CLI runs and a LangGraph server's alike."""
    named = names_by_thread()
    return [named.get(thread_id, thread_id) for thread_id in list_threads(saver)]


def run_state(name: str) -> ResearchState:
    """The latest checkpointed state of run ``name`` (raises when there is no such run)."""
    with _graph() as (graph, saver):
        return ResearchState(**(_existing(graph, saver, name).values or {}))


def checkpoint_history(name: str) -> list[HistoryRow]:
    """Run ``name``'s checkpoints, oldest first (see :func:`torchscout.graphs.checkpointing.history_rows`)."""
    with _graph() as (graph, saver):
        _existing(graph, saver, name)
        return history_rows(graph, thread_of(name))


def checkpoint_trace(name: str, *, full_state: bool = False) -> TraceDocument:
    """Run ``name``'s trace for other tools: every checkpoint of every branch, state as diffs between
    checkpoints (or whole with ``full_state``); see :mod:`torchscout.graphs.trace`."""
    with _graph() as (graph, saver):
        _existing(graph, saver, name)
        return trace_document(graph, name, thread_of(name), full_state=full_state)


def report_text(name: str) -> str:
    """The text of run ``name``'s report.md (read from its run folder when the run database is damaged)."""
    try:
        state = run_state(name)
    except DamagedDatabaseError:
        fallback = resolve(f"runs/{name}/report.md", kind="report")
        if fallback.is_file():
            return fallback.read_text(encoding="utf-8")
        raise
    if not state.get("report_path"):
        raise ToolError(f"run {name!r} has no report yet; finish it with `torchscout resume {name}`")
    return resolve(state["report_path"], must_exist=True, kind="report").read_text(encoding="utf-8")


def list_runs() -> list[RunRow]:
    """Every run in the workspace with its status and best metric."""
    rows = []
    with _graph() as (graph, saver):
        for name in run_names(saver):
            snapshot = graph.get_state(thread_config(thread_of(name)))
            state: ResearchState = snapshot.values or {}
            requests = pending_requests(snapshot)
            holder = lock_holder(name)
            if not snapshot.next and state.get("phase") == "done":
                status = "finished"
            elif holder is not None:  # a process holds the run: also one answering its approval request
                status = f"running (pid {holder})"
            elif requests:
                status = f"waiting for approval ({requests[0]['action']}): {resume_command(name)}"
            else:
                status = f"stopped before {','.join(snapshot.next) or '?'}"
            winner = (state.get("final") or {}).get("winner") or {}
            rows.append(RunRow(name=name, status=status, metric=(state.get("task") or {}).get("metric"),
                               best=winner.get("label") or state.get("best_id"),
                               best_metric=(winner.get("stats") or {}).get("mean", state.get("best_metric")),
                               evaluations=len(state.get("evaluations") or {}), report=state.get("report_path")))
    return rows


def run_problem(state: ResearchState) -> str | None:
    """Why a finished run has no usable result (nothing evaluated, or every evaluation failed), else None."""
    evaluations = list((state.get("evaluations") or {}).values())
    if any(item.get("status") == COMPLETED for item in evaluations):
        return None
    if not evaluations:
        failed = len(state.get("failures") or [])
        return ("no candidate was evaluated" + (f" ({failed} failed before their evaluation; see the report's "
                                                "Failures)" if failed else " (the time budget ran out first)"))
    counts = Counter(str(item.get("status")) for item in evaluations)
    shown = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    return f"every evaluation failed ({shown}); see the report's Failures section"
