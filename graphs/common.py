"""Pieces every node uses: timing into the budget, the planner's view of the state, ranking."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TypeVar

from langgraph.config import get_config
from langgraph.runtime import Runtime
from pydantic import Field

from torchscout.agent.proposal import CandidateOutcome, PlanningContext
from torchscout.agent.records import (
    CandidateRecord,
    DecisionRecord,
    EvaluationKind,
    EvaluationRecord,
    ResearchState,
    evaluations_of,
)
from torchscout.graphs.budget import RunContext, clock_of
from torchscout.graphs.llm_budget import llm_step
from torchscout.graphs.state import AssembleJob, EvaluationJob, task_of
from torchscout.tools.training.status import COMPLETED

# What a node receives: the whole state, or the job a Send gave it.
NodeInput = TypeVar("NodeInput", ResearchState, EvaluationJob, AssembleJob)
Node = Callable[[NodeInput, Runtime[RunContext]], ResearchState]


def timed(node: Node[NodeInput]) -> Node[NodeInput]:
    """Report the budget clock in ``elapsed_s`` when the node finishes (the state keeps the maximum), and
    the node's name in ``step_node`` (history and the trace read which node wrote each checkpoint).

    With a :class:`RunContext` (every ``research`` call passes one) the clock is wall time since
    the run began, summed over its invocations; without one (LangGraph Studio) it falls back to
    the state's value plus this node's own duration.
    """

    @functools.wraps(node)
    def wrapper(state: NodeInput, runtime: Runtime[RunContext]) -> ResearchState:
        started = time.monotonic()
        with llm_step(state, runtime, node.__name__):  # the step's LLM limits, ledger and notices
            update = ResearchState(**(node(state, runtime) or {}))
        update["node_seconds"] = {node.__name__: time.monotonic() - started}  # result.json's time_use
        update["step_node"] = current_node(node.__name__)
        context = context_of(runtime)
        if context is not None:
            update["elapsed_s"] = context.used_s()
        else:
            used_before = state.get("elapsed_s", 0.0)  # a Send job has no clock: its own duration counts
            update["elapsed_s"] = float(used_before) + (time.monotonic() - started)
        return update

    return wrapper


def current_node(default: str) -> str:
    """The graph node running now, as LangGraph names it (quick_eval, optimizer_eval, ... share one function)."""
    try:
        return str(get_config().get("metadata", {}).get("langgraph_node") or default)
    except RuntimeError:  # called outside a graph run (a node function called directly)
        return default


def context_of(runtime: Runtime[RunContext] | None) -> RunContext | None:
    return clock_of(runtime)


def decision(node: str, text: str, round_index: int | None = None) -> DecisionRecord:
    entry = DecisionRecord(node=node, text=text, time=round(time.time(), 3))
    if round_index is not None:
        entry["round"] = round_index
    return entry


class OutcomeWithEvidence(CandidateOutcome):
    """A past candidate plus what the graph measured about it, for planners that read it (the LLM's)."""

    analysis: str | None = Field(default=None, description="The summary tool's analysis of the model.")
    curve: list[float] = Field(default_factory=list,
                               description="Per-epoch validation metric of its latest quick evaluation.")


def _curve(evaluations: dict[str, EvaluationRecord], candidate_id: str, metric: str) -> list[float]:
    """Per-epoch validation metric of the candidate's quick evaluation (else its screen)."""
    for kind in ("quick", "screen"):
        record = evaluations.get(f"{candidate_id}/{kind}")
        values = [entry.get(f"val_{metric}") for entry in (record or {}).get("history") or []]
        if values and all(isinstance(value, int | float) for value in values):
            return [float(value) for value in values]
    return []


def _error_with_traceback(state: ResearchState, candidate: CandidateRecord) -> str | None:
    if not candidate.get("error"):
        return None
    tails = [item.get("traceback") for item in state.get("failures") or []
             if item.get("candidate_id") == candidate["id"] and item.get("traceback")]
    return f"{candidate['error']}\n{tails[-1]}" if tails else candidate["error"]


def planning_context(state: ResearchState, round_index: int) -> PlanningContext:
    """What the planner sees: the task and every candidate so far with what was measured about it."""
    task = task_of(state)
    evaluations = evaluations_of(state)
    history = []
    for candidate in state.get("candidates", {}).values():
        metric = candidate.get("metric")
        if metric is None:
            metric = candidate.get("screen_metric")
        history.append(OutcomeWithEvidence(
            id=candidate["id"], round=candidate["round"], status=candidate["status"],
            blueprint=candidate.get("blueprint") or {}, model_config=candidate.get("model_config") or {},
            training=candidate.get("training"), vocab_size=candidate.get("vocab_size"), metric=metric,
            params=candidate.get("params"), flops=candidate.get("flops"),
            error=_error_with_traceback(state, candidate), duration_s=candidate.get("duration_s"),
            analysis=candidate.get("analysis") or None, curve=_curve(evaluations, candidate["id"], task.metric)))
    vocab_sizes = [int(size) for size in (state.get("tokenizers") or {})]
    return PlanningContext(task=task, round=round_index, num_candidates=task.budget.candidates_per_round,
                           history=history, vocab_sizes=vocab_sizes)


def ranked_evaluations(state: ResearchState, kinds: set[EvaluationKind]) -> list[EvaluationRecord]:
    """Completed evaluations of the given kinds, best first under the task's mode."""
    task = task_of(state)
    done = [item for item in evaluations_of(state).values()
            if item["kind"] in kinds and item["status"] == COMPLETED and item["metric"] is not None]
    return sorted(done, key=lambda item: item["metric"], reverse=task.maximize)


def round_candidates(state: ResearchState, round_index: int | None = None) -> list[CandidateRecord]:
    wanted = state.get("round", 0) if round_index is None else round_index
    found = [item for item in state.get("candidates", {}).values() if item.get("round") == wanted]
    return sorted(found, key=lambda item: item["id"])
