"""The full trainer: the engine plus an experiment folder, checkpoints, resume and W&B.

Under ``torchrun`` every rank runs :func:`run_full_trainer`: rank 0 picks the experiment name,
writes every file and evaluates; the others train their shard of the data and receive rank
0's result, so all of them return the same dict.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from torchscout.tools.errors import ToolError
from torchscout.tools.loading import parse_model_source
from torchscout.tools.training.callbacks import Checkpoints, Curves, MetricsFile, TrainLog
from torchscout.tools.training.checkpoints import load_checkpoint, load_weights, restore_checkpoint
from torchscout.tools.training.checks import run_checks
from torchscout.tools.training.components import resolve_device
from torchscout.tools.training.config import TrainerConfig, parse_config
from torchscout.tools.training.distributed import DistContext, context_from_env
from torchscout.tools.training.engine import Callback, LoopState, Run, evaluate, fit
from torchscout.tools.training.experiment import (
    experiment_folder,
    experiment_name_or_timestamp,
    write_result,
    write_run_description,
)
from torchscout.tools.training.outcomes import COMPLETED, describe_run, failure_result, throughput
from torchscout.tools.training.runs import PreparedRun, make_monitor, prepare_run
from torchscout.tools.training.timing import PhaseClock, record_preparation
from torchscout.tools.training.tracking import WandbTracker
from torchscout.tools.training.types import ExperimentDescription, FinalEval, FullTrainAnswer
from torchscout.tools.workspace import relative_to_workspace, resolve


class ExperimentFiles:
    """Rank 0's side of a run: the folder, its callbacks, W&B, the final evaluation and result.json."""

    def __init__(self, folder: Path, config: TrainerConfig, description: ExperimentDescription,
                 script: Path | None) -> None:
        self.folder, self.config, self.description, self.script = folder, config, description, script
        self.tracker = WandbTracker(config.wandb, folder, description["experiment_name"], description)
        self.train_log = TrainLog(folder / "train.log")

    @property
    def best_checkpoint(self) -> Path | None:
        return self.folder / "checkpoints" / "best.pt" if self.config.save_best_model else None

    def callbacks(self) -> list[Callback]:
        write_run_description(self.folder, self.description, self.script)
        checkpoints = Checkpoints(self.folder / "checkpoints", self.config.checkpoint_interval,
                                  self.config.save_best_model)
        return [MetricsFile(self.folder / "metrics.jsonl"), self.train_log, checkpoints,
                Curves(self.folder / "curves.png"), self.tracker]

    def final_eval(self, run: Run) -> FinalEval:
        """Evaluate the best weights (else the last) on the test split (else val)."""
        checkpoint = "last"
        best = self.best_checkpoint
        if best is not None and best.exists():
            load_weights(best, run.raw_model)
            checkpoint = "best"
        split, source = ("test", run.test) if run.test is not None else ("val", run.val)
        return {"split": split, "checkpoint": checkpoint, **evaluate(run, source)}

    def finish(self, result: FullTrainAnswer, state: LoopState) -> None:
        best = self.best_checkpoint
        if best is not None and best.exists():
            result["best_checkpoint_path"] = relative_to_workspace(best)
        if result["status"] == COMPLETED:
            summary = {f"final_{key}": value for key, value in result["final_eval"].items()
                       if isinstance(value, float)}
            if state.best:
                summary[f"best_{state.best['name']}"] = state.best["value"]
            self.tracker.finish(summary, best)
        else:
            self.tracker.abort()
            self.train_log.close()
        if self.tracker.run_dir:
            result["wandb_run_dir"] = relative_to_workspace(Path(self.tracker.run_dir))
        write_result(self.folder, result)


