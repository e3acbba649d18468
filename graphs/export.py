"""``torchscout export NAME DIR``: the run's best model as a standalone project, reproducible without torchscout.

The project has the scaffold's layout (create_pytorch_project_scaffold) plus:

- ``src/models/best_model.py``: the winner's generated source, registered in ``src/models``;
- ``configs/best.yaml``: its data, model and training settings in the project's config format;
- ``train.py``: the scaffold's own training script, rendered with the research dataset's loader
  (digits, text, mnist, cifar10, ...) and the normalisation the run used;
- ``weights/best.pt``: the full-training weights as a plain ``{"model": state_dict}``, when there are any;
- ``tokenizers/tokenizer.json`` and ``data/<file>`` for text tasks;
- ``requirements.txt`` pinned to the versions the run used, and ``tests/test_best_model.py``.
"""

from __future__ import annotations

import io
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import yaml

from torchscout.agent.records import CandidateRecord, ResearchState
from torchscout.agent.task import Task
from torchscout.agent.training_configs import OptimizerSpec, TrainingRecord
from torchscout.graphs.driver import run_state
from torchscout.graphs.text_data import dataset_file
from torchscout.tools.errors import ToolError
from torchscout.tools.scaffold.project import create_project
from torchscout.tools.scaffold.train_script import DATA_KINDS
from torchscout.tools.training.vision_sources import DATASET_STATISTICS
from torchscout.tools.workspace import atomic_write_bytes, atomic_write_text, relative_to_workspace, resolve

MODULE_NAME = "best_model"


def _pinned_requirements(task: Task) -> str:
    packages = ["torch", "pyyaml", "pytest"]
    if task.dataset == "digits":
        packages.append("scikit-learn")
    if task.modality == "tokens":
        packages.append("tokenizers")
    if task.dataset in {"mnist", "cifar10"}:
        packages.append("torchvision")
    lines = []
    for package in packages:
        try:
            lines.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            lines.append(package)
    return "\n".join(lines) + "\n"


def _data_config(task: Task, candidate: CandidateRecord, state: ResearchState, project: Path) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": task.dataset, "num_classes": task.num_classes,
                            "input_shape": list(task.input_shape), "val_fraction": 0.1}
    if task.dataset in {"mnist", "cifar10"}:
        data["data_root"] = "data"
    if task.modality == "tokens":
        tokenizer = (state.get("tokenizers") or {}).get(str(candidate.get("vocab_size")))
        if tokenizer is None:
            raise ToolError(f"the winner's tokenizer (vocab {candidate.get('vocab_size')}) is not recorded in the run")
        source = resolve(tokenizer["path"]) / "tokenizer.json"
        (project / "tokenizers").mkdir(exist_ok=True)
        shutil.copyfile(source, project / "tokenizers" / "tokenizer.json")
        data_file = dataset_file(task)
        shutil.copyfile(data_file, project / "data" / data_file.name)
        data.update(tokenizer_file="tokenizers/tokenizer.json", data_path=f"data/{data_file.name}",
                    max_length=task.dataset_params.get("max_length", task.input_shape[0]),
                    text_column=task.dataset_params.get("text_column", "text"),
                    label_column=task.dataset_params.get("label_column", "label"))
    return data


def _optimizer(training: TrainingRecord) -> OptimizerSpec:
    params = {"lr": training["lr"], "weight_decay": training.get("weight_decay", 0.0)}
    if training.get("momentum") is not None:
        params["momentum"] = training["momentum"]
        if training["optimizer"] == "SGD":
            params["nesterov"] = True
    return {"type": training["optimizer"], "params": params}


def _export_weights(state: ResearchState, project: Path) -> str | None:
    checkpoint_path = (state.get("full_training") or {}).get("best_checkpoint_path")
    if not checkpoint_path or not resolve(checkpoint_path).is_file():
        return None
    checkpoint = torch.load(resolve(checkpoint_path), map_location="cpu", weights_only=False)
    weights = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    buffer = io.BytesIO()
    torch.save({"model": weights}, buffer)
    atomic_write_bytes(project / "weights" / "best.pt", buffer.getvalue())
    return "weights/best.pt"


