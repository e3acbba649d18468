"""Shared pieces of the training tests: model scripts, tiny dataset files in real formats, a W&B reader."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

SMALL_CNN = '''
import torch
from torch import nn


class SmallCNN(nn.Module):
    """Two conv layers and a classifier; adapts to any input size through adaptive pooling."""

    def __init__(self, num_classes=10, channels=1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


class DropoutMLP(nn.Module):
    """Dropout and BatchNorm make resume equality a real test of RNG and buffer restoring."""

    def __init__(self, num_classes=10, in_features=64):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, 64), nn.BatchNorm1d(64), nn.ReLU(),
                                 nn.Dropout(0.3), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.net(x)


class FiveClassHead(nn.Module):
    """Produces 5 logits: wrong for a 10-class dataset."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))

    def forward(self, x):
        return self.net(x)


class RaisesInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        hidden = self.linear(x.flatten(1))
        return hidden @ torch.ones(3, 3)  # shape bug: (B, 10) @ (3, 3)


class RunsOutOfMemory(nn.Module):
    """Raises what PyTorch raises when a batch does not fit on the GPU."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


class TabularMLP(nn.Module):
    """Rows of features -> class logits or regression values."""

    def __init__(self, in_features=10, outputs=1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, 16), nn.ReLU(), nn.Linear(16, outputs))

    def forward(self, x):
        return self.net(x)


class SignalCNN(nn.Module):
    """Signals (N, C, L) -> class logits, through a 1D convolution and global average pooling."""

    def __init__(self, num_classes=10, channels=1):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(channels, 16, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
                                 nn.Flatten(), nn.Linear(16, num_classes))

    def forward(self, x):
        return self.net(x)


class TokenClassifier(nn.Module):
    def __init__(self, vocab_size=200, num_classes=2):
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, 16)
        self.head = nn.Linear(16, num_classes)

    def forward(self, ids):
        return self.head(self.embed(ids))
'''


@pytest.fixture
def one_thread():
    """Two OpenMP threads on a shared 2-core machine spin against other test processes: use one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def write_models(workspace: Path, name: str = "models.py") -> str:
    (workspace / name).write_text(SMALL_CNN, encoding="utf-8")
    return name


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (the MNIST format): magic (0, 0, type 0x08 = ubyte, ndim), big-endian sizes, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, train_size: int = 64, test_size: int = 32, seed: int = 0) -> Path:
    """Tiny MNIST in torchvision's raw layout: <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, size in (("train", train_size), ("t10k", test_size)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (size, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, size))
    return raw


def write_cifar10(root: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """Tiny CIFAR-10 in the real pickle format: dicts with 'data' (N x 3072 uint8, CHW order) and 'labels'."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        batch = {"batch_label": name, "data": rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8),
                 "labels": rng.integers(0, 10, per_batch).tolist(), "filenames": [f"{i}.png" for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def write_image_folder(root: Path, splits: tuple[str, ...] = ("train", "val"), per_class: int = 6,
                       size: int = 12) -> Path:
    """<root>/<split>/<class>/<n>.png with two visually different classes (dark and bright)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in splits:
        for label, (low, high) in {"dark": (0, 80), "bright": (170, 256)}.items():
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(per_class):
                pixels = rng.integers(low, high, (size, size, 3)).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


CUSTOM_DATASET_SCRIPT = '''
import torch
from torch.utils.data import Dataset


class Blobs(Dataset):
    """Two Gaussian blobs in 8 dimensions; class = which blob."""

    def __init__(self, size, seed):
        generator = torch.Generator().manual_seed(seed)
        self.targets = torch.randint(0, 2, (size,), generator=generator)
        self.inputs = torch.randn(size, 8, generator=generator) + self.targets[:, None] * 3.0

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        return self.inputs[index], int(self.targets[index])


def get_datasets(params):
    size = params.get("size", 64)
    return Blobs(size, 0), Blobs(size // 2, 1), Blobs(size // 2, 2)
'''

BLOB_MODEL = '''
from torch import nn


class BlobNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, x):
        return self.net(x)
'''


def wandb_records(run_file: Path) -> Iterator[Any]:
    """The protobuf records of a ``run-<id>.wandb`` file (a LevelDB-style log of 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2

    block, header = 32768, 7
    data = run_file.read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    position, pending = 7, b""
    while position + header <= len(data):
        left_in_block = block - position % block
        if left_in_block < header:
            position += left_in_block
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[position:position + header])
        if length == 0 and kind == 0:  # zero padding to the end of the block
            position += left_in_block
            continue
        pending += data[position + header:position + header + length]
        position += header + length
        if kind in (1, 4):  # FULL or LAST chunk of a record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def wandb_history(run_file: Path) -> list[dict[str, str]]:
    """Each logged history row as {key: json value}."""
    rows = []
    for record in wandb_records(run_file):
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or ".".join(item.nested_key): item.value_json for item in record.history.item})
    return rows
