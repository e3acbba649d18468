"""Datasets read from workspace files: image folders, custom dataset scripts, text classification.

- ``imagefolder`` / ``imagenet_subset``: torchvision ``ImageFolder`` at ``dataset_params.data_path``
  with ``train/`` and ``val/`` (and optionally ``test/``) class folders; without them the folder
  itself holds the classes and val is a seeded holdout. Images are resized to ``image_size``
  (default: the first image's size) and normalised with ImageNet statistics (or ``mean``/``std``).
- ``custom_dataset_script``: a workspace .py (``dataset_params.script_path``) defining
  ``get_datasets(params) -> (train, val[, test])``; ``params`` is ``dataset_params``.
- ``text_classification``: a CSV or JSONL file of text and label columns, encoded with a tokenizer
  from the tokenizer manager (``dataset_params.tokenizer_config``), padded/truncated to ``max_length``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError, UserCodeError, traceback_tail
from torchscout.tools.loading import load_module
from torchscout.tools.training.datasets import (
    DatasetRequest,
    DatasetSplits,
    holdout_indices,
    register_dataset,
    require_param,
    tensor_holdout,
)
from torchscout.tools.workspace import resolve

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def data_path(request: DatasetRequest, key: str = "data_path") -> Path:
    """``dataset_params[key]`` inside the workspace, else (for a relative path) inside the data dir."""
    raw = str(require_param(request, key, "a path inside the workspace"))
    path = resolve(raw, kind=f"dataset_params.{key}")
    if not path.exists() and not Path(raw).is_absolute():
        in_data_dir = get_settings().data_dir / raw
        if in_data_dir.exists():
            return in_data_dir
    if not path.exists():
        raise ToolError(f"dataset_params.{key} {raw!r} does not exist (looked in the workspace and the data dir)")
    return path


def _to_rgb(image):
    # a module-level function, not a lambda, so DataLoader workers can pickle the transform
    return image.convert("RGB")


def _image_transform(request: DatasetRequest, first_image: Path):
    from PIL import Image
    from torchvision import transforms

    size = request.params.get("image_size")
    if size is None:
        with Image.open(first_image) as image:
            size = [image.height, image.width]
    size = [size, size] if isinstance(size, int) else list(size)
    mean = request.params.get("mean", IMAGENET_MEAN)
    std = request.params.get("std", IMAGENET_STD)
    return transforms.Compose([
        transforms.Lambda(_to_rgb),
        transforms.Resize(size),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


@register_dataset("imagefolder", "imagenet_subset", description="torchvision ImageFolder at "
                  "dataset_params.data_path with train/ and val/ (optional test/) class folders")
def build_image_folder(request: DatasetRequest) -> DatasetSplits:
    from torchvision.datasets import ImageFolder

    root = data_path(request)
    has_splits = (root / "train").is_dir()
    class_root = root / "train" if has_splits else root
    try:
        first_image = next(path for path in sorted(class_root.rglob("*")) if path.is_file())
    except StopIteration:
        raise ToolError(f"{root} holds no images; expected <class>/<image> folders under train/ and val/") from None
    transform = _image_transform(request, first_image)
    try:
        train = ImageFolder(str(class_root), transform=transform)
        if has_splits and (root / "val").is_dir():
            val = ImageFolder(str(root / "val"), transform=transform)
            test = ImageFolder(str(root / "test"), transform=transform) if (root / "test").is_dir() else None
            split_kind = "folder"
        else:
            train_index, val_index = holdout_indices(len(train), request.val_fraction, request.seed)
            val, test = Subset(train, val_index.tolist()), None
            train = Subset(train, train_index.tolist())
            split_kind = "holdout"
    except (FileNotFoundError, OSError) as exc:
        raise ToolError(f"cannot read the image folder {root}: {exc}") from exc
    classes = (train.dataset if isinstance(train, Subset) else train).classes
    return DatasetSplits(train=train, val=val, test=test, num_classes=len(classes),
                         info={"source": str(root), "classes": classes, "val_split": split_kind})


@register_dataset("custom_dataset_script", description="a workspace .py (dataset_params.script_path) "
                  "defining get_datasets(params) -> (train, val[, test])")
def build_custom_script(request: DatasetRequest) -> DatasetSplits:
    script = require_param(request, "script_path", "the .py file that defines get_datasets(params)")
    module = load_module(script)
    get_datasets = getattr(module, "get_datasets", None)
    if not callable(get_datasets):
        raise ToolError(f"{script} must define get_datasets(params) -> (train, val[, test])")
    try:
        returned = get_datasets(dict(request.params))
    except Exception as exc:
        raise UserCodeError(f"get_datasets in {script} failed with {type(exc).__name__}: {exc}",
                            traceback_tail(exc)) from exc
    if not isinstance(returned, (tuple, list)) or len(returned) not in (2, 3):
        raise ToolError(f"get_datasets in {script} must return (train, val) or (train, val, test), "
                        f"got {type(returned).__name__}")
    for label, split in zip(("train", "val", "test"), returned, strict=False):
        if not isinstance(split, Dataset) and not hasattr(split, "__getitem__"):
            raise ToolError(f"get_datasets in {script}: the {label} split is not a Dataset")
        if len(split) == 0:
            raise ToolError(f"get_datasets in {script}: the {label} split is empty")
    test = returned[2] if len(returned) == 3 else None
    return DatasetSplits(train=returned[0], val=returned[1], test=test, stream_by_default=True,
                         info={"source": str(script), "val_split": "script"})


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ToolError(f"{path.name} line {number} is not valid JSON: {exc}") from exc
        return rows
    if path.suffix.lower() in {".csv", ".tsv"}:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    raise ToolError(f"text_classification reads .csv, .tsv or .jsonl files, not {path.name}")


def _tokenizer(request: DatasetRequest):
    from torchscout.tools.text.tokenizer_manager import load_tokenizer

    config = require_param(request, "tokenizer_config", "{'name': <registered tokenizer>} or {'path': <file>}")
    name = config if isinstance(config, str) else config.get("name") or config.get("path")
    if not name:
        raise ToolError("dataset_params.tokenizer_config needs 'name' (a registered tokenizer) or 'path'")
    return load_tokenizer(name)


def encode_texts(tokenizer, texts: list[str], max_length: int) -> torch.Tensor:
    """Token ids, truncated to ``max_length`` and right-padded with the tokenizer's pad id."""
    from torchscout.tools.text.tokenizer_store import pad_token_of

    _, pad_id = pad_token_of(tokenizer)
    encoded = torch.full((len(texts), max_length), pad_id, dtype=torch.long)
    for row, encoding in enumerate(tokenizer.encode_batch(texts)):
        ids = encoding.ids[:max_length]
        encoded[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return encoded


def _label_ids(labels: list[Any]) -> tuple[torch.Tensor, list[str]]:
    """Integer labels stay as they are; anything else is mapped to the index of its sorted name."""
    try:
        return torch.tensor([int(label) for label in labels], dtype=torch.long), []
    except (TypeError, ValueError):
        names = sorted({str(label) for label in labels})
        index = {name: position for position, name in enumerate(names)}
        return torch.tensor([index[str(label)] for label in labels], dtype=torch.long), names


@register_dataset("text_classification", description="CSV/JSONL of text,label (dataset_params.data_path, "
                  "text_column, label_column, max_length) encoded with dataset_params.tokenizer_config")
def build_text_classification(request: DatasetRequest) -> DatasetSplits:
    path = data_path(request)
    text_column = request.params.get("text_column", "text")
    label_column = request.params.get("label_column", "label")
    max_length = int(request.params.get("max_length", 128))
    rows = _read_rows(path)
    if not rows:
        raise ToolError(f"{path.name} has no rows")
    missing = {text_column, label_column} - set(rows[0])
    if missing:
        raise ToolError(f"{path.name} has no column(s) {sorted(missing)}; its columns are {sorted(rows[0])} "
                        "(set dataset_params.text_column / label_column)")
    tokenizer = _tokenizer(request)
    inputs = encode_texts(tokenizer, [str(row[text_column]) for row in rows], max_length)
    targets, label_names = _label_ids([row[label_column] for row in rows])
    splits = tensor_holdout(inputs, targets, request)
    splits.info.update({"source": str(path), "label_names": label_names, "max_length": max_length,
                        "vocab_size": tokenizer.get_vocab_size()})
    return splits
