"""Evaluation metrics, accumulated batch by batch without a host sync per batch.

Each metric is a small accumulator: ``update(outputs, targets)`` keeps running sums (or the
predicted labels, for the scikit-learn scores) on the device, ``compute()`` returns a float.
``f1`` is the macro F1, like ``f1_macro``; ``precision`` and ``recall`` are macro averages too.

:data:`METRICS` is the one table of metric names, and each entry says which way is better
(``mode``): a task's default mode, the trainer's monitor and early stopping, and the research
graph's ranking all read it through :func:`metric_mode`. A new metric is one
:func:`register_metric` line (plus its accumulator class when no existing one fits).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch

from torchscout.tools.lookup import Registry


class Metric(ABC):
    """Accumulates one metric over an evaluation pass."""

    needs_labels = True  # classification metrics compare class predictions to integer labels

    @abstractmethod
    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Add one batch of model outputs and targets."""

    @abstractmethod
    def compute(self) -> float:
        """The metric over every batch added so far."""


class TopKAccuracy(Metric):
    def __init__(self, k: int = 1) -> None:
        self.k = k
        self.correct: torch.Tensor | None = None
        self.count = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        k = min(self.k, outputs.shape[-1])
        top = outputs.topk(k, dim=-1).indices
        hits = (top == targets.unsqueeze(-1)).any(dim=-1).sum()
        self.correct = hits if self.correct is None else self.correct + hits
        self.count += targets.numel()

    def compute(self) -> float:
        return float(self.correct.item()) / self.count if self.count else 0.0


class SklearnLabelScore(Metric):
    """A scikit-learn score (``sklearn.metrics.<score>``) over every predicted label of the pass."""

    def __init__(self, score: str, average: str) -> None:
        self.score, self.average = score, average
        self.predictions: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.predictions.append(outputs.argmax(dim=-1))
        self.labels.append(targets)

    def compute(self) -> float:
        if not self.labels:
            return 0.0
        import sklearn.metrics  # imported here: it costs about a second and only evaluation needs it

        predicted = torch.cat(self.predictions).cpu().numpy()
        actual = torch.cat(self.labels).cpu().numpy()
        score = getattr(sklearn.metrics, self.score)
        return float(score(actual, predicted, average=self.average, zero_division=0))


class Perplexity(Metric):
    """exp of the mean cross-entropy per label: per token for (N, T, V) logits and (N, T) ids."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        logits = outputs.reshape(-1, outputs.shape[-1]).float()
        nll = torch.nn.functional.cross_entropy(logits, targets.reshape(-1), reduction="sum")
        self.total = nll if self.total is None else self.total + nll
        self.count += targets.numel()

    def compute(self) -> float:
        return math.exp(float(self.total.item()) / self.count) if self.count else math.inf


def as_output_shaped(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Float targets shaped like ``outputs``: class labels become one-hot, ``[N]`` becomes ``[N, 1]``."""
    if not targets.is_floating_point():
        return torch.nn.functional.one_hot(targets, outputs.shape[-1]).to(outputs.dtype)
    return targets.to(outputs.dtype).reshape(outputs.shape)


class MeanError(Metric):
    """Mean squared or absolute error between outputs and targets (one-hot targets for class labels);
    ``root`` gives the root of the mean (RMSE)."""

    needs_labels = False

    def __init__(self, power: int, root: bool = False) -> None:
        self.power, self.root = power, root
        self.total: torch.Tensor | None = None
        self.count = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        outputs = outputs.float()
        error = (outputs - as_output_shaped(outputs, targets)).abs().pow(self.power).sum()
        self.total = error if self.total is None else self.total + error
        self.count += outputs.numel()

    def compute(self) -> float:
        mean = float(self.total.item()) / self.count if self.count else 0.0
        return math.sqrt(mean) if self.root else mean


