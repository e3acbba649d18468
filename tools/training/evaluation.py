"""pytorch_quick_evaluator and pytorch_full_trainer: two tools on one training engine.

Both assemble the same run (:mod:`torchscout.tools.training.runs`) and train it with the same
loop (:mod:`torchscout.tools.training.engine`). The quick evaluator is that loop with a small
budget, a sanity check first and no files; the full trainer adds an experiment folder,
checkpoints, early stopping, resume, curves and W&B, and runs under ``torchrun`` with DDP.

Result ``status`` is ``"completed"``, ``"diverged"`` (non-finite loss; ``diverged_at`` says where)
or ``"failed"`` (the model's code raised, the sanity check failed, out of memory; ``error`` and
``traceback`` say why). Bad configuration raises a ToolError instead.
"""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, Field

from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError
from torchscout.tools.loading import parse_model_source
from torchscout.tools.sandbox.commands import MAX_TIMEOUT_S
from torchscout.tools.sandbox.runner import run_in_sandbox
from torchscout.tools.toolkit import make_tool
from torchscout.tools.training.answers import training_answer
from torchscout.tools.training.checks import run_checks
from torchscout.tools.training.config import EvalConfig, parse_config
from torchscout.tools.training.distributed import DistContext
from torchscout.tools.training.engine import LoopState, fit
from torchscout.tools.training.outcomes import COMPLETED, describe_run, failure_result, throughput
from torchscout.tools.training.runs import make_monitor, prepare_run
from torchscout.tools.training.timing import PhaseClock, record_preparation
from torchscout.tools.training.trainer import run_full_trainer
from torchscout.tools.training.types import FullTrainAnswer, QuickEvalAnswer


