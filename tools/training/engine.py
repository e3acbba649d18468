"""The one training loop behind both tools: train an epoch, evaluate, record, repeat.

Flat and small on purpose (nanoGPT's train.py is the model): :func:`train_one_epoch` runs the
optimizer steps and gathers diagnostics, :func:`evaluate` computes loss and metrics on a split,
:func:`fit` strings epochs together and hands each record to the callbacks. Everything a
checkpoint must hold to continue a run lives in :class:`LoopState`.

The loop avoids a host sync per step: step losses and gradient norms stay on the device and
are checked for non-finite values every ``check_every`` steps (every step on CPU, where a sync
costs nothing), and summarised once per epoch.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from typing import cast

import torch
from torch import nn
from torch.optim import Optimizer
from tqdm.auto import tqdm

from torchscout.tools.training.augment import BatchAugmenter
from torchscout.tools.training.components import SchedulerPlan
from torchscout.tools.training.config import RunConfig
from torchscout.tools.training.data import BatchSource
from torchscout.tools.training.distributed import DistContext
from torchscout.tools.training.divergence import loss_growth_problem
from torchscout.tools.training.metrics import create_metrics
from torchscout.tools.training.timing import PhaseClock
from torchscout.tools.training.types import BestMetric, EpochRecord, SavedLoopState

SPIKE_FACTOR = 3.0  # a step loss above 3x the running mean of the epoch so far counts as a spike
SPIKE_WARMUP_STEPS = 5  # the first steps of an epoch set the running mean; they are not judged


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite, or grew far above its start (``reason`` then says how)."""

    def __init__(self, epoch: int, step: int, last_finite_loss: float | None, reason: str | None = None) -> None:
        super().__init__(reason or f"loss became non-finite at epoch {epoch}, step {step} "
                                   f"(last finite loss: {last_finite_loss})")
        self.epoch, self.step, self.last_finite_loss = epoch, step, last_finite_loss


@dataclass
class Monitor:
    """The record key that decides "best" (and early stopping) and whether lower or higher is better."""

    key: str
    mode: str

    def improved(self, value: float, best: float | None, min_delta: float = 0.0) -> bool:
        if best is None:
            return math.isfinite(value)
        return value < best - min_delta if self.mode == "min" else value > best + min_delta


@dataclass
class LoopState:
    """Everything that changes as the run goes; saved in checkpoints, restored on resume."""

    epoch: int = 0  # last completed epoch
    global_step: int = 0  # optimizer steps so far
    history: list[EpochRecord] = field(default_factory=list)
    best: BestMetric | None = None
    bad_epochs: int = 0  # epochs since the monitored metric last improved
    stop_reason: str | None = None  # "early_stopping" | "max_steps" | "time_budget"
    train_time_s: float = 0.0
    train_samples: int = 0
    wandb_run_id: str | None = None  # so a resumed experiment continues its W&B run
    initial_loss: float | None = None  # the first step's loss: the reference for divergence by growth

    def to_dict(self) -> SavedLoopState:
        return cast(SavedLoopState, asdict(self))


@dataclass
class Run:
    """The assembled pieces of one training run."""

    config: RunConfig
    model: nn.Module  # what the loop calls: possibly DDP- and/or compile-wrapped
    raw_model: nn.Module  # the user's module itself: state_dict, evaluation
    optimizer: Optimizer
    scheduler: SchedulerPlan | None
    loss_fn: nn.Module
    train: BatchSource
    val: BatchSource
    test: BatchSource | None
    device: torch.device
    dist: DistContext
    monitor: Monitor
    min_delta: float = 0.0
    patience: int | None = None  # early stopping patience; None: no early stopping
    progress: bool = False
    deadline: float | None = None  # time.perf_counter() value after which training stops
    augment: BatchAugmenter | None = None  # applied to training batches only
    clock: PhaseClock = field(default_factory=PhaseClock)  # where the run's time goes, by phase

    @property
    def autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda" and self.config.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def check_every(self) -> int:
        return 1 if self.device.type == "cpu" and not self.dist.enabled else 20


