"""Datasets held as arrays: scikit-learn's bundled tabular sets and a generated 1D-signal set.

- ``diabetes``: regression, 10 standardised features -> disease progression (442 patients);
- ``breast_cancer``: binary classification, 30 features (569 tumours);
- ``signals_synthetic``: 1D signals ``[1, length]`` of ``num_classes`` short templates (bumps, dips,
  sine periods, ramps, spikes) placed at a random position, scaled, on a random baseline, with
  Gaussian noise; generated from ``dataset_params.data_seed``, so every run sees the same data.
  The class is in the shape, not in the position: a model that treats every position on its own
  (an MLP on the flattened signal) must learn each template at every offset, a convolution once.

Each has a train, val and test split. The test split is drawn with a fixed seed
(``dataset_params.split_seed``, default 0), so it is the same whatever the run's seed; val is a
seeded holdout of the rest. Features are standardised with the training split's mean and standard
deviation (nothing leaks from val or test), and so are regression targets: their scale is in the
dataset info (``target_mean``, ``target_std``), and errors (mse, rmse, mae) are in its units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from torchscout.tools.errors import ToolError
from torchscout.tools.training.datasets import DatasetRequest, DatasetSplits, TensorSplit, register_dataset

DEFAULT_TEST_FRACTION = 0.2
DEFAULT_VAL_FRACTION = 0.2  # small tabular sets: a 10% holdout of a few hundred rows is too noisy to rank on


@dataclass
class ArrayData:
    """Every sample of a dataset as arrays: ``inputs`` [N, ...] float, ``targets`` [N] labels or [N(, T)] floats."""

    inputs: np.ndarray
    targets: np.ndarray
    source: str
    classification: bool


def _fraction(request: DatasetRequest, key: str, default: float) -> float:
    value = float(request.params.get(key, default))
    if not 0.0 < value < 1.0:
        raise ToolError(f"dataset_params.{key} must be between 0 and 1 (exclusive), got {value}")
    return value


def split_indices(data: ArrayData, request: DatasetRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) row indices: a fixed-seed test split, then a run-seeded val holdout."""
    from sklearn.model_selection import train_test_split

    test_fraction = _fraction(request, "test_fraction", DEFAULT_TEST_FRACTION)
    val_fraction = _fraction(request, "val_fraction", DEFAULT_VAL_FRACTION)
    rows = np.arange(len(data.targets))
    labels = data.targets if data.classification else None
    rest, test = train_test_split(rows, test_size=test_fraction, random_state=int(request.params.get("split_seed", 0)),
                                  stratify=labels)
    train, val = train_test_split(rest, test_size=val_fraction, random_state=request.seed,
                                  stratify=labels[rest] if labels is not None else None)
    return train, val, test


def _standardise(values: np.ndarray, train: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray]:
    """``values`` standardised with the mean and std of the training rows over ``axes``; (result, mean, std)."""
    mean = values[train].mean(axis=axes, keepdims=True)
    std = values[train].std(axis=axes, keepdims=True)
    std = np.where(std > 1e-12, std, 1.0)  # a constant feature stays constant instead of dividing by zero
    return (values - mean) / std, mean, std


def array_splits(data: ArrayData, request: DatasetRequest) -> DatasetSplits:
    """Split, standardise (with training statistics only) and wrap ``data`` as tensors."""
    train, val, test = split_indices(data, request)
    # per feature for tabular rows, per channel for signals [N, C, L]
    axes = (0,) if data.inputs.ndim == 2 else (0, *range(2, data.inputs.ndim))
    inputs, _, _ = _standardise(data.inputs.astype(np.float64), train, axes)
    info = {"source": data.source, "val_split": "holdout", "test_split": "fixed"}
    if data.classification:
        targets = torch.as_tensor(data.targets, dtype=torch.long)
        num_classes = int(data.targets.max()) + 1
    else:
        scaled, mean, std = _standardise(data.targets.astype(np.float64), train, (0,))
        targets = torch.as_tensor(scaled, dtype=torch.float32)
        num_classes = None
        info.update(target_mean=[float(value) for value in np.ravel(mean)],
                    target_std=[float(value) for value in np.ravel(std)])
    features = torch.as_tensor(inputs, dtype=torch.float32)

    def split(rows: np.ndarray) -> TensorSplit:
        index = torch.as_tensor(rows)
        return TensorSplit(features[index].contiguous(), targets[index].contiguous())

    return DatasetSplits(train=split(train), val=split(val), test=split(test), num_classes=num_classes, info=info)


