"""What the final full training will cost, estimated from what the search measured.

The approval gate before full training shows this: the winner's size (parameters, FLOPs per
sample), the epochs, and a wall-time estimate from the throughput its quick evaluations
measured (training samples per second, plus the validation and setup time each epoch cost
them). Everything is computed from the checkpointed state alone, so the estimate is the same
when the gate node runs again on resume.
"""

from __future__ import annotations

import statistics

from torchscout.agent.records import EvaluationRecord, GateDetails, evaluations_of
from torchscout.graphs import budget
from torchscout.graphs.state import ResearchState, task_of
from torchscout.tools.training.status import COMPLETED

# A backward pass costs about twice the forward pass, so a training step is ~3x the forward FLOPs.
TRAIN_FLOPS_PER_FORWARD = 3


def _winner_evaluations(evaluations: dict[str, EvaluationRecord], candidate_id: str) -> list[EvaluationRecord]:
    return [item for item in evaluations.values()
            if item["candidate_id"] == candidate_id and item["status"] == COMPLETED and item.get("history")]


def _epoch_samples(evaluations: dict[str, EvaluationRecord]) -> int | None:
    """Training samples in one epoch: the largest epoch any evaluation of this run measured."""
    sizes = [int(entry["samples"]) for item in evaluations.values() for entry in item.get("history") or []
             if isinstance(entry.get("samples"), int | float)]
    return max(sizes) if sizes else None


def _measured(evaluations: list[EvaluationRecord]) -> tuple[float | None, float]:
    """(median training samples/s, median seconds per epoch spent outside training: validation, setup)."""
    speeds = [float(entry["samples_per_s"]) for item in evaluations for entry in item["history"]
              if isinstance(entry.get("samples_per_s"), int | float) and entry["samples_per_s"] > 0]
    overheads = []
    for item in evaluations:
        train_s = sum(float(entry.get("epoch_time_s") or 0.0) for entry in item["history"])
        if item.get("duration_s"):
            overheads.append(max(float(item["duration_s"]) - train_s, 0.0) / len(item["history"]))
    return (statistics.median(speeds) if speeds else None), (statistics.median(overheads) if overheads else 0.0)


def full_train_estimate(state: ResearchState) -> tuple[str, GateDetails]:
    """(one-line summary, details) of the full training the winner would get."""
    task, final = task_of(state), state.get("final") or {}
    winner = final["winner"]
    candidate = state["candidates"][winner["candidate_id"]]
    epochs = task.budget.full_epochs
    training = winner["training"]
    evaluations = evaluations_of(state)
    epoch_samples = _epoch_samples(evaluations)
    speed, overhead_s = _measured(_winner_evaluations(evaluations, winner["candidate_id"]))
    wall_s = (epochs * (epoch_samples / speed + overhead_s)) if epoch_samples and speed else None
    flops = candidate.get("flops")
    train_flops = TRAIN_FLOPS_PER_FORWARD * flops * epoch_samples * epochs if flops and epoch_samples else None
    left_s = max(budget.total_time_left_s(state, None), 0.0)
    details: GateDetails = {
        "candidate": winner["candidate_id"], "configuration": winner.get("label"),
        "model_class": candidate.get("class_name"), "script": candidate.get("script"),
        "epochs": epochs, "params": candidate.get("params"), "flops_per_sample": flops,
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
    cost = (f"about {shown_s} s of training and validation ({epoch_samples:,} samples/epoch at {speed:,.0f} "
            f"samples/s measured in the quick evaluations), plus the trainer's setup, W&B logging and checkpoints"
            if wall_s is not None else "no throughput was measured to estimate the time")
    if wall_s is not None and wall_s > left_s:
        cost += f"; the {left_s:.0f} s left of the time budget will cut it short"
    summary = (f"full training of {winner.get('label') or winner['candidate_id']} ({size}) for {epochs} epoch{'' if epochs == 1 else 's'} "
               f"with {training.get('optimizer')} lr {training.get('lr')}: {cost}")
    return summary, details