def current_lr(optimizer: Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _gradient_norm(run: Run, parameters: list[torch.Tensor]) -> torch.Tensor:
    if run.config.grad_clip is not None:
        return nn.utils.clip_grad_norm_(parameters, run.config.grad_clip)
    grads = [p.grad for p in parameters if p.grad is not None]
    return nn.utils.get_total_norm(grads) if grads else torch.zeros((), device=run.device)


def _should_stop(run: Run, losses: list[torch.Tensor], checked: int) -> tuple[bool, bool]:
    """(diverged, out of budget) for the steps since ``checked`` -- agreed on by every rank."""
    window = torch.stack(losses[checked:])
    out_of_time = run.deadline is not None and time.perf_counter() > run.deadline
    flags = torch.stack([(~torch.isfinite(window)).any().float(),
                         torch.tensor(float(out_of_time), device=window.device)])
    flags = run.dist.any_flag(flags).tolist()
    return flags[0] > 0, flags[1] > 0


def _raise_diverged(epoch: int, losses: list[torch.Tensor]) -> None:
    values = torch.stack(losses).float().cpu()
    finite = torch.isfinite(values)
    first_bad = int((~finite).nonzero()[0].item()) if (~finite).any() else len(values) - 1
    last_finite = float(values[first_bad - 1]) if first_bad > 0 else None
    raise TrainingDiverged(epoch, first_bad + 1, last_finite)


def count_spikes(step_losses: list[float]) -> int:
    spikes, total = 0, 0.0
    for index, loss in enumerate(step_losses):
        if index >= SPIKE_WARMUP_STEPS and loss > SPIKE_FACTOR * (total / index):
            spikes += 1
        total += loss
    return spikes


def _optimizer_step(run: Run, state: LoopState) -> None:
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    state.global_step += 1
    if run.scheduler is not None and run.scheduler.per_step:
        run.scheduler.scheduler.step()


def _check_stop(run: Run, epoch: int, loss: torch.Tensor, losses: list[torch.Tensor], checked: int,
                last_batch: bool) -> tuple[int, bool]:
    """Raise TrainingDiverged on a non-finite loss; return (steps checked, out of time budget)."""
    if run.check_every == 1:
        # CPU, one process: reading the loss costs nothing, so check every step without a window
        diverged = not math.isfinite(loss.item())
        out_of_time = run.deadline is not None and time.perf_counter() > run.deadline
    elif len(losses) - checked >= run.check_every or last_batch:
        diverged, out_of_time = _should_stop(run, losses, checked)
        checked = len(losses)
    else:
        return checked, False
    if diverged:
        _raise_diverged(epoch, losses)
    return checked, out_of_time


def train_one_epoch(run: Run, state: LoopState, epoch: int) -> EpochRecord:
    """One pass over the training batches; returns the epoch's training record."""
    config, model, optimizer = run.config, run.model, run.optimizer
    parameters = [p for p in run.raw_model.parameters() if p.requires_grad]
    accumulate = config.accumulate_steps
    total_batches = len(run.train)
    losses: list[torch.Tensor] = []
    grad_norms: list[torch.Tensor] = []
    samples, checked, steps_before = 0, 0, state.global_step
    lr_used = current_lr(optimizer)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    started = time.perf_counter()
    batches = tqdm(run.train.batches(epoch), total=total_batches, desc=f"epoch {epoch}", leave=False,
                   disable=not run.progress, unit="batch")
    augment = run.augment.for_epoch(epoch) if run.augment is not None else None
    for micro, (inputs, targets) in enumerate(batches, start=1):
        if augment is not None:
            inputs = augment(inputs)
        updates = micro % accumulate == 0 or micro == total_batches
        # DDP: only the micro-batch that ends an accumulation all-reduces gradients
        sync = model.no_sync() if run.dist.enabled and not updates else contextlib.nullcontext()
        with sync:
            with run.autocast:
                loss = run.loss_fn(model(inputs), targets)
            (loss / accumulate if accumulate > 1 else loss).backward()
        losses.append(loss.detach())
        samples += len(targets)
        if updates:
            grad_norms.append(_gradient_norm(run, parameters))
            lr_used = current_lr(optimizer)
            _optimizer_step(run, state)
        checked, stop = _check_stop(run, epoch, loss, losses, checked, micro == total_batches)
        if stop:
            state.stop_reason = "time_budget"
            break
        if config.max_steps is not None and state.global_step >= config.max_steps:
            state.stop_reason = "max_steps"
            break
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)  # the steps' own time, apart from the statistics' below
    run.clock.add("train_steps_s", time.perf_counter() - started)
    with run.clock.phase("metrics_s"):
        record = _epoch_record(run, state, epoch, losses, grad_norms, samples)
    record.update(lr=lr_used, steps=state.global_step - steps_before)
    elapsed = time.perf_counter() - started
    state.train_time_s += elapsed
    record.update(epoch_time_s=elapsed, samples_per_s=record["samples"] / elapsed if elapsed > 0 else 0.0)
    return record


