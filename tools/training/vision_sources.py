"""Built-in in-memory datasets: mnist and cifar10 (torchvision's loaders), digits (scikit-learn), dummy.

Each is decoded once and normalised into float tensors, so training never touches PIL.
mnist and cifar10 read torchvision's own files from ``data_root``; when the files are
missing they are downloaded, and when that fails too (offline) the error names the folder
and the files to put there.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from torchscout.tools.errors import ToolError
from torchscout.tools.training.datasets import (
    DatasetRequest,
    DatasetSplits,
    TensorSplit,
    register_dataset,
)

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class ImageStatistics:
    """Per-channel mean and std of a dataset's training images, with pixel values scaled to [0, 1]."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``(images - mean) / std`` per channel of N x C x H x W floats in [0, 1], in place."""
        shape = (1, len(self.mean), 1, 1)
        return images.sub_(torch.tensor(self.mean).view(shape)).div_(torch.tensor(self.std).view(shape))


# The one table of dataset statistics: the training engine, exported projects' train.py and the
# benchmarks all normalise with these.
DATASET_STATISTICS = {
    "mnist": ImageStatistics(mean=(0.1307,), std=(0.3081,)),
    "cifar10": ImageStatistics(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
}

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta")


def _torchvision_split(dataset_class: type, root: Path, train: bool, folder: Path, files: str):
    """Open a torchvision dataset, downloading it when missing; a ToolError says what to place where."""
    try:
        return dataset_class(str(root), train=train, download=False)
    except RuntimeError:
        logger.info("%s not found under %s; trying to download it", dataset_class.__name__, root)
    try:
        return dataset_class(str(root), train=train, download=True)
    except Exception as exc:  # noqa: BLE001 - URLError, socket errors, checksum errors: all mean "not available"
        raise ToolError(
            f"{dataset_class.__name__} is not in {folder} and could not be downloaded "
            f"({type(exc).__name__}: {exc}). Place these files in {folder}: {files} -- or set data_root in the "
            "config (or TORCHSCOUT_DATA_DIR) to a folder that has them."
        ) from exc


@register_dataset("mnist", description="MNIST handwritten digits, 1x28x28, 10 classes; val = the official test split")
def build_mnist(request: DatasetRequest) -> DatasetSplits:
    from torchvision.datasets import MNIST

    folder = request.data_root / "MNIST" / "raw"
    files = ", ".join(f"{name} (or {name}.gz)" for name in MNIST_FILES)
    splits = []
    for train in (True, False):
        dataset = _torchvision_split(MNIST, request.data_root, train, folder, files)
        inputs = DATASET_STATISTICS["mnist"].normalise(dataset.data.float().div_(255).unsqueeze(1))
        splits.append(TensorSplit(inputs, dataset.targets.long()))
    return DatasetSplits(train=splits[0], val=splits[1], num_classes=10,
                         info={"source": str(request.data_root), "val_split": "test"})


@register_dataset("cifar10", description="CIFAR-10, 3x32x32, 10 classes; val = the official test split")
def build_cifar10(request: DatasetRequest) -> DatasetSplits:
    from torchvision.datasets import CIFAR10

    folder = request.data_root / CIFAR10.base_folder
    splits = []
    for train in (True, False):
        dataset = _torchvision_split(CIFAR10, request.data_root, train, folder, ", ".join(CIFAR10_FILES))
        # dataset.data is uint8 N x H x W x C; the model wants N x C x H x W floats.
        inputs = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).float().div_(255)
        inputs = DATASET_STATISTICS["cifar10"].normalise(inputs).contiguous()
        splits.append(TensorSplit(inputs, torch.tensor(dataset.targets, dtype=torch.long)))
    return DatasetSplits(train=splits[0], val=splits[1], num_classes=10,
                         info={"source": str(request.data_root), "val_split": "test"})


@functools.cache
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (images, labels), parsed once per process: the sandbox's fork server
    parses them when it warms up, and every evaluation forked from it reuses them (parsing the
    bundled CSV costs more than a short evaluation's training)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images, digits.target
    images.setflags(write=False)  # shared by every caller: nobody may change them in place
    labels.setflags(write=False)
    return images, labels


@register_dataset("digits", description="scikit-learn's bundled 8x8 digits (1797 images), 1x8x8, 10 classes, "
                  "stratified seeded val split; works offline")
def build_digits(request: DatasetRequest) -> DatasetSplits:
    from sklearn.model_selection import train_test_split

    images, labels = digits_arrays()
    inputs = torch.tensor(images, dtype=torch.float32).unsqueeze(1)
    targets = torch.tensor(labels, dtype=torch.long)
    train_index, val_index = train_test_split(
        torch.arange(len(targets)).numpy(), test_size=request.val_fraction,
        random_state=request.seed, stratify=labels)
    train_index, val_index = torch.from_numpy(train_index), torch.from_numpy(val_index)
    # normalise with the training split's statistics only, so nothing leaks from val
    mean, std = inputs[train_index].mean(), inputs[train_index].std()
    inputs = (inputs - mean) / std
    return DatasetSplits(
        train=TensorSplit(inputs[train_index], targets[train_index]),
        val=TensorSplit(inputs[val_index], targets[val_index]),
        num_classes=10, info={"source": "sklearn.datasets.load_digits", "val_split": "holdout"})


@register_dataset("dummy", description="seeded random inputs of input_shape with random labels in "
                  "[0, num_classes); dataset_params.num_samples / val_samples set the sizes")
def build_dummy(request: DatasetRequest) -> DatasetSplits:
    if not request.input_shape:
        raise ToolError("the dummy dataset needs input_shape, e.g. [3, 32, 32] (one sample's shape)")
    if not request.num_classes:
        raise ToolError("the dummy dataset needs num_classes (the number of random labels)")
    train_size = int(request.params.get("num_samples", 512))
    val_size = int(request.params.get("val_samples", max(1, round(train_size * request.val_fraction))))
    if train_size < 1 or val_size < 1:
        raise ToolError("dataset_params.num_samples and val_samples must be >= 1")
    generator = torch.Generator().manual_seed(request.seed)
    total = train_size + val_size
    inputs = torch.randn(total, *request.input_shape, generator=generator)
    targets = torch.randint(0, request.num_classes, (total,), generator=generator)
    return DatasetSplits(
        train=TensorSplit(inputs[:train_size], targets[:train_size]),
        val=TensorSplit(inputs[train_size:], targets[train_size:]),
        num_classes=request.num_classes, info={"source": "random", "val_split": "holdout"})

