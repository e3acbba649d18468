"""Weights & Biases for a research run: one group per run, one W&B run per evaluation, a summary table.

Logged once, when the run is analysed, from the checkpointed state: a resumed or replayed run
therefore never logs an evaluation twice. Offline by default (``wandb sync`` uploads later);
``TORCHSCOUT_WANDB_MODE=disabled`` turns it off.
"""

from __future__ import annotations

import logging

from torchscout.agent.records import evaluations_of
from torchscout.agent.report import leaderboard_rows
from torchscout.graphs.state import ResearchState
from torchscout.settings import get_settings
from torchscout.tools.workspace import relative_to_workspace, resolve

logger = logging.getLogger(__name__)
PROJECT = "torchscout-research"


def log_research_run(state: ResearchState) -> str | None:
    """Log every evaluation and the leaderboard; returns the W&B folder (workspace-relative) or None."""
    mode = get_settings().wandb_mode
    if mode == "disabled":
        return None
    import wandb

    folder = resolve(f"{state['run_dir']}/wandb_logs")
    folder.mkdir(parents=True, exist_ok=True)
    group = state["run_name"]
    quiet = wandb.Settings(silent=True, console="off")
    for key, record in sorted(evaluations_of(state).items()):
        run = wandb.init(mode=mode, project=PROJECT, group=group, job_type=record["kind"],
                         name=f"{group}/{key}", dir=str(folder), reinit="create_new", settings=quiet,
                         config={"candidate_id": record.get("candidate_id"), "seed": record.get("seed"),
                                 "training": record.get("training"), "epochs": record.get("epochs"),
                                 "max_steps": record.get("max_steps")})
        for epoch in record.get("history") or []:
            run.log({name: value for name, value in epoch.items() if isinstance(value, int | float)})
        run.summary.update({"status": record.get("status"), "metric": record.get("metric"),
                            "duration_s": record.get("duration_s")})
        run.finish()
    rows = leaderboard_rows(state)
    summary = wandb.init(mode=mode, project=PROJECT, group=group, job_type="summary", name=f"{group}/summary",
                         dir=str(folder), reinit="create_new", settings=quiet,
                         config={"task": state.get("task")})
    columns = ["rank", "candidate", "metric", "params", "flops", "seconds", "status"]
    table = wandb.Table(columns=columns, data=[[row[column] for column in columns] for row in rows])
    summary.log({"leaderboard": table})
    winner = (state.get("final") or {}).get("winner") or {}
    summary.summary.update({"winner": winner.get("label"), "winner_mean": (winner.get("stats") or {}).get("mean")})
    summary.finish()
    return relative_to_workspace(folder)
