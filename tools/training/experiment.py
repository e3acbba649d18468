"""The full trainer's experiment folder: a self-describing record of one run.

``<log_base_dir>/<experiment_name>/`` holds ``config.yaml`` (the resolved config), a copy of the
model script, ``metrics.jsonl``, ``train.log``, ``checkpoints/`` (``last.pt``, ``best.pt``,
``epoch_N.pt``), ``curves.png``, ``result.json`` and, with W&B on, ``wandb/``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import yaml

from torchscout.tools.errors import ToolError
from torchscout.tools.training.types import ExperimentDescription, FullTrainAnswer
from torchscout.tools.workspace import atomic_write_bytes, atomic_write_text, resolve

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# what the full trainer writes in an experiment folder before its config.yaml (the model's copy comes after)
# (and "ranks": torchrun's per-worker logs, written before any rank starts)
EXPERIMENT_ENTRIES = {"config.yaml", "metrics.jsonl", "train.log", "checkpoints", "curves.png", "result.json",
                      "lr_find.png", "wandb", "ranks"}


def experiment_name_or_timestamp(name: str | None) -> str:
    if name is None or not str(name).strip():
        return datetime.now().strftime("run-%Y%m%d-%H%M%S-%f")
    if not NAME_PATTERN.match(name):
        raise ToolError(f"experiment_name {name!r} must be a folder name: letters, digits, '.', '_' or '-' "
                        "(no slashes), at most 128 characters")
    return name


def experiment_folder(log_base_dir: str, name: str, resume: bool) -> Path:
    """The experiment folder; refuses to overwrite a finished one and to resume a missing one."""
    folder = resolve(Path(log_base_dir) / name, kind="log_base_dir/experiment_name")
    last = folder / "checkpoints" / "last.pt"
    if resume and not last.exists():
        raise ToolError(f"cannot resume {name!r}: {last} does not exist (run it once without resume first)")
    used = any((folder / marker).exists() for marker in ("config.yaml", "result.json", "checkpoints/last.pt"))
    if not resume and used:
        raise ToolError(f"the experiment folder {folder} already exists; choose another experiment_name, or "
                        "pass resume=true in trainer_config to continue it")
    foreign = sorted(entry.name for entry in folder.iterdir()
                     if entry.name not in EXPERIMENT_ENTRIES) if folder.is_dir() and not resume else []
    if foreign:  # a folder of the user's: the trainer's files would overwrite theirs
        raise ToolError(f"{folder} holds files that are not an experiment's ({', '.join(foreign[:5])}); choose "
                        "another experiment_name or log_base_dir")
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    return folder


def write_run_description(folder: Path, resolved_config: ExperimentDescription, script: Path | None) -> None:
    """config.yaml, and a copy of the model's workspace file (None: the model came from an installed module)."""
    atomic_write_text(folder / "config.yaml", yaml.safe_dump(resolved_config, sort_keys=False))
    if script is None:
        return
    copy = folder / script.name
    if copy.resolve() != script.resolve():
        atomic_write_bytes(copy, script.read_bytes())


def write_result(folder: Path, result: FullTrainAnswer) -> None:
    atomic_write_text(folder / "result.json", json.dumps(result, indent=2, default=str) + "\n")
