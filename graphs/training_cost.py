"""What training will cost, estimated from what the run's evaluations measured.

Every evaluation records its training throughput (samples/s per epoch), its epochs and its wall
time. From those, :class:`Throughput` models one training run as a fixed setup cost (data,
model, checks) plus, per epoch, the training pass and the time around it (validation,
bookkeeping). The graph uses it to keep back what the final phase will need while it searches
(:func:`final_phase_s`, read by ``graphs.budget``), to decide whether a longer rung fits in the
time left, and to show the approval gate before full training what it will cost
(:func:`full_train_estimate`). Everything comes from the checkpointed state alone, so an
estimate is the same when a node runs again on resume.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Literal

from torchscout.agent.records import EvaluationRecord, GateDetails, ResearchState, evaluations_of
from torchscout.agent.task import Task
from torchscout.graphs import fidelity
from torchscout.graphs.state import task_of
from torchscout.tools.training.status import COMPLETED

# A backward pass costs about twice the forward pass, so a training step is ~3x the forward FLOPs.
TRAIN_FLOPS_PER_FORWARD = 3
# Per epoch, time outside the training pass as a share of it, when the evaluations cannot tell
# (they all ran the same number of epochs): one validation pass over a smaller split.
VALIDATION_SHARE = 0.25
# The full trainer's own costs on top of an evaluation's: W&B, checkpoints, the final evaluation, plots.
FULL_TRAIN_EXTRA_S = 3.0
REPORT_S = 3.0  # writing the report and its plots
EXPECTED_FULL_SHARE = 0.5  # of full_epochs, what the final training is expected to run (early stopping)

# The stage whose evaluations are running: the reserve is what the stages after it need.
Stage = Literal["search", "optimizer", "confirm"]


@dataclass(frozen=True)
class Throughput:
    """How long a training run of this model takes: ``setup_s + epochs * epoch_s``."""

    samples_per_s: float   # training samples per second (median over the measured epochs)
    epoch_samples: int     # training samples in one epoch
    around_epoch_s: float  # per epoch, outside the training pass: validation and bookkeeping
    setup_s: float         # once per run: data, model, checks

    @property
    def epoch_s(self) -> float:
        return self.epoch_samples / self.samples_per_s + self.around_epoch_s

    def run_s(self, epochs: int) -> float:
        return self.setup_s + epochs * self.epoch_s


def _measured_records(evaluations: dict[str, EvaluationRecord], candidate_id: str | None) -> list[EvaluationRecord]:
    done = [item for item in evaluations.values() if item["status"] == COMPLETED and item.get("history")
            and item.get("duration_s")]
    own = [item for item in done if item["candidate_id"] == candidate_id] if candidate_id else []
    return own or done


def _epoch_samples(evaluations: dict[str, EvaluationRecord]) -> int | None:
    """Training samples in one epoch: the largest epoch any evaluation of this run measured."""
    sizes = [int(entry["samples"]) for item in evaluations.values() for entry in item.get("history") or []
             if isinstance(entry.get("samples"), int | float)]
    return max(sizes) if sizes else None


def _fit_overheads(rows: list[tuple[int, float]], train_epoch_s: float) -> tuple[float, float]:
    """(setup_s, around_epoch_s) from (epochs, seconds outside training) of each evaluation.

    With evaluations of different lengths, the time around an epoch is the median slope between
    pairs of them (Theil-Sen); otherwise it is taken as :data:`VALIDATION_SHARE` of the training
    pass. The setup is the smallest of what remains: a run's first evaluation also pays one-time
    costs (imports, caches), which only ever add time, so the smallest is the steady cost.
    """
    slopes = [(second - first) / (later - earlier) for index, (earlier, first) in enumerate(rows)
              for later, second in rows[index + 1:] if later != earlier]
    around = max(statistics.median(slopes), 0.0) if slopes else VALIDATION_SHARE * train_epoch_s
    return max(min(seconds - epochs * around for epochs, seconds in rows), 0.0), around


def throughput(state: ResearchState, candidate_id: str | None = None) -> Throughput | None:
    """The training-time model of ``candidate_id`` (every evaluation of the run when it has none yet)."""
    evaluations = evaluations_of(state)
    records = _measured_records(evaluations, candidate_id)
    epoch_samples = _epoch_samples(evaluations)
    speeds = [float(entry["samples_per_s"]) for item in records for entry in item["history"]
              if isinstance(entry.get("samples_per_s"), int | float) and entry["samples_per_s"] > 0]
    if not speeds or not epoch_samples:
        return None
    speed = statistics.median(speeds)
    rows = [(len(item["history"]), max(float(item["duration_s"]) - sum(float(entry.get("epoch_time_s") or 0.0)
                                                                     for entry in item["history"]), 0.0))
            for item in records]
    setup_s, around_s = _fit_overheads(rows, epoch_samples / speed)
    return Throughput(samples_per_s=speed, epoch_samples=epoch_samples, around_epoch_s=around_s, setup_s=setup_s)


def final_rung(state: ResearchState) -> int:
    """The fidelity the final phase compares at: the deepest rung the best candidate completed."""
    best_id = state.get("best_id")
    rungs = [fidelity.rung_of(item) for item in evaluations_of(state).values()
             if item["candidate_id"] == best_id and item["kind"] in fidelity.SEARCH_KINDS
             and item["status"] == COMPLETED]
    return max(rungs, default=fidelity.QUICK)


def full_train_s(task: Task, model: Throughput, epochs: int | None = None) -> float:
    """The final training for ``epochs`` (default: its cap, full_epochs)."""
    epochs = task.budget.full_epochs if epochs is None else epochs
    return model.run_s(epochs) + FULL_TRAIN_EXTRA_S if task.budget.full_epochs > 0 else 0.0


def expected_full_epochs(task: Task) -> int:
    """Epochs the final training is expected to run: early stopping usually ends it well before its cap,
    so the search keeps back time for half the cap (at least two patience windows). A training that
    needs more gets what is left of the budget, and keeps its best epoch when the time runs out."""
    budget = task.budget
    return min(budget.full_epochs, max(round(EXPECTED_FULL_SHARE * budget.full_epochs),
                                       2 * budget.early_stopping_patience))


def final_phase_s(state: ResearchState, stage: Stage = "search") -> float | None:
    """Seconds what follows ``stage`` needs: after the search, the optimizer trials and the seed
    confirmation at the best's rung; after those, full training and the report (None until an
    evaluation has measured anything)."""
    task = task_of(state)
    model = throughput(state, state.get("best_id"))
    if model is None:
        return None
    evaluation_s = model.run_s(fidelity.rung_epochs(task, final_rung(state)))
    trials = {"search": task.budget.optimizer_trials + 2 * task.budget.confirm_seeds,
              "optimizer": 2 * task.budget.confirm_seeds, "confirm": 0}[stage]
    return trials * evaluation_s + full_train_s(task, model, expected_full_epochs(task)) + REPORT_S


def full_train_estimate(state: ResearchState, left_s: float) -> tuple[str, GateDetails]:
    """(one-line summary, details) of the full training the winner would get; ``left_s``: budget left."""
    task, final = task_of(state), state.get("final") or {}
    winner = final["winner"]
    candidate = state["candidates"][winner["candidate_id"]]
    epochs = task.budget.full_epochs
    training = winner["training"]
    epoch_samples = _epoch_samples(evaluations_of(state))
    model = throughput(state, winner["candidate_id"])
    wall_s = full_train_s(task, model) if model is not None else None
    speed = model.samples_per_s if model is not None else None
    flops = candidate.get("flops")
    train_flops = TRAIN_FLOPS_PER_FORWARD * flops * epoch_samples * epochs if flops and epoch_samples else None
    left_s = max(left_s, 0.0)
    details: GateDetails = {
        "candidate": winner["candidate_id"], "configuration": winner.get("label"),
        "model_class": candidate.get("class_name"), "script": candidate.get("script"),
        "epochs": epochs, "early_stopping_patience": task.budget.early_stopping_patience,
        "params": candidate.get("params"), "flops_per_sample": flops,
        "optimizer": training.get("optimizer"), "lr": training.get("lr"),
        "samples_per_epoch": epoch_samples,
        "measured_samples_per_s": round(speed, 1) if speed else None,
        "estimated_train_flops": f"{train_flops:.3g}" if train_flops else None,
        "estimated_wall_s": round(wall_s, 1) if wall_s is not None else None,
        "time_budget_left_s": round(left_s, 1),
        "writes": f"{state['run_dir']}/full_training/",
    }
    size = (f"{candidate['params']:,} params, {flops:,} FLOPs/sample" if candidate.get("params") and flops
            else "size not measured")
    shown_s = f"{wall_s:.1f}" if wall_s is not None and wall_s < 10 else f"{wall_s:,.0f}" if wall_s else ""
    cost = (f"at most about {shown_s} s of training, validation and the trainer's setup ({epoch_samples:,} "
            f"samples/epoch at {speed:,.0f} samples/s measured in the search's evaluations); early stopping "
            f"after {task.budget.early_stopping_patience} epochs without improvement usually ends it sooner"
            if wall_s is not None and speed else "no throughput was measured to estimate the time")
    if wall_s is not None and wall_s > left_s:
        cost += f"; the {left_s:.0f} s left of the time budget will cut it short"
    summary = (f"full training of {winner.get('label') or winner['candidate_id']} ({size}) for up to {epochs} "
               f"epoch{'' if epochs == 1 else 's'} with {training.get('optimizer')} lr {training.get('lr')}: {cost}")
    return summary, details
