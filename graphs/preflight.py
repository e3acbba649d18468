"""Checks before the first candidate: the task's data loads and fits what the task says about it.

Without them an unknown dataset, an ``input_shape`` or ``num_classes`` that does not match the
data were found only by the evaluations: every candidate failed the same way and the run
"finished". :func:`check_task_data` builds the dataset the evaluator will build, looks at one
sample and at the labels, and raises :class:`PreflightError` with one line saying what to change.
The driver calls it before it starts a run, and the ``setup`` node again (a run started by other
means, such as the LangGraph server, is checked too).

Targets are checked in one place, :func:`check_targets`: class labels for classification. A task
kind with other targets (regression: float targets, ``num_targets`` of them) adds its branch there.
"""

from __future__ import annotations

from collections.abc import Sized
from pathlib import Path
from typing import Any

import torch

from torchscout.agent.task import Task
from torchscout.graphs.text_data import dataset_file, read_texts
from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError
from torchscout.tools.training.datasets import (
    DATASETS,
    DatasetRequest,
    DatasetSplits,
    Split,
    TensorSplit,
    build_datasets,
)
from torchscout.tools.workspace import resolve

STREAMED_LABELS_CHECKED = 256  # labels read from a dataset that does not list them (tensor splits: all)
VAL_FRACTION = 0.1  # the evaluator's default holdout


class PreflightError(ToolError):
    """The task's data does not load or does not fit the task; the message says what to change."""


def check_task_data(task: Task) -> None:
    """Raise PreflightError unless the task's dataset loads and one sample fits ``input_shape`` and ``num_classes``."""
    DATASETS.check(task.dataset)  # an unknown name fails here, with the near matches
    if task.modality == "tokens":
        _check_text_task(task)
        return
    try:
        splits = build_datasets(DatasetRequest(
            name=task.dataset, params=dict(task.dataset_params), data_root=_data_root(task),
            input_shape=list(task.input_shape), num_classes=task.num_classes, seed=task.seed,
            val_fraction=VAL_FRACTION))
    except Exception as exc:  # noqa: BLE001 - builders run user scripts and allocate: any failure is a message
        raise PreflightError(f"dataset {task.dataset!r} does not load: {_first_line(exc)}") from exc
    for name, split in (("train", splits.train), ("val", splits.val)):
        if isinstance(split, Sized) and len(split) == 0:
            raise PreflightError(f"dataset {task.dataset!r} has an empty {name} split")
    inputs, _target = _first_sample(splits.train)
    if list(inputs.shape) != list(task.input_shape):
        raise PreflightError(f"input_shape is {list(task.input_shape)} but dataset {task.dataset!r} gives samples "
                             f"of shape {list(inputs.shape)}; set input_shape: {list(inputs.shape)}")
    check_targets(task, _targets(splits), splits.num_classes)


def check_targets(task: Task, targets: torch.Tensor, dataset_classes: int | None = None) -> None:
    """The targets fit the task: integer class labels in ``[0, num_classes)`` for classification, finite
    float values, ``num_targets`` per sample, for regression."""
    if task.task_type == "regression":
        _check_regression_targets(task, targets)
        return
    if targets.is_floating_point():
        if not bool(torch.isfinite(targets).all()):
            raise PreflightError(f"dataset {task.dataset!r} has non-finite targets (NaN or infinity)")
        if not bool((targets == targets.round()).all()):
            raise PreflightError(f"dataset {task.dataset!r} has non-integer targets, but the task is a "
                                 "classification with num_classes; give class labels 0..num_classes-1")
    if targets.numel() == 0:
        raise PreflightError(f"dataset {task.dataset!r} has no labels")
    low, high = int(targets.min().item()), int(targets.max().item())
    if low < 0:
        raise PreflightError(f"dataset {task.dataset!r} has a negative class label ({low}); labels must be "
                             "0..num_classes-1")
    classes = max(high + 1, dataset_classes or 0)
    if classes > task.num_classes:
        raise PreflightError(f"num_classes is {task.num_classes} but dataset {task.dataset!r} has {classes} classes "
                             f"(labels up to {classes - 1}); set num_classes: {classes}")