def _epoch_record(run: Run, state: LoopState, epoch: int, losses: list[torch.Tensor],
                  grad_norms: list[torch.Tensor], samples: int) -> EpochRecord:
    """The epoch's loss statistics (moved to the host once); raises TrainingDiverged on runaway growth."""
    step_losses = torch.stack(losses).float().cpu().tolist() if losses else []
    norms = torch.stack(grad_norms).float().cpu() if grad_norms else torch.zeros(1)
    total_samples = samples * run.dist.world_size
    state.train_samples += total_samples
    epoch_loss = run.dist.mean(sum(step_losses) / max(1, len(step_losses)))
    if state.initial_loss is None and step_losses:
        state.initial_loss = run.dist.mean(step_losses[0])
    grew = loss_growth_problem(state.initial_loss, epoch_loss)
    if grew:
        raise TrainingDiverged(epoch, state.global_step, step_losses[-1] if step_losses else None, reason=grew)
    return {
        "epoch": epoch,
        "train_loss": epoch_loss,
        "grad_norm_mean": float(norms.mean()),
        "grad_norm_max": float(norms.max()),
        "loss_spikes": count_spikes(step_losses),
        "samples": total_samples,
    }


@torch.no_grad()
def evaluate(run: Run, source: BatchSource, model: nn.Module | None = None) -> dict[str, float]:
    """Mean loss and every configured metric over ``source`` (no sharding: call it on rank 0)."""
    started = time.perf_counter()
    model = model or run.raw_model
    was_training = model.training
    model.eval()
    metrics = create_metrics(run.config.metrics)
    loss_sum = torch.zeros((), device=run.device, dtype=torch.float64)
    count, metric_s = 0, 0.0
    for inputs, targets in source.batches(0):
        with run.autocast:
            outputs = model(inputs)
            loss = run.loss_fn(outputs, targets)
        loss_sum += loss.double() * len(targets)
        count += len(targets)
        updating = time.perf_counter()
        outputs = outputs.float()
        for metric in metrics.values():
            metric.update(outputs, targets)
        metric_s += time.perf_counter() - updating
    model.train(was_training)
    results = {"loss": float(loss_sum.item()) / max(1, count)}
    computing = time.perf_counter()
    results.update({name: metric.compute() for name, metric in metrics.items()})
    metric_s += time.perf_counter() - computing
    run.clock.add("metrics_s", metric_s)
    run.clock.add("validation_s", time.perf_counter() - started - metric_s)
    return results


def _step_epoch_scheduler(run: Run, record: EpochRecord) -> None:
    plan = run.scheduler
    if plan is None or plan.per_step:
        return
    if plan.needs_metric:
        plan.scheduler.step(record.get(run.monitor.key, record["val_loss"]))
    else:
        plan.scheduler.step()


def _update_monitor(run: Run, state: LoopState, record: EpochRecord) -> bool:
    """Track the best monitored value; returns whether this epoch improved it. Also early stopping."""
    value = float(record.get(run.monitor.key, math.nan))
    best = state.best["value"] if state.best else None
    improved = run.monitor.improved(value, best, run.min_delta)
    if improved:
        state.best = {"name": run.monitor.key, "value": value, "epoch": int(record["epoch"])}
        state.bad_epochs = 0
    else:
        state.bad_epochs += 1
        if run.patience is not None and state.bad_epochs >= run.patience:
            state.stop_reason = "early_stopping"
    return improved


class Callback:
    """Hooks the loop calls; rank 0 only where a callback writes files."""

    def on_train_start(self, run: Run, state: LoopState) -> None:
        return None

    def on_epoch_end(self, run: Run, state: LoopState, record: EpochRecord, improved: bool) -> None:
        return None

    def on_train_end(self, run: Run, state: LoopState) -> None:
        return None


def fit(run: Run, state: LoopState, callbacks: list[Callback] = ()) -> LoopState:
    """Train from ``state.epoch + 1`` to ``config.epochs`` (or until a stop reason), calling the callbacks."""
    with run.clock.phase("callbacks_s"):
        for callback in callbacks:
            callback.on_train_start(run, state)
    epochs = tqdm(range(state.epoch + 1, run.config.epochs + 1), desc="training", unit="epoch",
                  disable=not run.progress or run.config.epochs == 1)
    for epoch in epochs:
        record = train_one_epoch(run, state, epoch)
        if run.dist.is_main:
            record.update({f"val_{name}": value for name, value in evaluate(run, run.val).items()})
        record = run.dist.broadcast(record)
        _step_epoch_scheduler(run, record)
        state.history.append(record)
        state.epoch = epoch
        improved = _update_monitor(run, state, record)
        with run.clock.phase("callbacks_s"):
            for callback in callbacks:
                callback.on_epoch_end(run, state, record, improved)
        epochs.set_postfix(train_loss=f"{record['train_loss']:.4f}", val_loss=f"{record['val_loss']:.4f}")
        if state.stop_reason:
            break
    with run.clock.phase("callbacks_s"):
        for callback in callbacks:
            callback.on_train_end(run, state)
    return state
