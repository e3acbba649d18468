"""The research graph's state: plain JSON-able data only (configs, paths, numbers, text).

The state schema and its records are :class:`torchscout.agent.records.ResearchState` (the
planners and the report read them too, so they live below the graph). Parallel evaluation tasks
write to the same keys in one step, so the collections have reducers that merge instead of
overwrite:

- ``candidates``: id -> :class:`~torchscout.agent.records.CandidateRecord` (what was proposed,
  built, measured, and why it failed);
- ``evaluations``: key -> :class:`~torchscout.agent.records.EvaluationRecord` (``screen``,
  ``quick``, ``optimizer``, ``confirm``) with its settings, seed and result;
- ``decisions`` and ``failures``: append-only logs for the report;
- ``approvals``: gate key -> the person's answer at an approval gate (see ``graphs.approval``);
- ``elapsed_s``: budget seconds used when the latest node finished (parallel tasks report the
  same clock, so the reducer keeps the maximum); it carries the budget across a resume.

The candidate and evaluation reducers refuse a status outside the shared vocabulary
(:data:`~torchscout.agent.records.Status`). Every field has a default (``total=False`` plus
:func:`initial_state`) so threads written by an older version still load.

A node started with ``Send`` sees only its job: :class:`EvaluationJob` or :class:`AssembleJob`.
Their keys are what older versions sent too (a checkpoint may hold a job sent before a crash).
"""

from __future__ import annotations

from typing import Any, NotRequired

from typing_extensions import TypedDict  # LangGraph's server reads schemas from here on Python 3.11

from torchscout.agent.records import (
    BranchRecord,
    CandidateRecord,
    EvaluationKind,
    FinalRecord,
    FullTrainingRecord,
    Phase,
    ResearchState,
    TokenizerRecord,
    TrainingRecord,
    latest_clock,
    merge_candidates,
    merge_evaluations,
    merge_records,
)
from torchscout.agent.task import Task

__all__ = ["AssembleJob", "EvaluationJob", "ResearchInput", "ResearchOutput", "ResearchState", "initial_state", "latest_clock", "merge_candidates",
           "merge_evaluations", "merge_records", "task_of"]


class ResearchInput(TypedDict):
    """What starts a run: the task (a dict of task fields, or the path of a task YAML file) and the run's
    name (letters, digits, '_', '-', '.'; unique in the workspace). ``setup`` builds the rest of the state."""

    task: dict[str, Any] | str
    run_name: str


class ResearchOutput(TypedDict, total=False):
    """What a finished run answers: where its files are, the winner, the full training and the report."""

    run_name: str
    run_dir: str
    phase: Phase
    best_id: str | None
    best_metric: float | None
    stop_reason: str | None
    final: FinalRecord
    full_training: FullTrainingRecord
    report_path: str | None
    branch: BranchRecord


class EvaluationJob(TypedDict):
    """The payload of one evaluation task (sent with ``Send``)."""

    key: str
    kind: EvaluationKind
    candidate_id: str
    training: TrainingRecord
    seed: int
    epochs: int
    max_steps: int | None
    task: dict[str, Any]   # Task.model_dump(), as in the state
    run_dir: str
    tokenizers: dict[str, TokenizerRecord]
    candidate: CandidateRecord
    reserve_s: float       # budget seconds kept back for the final phase
    time_left_s: float     # search seconds left when the job was sent (used without a RunContext)
    rung: NotRequired[int]  # its fidelity (jobs sent by older versions: screen 0, else 1)


class AssembleJob(TypedDict):
    """The payload of one assembly task."""

    candidate: CandidateRecord
    run_dir: str


def initial_state(task: dict[str, Any], run_name: str) -> ResearchState:
    """The state a new run starts from (``task`` is ``Task.model_dump()``)."""
    return ResearchState(
        task=task, run_name=run_name, run_dir=f"runs/{run_name}", project_dir="", phase="search",
        round=0, rung=0, halving_done=False, stale_rounds=0, best_id=None, best_metric=None, tokenizers={}, candidates={},
        evaluations={}, decisions=[], failures=[], elapsed_s=0.0, stop_reason=None, stopped_by=None, optimizer_plan={},
        confirm_plan={}, final={},
        full_training={}, approvals={}, baselines=[], report_path=None,
    )


def task_of(state: ResearchState | EvaluationJob) -> Task:
    """The run's validated task (the state and the jobs keep it as plain data)."""
    return Task.model_validate(state["task"])