def _prepare(config: TrainerConfig, script: str, class_name: str | None, context: DistContext,
             folder: Path | None) -> PreparedRun:
    early = config.early_stopping
    monitor = make_monitor(config.monitor, config.monitor_mode or (early.mode if early else None), config.metrics)
    return prepare_run(script, class_name, config, context=context, monitor=monitor,
                       patience=early.patience if early else None, min_delta=early.min_delta if early else 0.0,
                       lr_find_plot=folder / "lr_find.png" if folder is not None and config.lr_find else None)


def _resume(run: Run, log_base_dir: str, name: str) -> LoopState:
    last = resolve(f"{log_base_dir}/{name}/checkpoints/last.pt", must_exist=True, kind="checkpoint")
    state = restore_checkpoint(load_checkpoint(last), run)
    state.stop_reason = None  # continuing is what was asked, whatever stopped the last session
    return state


def run_full_trainer(model_script_path: str, model_class_name: str | None, trainer_config: dict[str, Any],
                     experiment_name: str | None, log_base_dir: str) -> FullTrainAnswer:
    """See :func:`torchscout.tools.training.evaluation.pytorch_full_trainer`."""
    started = time.perf_counter()
    config = parse_config(TrainerConfig, trainer_config, "trainer_config")
    clock = PhaseClock()
    context = context_from_env(resolve_device(config.device)[0].type)
    name = context.broadcast(experiment_name_or_timestamp(experiment_name))
    source = parse_model_source(model_script_path, model_class_name)
    # a workspace file is copied next to the run; an installed module is named in config.yaml
    script = resolve(source.location, must_exist=True, kind="model_script_path") if source.kind == "file" else None
    files = None
    if context.is_main:
        description: ExperimentDescription = {"model_script_path": source.location, "model_class_name": source.name,
                       "experiment_name": name, "trainer_config": config.model_dump(mode="json")}
        files = ExperimentFiles(experiment_folder(log_base_dir, name, config.resume), config, description, script)
    context.barrier()
    clock.add("startup_s", time.perf_counter() - started)
    state = LoopState()
    result: FullTrainAnswer = {
        "status": COMPLETED, "experiment_dir": relative_to_workspace(resolve(f"{log_base_dir}/{name}")),
        "best_checkpoint_path": None, "best_metric": None, "final_eval": {}, "history": [],
        "stopped_early": False, "duration_s": 0.0, "samples_per_s": 0.0, "wandb_run_dir": None,
        "device": None, "data_path": None}
    stage = "load"
    try:
        prepared = _prepare(config, model_script_path, model_class_name, context, files and files.folder)
        run = prepared.run
        run.clock = clock
        record_preparation(clock, prepared.timings)
        result.update(describe_run(prepared))
        if config.resume:
            state = _resume(run, log_base_dir, name)
            result["resumed_from_epoch"] = state.epoch
        else:
            stage = "sanity"
            with clock.phase("sanity_s"):
                result.update(run_checks(run, prepared.num_classes, config.sanity))
        stage = "train"
        fit(run, state, files.callbacks() if files else [])
        if files is not None:
            stage = "final_eval"
            with clock.phase("results_s"):
                result["final_eval"] = files.final_eval(run)
    except Exception as exc:  # noqa: BLE001 - failure_result re-raises configuration errors
        try:
            result.update(failure_result(exc, config.batch_size, stage))
        except ToolError:
            if files is not None:  # close the W&B run and train.log before the error leaves
                files.tracker.abort()
                files.train_log.close()
            raise
    result.update({"history": state.history, "best_metric": state.best,
                   "stopped_early": state.stop_reason == "early_stopping", "stop_reason": state.stop_reason,
                   "epochs_completed": state.epoch, "samples_per_s": throughput(state),
                   "duration_s": time.perf_counter() - started})
    result["timings"] = clock.summary(time.perf_counter() - started)
    if files is not None:
        with clock.phase("results_s"):
            files.finish(result, state)  # result.json holds the timings up to the final evaluation
        result["timings"] = clock.summary(time.perf_counter() - started)
    return context.broadcast(result)
