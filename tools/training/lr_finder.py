"""The learning-rate range test (Smith, 2015; popularised by fastai's lr_find).

Train for a few dozen steps while the learning rate grows exponentially from ``start_lr`` to
``end_lr``, recording the smoothed loss; stop once it explodes. The suggestion is the learning
rate where the smoothed loss falls fastest (steepest negative slope against log lr), capped at a
tenth of the rate with the lowest loss. The model,
the optimizer and the RNG state are restored afterwards, so the test leaves no trace on the run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
from torch import nn
from torch.optim import Optimizer

from torchscout.tools.training.plots import plot_lr_range
from torchscout.tools.training.types import LrRangeTest

Batch = tuple[torch.Tensor, torch.Tensor]


def _lr_at(step: int, num_steps: int, start_lr: float, end_lr: float) -> float:
    return start_lr * (end_lr / start_lr) ** (step / max(1, num_steps - 1))


def suggest_lr(lrs: list[float], losses: list[float]) -> float | None:
    """The more cautious of two classic picks: steepest descent, and a tenth of the lr at minimum loss.

    The steepest point alone often sits close to where training blows up; capping it at
    ``lr(min loss) / 10`` keeps the suggestion on the safe side. None when the curve is too short.
    """
    if len(lrs) < 3:
        return None
    logs = [math.log10(lr) for lr in lrs]
    slopes = [(losses[i + 1] - losses[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(1, len(lrs) - 1)]
    steepest = lrs[min(range(len(slopes)), key=slopes.__getitem__) + 1]
    at_minimum = lrs[min(range(len(losses)), key=losses.__getitem__)]
    return min(steepest, at_minimum / 10)


def lr_range_test(model: nn.Module, optimizer: Optimizer, loss_fn: Callable[..., torch.Tensor],
                  batches: Callable[[], Iterator[Batch]] | Iterable[Batch], *, start_lr: float = 1e-7, end_lr: float = 10.0,
                  num_steps: int = 100, smoothing: float = 0.98, diverge_factor: float = 4.0,
                  plot_path: Path | None = None) -> LrRangeTest:
    """Run the exponential lr sweep; returns ``{"suggested_lr", "lrs", "losses", "steps", "plot_path"}``.

    ``batches`` is a re-iterable of ``(inputs, targets)`` (a DataLoader, a list) or a function
    returning a fresh iterator; it is restarted whenever it runs out before ``num_steps``.
    """
    restart = batches if callable(batches) else (lambda: iter(batches))
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    model_state = copy.deepcopy(model.state_dict())
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    iterator = restart()
    was_training = model.training
    model.train()
    try:
        with torch.random.fork_rng(devices=[]):
            for step in range(num_steps):
                try:
                    inputs, targets = next(iterator)
                except StopIteration:
                    iterator = restart()
                    inputs, targets = next(iterator)
                lr = _lr_at(step, num_steps, start_lr, end_lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss = loss_fn(model(inputs), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                value = float(loss.item())
                if not math.isfinite(value):
                    break
                average = smoothing * average + (1 - smoothing) * value
                smoothed = average / (1 - smoothing ** (step + 1))  # bias correction of the running mean
                lrs.append(lr)
                losses.append(smoothed)
                best = min(best, smoothed)
                if smoothed > diverge_factor * best:
                    break
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        optimizer.zero_grad(set_to_none=True)
        model.train(was_training)
    suggested = suggest_lr(lrs, losses)
    written = plot_lr_range(lrs, losses, suggested, plot_path) if plot_path is not None else None
    return {"suggested_lr": suggested, "lrs": lrs, "losses": losses, "steps": len(lrs),
            "plot_path": str(written) if written else None}
