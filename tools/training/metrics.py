"""Evaluation metrics, accumulated batch by batch without a host sync per batch.

Each metric is a small accumulator: ``update(outputs, targets)`` keeps running sums (or the
predicted labels, for the scikit-learn scores) on the device, ``compute()`` returns a float.
``f1`` is the macro F1, like ``f1_macro``; ``precision`` and ``recall`` are macro averages too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch


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


class MeanError(Metric):
    """Mean squared or absolute error between outputs and targets (one-hot targets for class labels)."""

    needs_labels = False

    def __init__(self, power: int) -> None:
        self.power = power
        self.total: torch.Tensor | None = None
        self.count = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        outputs = outputs.float()
        if not targets.is_floating_point():
            targets = torch.nn.functional.one_hot(targets, outputs.shape[-1]).float()
        error = (outputs - targets.reshape(outputs.shape)).abs().pow(self.power).sum()
        self.total = error if self.total is None else self.total + error
        self.count += outputs.numel()

    def compute(self) -> float:
        return float(self.total.item()) / self.count if self.count else 0.0


@dataclass(frozen=True)
class MetricEntry:
    factory: Callable[[], Metric]
    description: str


METRICS: dict[str, MetricEntry] = {
    "accuracy": MetricEntry(lambda: TopKAccuracy(1), "fraction of samples whose top prediction is the label"),
    "top_5_accuracy": MetricEntry(lambda: TopKAccuracy(5), "fraction of samples whose label is in the top 5"),
    "f1": MetricEntry(lambda: SklearnLabelScore("f1_score", "macro"), "macro-averaged F1 (same as f1_macro)"),
    "f1_macro": MetricEntry(lambda: SklearnLabelScore("f1_score", "macro"), "macro-averaged F1"),
    "f1_micro": MetricEntry(lambda: SklearnLabelScore("f1_score", "micro"), "micro-averaged F1"),
    "precision": MetricEntry(lambda: SklearnLabelScore("precision_score", "macro"), "macro-averaged precision"),
    "recall": MetricEntry(lambda: SklearnLabelScore("recall_score", "macro"), "macro-averaged recall"),
    "mse": MetricEntry(lambda: MeanError(2), "mean squared error (one-hot targets for class labels)"),
    "mae": MetricEntry(lambda: MeanError(1), "mean absolute error (one-hot targets for class labels)"),
}

# Metrics where a smaller value is better (the monitor and early stopping use this for their default mode).
LOWER_IS_BETTER = {"loss", "mse", "mae"}


def check_metric_names(names: Iterable[str]) -> list[str]:
    """Return ``names`` (without duplicates) or raise ValueError listing the known metrics."""
    checked: list[str] = []
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
        if name not in checked:
            checked.append(name)
    return checked


def create_metrics(names: Iterable[str]) -> dict[str, Metric]:
    return {name: METRICS[name].factory() for name in names}
