"""The dataset registry: a name in a training config -> train / val / test splits.

A builder returns :class:`DatasetSplits`. Each split is either a :class:`TensorSplit` (the
whole split decoded and normalised into two tensors -- the fast path) or any
``torch.utils.data.Dataset`` yielding ``(input, target)`` pairs, which ``data.py`` either
decodes once into tensors or streams through a DataLoader.

Builders live in ``vision_sources.py`` (mnist, cifar10, digits, dummy), ``file_sources.py``
(image folders, custom dataset scripts, text classification) and ``array_sources.py`` (diabetes,
breast_cancer, signals_synthetic); each registers themselves in
:data:`DATASETS` with :func:`register_dataset` and are imported on the first lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from torchscout.tools.errors import ToolError
from torchscout.tools.lookup import Registry


@dataclass
class TensorSplit:
    """A split held as tensors: ``inputs[i]`` and ``targets[i]`` are sample ``i``."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def subset(self, indices: torch.Tensor) -> TensorSplit:
        return TensorSplit(self.inputs[indices], self.targets[indices])


Split = TensorSplit | Dataset


@dataclass
class DatasetSplits:
    train: Split
    val: Split
    test: Split | None = None
    num_classes: int | None = None  # inferred from the labels when the builder knows them
    info: dict[str, Any] = field(default_factory=dict)  # plain data for results: source, sizes, ...
    stream_by_default: bool = False  # custom datasets stream through a DataLoader unless preload is asked


@dataclass(frozen=True)
class DatasetRequest:
    """Everything a builder may read: the dataset's params plus the run's shape, seed and split settings."""

    name: str
    params: dict[str, Any]
    data_root: Path
    input_shape: list[int] | None
    num_classes: int | None
    seed: int
    val_fraction: float


DatasetBuilder = Callable[[DatasetRequest], DatasetSplits]

DATASETS: Registry[DatasetBuilder] = Registry(
    "dataset", sources=("torchscout.tools.training.vision_sources", "torchscout.tools.training.file_sources",
                        "torchscout.tools.training.array_sources"))
register_dataset = DATASETS.register  # @register_dataset("name", ..., description=...) on a builder


def dataset_names() -> list[str]:
    """Every registered dataset name."""
    return sorted(DATASETS)


def build_datasets(request: DatasetRequest) -> DatasetSplits:
    """Build the splits for ``request.name``; an unknown name raises UnknownNameError (a ToolError)."""
    return DATASETS.get(request.name)(request)


def holdout_indices(size: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random (train, val) partition of ``range(size)``; val gets at least one sample."""
    if size < 2:
        raise ToolError(f"a dataset of {size} sample(s) cannot be split into train and val")
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    val_size = min(size - 1, max(1, round(size * val_fraction)))
    return order[val_size:], order[:val_size]


def labels_num_classes(targets: torch.Tensor) -> int | None:
    """Number of classes implied by integer labels (None for regression targets)."""
    if targets.is_floating_point() or targets.numel() == 0:
        return None
    return int(targets.max().item()) + 1


def require_param(request: DatasetRequest, key: str, what: str) -> Any:
    value = request.params.get(key)
    if value in (None, ""):
        raise ToolError(f"dataset {request.name!r} needs dataset_params.{key}: {what}")
    return value


def tensor_holdout(inputs: torch.Tensor, targets: torch.Tensor, request: DatasetRequest) -> DatasetSplits:
    """Split one set of tensors into seeded train / val parts."""
    train_index, val_index = holdout_indices(len(targets), request.val_fraction, request.seed)
    return DatasetSplits(
        train=TensorSplit(inputs[train_index], targets[train_index]),
        val=TensorSplit(inputs[val_index], targets[val_index]),
        num_classes=labels_num_classes(targets), info={"val_split": "holdout"})
