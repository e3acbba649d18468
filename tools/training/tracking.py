"""Weights & Biases tracking for the full trainer: one W&B run per experiment.

The mode is resolved in code (``trainer_config.wandb.mode``, else torchscout's ``wandb_mode``
setting, offline by default) and passed to ``wandb.init`` -- it beats ``WANDB_MODE``. Offline
runs land in ``<experiment>/wandb/offline-run-*/`` and ``wandb sync`` uploads them later.
The run id is kept in the loop state (so in each checkpoint), so a resumed experiment continues the same
W&B run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torchscout.settings import get_settings
from torchscout.tools.training.config import WandbConfig
from torchscout.tools.training.engine import Callback, LoopState, Run
from torchscout.tools.training.types import EpochRecord, ExperimentDescription

logger = logging.getLogger(__name__)


def wandb_mode(config: WandbConfig) -> str:
    return config.mode or get_settings().wandb_mode


class WandbTracker(Callback):
    """Logs the resolved config, each epoch's record, the summary and optionally best.pt as an artifact."""

    def __init__(self, config: WandbConfig, experiment_dir: Path, experiment_name: str,
                 resolved_config: ExperimentDescription) -> None:
        self.config, self.experiment_dir, self.name = config, experiment_dir, experiment_name
        self.resolved_config = resolved_config
        self.run = None
        self.run_dir: str | None = None

    @property
    def enabled(self) -> bool:
        return wandb_mode(self.config) != "disabled"

    def on_train_start(self, run: Run, state: LoopState) -> None:
        if not self.enabled:
            return
        import wandb

        self.run = wandb.init(
            mode=wandb_mode(self.config), dir=str(self.experiment_dir), project=self.config.project,
            entity=self.config.entity, group=self.config.group, job_type=self.config.job_type, tags=self.config.tags or None, name=self.name,
            config=dict(self.resolved_config), id=state.wandb_run_id, resume="allow" if state.wandb_run_id else None,
            reinit="create_new",
            # the trainer is a tool: its caller's stdout/stderr (an agent, the research CLI) must
            # not fill with wandb's banners and run summaries; the run files hold everything
            settings=wandb.Settings(silent=True, console="off"))
        state.wandb_run_id = self.run.id
        self.run_dir = str(Path(self.run.dir).parent)
        logger.info("W&B %s run %s in %s", wandb_mode(self.config), self.run.id, self.run_dir)

    def on_epoch_end(self, run: Run, state: LoopState, record: EpochRecord, improved: bool) -> None:
        if self.run is not None:
            self.run.log(record, step=record["epoch"])

    def finish(self, summary: dict[str, float], best_checkpoint: Path | None) -> None:
        """Write the summary (and the best checkpoint as an artifact) and close the run."""
        if self.run is None:
            return
        import wandb

        self.run.summary.update(summary)
        if self.config.log_checkpoint and best_checkpoint is not None and best_checkpoint.exists():
            artifact = wandb.Artifact(f"{self.name}-best", type="model")
            artifact.add_file(str(best_checkpoint))
            self.run.log_artifact(artifact)
        self.run.finish()
        self.run = None

    def abort(self) -> None:
        """Close the run after a failure, marking it failed."""
        if self.run is not None:
            self.run.finish(exit_code=1)
            self.run = None
