"""The behavioural check a custom optimizer passes before it is registered.

:func:`probe_optimizer` runs in the child-process sandbox (never in the tool's own process:
the code may be freshly written by an LLM). It checks, in order, and stops at the first
failure with a message the LLM repair loop (or a person) can act on:

1. the script imports and defines ``class_name``, a ``torch.optim.Optimizer`` subclass;
2. it constructs on a small model with the declared ``additional_params``;
3. 50 steps on a small least-squares problem keep the loss finite and cut it by at least 10%, at
   the optimizer's own learning rate or, when that is too timid for 50 steps, at 1e-2, 1e-1 or 1e-3
   (an update with the wrong sign fails at every learning rate);
4. ``state_dict()`` -> serialise -> ``load_state_dict()`` into a fresh optimizer, and the next
   step of both is identical;
5. ``zero_grad()`` clears every gradient;
6. a parameter whose ``grad`` is None is left untouched by ``step()``.
"""

from __future__ import annotations

import copy
import inspect
import io
import math
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from torchscout.tools.loading import load_class
from torchscout.tools.optim.types import DescentAttempt, ProbeReport

PROBE_STEPS = 50
REQUIRED_LOSS_RATIO = 0.9  # at least a 10% reduction; a wrong-signed update increases it
FALLBACK_LEARNING_RATES = (1e-2, 1e-1, 1e-3)


class OptimizerProbeFailure(Exception):
    """The optimizer failed one of the checks; the message says which and what was seen."""


class _ProbeModel(nn.Module):
    """Least squares with a bias, plus a parameter that never gets a gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 1)
        self.unused = nn.Parameter(torch.ones(3))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.linear(inputs)


def _problem() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 8, generator=generator)
    true_weights = torch.randn(8, 1, generator=generator) * 2
    targets = inputs @ true_weights + 1.5 + 0.01 * torch.randn(64, 1, generator=generator)
    return inputs, targets


def _loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.mean((model(inputs) - targets) ** 2)


def _construct(optimizer_class: type[Optimizer], model: nn.Module, settings: dict[str, Any]) -> Optimizer:
    try:
        return optimizer_class(model.parameters(), **settings)
    except Exception as exc:
        raise OptimizerProbeFailure(
            f"{optimizer_class.__name__}(model.parameters(), **{settings!r}) raised {type(exc).__name__}: {exc}"
        ) from exc


def _train(optimizer_class: type[Optimizer], settings: dict[str, Any]) -> tuple[nn.Module, Optimizer, list[float]]:
    torch.manual_seed(0)
    model = _ProbeModel()
    optimizer = _construct(optimizer_class, model, settings)
    inputs, targets = _problem()
    losses = []
    for step in range(PROBE_STEPS):
        optimizer.zero_grad()
        loss = _loss(model, inputs, targets)
        loss.backward()
        losses.append(float(loss.detach()))
        try:
            optimizer.step()
        except Exception as exc:
            raise OptimizerProbeFailure(f"optimizer.step() raised {type(exc).__name__} at step {step}: {exc}") from exc
    losses.append(float(_loss(model, inputs, targets).detach()))
    return model, optimizer, losses


def _learning_rates(optimizer_class: type[Optimizer], additional_params: dict[str, Any]) -> list[float | None]:
    """None = the optimizer's own lr; then fallbacks, when the optimizer has an lr setting at all."""
    if "lr" in additional_params:
        return [None]
    takes_lr = "lr" in inspect.signature(optimizer_class.__init__).parameters
    return [None, *FALLBACK_LEARNING_RATES] if takes_lr else [None]


def _plain(value: float) -> float | str:
    """A loss for a JSON report: strict JSON has no NaN or Infinity, so those become strings."""
    return value if math.isfinite(value) else str(value)


def _check_descent(optimizer_class: type[Optimizer],
                   additional_params: dict[str, Any]) -> tuple[dict[str, Any], list[DescentAttempt]]:
    """The settings at which the loss fell enough, and every learning rate tried on the way."""
    attempts: list[DescentAttempt] = []
    for lr in _learning_rates(optimizer_class, additional_params):
        settings = dict(additional_params) if lr is None else {**additional_params, "lr": lr}
        _, _, losses = _train(optimizer_class, settings)
        finite = all(math.isfinite(value) for value in losses)
        attempt: DescentAttempt = {"lr": "default" if lr is None else lr, "initial_loss": _plain(losses[0]),
                                   "final_loss": _plain(losses[-1]), "finite": finite}
        attempts.append(attempt)
        if finite and losses[-1] <= REQUIRED_LOSS_RATIO * losses[0]:
            return settings, attempts
    described = "; ".join(f"lr={a['lr']}: loss {a['initial_loss']:.4g} -> {float(a['final_loss']):.4g}"
                          + ("" if a["finite"] else " (non-finite)") for a in attempts)
    raise OptimizerProbeFailure(
        f"{PROBE_STEPS} steps on a least-squares problem did not cut the loss by 10% with finite values ({described}); "
        "check the sign and scale of the update (parameters must move against the gradient)"
    )


