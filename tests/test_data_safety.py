"""Data safety pieces on their own: owned folders, data-file globs, limits, preflight, run lock, divergence.

The red-team corpus (tests/redteam/) attacks the tools end to end; these pin the building blocks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torchscout.agent.task import load_task
from torchscout.graphs.preflight import PreflightError, check_task_data
from torchscout.graphs.run_lock import RunLockedError, lock_holder, run_lock
from torchscout.tools import registry
from torchscout.tools.errors import ToolError
from torchscout.tools.limits import nesting_problem
from torchscout.tools.ownership import (
    MARKER_NAME,
    ForeignTargetError,
    remove_owned_folder,
    write_owned_folder,
)
from torchscout.tools.text import data_files
from torchscout.tools.training.callbacks import Checkpoints
from torchscout.tools.training.divergence import loss_growth_problem
from torchscout.tools.training.engine import LoopState


def _write_two_files(staging: Path) -> None:
    (staging / "a.json").write_text("{}")
    (staging / "b.txt").write_text("b")


def test_an_owned_folder_is_replaced_whole_and_a_failed_write_leaves_it_as_it_was(workspace: Path) -> None:
    folder = workspace / "tok"
    write_owned_folder(folder, "tokenizer", "tokenizer_path 'tok'", _write_two_files)
    assert sorted(path.name for path in folder.iterdir()) == [MARKER_NAME, "a.json", "b.txt"]

    def fails(staging: Path) -> None:
        (staging / "a.json").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_owned_folder(folder, "tokenizer", "tokenizer_path 'tok'", fails)
    assert (folder / "a.json").read_text() == "{}"
    assert sorted(path.name for path in workspace.iterdir()) == ["tok"]  # no staging or retired folder left


def test_a_folder_of_another_kind_or_with_added_files_is_never_replaced_or_removed(workspace: Path) -> None:
    folder = workspace / "tok"
    write_owned_folder(folder, "tokenizer", "t", _write_two_files)
    with pytest.raises(ForeignTargetError, match="holds a tokenizer folder, not a dataset folder"):
        write_owned_folder(folder, "dataset", "d", _write_two_files)
    (folder / "notes.md").write_text("mine")
    with pytest.raises(ForeignTargetError, match=r"files were added to it .*notes.md"):
        remove_owned_folder(folder, "tokenizer")
    assert (folder / "notes.md").read_text() == "mine" and (folder / "a.json").exists()
    (folder / "notes.md").unlink()
    remove_owned_folder(folder, "tokenizer")
    assert not folder.exists()


def test_a_nested_folder_cannot_be_written_as_an_owned_folder(workspace: Path) -> None:
    with pytest.raises(ToolError, match="plain files only"):
        write_owned_folder(workspace / "tok", "tokenizer", "t", lambda staging: (staging / "sub").mkdir())
    assert list(workspace.iterdir()) == []


def test_data_file_globs_skip_links_and_hidden_files_and_a_trailing_double_star_matches_files(workspace: Path) -> None:
    for name in ("corpus/a.txt", "corpus/deep/b.txt", "corpus/.hidden/c.txt", "corpus/.d.txt"):
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text("text")
    os.symlink(workspace / "corpus", workspace / "corpus" / "deep" / "again")
    found = [path.relative_to(workspace).as_posix() for path in data_files.expand_data_files(["corpus/**"])]
    assert found == ["corpus/a.txt", "corpus/deep/b.txt"]
    assert len(data_files.expand_data_files(["corpus/**/*.txt"])) == 2


def test_a_glob_that_walks_too_many_folders_is_refused(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(12):
        (workspace / "tree" / f"f{index}").mkdir(parents=True)
    monkeypatch.setattr(data_files, "MAX_FOLDERS_VISITED", 10)
    with pytest.raises(ToolError, match=r"visits more than 10 folders; narrow it"):
        data_files.expand_data_files(["tree/**/*.txt"])


def test_registered_names_are_checked_before_anything_is_written(workspace: Path) -> None:
    assert registry.check_name("tokenizer", "bpe-8k.v2") == "bpe-8k.v2"
    for bad in ("", " x", "a/b", "..", ".x", "x" * 129, "tab\tname"):
        with pytest.raises(ToolError):
            registry.check_name("tokenizer", bad)
    assert not (workspace / ".torchscout").exists()


def test_nesting_problems_are_found_without_recursion() -> None:
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert "nested more than 64 levels" in nesting_problem(deep)
    looped: dict = {"a": [1, 2]}
    looped["a"].append((looped,))
    assert "contains itself" in nesting_problem(looped)
    shared = [1]
    assert nesting_problem({"x": shared, "y": shared, "z": [[shared]]}) is None  # shared, not a cycle


def test_loss_growth_means_divergence_but_noise_and_falling_losses_do_not() -> None:
    assert loss_growth_problem(2.3, 9.8e5) and "lower the learning rate" in loss_growth_problem(2.3, 9.8e5)
    assert loss_growth_problem(2.3, 20.0) is None and loss_growth_problem(2.3, 0.1) is None
    assert loss_growth_problem(0.001, 0.5) is None  # near zero: the margin keeps noise from counting
    assert loss_growth_problem(None, 1e9) is None and loss_growth_problem(2.3, float("nan")) is None


def test_a_checkpoint_written_before_initial_loss_was_kept_still_loads() -> None:
    saved = LoopState(epoch=2, global_step=10).to_dict()
    del saved["initial_loss"]
    assert LoopState(**saved).initial_loss is None


def test_checkpoint_copies_are_independent_files(tmp_path: Path) -> None:
    last = tmp_path / "last.pt"
    torch.save({"weights": torch.arange(4)}, last)
    Checkpoints._copy(last, tmp_path / "best.pt")
    assert (tmp_path / "best.pt").read_bytes() == last.read_bytes()
    assert (tmp_path / "best.pt").stat().st_ino != last.stat().st_ino and last.stat().st_nlink == 1
    (tmp_path / "best.pt").write_bytes(b"damaged")
    assert torch.load(last, weights_only=True)["weights"].tolist() == [0, 1, 2, 3]


def test_a_run_lock_names_its_holder_and_is_free_once_the_holder_exits(workspace: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time\nfrom torchscout.graphs.run_lock import run_lock\n"
                               "with run_lock('r1'):\n    print('held', flush=True)\n    time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "TORCHSCOUT_WORKSPACE": str(workspace)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert lock_holder("r1") == str(holder.pid)
        with pytest.raises(RunLockedError, match=f"already running in another process \\(pid {holder.pid}\\)"):
            with run_lock("r1"):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert lock_holder("r1") is None  # the kernel released it with the process
    with run_lock("r1"):
        assert lock_holder("r1") == str(os.getpid())
    with pytest.raises(ToolError, match="is not a run name"):
        with run_lock("../outside"):
            pass


CUSTOM_DATASET = '''
import torch
from torch.utils.data import Dataset


class Points(Dataset):
    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return torch.zeros(4), self.labels[index]


def get_datasets(params):
    return Points(params["labels"]), Points(params["labels"])
'''


@pytest.mark.parametrize(("labels", "error"), [
    ([0, 1, 2, 7], r"num_classes is 3 but dataset 'custom_dataset_script' has 8 classes"),
    ([0.5, 1.0, 0.0], "non-integer targets"),
    ([0, -1, 1], "negative class label"),
])
def test_preflight_reads_the_labels_of_a_streamed_dataset(workspace: Path, labels: list, error: str) -> None:
    (workspace / "points.py").write_text(CUSTOM_DATASET)
    task = load_task({"name": "p", "dataset": "custom_dataset_script", "input_shape": [4], "num_classes": 3,
                      "dataset_params": {"script_path": "points.py", "labels": labels}})
    with pytest.raises(PreflightError, match=error):
        check_task_data(task)


def test_preflight_accepts_a_task_that_fits_its_data(workspace: Path) -> None:
    (workspace / "points.py").write_text(CUSTOM_DATASET)
    check_task_data(load_task({"name": "p", "dataset": "custom_dataset_script", "input_shape": [4],
                               "num_classes": 3, "dataset_params": {"script_path": "points.py", "labels": [0, 2]}}))
    check_task_data(load_task({"name": "d", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10}))
