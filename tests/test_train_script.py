"""One training-script template: the scaffold's train.py and an export's train.py are renderings of
templates/project/train.py.tmpl, and every data kind it can load normalises as the training engine does."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.test_datasets import write_text_dataset
from tests.training_helpers import write_cifar10, write_mnist
from torchscout.tools import create_pytorch_project_scaffold
from torchscout.tools.errors import UnknownNameError
from torchscout.tools.scaffold.project import create_project
from torchscout.tools.scaffold.rendering import read_template
from torchscout.tools.scaffold.train_script import DATA_KINDS, render_train_script
from torchscout.tools.training.datasets import DatasetRequest, build_datasets
from torchscout.tools.training.vision_sources import DATASET_STATISTICS

NORMALISATION = {name: (stats.mean, stats.std) for name, stats in DATASET_STATISTICS.items()}
ROOT = Path(__file__).resolve().parents[1]


def _fixed_lines(template: str) -> list[str]:
    """The template's lines that no placeholder changes: what every rendering shares."""
    return [line for line in template.splitlines() if "{{" not in line]


def test_the_scaffold_and_an_export_render_the_same_template(workspace):
    create_pytorch_project_scaffold.invoke({"project_name": "Scaffolded"})
    create_project("Exported", data_kinds=["digits"], normalisation=NORMALISATION)
    scaffolded = (workspace / "Scaffolded" / "train.py").read_text()
    exported = (workspace / "Exported" / "train.py").read_text()
    assert scaffolded == render_train_script("Scaffolded")
    assert exported == render_train_script("Exported", ["digits"], NORMALISATION)
    for line in _fixed_lines(read_template("project/train.py.tmpl")):
        assert line in scaffolded.splitlines() and line in exported.splitlines(), line
    # the loop, evaluation and checkpointing are one text; only the loaders differ
    assert scaffolded[scaffolded.index("\n\ndef build_data"):] == exported[exported.index("\n\ndef build_data"):]
    assert "def load_digits" in exported and "def load_digits" not in scaffolded
    assert '"synthetic": load_synthetic' in exported  # configs/base.yaml and the scaffold's tests still run


def test_an_unknown_kind_or_missing_statistics_are_refused_before_anything_is_written(workspace):
    with pytest.raises(UnknownNameError, match=r"unknown data kind 'mnsit' \(did you mean mnist"):
        create_project("Nope", data_kinds=["mnsit"])
    with pytest.raises(ValueError, match=r"\['cifar10'\] need their image statistics"):
        create_project("Nope", data_kinds=["cifar10"])
    assert not list(workspace.iterdir())


LOAD_EVERY_KIND = """
import json, os, sys

import torch
import torchvision.datasets.cifar

# the generated CIFAR batches cannot match the real files' md5 sums: check only that they exist
torchvision.datasets.cifar.check_integrity = lambda path, md5=None: os.path.isfile(path)

import train

loaded = {}
for kind, cfg in json.loads(sys.argv[1]).items():
    splits = train.build_data(cfg, seed=0)
    loaded[kind] = [[torch.stack([sample[index] for sample in split]) for index in (0, 1)] for split in splits]
torch.save(loaded, "loaded.pt")
"""


def _configs(project: Path) -> dict[str, dict]:
    write_mnist(project / "data")
    write_cifar10(project / "data")
    text = write_text_dataset(project)
    return {
        "synthetic": {"kind": "synthetic", "num_samples": 40, "input_shape": [1, 4, 4], "num_classes": 3},
        "dummy": {"kind": "dummy", "num_samples": 30, "input_shape": [2, 3], "num_classes": 4},
        "digits": {"kind": "digits", "val_fraction": 0.1},
        "mnist": {"kind": "mnist", "data_root": "data"},
        "cifar10": {"kind": "cifar10", "data_root": "data"},
        "text_classification": {"kind": "text_classification", "tokenizer_file": text["tokenizer_config"]["path"],
                                "data_path": text["data_path"], "max_length": text["max_length"]},
    }


def _engine_train_inputs(name: str, data_root: Path, monkeypatch) -> torch.Tensor:
    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
    request = DatasetRequest(name=name, params={}, data_root=data_root, input_shape=None, num_classes=None,
                             seed=0, val_fraction=0.1)
    return build_datasets(request).train.inputs


def test_every_data_kind_loads_in_a_rendered_train_py_as_the_engine_loads_it(workspace, monkeypatch):
    create_project("AllKinds", data_kinds=DATA_KINDS.names(), normalisation=NORMALISATION)
    project = workspace / "AllKinds"
    configs = _configs(project)
    assert set(configs) == set(DATA_KINDS.names()), "a new data kind needs a case here"
    result = subprocess.run([sys.executable, "-c", LOAD_EVERY_KIND, json.dumps(configs)], cwd=project,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = torch.load(project / "loaded.pt")
    # the same files, the same normalisation table: the exported project sees what the research run saw
    for name in ("mnist", "cifar10", "digits"):
        torch.testing.assert_close(loaded[name][0][0], _engine_train_inputs(name, project / "data", monkeypatch))
    assert loaded["text_classification"][0][0].shape[1] == configs["text_classification"]["max_length"]
    assert loaded["text_classification"][0][0].dtype == torch.long
    assert loaded["dummy"][0][0].shape[1:] == (2, 3) and len(loaded["dummy"][0][0]) + len(loaded["dummy"][1][0]) == 30
    assert loaded["synthetic"][0][0].shape[1:] == (1, 4, 4)


def test_the_dataset_statistics_are_written_down_once():
    """The engine, exported projects and the benchmarks all read DATASET_STATISTICS; no copy of a number."""
    numbers = {value for stats in DATASET_STATISTICS.values() for value in (*stats.mean, *stats.std)}
    copies = []
    for path in sorted(ROOT.glob("[!.]*/**/*.py")):
        if "tests" in path.parts or path == ROOT / "tools" / "training" / "vision_sources.py":
            continue
        copies += [f"{path.relative_to(ROOT)}:{node.lineno} {node.value}"
                   for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                   if isinstance(node, ast.Constant) and node.value in numbers]
    templates = ROOT / "tools" / "scaffold" / "templates"
    copies += [str(path) for path in templates.rglob("*.tmpl")
               if any(str(number) in path.read_text(encoding="utf-8") for number in numbers)]
    assert not copies, copies
