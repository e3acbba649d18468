"""The research run's records: what the graph's state holds, typed, with one status vocabulary.

The graph writes these records, and the planners, the report and the CLI read them, so they
live here, below the graph. Every record is a ``TypedDict`` of plain JSON data: the checkpoint
stays msgpack-able and a thread written by an older version still loads. Records the graph
builds a field at a time (a candidate gains ``params`` at inspect, ``metric`` after its quick
evaluation) are ``total=False``; the reducers below merge those partial updates.

Statuses come from one vocabulary, :data:`Status`: the training tools' own words
(:data:`~torchscout.tools.training.status.TrainingStatus`: completed, diverged, failed) plus the
graph's (a candidate is proposed, assembled, inspected or rejected, screened, evaluated; an
evaluation the budget left no time for is skipped). An evaluation's status is the tool's word
for how its training ended, so an evaluation with a metric is ``completed``. Versions before
this one wrote ``ok`` there: :func:`evaluations_of` reads those records with today's word (read
evaluations through it), and the evaluation reducer stores today's word when a write left pending
by such a version lands on resume. The candidate and evaluation reducers refuse any other word.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, NotRequired, cast, get_args

from typing_extensions import TypedDict  # pydantic reads TypedDicts from here on Python 3.11

from torchscout.agent.approvals import Answer, GatedAction
from torchscout.agent.training_configs import FullTrainConfig, TrainingRecord
from torchscout.tools.codegen.llm_usage import PurposeUsage
from torchscout.tools.training.status import TrainingStatus

# -- the status vocabulary ----------------------------------------------------------------------

# How far a candidate got through a round, in the graph's words.
CandidateProgress = Literal["proposed", "assembled", "inspected", "rejected", "screened", "evaluated"]
# An evaluation: how its training ended, or skipped (the time budget ran out before it started).
EvaluationStatus = Literal[TrainingStatus, "skipped"]
# Every status a record may carry; a candidate's is its progress or how its latest evaluation ended.
Status = Literal[CandidateProgress, EvaluationStatus]

STATUSES: frozenset[str] = frozenset(get_args(Status))
EVALUATION_STATUSES: frozenset[str] = frozenset(get_args(EvaluationStatus))
# Candidates that ended without a result because something went wrong (not for lack of time).
FAILED_STATUSES: frozenset[Status] = frozenset({"failed", "diverged", "rejected"})
# Words older versions wrote in evaluation records, read as today's (an evaluation with a metric
# said "ok" before evaluations used the training tools' own word).
LEGACY_EVALUATION_STATUSES: dict[str, EvaluationStatus] = {"ok": "completed"}

# screen (rung 0) and quick (rung 1) start each round's successive halving; "rung" is a longer rung (2, 3, ...)
EvaluationKind = Literal["screen", "quick", "rung", "optimizer", "confirm"]
# Where in a run something failed: an evaluation kind, or a step of its own.
FailureStage = Literal[EvaluationKind, "assemble", "inspect", "optimizer_config", "full_train"]
Phase = Literal["search", "optimizer", "confirm", "final", "done"]
# What ended the search: the target metric, max_rounds, patience_rounds without improvement, the time
# budget (what is left is kept for confirmation and full training), or the hard cap on rounds.
StopCause = Literal["target", "max_rounds", "patience", "time", "round_cap"]

# One epoch of a training history: numbers by name (train_loss, val_accuracy, samples_per_s, ...).
EpochRecord = dict[str, float | str | None]


# -- the records --------------------------------------------------------------------------------

class CandidateRecord(TypedDict, total=False):
    """One proposed architecture and everything the run learned about it, field by field."""

    id: str
    round: int
    status: Status
    rationale: str
    parent: str | None
    planner: str
    blueprint: dict[str, Any]            # the planner's search-space coordinates (free-form)
    model_config: dict[str, Any]         # the assembler's model_config: {model_name, input_shape, layers}
    training: TrainingRecord
    vocab_size: int | None
    class_name: str
    script: str                          # workspace path of the assembled model.py
    backend: str | None                  # assemble
    output_shape: list[int] | None
    params: int                          # inspect
    flops: int
    analysis: str
    screen_metric: float | None          # screen evaluation
    promoted: bool                       # halve: earned a quick evaluation
    promoted_rung: int                   # halve: the deepest rung it earned (1 quick, 2, 3, ... longer)
    metric: float | None                 # quick evaluation
    duration_s: float | None
    rung: int                            # the deepest rung it completed, and its metric there
    rung_metric: float | None
    stage: FailureStage                  # where it failed, and why
    error: str | None


class EvaluationRecord(TypedDict):
    """One evaluation (screen, quick, optimizer or confirm) with its settings, seed and result."""

    key: str
    kind: EvaluationKind
    candidate_id: str
    seed: int
    training: TrainingRecord
    epochs: int
    max_steps: int | None
    metric: float | None                 # the task's metric; None unless completed
    status: EvaluationStatus
    error: NotRequired[str | None]
    traceback: NotRequired[str]
    duration_s: NotRequired[float]
    metrics: NotRequired[dict[str, float]]
    train_loss: NotRequired[float | None]
    val_loss: NotRequired[float | None]
    history: NotRequired[list[EpochRecord]]
    samples_per_s: NotRequired[float | None]
    rung: NotRequired[int]               # the fidelity it ran at (missing: screen 0, every other kind 1)
    # where the evaluation's time went: the engine's phases (train_steps_s, validation_s, ...) and wall_s,
    # the whole confined call as the graph saw it (fork, confinement and the reply included)
    timings: NotRequired[dict[str, float]]
    speculative: NotRequired[bool]       # computed ahead, in a slot its step left idle (graphs.speculation)


class DecisionRecord(TypedDict):
    """One entry of the decision log the report tells the run's story from."""

    node: str
    text: str
    time: float
    round: NotRequired[int]


