"""Assemble a :class:`~torchscout.tools.training.engine.Run` from a model script and a config.

The order matters for reproducibility: seed -> data -> model (weights are the first draw from
the seeded generator) -> optimizer -> optional lr range test -> scheduler. Both tools call
:func:`prepare_run`; they differ only in what they do with the run afterwards.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError
from torchscout.tools.loading import build_model, load_model_builder, parse_model_source
from torchscout.tools.training.augment import BatchAugmenter
from torchscout.tools.training.components import (
    build_loss,
    build_model_optimizer,
    build_scheduler,
    resolve_device,
)
from torchscout.tools.training.config import RunConfig
from torchscout.tools.training.data import make_batches, should_preload
from torchscout.tools.training.datasets import (
    DatasetRequest,
    DatasetSplits,
    Split,
    TensorSplit,
    build_datasets,
)
from torchscout.tools.training.distributed import DistContext, wrap_model
from torchscout.tools.training.engine import Monitor, Run
from torchscout.tools.training.lr_finder import lr_range_test
from torchscout.tools.training.memory_format import apply_memory_format
from torchscout.tools.training.metrics import metric_mode, needs_labels
from torchscout.tools.training.types import DatasetInfo, LrRangeTest
from torchscout.tools.workspace import resolve

logger = logging.getLogger(__name__)


@dataclass
class PreparedRun:
    run: Run
    num_classes: int | None
    dataset_info: DatasetInfo
    device_note: str | None = None
    memory_format: str = "contiguous"  # or "channels_last" (memory_format.py)
    lr_find: LrRangeTest | None = None
    timings: dict[str, float] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def data_root(config: RunConfig) -> Path:
    if config.data_root:
        return resolve(config.data_root, kind="data_root")
    return get_settings().data_dir


def make_monitor(name: str, mode: str | None, metric_names: list[str]) -> Monitor:
    """The record key for a monitored metric: ``val_loss``, ``train_loss``, ``accuracy`` -> ``val_accuracy``."""
    key = name if name.startswith(("val_", "train_")) else f"val_{name}"
    known = ["val_loss", "train_loss", *(f"val_{metric}" for metric in metric_names)]
    if key not in known:
        raise ToolError(f"cannot monitor {name!r}: it is not computed; choose one of {', '.join(known)} "
                        "(add the metric to 'metrics' to monitor it)")
    return Monitor(key, mode or metric_mode(key))


def _train_subset(split: Split, size: int | None, seed: int) -> Split:
    if size is None or size >= len(split):
        return split
    chosen = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed + 1))[:size]
    return split.subset(chosen) if isinstance(split, TensorSplit) else Subset(split, chosen.tolist())


def _check_num_classes(config: RunConfig, splits: DatasetSplits) -> int | None:
    if config.num_classes is not None and splits.num_classes is not None and splits.num_classes > config.num_classes:
        raise ToolError(f"dataset {config.dataset!r} has {splits.num_classes} classes but num_classes is "
                        f"{config.num_classes}; set num_classes to {splits.num_classes}")
    return config.num_classes or splits.num_classes


def _check_metrics_fit_targets(metric_names: list[str], targets: torch.Tensor) -> None:
    if not targets.is_floating_point():
        return
    label_metrics = [name for name in metric_names if needs_labels(name)]
    if label_metrics:
        raise ToolError(f"metrics {label_metrics} need integer class labels, but this dataset's targets are "
                        f"floats ({targets.dtype}); use 'mse', 'rmse', 'mae' or 'r2' for regression targets")


def instantiate_model(model_script_path: str, model_class_name: str | None, params: dict[str, Any]) -> nn.Module:
    """The model from a workspace file's class or factory function, or from an import spec
    (``torchvision.models:resnet18``), built with ``params``."""
    source = parse_model_source(model_script_path, model_class_name)
    return build_model(load_model_builder(source, nn.Module), params, nn.Module, source.name)


def _build_sources(config: RunConfig, splits: DatasetSplits, device: torch.device, context: DistContext):
    train = _train_subset(splits.train, config.train_subset, config.seed)
    preload = should_preload(train, device, config.preload, splits.stream_by_default)
    common = {"device": device, "preload": preload, "num_workers": config.num_workers}
    train_source = make_batches(train, config.batch_size, shuffle=True, seed=config.seed, rank=context.rank,
                                world_size=context.world_size, **common)
    val_source = make_batches(splits.val, config.batch_size, shuffle=False, **common)
    test_source = (make_batches(splits.test, config.batch_size, shuffle=False, **common)
                   if splits.test is not None else None)
    return train_source, val_source, test_source


def _apply_suggested_lr(optimizer: torch.optim.Optimizer, suggested: float | None) -> None:
    """The fastest group gets the suggestion; the others keep their ratio to it (e.g. a slower head)."""
    if suggested is None or not math.isfinite(suggested):
        logger.warning("the lr range test found no suggestion; keeping the configured learning rate")
        return
    logger.info("lr range test suggests lr=%.3g", suggested)
    fastest = max(group["lr"] for group in optimizer.param_groups)
    for group in optimizer.param_groups:
        group["lr"] = suggested * (group["lr"] / fastest if fastest > 0 else 1.0)


def prepare_run(model_script_path: str, model_class_name: str | None, config: RunConfig, *, context: DistContext,
                monitor: Monitor, patience: int | None = None, min_delta: float = 0.0,
                lr_find_plot: Path | None = None) -> PreparedRun:
    """Data, model, loss, optimizer and scheduler for ``config``; raises ToolError/UserCodeError."""
    started = time.perf_counter()
    device, device_note = resolve_device(config.device, context.local_rank)
    seed_everything(config.seed)
    request = DatasetRequest(name=config.dataset, params=dict(config.dataset_params), data_root=data_root(config),
                             input_shape=config.input_shape, num_classes=config.num_classes, seed=config.seed,
                             val_fraction=config.val_fraction)
    splits = build_datasets(request)
    num_classes = _check_num_classes(config, splits)
    train_source, val_source, test_source = _build_sources(config, splits, device, context)
    _check_metrics_fit_targets(config.metrics, val_source.first_batch()[1])
    data_s = time.perf_counter() - started

    seed_everything(config.seed)  # the model's initial weights depend on the seed only, not on the data
    model = instantiate_model(model_script_path, model_class_name, config.model_params).to(device)
    memory_format = apply_memory_format(model, train_source.first_batch()[0], config.channels_last, device)
    loss_fn = build_loss(config.loss_function).to(device)
    optimizer = build_model_optimizer(model, config)
    loop_model = wrap_model(model, context, device)
    if config.compile:
        loop_model = torch.compile(loop_model)
    run = Run(config=config, model=loop_model, raw_model=model, optimizer=optimizer, scheduler=None,
              loss_fn=loss_fn, train=train_source, val=val_source, test=test_source, device=device,
              dist=context, monitor=monitor, min_delta=min_delta, patience=patience,
              progress=get_settings().progress and context.is_main,
              deadline=time.perf_counter() + config.time_budget_s if config.time_budget_s else None)
    if config.augment is not None:
        run.augment = BatchAugmenter(config.augment, config.seed)
        run.augment.check(train_source.first_batch()[0])
    lr_find = None
    if config.lr_find:
        lr_find = lr_range_test(model, optimizer, loss_fn, lambda: train_source.batches(0),
                                plot_path=lr_find_plot if context.is_main else None)
        lr_find = context.broadcast(lr_find)  # every rank must train with rank 0's learning rate
        _apply_suggested_lr(optimizer, lr_find["suggested_lr"])
    steps_per_epoch = math.ceil(len(train_source) / config.accumulate_steps)
    run.scheduler = build_scheduler(config.scheduler, optimizer, config.epochs, steps_per_epoch, monitor.mode)
    info = cast(DatasetInfo, dict(splits.info))  # the builders write DatasetInfo's keys
    info.update({"name": config.dataset, "train_size": train_source.num_samples * context.world_size,
                 "val_size": val_source.num_samples, "test_size": test_source.num_samples if test_source else 0})
    return PreparedRun(run=run, num_classes=num_classes, dataset_info=info, device_note=device_note,
                       memory_format=memory_format, lr_find=lr_find, timings={"data_s": data_s, "setup_s": time.perf_counter() - started})
