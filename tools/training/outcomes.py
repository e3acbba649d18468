"""How a failed run becomes data: ``status`` plus an error the caller (or planner) can act on.

A training tool never kills its caller for a problem in the user's model: divergence, a failed
sanity check, an exception in the model's code and running out of memory all come back as a
result with ``status`` ``"diverged"`` or ``"failed"`` (the words of
:data:`~torchscout.tools.training.status.TrainingStatus`), the message and the traceback tail.
Configuration problems are different: they raise ToolError before anything runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from torchscout.tools.errors import ToolError, UserCodeError, traceback_tail
from torchscout.tools.training.checks import SanityCheckFailed
from torchscout.tools.training.engine import LoopState, TrainingDiverged
from torchscout.tools.training.runs import PreparedRun
from torchscout.tools.training.status import COMPLETED as COMPLETED  # re-exported: the tools start with it
from torchscout.tools.training.status import DIVERGED, FAILED
from torchscout.tools.workspace import relative_to_workspace

logger = logging.getLogger(__name__)


def failure_result(exc: BaseException, batch_size: int, stage: str) -> dict[str, Any]:
    """The result fields describing ``exc``; re-raises configuration errors (plain ToolError)."""
    if isinstance(exc, TrainingDiverged):
        return {"status": DIVERGED, "error": str(exc), "stage": "train",
                "diverged_at": {"epoch": exc.epoch, "step": exc.step, "last_finite_loss": exc.last_finite_loss}}
    if isinstance(exc, SanityCheckFailed):
        return {"status": FAILED, "stage": "sanity", "error": f"sanity check failed: {exc}",
                "traceback": traceback_tail(exc, 6)}
    if isinstance(exc, torch.OutOfMemoryError):
        return {"status": FAILED, "stage": stage,
                "error": f"out of memory with batch_size={batch_size}: lower batch_size (e.g. {max(1, batch_size // 2)}) "
                         "and raise accumulate_steps to keep the effective batch, or use a smaller model",
                "traceback": traceback_tail(exc, 6)}
    if isinstance(exc, UserCodeError):
        return {"status": FAILED, "stage": stage, "error": str(exc).splitlines()[0],
                "traceback": exc.traceback_tail}
    if isinstance(exc, ToolError):
        raise exc
    logger.warning("training failed in %s: %s: %s", stage, type(exc).__name__, exc)
    return {"status": FAILED, "stage": stage, "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback_tail(exc)}


def summarise_lr_find(lr_find: dict[str, Any] | None) -> dict[str, Any] | None:
    """The lr range test's suggestion and plot (the raw curve stays in the plot)."""
    if lr_find is None:
        return None
    plot = lr_find.get("plot_path")
    return {"suggested_lr": lr_find["suggested_lr"], "steps": lr_find["steps"],
            "plot_path": relative_to_workspace(Path(plot)) if plot else None}


def throughput(state: LoopState) -> float:
    """Training samples per second over every epoch run so far."""
    return state.train_samples / state.train_time_s if state.train_time_s > 0 else 0.0


def describe_run(prepared: PreparedRun) -> dict[str, Any]:
    """Result fields known once the run is assembled: device, data path, dataset, lr range test."""
    run = prepared.run
    described = {"device": str(run.device), "data_path": run.train.path, "dataset": prepared.dataset_info,
                 "num_classes": prepared.num_classes, "lr_find": summarise_lr_find(prepared.lr_find),
                 "monitor": {"name": run.monitor.key, "mode": run.monitor.mode},
                 "memory_format": prepared.memory_format}
    if prepared.device_note:
        described["device_note"] = prepared.device_note
    return described