class FailureRecord(TypedDict):
    """Something that went wrong, with the tail of its traceback for the report and the planner."""

    candidate_id: str | None
    stage: FailureStage
    error: str | None
    traceback: str
    key: NotRequired[str]                # the evaluation key or optimizer trial


# Scalar facts about a gated action, shown to the person who answers (name -> value).
GateDetails = dict[str, str | int | float | None]


class ApprovalRequest(TypedDict):
    """What a run waiting at an approval gate asks (the ``interrupt`` payload)."""

    action: GatedAction
    key: str
    run: str
    summary: str
    details: GateDetails
    question: str
    answer_with: str


class ApprovalRecord(TypedDict):
    """A person's answer at an approval gate."""

    action: GatedAction
    answer: Answer
    summary: str
    details: GateDetails
    time: float


class TokenizerRecord(TypedDict):
    """A tokenizer trained for a text task (keyed by str(vocab_size) in the state)."""

    name: str
    path: str
    vocab_size: int
    requested: int


class OptimizerPlanEntry(TypedDict):
    candidate_id: str
    training: TrainingRecord
    rationale: str
    rung: NotRequired[int]               # the fidelity the trial runs at (missing: the quick rung)


class ConfirmPlanEntry(TypedDict):
    candidate_id: str
    training: TrainingRecord
    label: str
    seed: int
    rung: NotRequired[int]               # the fidelity the seeds run at (missing: the quick rung)


class SeedStats(TypedDict):
    mean: float | None
    std: float
    n: int
    values: list[float]


class Configuration(TypedDict):
    """A (candidate, training) pair in the final choice, with its seed statistics once confirmed."""

    label: str
    candidate_id: str
    training: TrainingRecord
    search_metric: float
    search_key: str
    confirmed: NotRequired[bool]
    stats: NotRequired[SeedStats]


class FinalRecord(TypedDict, total=False):
    """The confirmed configurations, the winner, the gap to the runner-up and the full-training verdict."""

    candidates: list[Configuration]
    winner: Configuration | None
    runner_up: Configuration
    difference: float
    margin: float
    significant: bool
    full_train: str                      # "run", or "skipped: <why>"


