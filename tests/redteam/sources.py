"""Small, sound sources the red-team cases put in a workspace (a model, an optimizer)."""

from __future__ import annotations

TINY_MODEL = '''import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
'''


def optimizer_source(class_name: str) -> str:
    """A plain sign-SGD optimizer class named ``class_name`` (it passes the registration probe)."""
    return f'''import torch
from torch.optim import Optimizer


class {class_name}(Optimizer):
    def __init__(self, params, lr=1e-2):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.grad is not None:
                    parameter.add_(parameter.grad.sign(), alpha=-group["lr"])
        return loss
'''