def _test_source(class_name: str, input_shape: list[int], dtype: str, outputs: int, vocab: int | None,
                 has_weights: bool, trainable_offline: bool) -> str:
    make_input = (f"torch.randint(0, {vocab}, (2, {', '.join(map(str, input_shape))}))" if dtype == "int64"
                  else f"torch.randn(2, {', '.join(map(str, input_shape))})")
    text = f'''"""Checks of the exported best model: it builds, runs, loads its weights and trains."""

import math
from pathlib import Path

import pytest
import torch

import train
from src.models import MODELS

ROOT = Path(__file__).resolve().parents[1]


def test_best_model_outputs_one_value_per_class_or_target():
    model = MODELS["{class_name}"]().eval()
    with torch.no_grad():
        logits = model({make_input})
    assert logits.shape == (2, {outputs})
    assert torch.isfinite(logits).all()
'''
    if has_weights:
        text += '''

def test_exported_weights_load_into_the_model():
    checkpoint = torch.load(ROOT / "weights" / "best.pt", map_location="cpu")
    model = MODELS["{class_name}"]()
    model.load_state_dict(checkpoint["model"])  # strict: every parameter matches
'''.replace("{class_name}", class_name)
    if trainable_offline:
        text += '''

def test_training_runs_on_the_research_data(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    metrics = train.main(["--config", "configs/best.yaml", "--epochs", "1", "--max-steps", "5",
                          "--run-name", "smoke", "--output-dir", str(tmp_path)])
    assert math.isfinite(metrics["train_loss"])
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
'''
    else:
        text += '''

@pytest.mark.skip(reason="the dataset needs a download or a loader of your own; run train.py once data/ holds it")
def test_training_runs_on_the_research_data():
    pass
'''
    return text


def export_run(name: str, destination: str) -> dict[str, Any]:
    """Write run ``name``'s best model as a standalone project at ``destination`` (a new workspace folder)."""
    state = run_state(name)
    winner = (state.get("final") or {}).get("winner")
    if not winner:
        raise ToolError(f"run {name!r} has no chosen model yet (finish it with `torchscout resume {name}`)")
    task = Task.model_validate(state["task"])
    candidate = state["candidates"][winner["candidate_id"]]
    target = resolve(destination, kind="export folder")
    # a dataset without a standalone loader (imagefolder, a custom script) is left for the user to wire
    data_kinds = [task.dataset] if task.dataset in DATA_KINDS else []
    create_project(target.name, base_dir=relative_to_workspace(target.parent), data_kinds=data_kinds,
                   normalisation={name: (stats.mean, stats.std) for name, stats in DATASET_STATISTICS.items()})
    class_name = candidate["class_name"]
    shutil.copyfile(resolve(candidate["script"]), target / "src" / "models" / f"{MODULE_NAME}.py")
    models_init = target / "src" / "models" / "__init__.py"
    atomic_write_text(models_init, models_init.read_text(encoding="utf-8").rstrip() + "\n\n"
                      f"from src.models.{MODULE_NAME} import {class_name}  # noqa: E402 - the research winner\n\n"
                      f'MODELS["{class_name}"] = {class_name}\n')
    trainer = (state.get("full_training") or {}).get("trainer_config") or {}
    config = {
        "seed": task.seed,
        "data": _data_config(task, candidate, state, target),
        "model": {"name": class_name, "params": {}},
        "training": {"epochs": trainer.get("epochs", max(task.budget.full_epochs, 1)),
                     "batch_size": task.budget.batch_size, "optimizer": _optimizer(winner["training"]),
                     "scheduler": "cosine", "device": "auto"},
        "output_dir": "experiments",
        "research": {"run": name, "candidate": winner["candidate_id"], "metric": task.metric,
                     "mean": winner["stats"]["mean"], "std": winner["stats"]["std"]},
    }
    atomic_write_text(target / "configs" / "best.yaml", yaml.safe_dump(config, sort_keys=False))
    weights = _export_weights(state, target)
    atomic_write_text(target / "requirements.txt", _pinned_requirements(task))
    offline = task.dataset in {"digits", "dummy"} or task.modality == "tokens"
    atomic_write_text(target / "tests" / "test_best_model.py", _test_source(
        class_name, list(task.input_shape), task.input_dtype, task.output_size, candidate.get("vocab_size"),
        weights is not None, offline))
    return {"status": "success", "project_dir": relative_to_workspace(target), "model_class": class_name,
            "weights": weights, "config": "configs/best.yaml",
            "next_steps": [f"cd {relative_to_workspace(target)}", "pip install -r requirements.txt",
                           "python -m pytest -q", "python train.py --config configs/best.yaml"]}
