"""The research graph's state: plain JSON-able data only (configs, paths, numbers, text).

Parallel evaluation tasks write to the same keys in one step, so the collections have
reducers that merge instead of overwrite:

- ``candidates``: id -> candidate record (what was proposed, built, measured, and why it failed);
- ``evaluations``: key -> one evaluation (``screen``, ``quick``, ``optimizer``, ``confirm``) with
  its settings, seed and result;
- ``decisions`` and ``failures``: append-only logs for the report;
- ``approvals``: gate key -> the person's answer at an approval gate (see ``graphs.approval``);
- ``elapsed_s``: budget seconds used when the latest node finished (parallel tasks report the
  same clock, so the reducer keeps the maximum); it carries the budget across a resume.

Every field has a default (``total=False`` plus :func:`initial_state`) so threads written by an
older version still load.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


def merge_records(current: dict[str, dict[str, Any]] | None,
                  update: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Merge id -> record maps; a record's fields are updated, not replaced wholesale."""
    merged = dict(current or {})
    for key, record in (update or {}).items():
        merged[key] = {**merged.get(key, {}), **record}
    return merged


def latest_clock(current: float | None, update: float | None) -> float:
    """Keep the larger budget clock (parallel tasks report the same clock at different moments)."""
    return max(current or 0.0, update or 0.0)


class ResearchState(TypedDict, total=False):
    task: dict[str, Any]                  # the validated Task as a dict
    run_name: str
    run_dir: str                          # workspace-relative runs/<name>
    project_dir: str                      # the scaffolded project of the run
    phase: str                            # search | optimizer | confirm | final | done
    round: int                            # rounds proposed so far
    rung: int                             # successive-halving rung of the current round (0 screen, 1 quick)
    stale_rounds: int                     # rounds in a row without a new best
    best_id: str | None                   # best candidate by its quick evaluation
    best_metric: float | None
    tokenizers: dict[str, dict[str, Any]]  # str(vocab_size) -> {name, path, vocab_size}
    candidates: Annotated[dict[str, dict[str, Any]], merge_records]
    evaluations: Annotated[dict[str, dict[str, Any]], merge_records]
    decisions: Annotated[list[dict[str, Any]], operator.add]
    failures: Annotated[list[dict[str, Any]], operator.add]
    elapsed_s: Annotated[float, latest_clock]     # budget seconds used so far (nodes report the clock; max wins)
    stop_reason: str | None
    optimizer_plan: dict[str, dict[str, Any]]  # evaluation key -> {candidate_id, training, rationale}
    confirm_plan: dict[str, dict[str, Any]]    # evaluation key -> {candidate_id, training, label, seed}
    final: dict[str, Any]                 # confirm statistics and the chosen configuration
    full_training: dict[str, Any]         # pytorch_full_trainer's result for the winner
    approvals: Annotated[dict[str, dict[str, Any]], merge_records]  # gate key -> {action, answer, summary, ...}
    report_path: str | None


class EvaluationJob(TypedDict):
    """The payload of one evaluation task (sent with ``Send``)."""

    key: str
    kind: str              # screen | quick | optimizer | confirm
    candidate_id: str
    training: dict[str, Any]
    seed: int
    epochs: int
    max_steps: int | None
    task: dict[str, Any]
    run_dir: str
    tokenizers: dict[str, dict[str, Any]]
    candidate: dict[str, Any]
    reserve_s: float       # budget seconds kept back for the final phase
    time_left_s: float     # search seconds left when the job was sent (used without a RunContext)


class AssembleJob(TypedDict):
    """The payload of one assembly task."""

    candidate: dict[str, Any]
    run_dir: str


def initial_state(task: dict[str, Any], run_name: str) -> ResearchState:
    return ResearchState(
        task=task, run_name=run_name, run_dir=f"runs/{run_name}", project_dir="", phase="search",
        round=0, rung=0, stale_rounds=0, best_id=None, best_metric=None, tokenizers={}, candidates={},
        evaluations={}, decisions=[], failures=[], elapsed_s=0.0, stop_reason=None, optimizer_plan={},
        confirm_plan={}, final={},
        full_training={}, approvals={}, report_path=None,
    )