class BaselineRecord(TypedDict):
    """A classical baseline (agent/baselines.py) fitted on the run's training split, and its scores:
    the loss and the run's metrics by name, on the validation split and (if any) the test split."""

    name: str                            # logistic_regression, ridge, hist_gradient_boosting
    model: str                           # the scikit-learn class
    validation: dict[str, float]
    seconds: float
    test: NotRequired[dict[str, float]]


class BestMetric(TypedDict):
    name: str
    value: float
    epoch: int


class FullTrainingRecord(TypedDict, total=False):
    """What ``pytorch_full_trainer`` reported for the winner (or why it failed)."""

    status: TrainingStatus
    error: str
    experiment_dir: str
    best_checkpoint_path: str | None
    best_metric: BestMetric | None
    final_eval: dict[str, float]
    stopped_early: bool
    duration_s: float
    samples_per_s: float
    wandb_run_dir: str | None
    history: list[EpochRecord]
    trainer_config: FullTrainConfig
    stop_reason: str | None              # early_stopping, time_budget; None: every epoch of the cap ran
    epochs_completed: int
    restored_epoch: int | None           # the best epoch, whose weights were restored for the final evaluation
    timings: dict[str, float]            # the trainer's seconds per phase (see tools/training/timing.py)


# -- reading and merging ------------------------------------------------------------------------

def checked_status(word: str, allowed: frozenset[str], where: str) -> Status:
    """``word`` when it is one of ``allowed``; any other word raises ValueError naming ``where``."""
    if word not in allowed:
        raise ValueError(f"{where}: status {word!r} is not one of {', '.join(sorted(allowed))}")
    return cast(Status, word)


def candidate_status(word: str, where: str) -> Status:
    """A candidate's status, checked against the vocabulary (ValueError naming ``where`` if outside)."""
    return checked_status(word, STATUSES, where)


def evaluation_status(word: str, where: str) -> EvaluationStatus:
    """An evaluation's status in today's words (an older version's "ok" is "completed"); others raise."""
    return cast(EvaluationStatus, checked_status(LEGACY_EVALUATION_STATUSES.get(word, word), EVALUATION_STATUSES,
                                                 where))


def evaluations_of(state: ResearchState) -> dict[str, EvaluationRecord]:
    """The run's evaluations with every status in today's words: read evaluations through this, so a
    thread written by an older version ranks its evaluations like a new one."""
    upgraded = {}
    for key, record in (state.get("evaluations") or {}).items():
        stored = record.get("status")
        status = evaluation_status(stored, f"evaluation {key}") if stored else None
        upgraded[key] = record if status == stored else cast(EvaluationRecord, {**record, "status": status})
    return upgraded


def _merge(current: Mapping[str, Mapping[str, object]] | None, update: Mapping[str, Mapping[str, object]] | None,
           kind: str, status_of: Callable[[str, str], str] | None = None) -> dict[str, dict[str, object]]:
    """Merge ``update`` into ``current`` field by field; ``status_of(word, where)`` checks each status."""
    merged = {key: dict(record) for key, record in (current or {}).items()}
    for key, record in (update or {}).items():
        fields = dict(record)
        if status_of is not None and "status" in fields:
            fields["status"] = status_of(str(fields["status"]), f"{kind} {key}")
        merged[key] = {**merged.get(key, {}), **fields}
    return merged


def merge_records(current: dict[str, ApprovalRecord] | None,
                  update: dict[str, ApprovalRecord] | None) -> dict[str, ApprovalRecord]:
    """Merge id -> record maps; a record's fields are updated, not replaced wholesale."""
    return cast(dict[str, ApprovalRecord], _merge(current, update, "record"))


def merge_candidates(current: dict[str, CandidateRecord] | None,
                     update: dict[str, CandidateRecord] | None) -> dict[str, CandidateRecord]:
    """:func:`merge_records` for candidates; a status outside :data:`Status` is refused (ValueError)."""
    return cast(dict[str, CandidateRecord], _merge(current, update, "candidate", candidate_status))


