"""The parts of a run built from its config: device, loss, optimizer spec and LR scheduler.

Losses and schedulers are registries (:mod:`torchscout.tools.lookup`) filled from torch itself
(every ``torch.nn`` loss, every ``torch.optim.lr_scheduler`` scheduler, plus ``warmup_cosine``),
so anything torch offers works; an unknown name is an UnknownNameError (a ToolError) listing the
known ones. Optimizers go through :func:`torchscout.tools.optim.configurator.build_optimizer`, which also
knows registered configs and custom optimizers.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer, lr_scheduler

from torchscout.tools import registry
from torchscout.tools.errors import ToolError
from torchscout.tools.lookup import Registry
from torchscout.tools.training.config import RunConfig

# Schedulers whose schedule is defined per optimizer step rather than per epoch.
STEP_SCHEDULERS = {"OneCycleLR", "CyclicLR", "warmup_cosine"}
# Losses that compare outputs with a target of the same shape: class labels become one-hot for them.
SAME_SHAPE_LOSSES = {"MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCEWithLogitsLoss", "BCELoss"}


def resolve_device(requested: str, local_rank: int = 0) -> tuple[torch.device, str | None]:
    """The device to run on (and a note; None today). ``auto`` takes the best one there is; an
    explicit ``cuda`` or ``mps`` that is not available is an error, not a silent run on the CPU."""
    if requested == "cuda" or requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count()), None
        if requested == "cuda":
            raise ToolError("device 'cuda' was requested but no CUDA device is available here; use device 'auto' "
                            "(the best device there is) or 'cpu'")
    if requested in ("mps", "auto") and torch.backends.mps.is_available():
        return torch.device("mps"), None
    if requested == "mps":
        raise ToolError("device 'mps' was requested but is not available here; use device 'auto' or 'cpu'")
    return torch.device("cpu"), None


def _name_and_params(spec: str | dict[str, Any], what: str) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    name = spec.get("type") or spec.get("name")
    if not isinstance(name, str):
        raise ToolError(f"{what} needs a 'type' naming it, got {spec!r}")
    params = spec.get("params", {})
    if not isinstance(params, dict):
        raise ToolError(f"{what}.params must be a dict, got {type(params).__name__}")
    return name, dict(params)


def _torch_losses() -> Registry[type[nn.Module]]:
    losses: Registry[type[nn.Module]] = Registry("loss_function", plural="loss functions")
    for name, value in vars(nn).items():
        if inspect.isclass(value) and issubclass(value, nn.Module) and name.endswith("Loss"):
            losses.add(name, value)
    return losses


LOSSES = _torch_losses()


class ClassLabelsAsOneHot(nn.Module):
    """Lets a same-shape loss (MSELoss, ...) train a classifier: integer labels become one-hot targets.

    Regression targets of one value per sample (``[N]``) meet a model's ``[N, 1]`` outputs: they are
    reshaped to it, since broadcasting ``[N, 1]`` against ``[N]`` would silently compare every output
    with every target.
    """

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not targets.is_floating_point() and outputs.dim() == targets.dim() + 1:
            targets = nn.functional.one_hot(targets, outputs.shape[-1]).to(outputs.dtype)
        elif targets.is_floating_point() and targets.shape != outputs.shape and targets.numel() == outputs.numel():
            targets = targets.reshape(outputs.shape)
        return self.loss(outputs, targets)


def build_loss(spec: str | dict[str, Any]) -> nn.Module:
    """A ``torch.nn`` loss by name, e.g. ``"CrossEntropyLoss"`` or ``{"type": ..., "params": {"label_smoothing": 0.1}}``."""
    name, params = _name_and_params(spec, "loss_function")
    loss_class = LOSSES.get(name)
    try:
        loss = loss_class(**params)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"loss_function {name} rejected its params {params}: {exc}") from exc
    return ClassLabelsAsOneHot(loss) if name in SAME_SHAPE_LOSSES else loss


def optimizer_spec(config: RunConfig) -> str | dict[str, Any]:
    """Turn the config's ``optimizer`` (+ ``learning_rate``) into a spec for ``build_optimizer``."""
    if isinstance(config.optimizer, dict):
        spec = dict(config.optimizer)
        params = dict(spec.get("params") or {})
        if config.learning_rate is not None and "lr" not in params:
            params["lr"] = config.learning_rate
        if params:
            spec["params"] = params
        return spec
    if config.learning_rate is None and registry.find("optimizer_config", config.optimizer) is not None:
        return config.optimizer  # a registered config brings its own learning rate
    return {"type": config.optimizer, "params": {"lr": config.effective_learning_rate}}