class R2Score(Metric):
    """The coefficient of determination, averaged over the targets (scikit-learn's ``r2_score``).

    Accumulates per-target sums in float64 (sum of targets, of their squares, of squared errors),
    so it is exact over any number of batches. A constant target has no variance to explain: its
    R^2 is 1.0 when predicted exactly and 0.0 otherwise, as scikit-learn scores it.
    """

    needs_labels = False

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None  # rows: sum y, sum y^2, sum of squared errors
        self.count = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        outputs = outputs.double().reshape(outputs.shape[0], -1)
        targets = as_output_shaped(outputs, targets).double()
        sums = torch.stack([targets.sum(0), targets.pow(2).sum(0), (outputs - targets).pow(2).sum(0)])
        self.sums = sums if self.sums is None else self.sums + sums
        self.count += outputs.shape[0]

    def compute(self) -> float:
        if self.sums is None or self.count < 2:
            return 0.0
        total, squares, errors = self.sums.cpu()
        variance = squares - total.pow(2) / self.count  # the total sum of squares around the mean
        scores = [1.0 - float(error / var) if var > 1e-12 else (1.0 if error <= 1e-12 else 0.0)
                  for error, var in zip(errors, variance, strict=True)]
        return sum(scores) / len(scores)


Mode = Literal["max", "min"]


@dataclass(frozen=True)
class MetricSpec:
    mode: Mode  # which way is better: the task's default mode, the monitor's and early stopping's
    factory: Callable[[], Metric] | None = None  # None: the engine records it itself (the loss)


# Every metric a run records, with its direction: the only table of which way is better.
METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(name: str, mode: Mode, description: str, factory: Callable[[], Metric] | None = None) -> None:
    METRICS.add(name, MetricSpec(mode, factory), description=description)


register_metric("accuracy", "max", "fraction of samples whose top prediction is the label", lambda: TopKAccuracy(1))
register_metric("top_5_accuracy", "max", "fraction of samples whose label is in the top 5", lambda: TopKAccuracy(5))
register_metric("f1", "max", "macro-averaged F1 (same as f1_macro)", lambda: SklearnLabelScore("f1_score", "macro"))
register_metric("f1_macro", "max", "macro-averaged F1", lambda: SklearnLabelScore("f1_score", "macro"))
register_metric("f1_micro", "max", "micro-averaged F1", lambda: SklearnLabelScore("f1_score", "micro"))
register_metric("precision", "max", "macro-averaged precision", lambda: SklearnLabelScore("precision_score", "macro"))
register_metric("recall", "max", "macro-averaged recall", lambda: SklearnLabelScore("recall_score", "macro"))
register_metric("mse", "min", "mean squared error (one-hot targets for class labels)", lambda: MeanError(2))
register_metric("rmse", "min", "root mean squared error (one-hot targets for class labels)",
                lambda: MeanError(2, root=True))
register_metric("mae", "min", "mean absolute error (one-hot targets for class labels)", lambda: MeanError(1))
register_metric("r2", "max", "coefficient of determination R^2, averaged over the targets", R2Score)
register_metric("perplexity", "min", "exp of the mean cross-entropy per label (per token for a language model)",
                Perplexity)
register_metric("loss", "min", "the loss function's mean; every run records it as train_loss and val_loss")


def metric_mode(name: str) -> Mode:
    """``"max"`` or ``"min"``: which way is better for a metric, also as a record key (``val_accuracy``).

    An unknown name raises UnknownNameError (a ValueError) listing the known metrics.
    """
    if name not in METRICS and name.startswith(("val_", "train_")):
        name = name.split("_", 1)[1]
    return METRICS.get(name).mode


def needs_labels(name: str) -> bool:
    """Whether metric ``name`` compares class predictions with integer labels (accuracy, f1, ...)."""
    if name not in METRICS and name.startswith(("val_", "train_")):
        name = name.split("_", 1)[1]
    factory = METRICS.get(name).factory
    return factory is not None and factory().needs_labels


def computed_metric_names() -> list[str]:
    """The metrics a config may list in ``metrics``: every registered one but the loss, which is always recorded."""
    return [name for name in METRICS if METRICS.get(name).factory is not None]


def check_metric_names(names: Iterable[str]) -> list[str]:
    """Return ``names`` (without duplicates) or raise ValueError naming the unknown or uncomputable one."""
    checked: list[str] = []
    for name in names:
        if METRICS.get(name).factory is None:
            raise ValueError(f"{name!r} is recorded for every run (as train_{name} and val_{name}); "
                             "list only the metrics to compute besides it")
        if name not in checked:
            checked.append(name)
    return checked


def create_metrics(names: Iterable[str]) -> dict[str, Metric]:
    return {name: METRICS.get(name).factory() for name in names}