def merge_evaluations(current: dict[str, EvaluationRecord] | None,
                      update: dict[str, EvaluationRecord] | None) -> dict[str, EvaluationRecord]:
    """:func:`merge_records` for evaluations; a status outside :data:`EvaluationStatus` is refused, and
    an older version's word (a write it left pending when it stopped) is stored as today's."""
    return cast(dict[str, EvaluationRecord], _merge(current, update, "evaluation", evaluation_status))


def latest_clock(current: float | None, update: float | None) -> float:
    """Keep the larger budget clock (parallel tasks report the same clock at different moments)."""
    return max(current or 0.0, update or 0.0)


def add_seconds(current: dict[str, float] | None, update: dict[str, float] | None) -> dict[str, float]:
    """Sum seconds per name (each node reports its own duration; parallel tasks add up)."""
    total = dict(current or {})
    for name, seconds in (update or {}).items():
        total[name] = round(total.get(name, 0.0) + float(seconds), 4)
    return total


def latest_write(current: str | None, update: str | None) -> str | None:
    """Keep the latest value (parallel tasks of one step write the same one)."""
    return update if update is not None else current


class BranchRecord(TypedDict, total=False):
    """A fork of a run (``torchscout replay NAME --checkpoint ID``): where it started and what it changed."""

    branch_id: str
    parent_checkpoint_id: str             # the checkpoint it forked from
    parent_step: int | None
    parent_run_dir: str                   # the parent branch's folder (the fork never writes there)
    run_dir: str                          # the fork's own folder: runs/<name>/branches/<branch_id>
    changes: dict[str, Any]               # state updates the fork started with, besides its folders
    created: str                          # UTC ISO-8601


class ResearchState(TypedDict, total=False):
    """The research graph's state (see :mod:`torchscout.graphs.state` for how it is used)."""

    task: dict[str, Any]                  # Task.model_dump(); read it with graphs.state.task_of
    run_name: str
    run_dir: str                          # workspace-relative runs/<name>
    project_dir: str                      # the scaffolded project of the run
    phase: Phase
    round: int                            # rounds proposed so far
    rung: int                             # successive-halving rung of the round (0 screen, 1 quick, 2, ...)
    stale_rounds: int                     # rounds in a row without a new best
    best_id: str | None                   # best candidate by its quick evaluation
    best_metric: float | None
    tokenizers: dict[str, TokenizerRecord]  # str(vocab_size) -> tokenizer
    candidates: Annotated[dict[str, CandidateRecord], merge_candidates]
    evaluations: Annotated[dict[str, EvaluationRecord], merge_evaluations]
    decisions: Annotated[list[DecisionRecord], operator.add]
    failures: Annotated[list[FailureRecord], operator.add]
    elapsed_s: Annotated[float, latest_clock]  # budget seconds used so far (nodes report the clock; max wins)
    node_seconds: Annotated[dict[str, float], add_seconds]  # node name -> seconds spent in it, summed
    stop_reason: str | None               # what ended the search, in words
    stopped_by: StopCause | None          # ... and as one word (result.json's stopped_by)
    halving_done: bool                    # the round's successive halving has no further rung
    optimizer_plan: dict[str, OptimizerPlanEntry]  # evaluation key -> optimizer experiment
    confirm_plan: dict[str, ConfirmPlanEntry]      # evaluation key -> seed re-evaluation
    final: FinalRecord
    full_training: FullTrainingRecord
    approvals: Annotated[dict[str, ApprovalRecord], merge_records]  # gate key -> the person's answer
    baselines: list[BaselineRecord]       # classical baselines on the same split (flat and signal inputs)
    report_path: str | None
    llm_usage: dict[str, PurposeUsage]   # purpose -> LLM calls, tokens, seconds of the run (set by analyze)
    step_node: Annotated[str, latest_write]  # the node whose step wrote the checkpoint (every node sets it)
    branch: BranchRecord                  # set on a fork: what it forked from (absent on the original run)