@register_dataset("diabetes", description="scikit-learn's bundled diabetes regression (442 rows, 10 features -> "
                  "disease progression, input [10]); standardised with the training split; fixed test split; offline")
def build_diabetes(request: DatasetRequest) -> DatasetSplits:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    return array_splits(ArrayData(bunch.data, bunch.target, "sklearn.datasets.load_diabetes", False), request)


@register_dataset("breast_cancer", description="scikit-learn's bundled breast cancer classification (569 rows, "
                  "30 features, 2 classes, input [30]); standardised with the training split; fixed test split")
def build_breast_cancer(request: DatasetRequest) -> DatasetSplits:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return array_splits(ArrayData(bunch.data, bunch.target, "sklearn.datasets.load_breast_cancer", True), request)


def signal_templates(size: int) -> np.ndarray:
    """Ten distinct short shapes of ``size`` steps, one per class (bump, dip, sine period, ramp, ...)."""
    t = np.linspace(0.0, 1.0, size)

    def bump(centre: float, width: float) -> np.ndarray:
        return np.exp(-0.5 * ((t - centre) / width) ** 2)

    return np.stack([
        bump(0.5, 0.15), -bump(0.5, 0.15),                            # bump, dip
        bump(0.25, 0.08) + bump(0.75, 0.08),                          # two bumps
        np.sin(2 * np.pi * t), -np.sin(2 * np.pi * t),                # a sine period and its mirror
        2 * t - 1, 1 - 2 * t,                                         # ramps up and down
        np.sin(4 * np.pi * t),                                        # two fast periods
        -bump(0.25, 0.08) - bump(0.75, 0.08),                         # two dips
        1.6 * bump(0.5, 0.05),                                        # a spike
    ])


def generate_signals(num_samples: int, length: int, num_classes: int, noise: float, seed: int,
                     template_size: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(signals [N, 1, length] float32, labels [N]): templates at random offsets, scaled, on a random
    baseline, plus Gaussian noise of std ``noise``; a pure function of its arguments."""
    templates = signal_templates(template_size)
    if not 2 <= num_classes <= len(templates):
        raise ToolError(f"signals_synthetic has {len(templates)} templates: num_classes must be 2..{len(templates)}")
    if length < template_size:
        raise ToolError(f"signals_synthetic: length must be at least the template size {template_size}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, num_samples)
    signals = rng.normal(0.0, noise, (num_samples, length)) + rng.normal(0.0, 0.3, (num_samples, 1))
    starts = rng.integers(0, length - template_size + 1, num_samples)
    scales = rng.uniform(0.6, 1.4, num_samples)
    positions = starts[:, None] + np.arange(template_size)
    np.add.at(signals, (np.arange(num_samples)[:, None], positions), scales[:, None] * templates[labels])
    return signals[:, None, :].astype(np.float32), labels


@register_dataset("signals_synthetic", description="generated 1D signals [1, length] (default 4000 x 96, 10 classes): "
                  "shifted, scaled, noisy templates; dataset_params num_samples, length, num_classes, noise, "
                  "data_seed; fixed test split; offline")
def build_signals(request: DatasetRequest) -> DatasetSplits:
    params = request.params
    length = int(params.get("length", request.input_shape[-1] if request.input_shape else 96))
    num_classes = int(params.get("num_classes", request.num_classes or 10))
    if request.input_shape and list(request.input_shape[-2:]) != [1, length]:
        raise ToolError(f"signals_synthetic makes signals of shape [1, {length}] (dataset_params.length), but "
                        f"input_shape is {list(request.input_shape)}; make them agree")
    signals, labels = generate_signals(int(params.get("num_samples", 4000)), length, num_classes,
                                       float(params.get("noise", 0.2)), int(params.get("data_seed", 0)))
    data = ArrayData(signals, labels, f"generated (data_seed {int(params.get('data_seed', 0))})", True)
    return array_splits(data, request)
