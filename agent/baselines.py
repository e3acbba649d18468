"""Classical baselines: what a one-liner from scikit-learn scores on the run's own split.

A researcher must see at a glance whether the neural model beats logistic regression (ridge for
regression) or gradient-boosted trees. For flat and signal inputs (flattened to one row per
sample) both are fitted on the run's training split, with the task's seed, and scored on the
same validation split the candidates are ranked on (and on the test split, when the dataset has
one), with the same metric code as the training tools: the numbers are directly comparable.

- classification: ``LogisticRegression`` and ``HistGradientBoostingClassifier``;
- regression: ``RidgeCV`` (its regularisation chosen by leave-one-out on the training split) and
  ``HistGradientBoostingRegressor`` (one per target when there are several).

Images and token ids get none: a linear model on raw pixels or token ids says little.

The estimators run on one thread: scikit-learn's OpenMP threads spin against every other process on
a busy machine (gradient boosting took 180 s instead of 11 s on two loaded cores), and one thread is
within a few seconds of two on a quiet one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from torchscout.agent.records import BaselineRecord
from torchscout.agent.task import Task
from torchscout.settings import get_settings
from torchscout.tools.training.components import build_loss
from torchscout.tools.training.data import decode_to_tensors
from torchscout.tools.training.datasets import DatasetRequest, Split, TensorSplit, build_datasets
from torchscout.tools.training.metrics import create_metrics
from torchscout.tools.workspace import resolve

VAL_FRACTION = 0.1  # the training tools' default holdout, so the baselines see the candidates' split
MAX_CELLS = 20_000_000  # rows x features of the training split above which the baselines are skipped
MAX_DECODED_SAMPLES = 100_000  # a streamed dataset larger than this is not decoded for the baselines

Estimator = Any  # a scikit-learn estimator: fit(X, y), predict / predict_proba


def applies_to(task: Task) -> bool:
    """Baselines run for flat features and signals (images and token ids have none)."""
    return task.modality in ("flat", "signal")


def _estimators(task: Task) -> dict[str, Callable[[], Estimator]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.multioutput import MultiOutputRegressor

    if task.is_regression:
        def trees() -> Estimator:
            model = HistGradientBoostingRegressor(random_state=task.seed)
            return MultiOutputRegressor(model) if task.num_targets > 1 else model

        return {"ridge": lambda: RidgeCV(alphas=np.logspace(-3, 3, 13)), "hist_gradient_boosting": trees}
    return {"logistic_regression": lambda: LogisticRegression(max_iter=2000),
            "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(random_state=task.seed)}


def _as_tensors(split: Split) -> TensorSplit:
    if isinstance(split, TensorSplit):
        return split
    if len(split) > MAX_DECODED_SAMPLES:
        raise ValueError(f"the split streams {len(split):,} samples; the baselines decode at most "
                         f"{MAX_DECODED_SAMPLES:,}")
    return decode_to_tensors(split, num_workers=0)


def _rows(split: TensorSplit) -> tuple[np.ndarray, np.ndarray]:
    """(features [N, F] float64, targets) of a split: signals are flattened to one row per sample."""
    return split.inputs.reshape(len(split), -1).double().numpy(), split.targets.numpy()


def _outputs(model: Estimator, features: np.ndarray, task: Task) -> torch.Tensor:
    """The estimator's predictions as model outputs: log-probabilities per class, or the targets' values."""
    if task.is_regression:
        return torch.as_tensor(model.predict(features), dtype=torch.float32).reshape(len(features), -1)
    probabilities = np.full((len(features), task.output_size), 1e-12)
    probabilities[:, model.classes_] = np.maximum(model.predict_proba(features), 1e-12)
    return torch.as_tensor(np.log(probabilities), dtype=torch.float32)


def score(outputs: torch.Tensor, targets: torch.Tensor, task: Task, metric_names: list[str]) -> dict[str, float]:
    """The loss and ``metric_names`` of ``outputs`` against ``targets``, computed as the training tools do."""
    scores = {"loss": float(build_loss(task.loss)(outputs, targets).item())}
    for name, metric in create_metrics(metric_names).items():
        metric.update(outputs, targets)
        scores[name] = metric.compute()
    return scores


def _fit_and_score(name: str, make: Callable[[], Estimator], splits: dict[str, TensorSplit], task: Task,
                   metric_names: list[str]) -> BaselineRecord:
    started = time.perf_counter()
    features, targets = _rows(splits["train"])
    model = make().fit(features, targets)
    record = BaselineRecord(name=name, model=type(model).__name__, validation={}, seconds=0.0)
    for split_name, key in (("val", "validation"), ("test", "test")):
        if split_name in splits:
            split = splits[split_name]
            record[key] = score(_outputs(model, _rows(split)[0], task), split.targets, task, metric_names)
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def _splits(task: Task) -> dict[str, TensorSplit]:
    root = resolve(task.data_root, kind="data_root") if task.data_root else get_settings().data_dir
    request = DatasetRequest(name=task.dataset, params=dict(task.dataset_params), data_root=root,
                             input_shape=list(task.input_shape), num_classes=task.num_classes, seed=task.seed,
                             val_fraction=VAL_FRACTION)
    built = build_datasets(request)
    splits = {"train": _as_tensors(built.train), "val": _as_tensors(built.val)}
    if built.test is not None:
        splits["test"] = _as_tensors(built.test)
    return splits


def run_baselines(task: Task, metric_names: list[str]) -> tuple[list[BaselineRecord], str]:
    """Fit and score every baseline of ``task``; returns (records, a one-line note for the decision log).

    A baseline that cannot run (data too large, an estimator error) is left out, and the note says why;
    nothing here stops the run.
    """
    if not applies_to(task):
        return [], f"no classical baselines for {task.modality} inputs (they run for flat features and signals)"
    splits = _splits(task)
    cells = len(splits["train"]) * splits["train"].inputs[0].numel()
    if cells > MAX_CELLS:
        return [], f"classical baselines skipped: {cells:,} training values exceed {MAX_CELLS:,}"
    from threadpoolctl import threadpool_limits

    records, problems = [], []
    for name, make in _estimators(task).items():
        try:
            with threadpool_limits(1):
                records.append(_fit_and_score(name, make, splits, task, metric_names))
        except (ValueError, RuntimeError, MemoryError) as exc:
            problems.append(f"{name} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    summary = "; ".join(f"{record['name']} {task.metric}={record['validation'].get(_key(task), float('nan')):.4f}"
                        for record in records)
    note = f"Classical baselines on the same split: {summary or 'none'}" + (f" ({'; '.join(problems)})"
                                                                           if problems else "") + "."
    return records, note


def _key(task: Task) -> str:
    """The task metric's key in a score dict (the loss is recorded as ``loss``)."""
    return "loss" if task.metric in ("loss", "val_loss") else task.metric
