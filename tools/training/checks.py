"""Checks before training: the one-batch sanity check and the overfit-one-batch test.

The sanity check runs one real batch forward and backward and says precisely what is wrong
(output shape vs ``num_classes``, a non-finite loss, parameters that get no gradient) before a
run spends minutes on a broken model. It leaves the model, its BatchNorm statistics and the
random number generators exactly as they were, so a seeded run is the same with or without it.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from typing import Any

import torch
from torch import nn

from torchscout.tools.training.components import build_model_optimizer
from torchscout.tools.training.engine import Run
from torchscout.tools.training.types import OverfitCheck, RunChecks, SanityCheck


class SanityCheckFailed(RuntimeError):
    """The model failed the one-batch check; the message says what to change."""


@contextlib.contextmanager
def untouched(model: nn.Module, device: torch.device):
    """Restore buffers (BatchNorm running stats), gradients and RNG state after the block."""
    buffers = {name: buffer.detach().clone() for name, buffer in model.named_buffers()}
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            model.zero_grad(set_to_none=True)
            with torch.no_grad():
                for name, buffer in model.named_buffers():
                    buffer.copy_(buffers[name])


def _check_output(outputs: Any, targets: torch.Tensor, num_classes: int | None) -> None:
    if not isinstance(outputs, torch.Tensor):
        raise SanityCheckFailed(f"the model's forward returned {type(outputs).__name__}, not a tensor of "
                                "predictions; return the logits tensor")
    shape = list(outputs.shape)
    if outputs.dim() == 0 or shape[0] != targets.shape[0]:
        raise SanityCheckFailed(f"the model output has shape {shape} for a batch of {targets.shape[0]} "
                                "inputs; the first dimension must be the batch")
    if targets.is_floating_point():
        _check_regression_output(shape, list(targets.shape))
        return
    if num_classes is None:
        return
    if outputs.dim() != 2:
        raise SanityCheckFailed(f"the model output has shape {shape}; a classifier must return "
                                f"[batch, num_classes] = [{shape[0]}, {num_classes}] logits (add a Flatten "
                                "and a final Linear layer)")
    if shape[1] != num_classes:
        raise SanityCheckFailed(f"the model output has shape {shape} but num_classes is {num_classes}: the last "
                                f"layer must produce {num_classes} values per sample (it produces {shape[1]})")


def _check_regression_output(shape: list[int], target_shape: list[int]) -> None:
    """Float targets: the model predicts every target value of a sample, as ``[batch, num_targets]``."""
    per_sample = math.prod(target_shape[1:])
    if math.prod(shape[1:]) != per_sample:
        raise SanityCheckFailed(f"the model output has shape {shape} but each sample has {per_sample} target "
                                f"value(s) (targets {target_shape}): the last layer must produce {per_sample} "
                                f"value(s) per sample")


def sanity_check(run: Run, num_classes: int | None) -> SanityCheck:
    """Forward, loss and backward on one training batch; raises SanityCheckFailed with the fix."""
    model = run.raw_model
    inputs, targets = run.train.first_batch()
    with untouched(model, run.device):
        model.train()
        with run.autocast:
            outputs = model(inputs)
            _check_output(outputs, targets, num_classes)
            loss = run.loss_fn(outputs, targets)
        if loss.dim() != 0:
            raise SanityCheckFailed(f"the loss has shape {list(loss.shape)}; it must be a scalar (reduction='mean')")
        if not torch.isfinite(loss):
            raise SanityCheckFailed(f"the loss on the first batch is {loss.item()}: check the model's output "
                                    "(e.g. log of zero, missing normalisation)")
        loss.backward()
        trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        if not trainable:
            raise SanityCheckFailed("the model has no trainable parameters")
        without_grad = [name for name, p in trainable if p.grad is None]
        if len(without_grad) == len(trainable):
            raise SanityCheckFailed("no parameter received a gradient: the output is not connected to the "
                                    "parameters (detach(), no_grad or argmax in forward?)")
    return {"ok": True, "input_shape": list(inputs.shape), "output_shape": list(outputs.shape),
            "first_loss": float(loss.item()), "parameters_without_grad": without_grad[:10]}


def overfit_one_batch(run: Run, build_optimizer, max_steps: int = 300, time_limit_s: float = 30.0,
                      target_drop: float = 0.9) -> OverfitCheck:
    """Train a copy of the model on one batch until the loss falls by ``target_drop`` (90%).

    A model that cannot fit one batch has a bug (wrong loss, frozen layers, a broken forward)
    or far too little capacity -- the classic first debugging step.
    """
    model = copy.deepcopy(run.raw_model)
    optimizer = build_optimizer(model)
    inputs, targets = run.train.first_batch()
    model.train()
    first_loss = last_loss = math.nan
    started, steps = time.perf_counter(), 0
    with torch.random.fork_rng(devices=[run.device.index or 0] if run.device.type == "cuda" else []):
        for steps in range(1, max_steps + 1):  # noqa: B007 - steps is reported after the loop
            with run.autocast:
                loss = run.loss_fn(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            last_loss = float(loss.item())
            if steps == 1:
                first_loss = last_loss
            if not math.isfinite(last_loss) or last_loss <= first_loss * (1 - target_drop):
                break
            if time.perf_counter() - started > time_limit_s:
                break
    passed = math.isfinite(last_loss) and last_loss <= first_loss * (1 - target_drop)
    verdict = ("the model fits one batch" if passed else
               f"the model could not reduce the loss on one batch by {target_drop:.0%} in {steps} steps: "
               "check the loss, the learning rate, frozen layers or the forward pass")
    return {"passed": passed, "initial_loss": first_loss, "final_loss": last_loss, "steps": steps,
            "verdict": verdict}


def run_checks(run: Run, num_classes: int | None, sanity: str) -> RunChecks:
    """The checks ``sanity`` asks for ("batch", "overfit_batch" or "off"), as result fields."""
    checks: RunChecks = {}
    if sanity == "off":
        return checks
    checks["sanity"] = sanity_check(run, num_classes)
    if sanity == "overfit_batch":
        checks["overfit_batch"] = overfit_one_batch(run, lambda model: build_model_optimizer(model, run.config))
    return checks