def build_model_optimizer(model: nn.Module, config: RunConfig) -> Optimizer:
    from torchscout.tools.optim.configurator import build_optimizer

    return build_optimizer(model, optimizer_spec(config))


@dataclass
class SchedulerPlan:
    """A scheduler and when to step it: after each optimizer step or each epoch (with the monitored value)."""

    scheduler: Any
    per_step: bool
    needs_metric: bool  # ReduceLROnPlateau steps with the monitored metric


def _torch_schedulers() -> Registry[Any]:
    schedulers: Registry[Any] = Registry("scheduler")
    for name, value in vars(lr_scheduler).items():
        if (inspect.isclass(value) and name not in {"LRScheduler", "_LRScheduler"}
                and (issubclass(value, lr_scheduler.LRScheduler) or value is lr_scheduler.ReduceLROnPlateau)):
            schedulers.add(name, value)
    return schedulers


SCHEDULERS = _torch_schedulers()


@SCHEDULERS.register("warmup_cosine", description="linear warmup to the base lr, then cosine decay, per step")
def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_steps: int | None = None,
                  warmup_fraction: float = 0.05, min_lr_ratio: float = 0.0) -> lr_scheduler.LambdaLR:
    """Linear warmup to the base lr, then cosine decay to ``min_lr_ratio`` x base lr, per optimizer step."""
    warmup = warmup_steps if warmup_steps is not None else max(1, round(total_steps * warmup_fraction))

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return lr_scheduler.LambdaLR(optimizer, lr_factor)


def _fill_schedule_lengths(name: str, params: dict[str, Any], optimizer: Optimizer, epochs: int,
                           total_steps: int, per_step: bool, monitor_mode: str) -> None:
    """The defaults a scheduler cannot know by itself: the run's length, its lr, the monitor's direction."""
    if name == "warmup_cosine":
        params.setdefault("total_steps", total_steps)
    if name == "OneCycleLR":
        if "total_steps" not in params and "epochs" not in params:
            params["total_steps"] = total_steps
        params.setdefault("max_lr", [group["lr"] for group in optimizer.param_groups])
    if name == "CosineAnnealingLR":
        params.setdefault("T_max", total_steps if per_step else epochs)
    if name == "ReduceLROnPlateau":
        params.setdefault("mode", monitor_mode)


def build_scheduler(spec: str | dict[str, Any] | None, optimizer: Optimizer, epochs: int,
                    steps_per_epoch: int, monitor_mode: str = "min") -> SchedulerPlan | None:
    """A ``torch.optim.lr_scheduler`` by name (or ``warmup_cosine``) with schedule lengths filled in.

    ``monitor_mode`` is the monitored metric's direction: ReduceLROnPlateau steps with that metric,
    so unless its params say otherwise it must agree (``max`` for accuracy, or it would cut the
    rate while accuracy keeps rising).
    """
    if spec is None:
        return None
    name, params = _name_and_params(spec, "scheduler")
    interval = spec.get("interval") if isinstance(spec, dict) else None
    if interval not in (None, "step", "epoch"):
        raise ToolError(f"scheduler.interval must be 'step' or 'epoch', got {interval!r}")
    per_step = interval == "step" if interval else name in STEP_SCHEDULERS
    scheduler_factory = SCHEDULERS.get(name)
    _fill_schedule_lengths(name, params, optimizer, epochs, epochs * steps_per_epoch, per_step, monitor_mode)
    try:
        scheduler = scheduler_factory(optimizer, **params)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"scheduler {name} rejected its params {params}: {exc}") from exc
    return SchedulerPlan(scheduler, per_step, isinstance(scheduler, lr_scheduler.ReduceLROnPlateau))