def _check_regression_targets(task: Task, targets: torch.Tensor) -> None:
    if targets.numel() == 0:
        raise PreflightError(f"dataset {task.dataset!r} has no targets")
    if not targets.is_floating_point():
        raise PreflightError(f"dataset {task.dataset!r} has integer targets (class labels?), but the task is a "
                             "regression; use task_type: classification with num_classes, or float targets")
    if not bool(torch.isfinite(targets).all()):
        raise PreflightError(f"dataset {task.dataset!r} has non-finite targets (NaN or infinity)")
    per_sample = 1 if targets.dim() == 1 else int(targets[0].numel())
    if per_sample != task.num_targets:
        raise PreflightError(f"num_targets is {task.num_targets} but dataset {task.dataset!r} has {per_sample} "
                             f"target value(s) per sample; set num_targets: {per_sample}")


def _check_text_task(task: Task) -> None:
    """Text tasks: the tokenizer is trained later (the tokenizer node), so check the file and its columns."""
    params = task.dataset_params
    max_length = params.get("max_length", task.input_shape[0])
    if max_length != task.input_shape[0]:
        raise PreflightError(f"input_shape is {list(task.input_shape)} but dataset_params.max_length is "
                             f"{max_length}; they must agree (the sequence length)")
    path = dataset_file(task)
    text_column = params.get("text_column", task.tokenizer.get("text_column", "text"))
    label_column = params.get("label_column", "label")
    try:
        texts = read_texts(path, text_column)
        labels = read_texts(path, label_column)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PreflightError(f"{path.name} cannot be read as text rows: {_first_line(exc)}") from exc
    if not any(text.strip() for text in texts):
        raise PreflightError(f"{path.name} holds no text in column {text_column!r}")
    check_targets(task, torch.tensor(_label_ids(labels), dtype=torch.long))


def _label_ids(labels: list[str]) -> list[int]:
    """As the text dataset maps them: integers stay, names become the index of their sorted order."""
    try:
        return [int(label) for label in labels]
    except ValueError:
        names = sorted(set(labels))
        return [names.index(label) for label in labels]


def _data_root(task: Task) -> Path:
    return resolve(task.data_root, kind="data_root") if task.data_root else get_settings().data_dir


def _first_sample(split: Split) -> tuple[torch.Tensor, Any]:
    if isinstance(split, TensorSplit):
        return split.inputs[0], split.targets[0]
    try:
        inputs, target = split[0]
    except Exception as exc:  # noqa: BLE001 - the user's dataset code: any failure is a message, not a crash
        raise PreflightError(f"reading the first sample of the dataset failed: {type(exc).__name__}: "
                             f"{_first_line(exc)}") from exc
    return torch.as_tensor(inputs), target


def _targets(splits: DatasetSplits) -> torch.Tensor:
    """Every label of both splits where the dataset lists them; else the labels of the first samples."""
    collected = []
    for split in (splits.train, splits.val):
        if isinstance(split, TensorSplit):
            collected.append(split.targets.reshape(-1))
        elif getattr(split, "targets", None) is not None:  # torchvision datasets (ImageFolder, ...) list them
            collected.append(torch.as_tensor(split.targets).reshape(-1))
        elif isinstance(split, Sized):
            count = min(len(split), STREAMED_LABELS_CHECKED)
            collected.append(torch.as_tensor([_target(split, index) for index in range(count)]).reshape(-1))
    return torch.cat(collected) if collected else torch.as_tensor([_target(splits.train, 0)])


def _target(split: Split, index: int) -> Any:
    try:
        target = split[index][1]
    except Exception as exc:  # noqa: BLE001 - the user's dataset code: any failure is a message, not a crash
        raise PreflightError(f"reading sample {index} of the dataset failed: {type(exc).__name__}: "
                             f"{_first_line(exc)}") from exc
    return target.item() if isinstance(target, torch.Tensor) and target.numel() == 1 else target


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
