"""The wall-clock budget, enforced by the graph itself.

Time is counted in two places: each node adds its own duration to ``state["elapsed_s"]`` (so
the budget survives a crash and a resume), and a :class:`RunContext` passed to each
``graph.stream`` call measures time since that call started on top of what the state had
already used. Model and optimizer code written by an agent runs inside the nodes and cannot
touch either.

While it searches, the graph keeps back a reserve for what comes after the search (optimizer
trials, seed confirmation, full training, the report), estimated from the throughput the run's
evaluations measured (:func:`torchscout.graphs.training_cost.final_phase_s`). Before anything was
measured the reserve is a prior share of the budget; it never takes more than
:data:`MAX_RESERVE_SHARE`, so a slow model still gets a search (its final training is then cut
short by the time left, and early stopping usually ends it before).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from typing_extensions import TypedDict  # LangGraph's server reads schemas from here on Python 3.11

from torchscout.agent.task import Task
from torchscout.graphs.state import ResearchState, task_of
from torchscout.graphs.training_cost import Stage, final_phase_s

PRIOR_RESERVE_SHARE = 0.25   # the reserve before any evaluation measured a throughput
MAX_RESERVE_SHARE = 0.5      # the reserve never takes more of the budget than this
NO_FULL_TRAIN_SHARE = 0.05   # ... and before a measurement, when there is no full training
# Share of the time left that the LLM calls of one step may use: the rest is for the work they plan.
LLM_SHARE_OF_TIME_LEFT = 0.5


@dataclass
class RunContext:
    """Per-invocation clock: ``used_before_s`` is the state's ``elapsed_s`` when the stream began."""

    used_before_s: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def used_s(self) -> float:
        return self.used_before_s + (time.monotonic() - self.started)


class ResearchContext(TypedDict, total=False):
    """The graph's public context schema (what ``langgraph dev`` / Studio offer to set per invocation):
    nothing, since a run's settings are all in its task. The CLI passes its own :class:`RunContext`
    clock, which nodes read through :func:`clock_of`; a run without it counts each node's duration."""


def clock_of(runtime: Any) -> RunContext | None:
    """The run's budget clock, when its caller passed one (a server run's context is plain data, not a clock)."""
    context = getattr(runtime, "context", None) if runtime is not None else None
    return context if isinstance(context, RunContext) else None


def budget_s(task: Task) -> float:
    return float(task.budget.max_minutes) * 60.0


def reserve_s(state: ResearchState, stage: Stage = "search") -> float:
    """Seconds kept back, while ``stage`` runs, for what follows it (see the module docstring)."""
    task = task_of(state)
    estimate = final_phase_s(state, stage)
    if estimate is None:
        return prior_reserve_s(task)
    return min(estimate, MAX_RESERVE_SHARE * budget_s(task))


def prior_reserve_s(task: Task) -> float:
    """The reserve before any evaluation has measured a throughput."""
    return budget_s(task) * (PRIOR_RESERVE_SHARE if task.budget.full_epochs > 0 else NO_FULL_TRAIN_SHARE)


def used_s(state: ResearchState, context: RunContext | None) -> float:
    return context.used_s() if context is not None else float(state.get("elapsed_s", 0.0))


def search_time_left_s(state: ResearchState, context: RunContext | None, stage: Stage = "search") -> float:
    """Seconds ``stage`` (the search, the optimizer trials, the seed confirmation) may still spend
    (negative when it is over)."""
    return budget_s(task_of(state)) - reserve_s(state, stage) - used_s(state, context)


def total_time_left_s(state: ResearchState, context: RunContext | None) -> float:
    return budget_s(task_of(state)) - used_s(state, context)


def llm_time_left_s(task: Task, used: float, reserve: float) -> float:
    """Seconds the LLM calls of one step may take: half of the time left after ``reserve`` (the search's
    reserve for the final phase while searching, 0 after it); the work they plan needs the other half."""
    return max(0.0, LLM_SHARE_OF_TIME_LEFT * (budget_s(task) - used - reserve))
