"""Weights & Biases for a research run: one project, one group per run, one W&B run per evaluation.

- Each evaluation is logged when it ends (by the evaluate step, so a resumed or forked run never
  logs an evaluation twice), ``job_type`` its kind (screen, quick, rung, optimizer, confirm), its
  config everything needed to read it on its own: the candidate's blueprint, model config,
  parameters and FLOPs, the dataset, batch size, optimizer and learning rate, seed, epochs.
  Its rows use ``epoch`` as the step (``define_metric``).
- The full training logs epoch by epoch (the trainer's own W&B run) into the same project and
  group, ``job_type`` ``full_train``.
- ``analyze`` adds a ``summary`` run with the leaderboard.

Every run is tagged with its branch (``main``, or a fork's id) and written under its branch's
folder, ``<run_dir>/wandb_logs``; W&B makes a fresh run id for each, so no id is shared between
folders. Offline by default (``wandb sync`` uploads later); ``TORCHSCOUT_WANDB_MODE=disabled``
turns it off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypedDict

from torchscout.agent.records import CandidateRecord, EvaluationRecord
from torchscout.agent.report import leaderboard_rows
from torchscout.agent.training_configs import TrainingRecord, WandbSettings
from torchscout.graphs.branches import BRANCHES_FOLDER, MAIN_BRANCH, branch_of
from torchscout.graphs.state import EvaluationJob, ResearchState
from torchscout.settings import get_settings
from torchscout.tools.workspace import relative_to_workspace, resolve

logger = logging.getLogger(__name__)
PROJECT = "torchscout-research"


def run_and_branch(run_dir: str) -> tuple[str, str]:
    """The run name and branch of a run folder: ``runs/<name>`` or ``runs/<name>/branches/<id>``."""
    parts = run_dir.strip("/").split("/")
    branch = parts[3] if len(parts) >= 4 and parts[2] == BRANCHES_FOLDER else MAIN_BRANCH
    return parts[1], branch


# An evaluation's W&B run is written after the evaluation, from the driver: the machine, the Python
# packages, git and system metrics W&B records by default would describe the driver, not the
# evaluation, and cost ~0.1 s of the driver's CPU per run (a package scan each time), taken from the
# evaluations running beside it. The run's ``summary`` run keeps them, once per research run.
_EVALUATION_RUN_SETTINGS = {"x_save_requirements": False, "x_disable_meta": True, "x_disable_stats": True,
                            "x_disable_machine_info": True, "disable_git": True, "save_code": False,
                            "disable_job_creation": True}


def _init(run_dir: str, job_type: str, name: str, config: Mapping[str, Any], *, evaluation: bool = False) -> Any:
    import wandb

    run_name, branch = run_and_branch(run_dir)
    folder = resolve(f"{run_dir}/wandb_logs")
    folder.mkdir(parents=True, exist_ok=True)
    display = f"{run_name}/{name}" if branch == MAIN_BRANCH else f"{run_name}@{branch}/{name}"
    return wandb.init(mode=get_settings().wandb_mode, project=PROJECT, group=run_name, job_type=job_type,
                      name=display, tags=[f"branch:{branch}", job_type], dir=str(folder), reinit="create_new",
                      config={**config, "run_name": run_name, "branch": branch},
                      settings=wandb.Settings(silent=True, console="off",
                                              **(_EVALUATION_RUN_SETTINGS if evaluation else {})))


class EvaluationRunConfig(TypedDict):
    """An evaluation's W&B config: the candidate, the data, the training settings, the seed."""

    key: str
    kind: str
    rung: int | None
    candidate_id: str
    blueprint: Any
    model_config: Any
    params: int | None
    flops: int | None
    dataset: str | None
    batch_size: int | None
    optimizer: str | None
    learning_rate: float | None
    training: TrainingRecord
    seed: int
    epochs: int | None
    max_steps: int | None
    metric_name: str | None


def evaluation_config(job: EvaluationJob, record: EvaluationRecord) -> EvaluationRunConfig:
    """What one evaluation ran: the candidate, the data, the training settings, the seed."""
    candidate: CandidateRecord = job["candidate"]
    task = job["task"]
    return EvaluationRunConfig(**{"key": record["key"], "kind": record["kind"], "rung": job.get("rung"),
            "candidate_id": record["candidate_id"], "blueprint": candidate.get("blueprint"),
            "model_config": candidate.get("model_config"), "params": candidate.get("params"),
            "flops": candidate.get("flops"), "dataset": task.get("dataset"),
            "batch_size": (task.get("budget") or {}).get("batch_size"),
            "optimizer": record["training"].get("optimizer"), "learning_rate": record["training"].get("lr"),
            "training": record["training"], "seed": record["seed"], "epochs": record["epochs"],
            "max_steps": record.get("max_steps"), "metric_name": task.get("metric")})


def log_evaluation(job: EvaluationJob, record: EvaluationRecord) -> None:
    """Log one finished evaluation as its own W&B run, its history with epoch as the step."""
    if get_settings().wandb_mode == "disabled" or record["status"] == "skipped":
        return
    run = _init(job["run_dir"], record["kind"], record["key"], evaluation_config(job, record), evaluation=True)
    run.define_metric("epoch")
    run.define_metric("*", step_metric="epoch")
    for index, epoch in enumerate(record.get("history") or [], start=1):
        row = {name: value for name, value in epoch.items() if isinstance(value, int | float)}
        run.log({**row, "epoch": row.get("epoch", index)})
    run.summary.update({"status": record["status"], "metric": record.get("metric"),
                        "duration_s": record.get("duration_s"), "error": record.get("error")})
    run.finish(exit_code=0 if record["status"] == "completed" else 1)


def full_train_wandb(run_dir: str) -> WandbSettings:
    """The full trainer's ``wandb`` settings: the research project and group, job_type and branch tag."""
    run_name, branch = run_and_branch(run_dir)
    return WandbSettings(mode=get_settings().wandb_mode, project=PROJECT, group=run_name, job_type="full_train",
                         tags=["torchscout", "full_train", f"branch:{branch}"])


def log_research_run(state: ResearchState) -> str | None:
    """Log the leaderboard as the run's ``summary`` W&B run; returns the W&B folder (workspace-relative)."""
    if get_settings().wandb_mode == "disabled":
        return None
    import wandb

    rows = leaderboard_rows(state)
    summary = _init(state["run_dir"], "summary", "summary",
                    {"task": state.get("task"), "branch_record": state.get("branch")})
    columns = ["rank", "candidate", "metric", "params", "flops", "seconds", "status"]
    summary.log({"leaderboard": wandb.Table(columns=columns, data=[[row[column] for column in columns]
                                                                   for row in rows])})
    winner = (state.get("final") or {}).get("winner") or {}
    summary.summary.update({"winner": winner.get("label"), "winner_mean": (winner.get("stats") or {}).get("mean"),
                            "branch": branch_of(state)})
    summary.finish()
    return relative_to_workspace(resolve(f"{state['run_dir']}/wandb_logs"))