def _check_state_dict_round_trip(optimizer_class: type[Optimizer], settings: dict[str, Any]) -> None:
    model, optimizer, _ = _train(optimizer_class, settings)
    buffer = io.BytesIO()
    try:
        torch.save(optimizer.state_dict(), buffer)
        buffer.seek(0)
        saved_state = torch.load(buffer, weights_only=False)
        twin_model = copy.deepcopy(model)
        twin = _construct(optimizer_class, twin_model, settings)
        twin.load_state_dict(saved_state)
    except OptimizerProbeFailure:
        raise
    except Exception as exc:
        raise OptimizerProbeFailure(f"state_dict() -> torch.save/torch.load -> load_state_dict() failed with "
                                    f"{type(exc).__name__}: {exc}") from exc
    inputs, targets = _problem()
    for each_model, each_optimizer in ((model, optimizer), (twin_model, twin)):
        each_optimizer.zero_grad()
        _loss(each_model, inputs, targets).backward()
        each_optimizer.step()
    for (name, original), restored in zip(model.named_parameters(), twin_model.parameters(), strict=True):
        if not torch.allclose(original, restored, rtol=1e-5, atol=1e-7):
            raise OptimizerProbeFailure(
                f"after load_state_dict(), the next step differs from the original optimizer's on {name!r}: "
                "some state (step counters, moment buffers) is not in state_dict() or not restored"
            )


def _check_zero_grad(optimizer_class: type[Optimizer], settings: dict[str, Any]) -> None:
    model, optimizer, _ = _train(optimizer_class, settings)
    inputs, targets = _problem()
    _loss(model, inputs, targets).backward()
    optimizer.zero_grad()
    for name, param in model.named_parameters():
        if param.grad is not None and bool(param.grad.abs().sum() != 0):
            raise OptimizerProbeFailure(f"zero_grad() left a non-zero gradient on {name!r}")


def _check_skips_missing_grads(optimizer_class: type[Optimizer], settings: dict[str, Any]) -> None:
    model, optimizer, _ = _train(optimizer_class, settings)
    if not torch.equal(model.unused.detach(), torch.ones(3)):
        raise OptimizerProbeFailure("step() changed a parameter whose .grad is None; skip such parameters "
                                    "(`if p.grad is None: continue`)")
    before = [param.detach().clone() for param in model.parameters()]
    optimizer.zero_grad(set_to_none=True)
    try:
        optimizer.step()
    except Exception as exc:
        raise OptimizerProbeFailure(f"step() with every .grad None raised {type(exc).__name__}: {exc}") from exc
    for (name, param), old in zip(model.named_parameters(), before, strict=True):
        if not torch.equal(param.detach(), old):
            raise OptimizerProbeFailure(f"step() with every .grad None changed {name!r}; skip parameters "
                                        "without gradients")


def probe_optimizer(code_path: str, class_name: str, additional_params: dict[str, Any] | None = None) -> ProbeReport:
    """Run every check on ``class_name`` from ``code_path``; returns what was measured.

    Raises :class:`OptimizerProbeFailure` (or the loader's UserCodeError/ToolError when the
    script does not import or lacks the class).
    """
    additional_params = dict(additional_params or {})
    optimizer_class = load_class(code_path, class_name, base=Optimizer)
    settings, descent = _check_descent(optimizer_class, additional_params)
    _check_state_dict_round_trip(optimizer_class, settings)
    _check_zero_grad(optimizer_class, settings)
    _check_skips_missing_grads(optimizer_class, settings)
    return {
        "imports": True,
        "constructs": True,
        "steps": PROBE_STEPS,
        "descent": descent,
        "probe_settings": dict(settings),
        "state_dict_round_trip": True,
        "zero_grad": True,
        "skips_params_without_grad": True,
    }
