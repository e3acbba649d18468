"""Helper ops a blueprint may use, as real modules: the reductions ``Mean``, ``Max``, ``Last``, plus
``Transpose`` (signals ``(N, C, L)`` -> sequences ``(N, L, C)`` for recurrent layers and attention)
and ``PositionalEmbedding`` (a learned vector per position, so attention can tell positions apart).

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


class Transpose(nn.Module):
    """Swap two dimensions, e.g. a signal (N, C, L) into a sequence of L steps (N, L, C)."""

    def __init__(self, dim0: int = 1, dim1: int = 2) -> None:
        super().__init__()
        self.dim0 = dim0
        self.dim1 = dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)


class PositionalEmbedding(nn.Module):
    """Add a learned vector per position to a sequence (N, L, d_model), as ViT and BERT do."""

    def __init__(self, sequence_length: int, d_model: int) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(1, sequence_length, d_model))
        nn.init.normal_(self.position, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.position[:, : x.shape[1]]


HELPERS: dict[str, type[nn.Module]] = {"Mean": Mean, "Max": Max, "Last": Last, "Transpose": Transpose,
                                       "PositionalEmbedding": PositionalEmbedding}
# the reductions name their dimension in the generated code even when the blueprint leaves the default
REDUCTIONS = {"Mean", "Max", "Last"}
