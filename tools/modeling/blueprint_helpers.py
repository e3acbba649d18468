"""Helper ops a blueprint may use (``Mean``, ``Max``, ``Last``), as real modules.

The assembler uses these classes for shape inference and copies their source into the
generated file (``inspect.getsource``), so the file stays free of any torchscout import and
the code that was measured is the code that ships.
"""

from __future__ import annotations

import torch
from torch import nn


class Mean(nn.Module):
    """Average over one dimension, e.g. a sequence of token features -> one vector."""

    def __init__(self, dim: int = 1, keepdim: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dim, keepdim=self.keepdim)


class Max(nn.Module):
    """Maximum over one dimension (max pooling over a sequence)."""

    def __init__(self, dim: int = 1, keepdim: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=self.dim, keepdim=self.keepdim)


class Last(nn.Module):
    """The last element along one dimension (the final time step of a sequence)."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.select(self.dim, -1)


HELPERS: dict[str, type[nn.Module]] = {"Mean": Mean, "Max": Max, "Last": Last}