def lr_find_plot_path(model_class_name: str) -> Path:
    """A plot file of its own for each quick evaluation: the research graph evaluates candidates (which
    often share a class name) in parallel threads, and a per-second name let one overwrite another's."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return get_settings().state_dir / "lr_find" / f"{model_class_name}-{stamp}-{uuid.uuid4().hex[:8]}.png"


def pytorch_quick_evaluator(model_script_path: str, model_class_name: str | None,
                            eval_config: dict[str, Any]) -> QuickEvalAnswer:
    """Quickly train and evaluate a model ("is this working?"): a class or factory function in a workspace
    script, or an installed one by import spec (model_script_path="torchvision.models:resnet18").

    eval_config keys: dataset (mnist, cifar10, digits, dummy, imagefolder, imagenet_subset,
    custom_dataset_script, text_classification, diabetes, breast_cancer, signals_synthetic),
    dataset_params, input_shape (dummy), num_classes (classification), batch_size, epochs (default 1),
    optimizer ("Adam", "SGD", any torch.optim name, a registered optimizer config or custom optimizer,
    or {"type", "params"}), learning_rate, scheduler, loss_function (CrossEntropyLoss; MSELoss,
    HuberLoss or L1Loss for float regression targets), metrics (accuracy, top_5_accuracy, f1, f1_macro,
    f1_micro, precision, recall, mse, rmse, mae, r2, perplexity), device (auto|cuda|cpu|mps), seed,
    model_params (the model's keyword arguments), max_steps, time_budget_s, train_subset, sanity ("batch" | "overfit_batch" | "off"), lr_find,
    augment ({"random_crop": pixels or time steps, "horizontal_flip": images only}), data_root,
    channels_last (default: on for Conv2d models on images when the model runs in it; true/false).
    Returns {"status", "metrics", "train_loss", "val_loss", "history", "samples_per_s",
    "duration_s", "device", "data_path", "memory_format", ...}; status is "completed", "diverged" or "failed"
    (then "error" and "traceback" say why).
    """
    started = time.perf_counter()
    config = parse_config(EvalConfig, eval_config, "eval_config")
    model_name = parse_model_source(model_script_path, model_class_name).name
    state = LoopState()
    result: QuickEvalAnswer = {"status": COMPLETED, "metrics": {}, "train_loss": None, "val_loss": None,
                              "history": state.history, "samples_per_s": 0.0, "duration_s": 0.0,
                              "device": None, "data_path": None}
    clock = PhaseClock()
    clock.add("startup_s", time.perf_counter() - started)
    stage = "load"
    try:
        monitor = make_monitor("val_loss", None, config.metrics)
        prepared = prepare_run(model_script_path, model_class_name, config, context=DistContext(), monitor=monitor,
                               lr_find_plot=lr_find_plot_path(model_name) if config.lr_find else None)
        run = prepared.run
        run.clock = clock
        record_preparation(clock, prepared.timings)
        result.update(describe_run(prepared))
        stage = "sanity"
        with clock.phase("sanity_s"):
            result.update(run_checks(run, prepared.num_classes, config.sanity))
        stage = "train"
        fit(run, state)
        last = state.history[-1]
        result.update({"metrics": {name: last[f"val_{name}"] for name in config.metrics},
                       "train_loss": last["train_loss"], "val_loss": last["val_loss"]})
    except Exception as exc:  # noqa: BLE001 - failure_result re-raises configuration errors
        result.update(failure_result(exc, config.batch_size, stage))
    result.update({"stop_reason": state.stop_reason, "epochs_completed": state.epoch,
                   "samples_per_s": throughput(state)})
    result["duration_s"] = time.perf_counter() - started
    result["timings"] = clock.summary(result["duration_s"])
    return result


class QuickEvaluatorArgs(BaseModel):
    model_script_path: str = Field(description="A workspace .py file, or an import spec such as "
                                   "'torchvision.models:resnet18'. The file or installed module defines the model.")
    model_class_name: str | None = Field(default=None, description="The nn.Module class or factory function there "
                                         "(not needed with an import spec). Its keyword arguments: the config's "
                                         "model_params.")
    eval_config: dict[str, Any] = Field(
        description="Evaluation settings, e.g. {'dataset': 'digits', 'num_classes': 10, 'batch_size': 64, "
        "'epochs': 1, 'optimizer': 'Adam', 'learning_rate': 0.001, 'loss_function': 'CrossEntropyLoss', "
        "'metrics': ['accuracy'], 'device': 'auto'}.")


def pytorch_full_trainer(model_script_path: str, model_class_name: str | None, trainer_config: dict[str, Any],
                         experiment_name: str | None = None, log_base_dir: str = "full_experiments") -> FullTrainAnswer:
    """Full training run with checkpoints, early stopping, resume, curves and W&B logging.

    The model: a class or factory function in a workspace script, or an import spec such as
    model_script_path="torchvision.models:resnet18" (its keyword arguments: model_params).

    trainer_config: everything eval_config takes (dataset, dataset_params, num_classes, batch_size,
    epochs, optimizer as a name or {"type", "params"}, scheduler {"type", "params"} incl. ReduceLROnPlateau
    and warmup_cosine, loss_function, metrics, device, seed, val_fraction, grad_clip,
    accumulate_steps, compile, channels_last, lr_find) plus checkpoint_interval, save_best_model, early_stopping
    {"metric", "patience", "mode", "min_delta"}, resume (continue from checkpoints/last.pt) and wandb
    {"mode": offline|online|disabled, "project", "entity", "group", "tags"}.
    Writes <log_base_dir>/<experiment_name or timestamp>/ (config.yaml, model copy, metrics.jsonl,
    train.log, checkpoints/{last,best,epoch_N}.pt, curves.png, result.json) and returns
    {"status", "experiment_dir", "best_checkpoint_path", "best_metric": {"name", "value", "epoch"},
    "final_eval", "history", "stopped_early", "duration_s", "samples_per_s", "wandb_run_dir", ...}.
    """
    return run_full_trainer(model_script_path, model_class_name, trainer_config, experiment_name, log_base_dir)


class FullTrainerArgs(BaseModel):
    model_script_path: str = Field(description="A workspace .py file, or an import spec such as "
                                   "'torchvision.models:resnet18'. The file or installed module defines the model.")
    model_class_name: str | None = Field(default=None, description="The nn.Module class or factory function there "
                                         "(not needed with an import spec). Its keyword arguments: the config's "
                                         "model_params.")
    trainer_config: dict[str, Any] = Field(
        description="Training settings, e.g. {'dataset': 'cifar10', 'num_classes': 10, 'batch_size': 128, "
        "'epochs': 20, 'optimizer': {'type': 'AdamW', 'params': {'lr': 0.001}}, 'scheduler': {'type': "
        "'CosineAnnealingLR', 'params': {'T_max': 20}}, 'metrics': ['accuracy'], 'checkpoint_interval': 5, "
        "'early_stopping': {'metric': 'val_loss', 'patience': 5, 'mode': 'min'}}.")
    experiment_name: str | None = Field(default=None, description="Run folder name (default: a timestamp).")
    log_base_dir: str = Field(default="full_experiments", description="Folder that holds the run folders.")


def prime_training() -> None:
    """Called in the sandbox's fork server (trusted code only): import the training stack once there,
    so that every forked evaluation or training starts warm instead of importing scikit-learn, the
    dataset sources and the optimizers again."""
    import numpy
    import sklearn.datasets  # noqa: F401 - digits and the tabular sources
    from sklearn.model_selection import train_test_split

    from torchscout.tools.optim import configurator  # noqa: F401
    from torchscout.tools.training import file_sources, vision_sources  # noqa: F401 - file_sources: imported to warm it

    labels = numpy.array([0, 1, 0, 1])  # a stratified split's lazy imports and input checks, once
    train_test_split(numpy.arange(4), test_size=0.5, random_state=0, stratify=labels)
    vision_sources.digits_arrays()  # parsed once here, shared by every forked evaluation


WARM_TRAINING = "torchscout.tools.training.evaluation:prime_training"


def sandbox_ready() -> bool:
    """A job that does nothing: sent once to get the fork server started and the training stack
    imported in it (its ``warm``) before the first real evaluation needs them."""
    return True


def warm_training_sandbox(also_warm: tuple[str, ...] = ()) -> bool:
    """Start the sandbox's fork server now and import the training stack in it (~2-3 s, once per
    process), so that the first evaluation starts as warm as the later ones. ``also_warm``: the
    caller's own job modules (trusted package code: a research run's evaluation job imports the graph
    layer, over a second the first time). Meant to run in a background thread while the caller does
    other set-up; returns whether it worked."""
    result = run_in_sandbox(sandbox_ready, {}, profile="evaluation", timeout_s=120.0,
                            warm=[WARM_TRAINING, *also_warm], threads=1)
    return result.ok
TOOL_SLACK_S = 600.0  # on top of a time budget: data loading, checks, the final evaluation, W&B's finish
# errors the caller can fix, raised in the child: the agent gets the same message as without the sandbox
_CALLER_ERRORS = {"ToolError", "WorkspaceError", "UnknownNameError", "ValueError", "ValidationError"}


def run_training_confined(function: Callable[..., Any], arguments: dict[str, Any], *, timeout_s: float,
                          network: bool = False) -> Any:
    """``function(**arguments)`` (a training tool's plain function) in a confined child; its answer.

    The child uses as many torch threads as this process does, so the numbers are the ones the same
    call here would give.
    """
    result = run_in_sandbox(function, arguments, profile="training", timeout_s=timeout_s, network=network,
                            warm=[WARM_TRAINING], threads=torch.get_num_threads())
    if result.ok:
        return result.value
    if result.error_type in _CALLER_ERRORS:
        raise ToolError(result.error or result.error_type)
    raise result.to_error(function.__name__)


def _timeout(config: Any) -> float:
    budget = config.get("time_budget_s") if isinstance(config, dict) else None
    return min(float(budget) + TOOL_SLACK_S, MAX_TIMEOUT_S) if isinstance(budget, int | float) and budget > 0 \
        else MAX_TIMEOUT_S


def quick_evaluator_confined(model_script_path: str, model_class_name: str | None,
                             eval_config: dict[str, Any]) -> QuickEvalAnswer:
    return run_training_confined(pytorch_quick_evaluator, {"model_script_path": model_script_path,
                                 "model_class_name": model_class_name, "eval_config": eval_config},
                                 timeout_s=_timeout(eval_config))


def full_trainer_confined(model_script_path: str, model_class_name: str | None, trainer_config: dict[str, Any],
                          experiment_name: str | None = None, log_base_dir: str = "full_experiments") -> FullTrainAnswer:
    wandb = trainer_config.get("wandb") if isinstance(trainer_config, dict) else None
    mode = (wandb or {}).get("mode") if isinstance(wandb, dict) else None
    return run_training_confined(pytorch_full_trainer, {
        "model_script_path": model_script_path, "model_class_name": model_class_name, "trainer_config": trainer_config,
        "experiment_name": experiment_name, "log_base_dir": log_base_dir},
        timeout_s=_timeout(trainer_config), network=(mode or get_settings().wandb_mode) == "online")


# The agent's tools run the model (code the agent or an LLM wrote) in the sandbox; the plain functions
# above run in the caller's process (the confined child itself, `torchscout train`, tests).
pytorch_quick_evaluator_tool = make_tool(
    quick_evaluator_confined, QuickEvaluatorArgs, name="pytorch_quick_evaluator",
    description=inspect.getdoc(pytorch_quick_evaluator),
    answer=lambda result, arguments: training_answer("pytorch_quick_evaluator", result))
pytorch_full_trainer_tool = make_tool(
    full_trainer_confined, FullTrainerArgs, name="pytorch_full_trainer",
    description=inspect.getdoc(pytorch_full_trainer),
    answer=lambda result, arguments: training_answer("pytorch_full_trainer", result))
