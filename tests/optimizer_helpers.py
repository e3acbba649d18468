"""Optimizer sources and models shared by the optimizer tests: realistic LLM replies included."""

from __future__ import annotations

import torch
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from torch import nn

LION_SOURCE = '''"""Lion: EvoLved Sign Momentum (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms")."""

import torch
from torch.optim import Optimizer


class Lion(Optimizer):
    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        if lr <= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid betas: {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.mul_(1 - group["lr"] * group["weight_decay"])
                state = self.state[p]
                if len(state) == 0:
                    state["exp_avg"] = torch.zeros_like(p)
                exp_avg = state["exp_avg"]
                update = exp_avg.mul(beta1).add(p.grad, alpha=1 - beta1).sign_()
                p.add_(update, alpha=-group["lr"])
                exp_avg.mul_(beta2).add_(p.grad, alpha=1 - beta2)
        return loss
'''

# The classic sign slip: the update is added instead of subtracted, so every step climbs.
DIVERGING_LION_SOURCE = LION_SOURCE.replace('p.add_(update, alpha=-group["lr"])', 'p.add_(update, alpha=group["lr"])')

# A typo an LLM makes: the file imports, but the first step raises AttributeError.
BROKEN_LION_SOURCE = LION_SOURCE.replace("torch.zeros_like(p)", "torch.zeros_lik(p)")


def reply(code: str, preface: str = "Here is the implementation.") -> AIMessage:
    return AIMessage(content=f"{preface}\n\n```python\n{code}```\n")


def scripted_model(*codes: str) -> GenericFakeChatModel:
    """A fake chat model answering each request with the next code block."""
    return GenericFakeChatModel(messages=iter([reply(code) for code in codes]))


class TwoPartNet(nn.Module):
    """A backbone and a head with a LayerNorm, named like real models (backbone.0.weight, head.norm.weight)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 12))
        self.head = nn.Module()
        self.head.norm = nn.LayerNorm(12)
        self.head.out = nn.Linear(12, 3)
        self.frozen = nn.Parameter(torch.zeros(2), requires_grad=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head.out(self.head.norm(self.backbone(inputs)))


def groups_by_name(optimizer: torch.optim.Optimizer) -> dict[str, dict]:
    return {group["group_name"]: group for group in optimizer.param_groups}
