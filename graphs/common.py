"""Pieces every node uses: timing into the budget, the planner's view of the state, ranking."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime
from pydantic import Field

from torchscout.agent.proposal import CandidateOutcome, PlanningContext
from torchscout.agent.task import Task
from torchscout.graphs.budget import RunContext


def timed(node: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Report the budget clock in ``elapsed_s`` when the node finishes (the state keeps the maximum).

    With a :class:`RunContext` (every ``research`` call passes one) the clock is wall time since
    the run began, summed over its invocations; without one (LangGraph Studio) it falls back to
    the state's value plus this node's own duration.
    """

    @functools.wraps(node)
    def wrapper(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
        started = time.monotonic()
        update = dict(node(state, runtime) or {})
        context = context_of(runtime)
        if context is not None:
            update["elapsed_s"] = context.used_s()
        else:
            update["elapsed_s"] = float(state.get("elapsed_s", 0.0)) + (time.monotonic() - started)
        return update

    return wrapper


def context_of(runtime: Runtime[RunContext] | None) -> RunContext | None:
    return getattr(runtime, "context", None) if runtime is not None else None


def task_of(state: dict[str, Any]) -> Task:
    return Task.model_validate(state["task"])


def decision(node: str, text: str, round_index: int | None = None, **details: Any) -> dict[str, Any]:
    entry = {"node": node, "text": text, "time": round(time.time(), 3), **details}
    if round_index is not None:
        entry["round"] = round_index
    return entry


class OutcomeWithEvidence(CandidateOutcome):
    """A past candidate plus what the graph measured about it, for planners that read it (the LLM's)."""

    analysis: str | None = Field(default=None, description="The summary tool's analysis of the model.")
    curve: list[float] = Field(default_factory=list,
                               description="Per-epoch validation metric of its latest quick evaluation.")


def _curve(state: dict[str, Any], candidate_id: str, metric: str) -> list[float]:
    """Per-epoch validation metric of the candidate's quick evaluation (else its screen)."""
    evaluations = state.get("evaluations") or {}
    for kind in ("quick", "screen"):
        record = evaluations.get(f"{candidate_id}/{kind}") or {}
        values = [entry.get(f"val_{metric}") for entry in record.get("history") or []]
        if values and all(isinstance(value, int | float) for value in values):
            return [float(value) for value in values]
    return []


def _error_with_traceback(state: dict[str, Any], candidate: dict[str, Any]) -> str | None:
    if not candidate.get("error"):
        return None
    tails = [item.get("traceback") for item in state.get("failures") or []
             if item.get("candidate_id") == candidate["id"] and item.get("traceback")]
    return f"{candidate['error']}\n{tails[-1]}" if tails else candidate["error"]


def planning_context(state: dict[str, Any], round_index: int) -> PlanningContext:
    task = task_of(state)
    history = []
    for candidate in state.get("candidates", {}).values():
        metric = candidate.get("metric")
        if metric is None:
            metric = candidate.get("screen_metric")
        history.append(OutcomeWithEvidence(
            id=candidate["id"], round=candidate["round"], status=candidate.get("status", "?"),
            blueprint=candidate.get("blueprint") or {}, model_config=candidate.get("model_config") or {},
            training=candidate.get("training") or {}, vocab_size=candidate.get("vocab_size"), metric=metric,
            params=candidate.get("params"), flops=candidate.get("flops"),
            error=_error_with_traceback(state, candidate), duration_s=candidate.get("duration_s"),
            analysis=candidate.get("analysis") or None, curve=_curve(state, candidate["id"], task.metric)))
    vocab_sizes = [int(size) for size in (state.get("tokenizers") or {})]
    return PlanningContext(task=task, round=round_index, num_candidates=task.budget.candidates_per_round,
                           history=history, vocab_sizes=vocab_sizes)


def ranked_evaluations(state: dict[str, Any], kinds: set[str]) -> list[dict[str, Any]]:
    """Successful evaluations of the given kinds, best first under the task's mode."""
    task = task_of(state)
    done = [item for item in state.get("evaluations", {}).values()
            if item.get("kind") in kinds and item.get("status") == "ok" and item.get("metric") is not None]
    return sorted(done, key=lambda item: item["metric"], reverse=task.maximize)


def round_candidates(state: dict[str, Any], round_index: int | None = None) -> list[dict[str, Any]]:
    wanted = state.get("round", 0) if round_index is None else round_index
    found = [item for item in state.get("candidates", {}).values() if item.get("round") == wanted]
    return sorted(found, key=lambda item: item["id"])
