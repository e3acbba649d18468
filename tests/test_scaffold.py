"""create_pytorch_project_scaffold: the layout, and the project's own train.py and tests."""

import subprocess
import sys

from torchscout.tools import create_pytorch_project_scaffold as tool

EXPECTED = ["src/models/baseline.py", "src/data/synthetic.py", "src/optimizers/__init__.py", "configs/base.yaml",
            "train.py", "README.md", "requirements.txt", ".gitignore", "tests/test_train.py"]


def test_scaffold_creates_the_layout(workspace):
    result = tool.invoke({"project_name": "NewImageClassifier", "base_dir": "projects"})
    project = workspace / "projects" / "NewImageClassifier"
    assert result["project_dir"] == "projects/NewImageClassifier"
    for relative in EXPECTED:
        assert (project / relative).is_file(), relative
        assert relative in result["files"]
    for folder in ["data", "experiments", "full_experiments", "tokenizers", "tests"]:
        assert (project / folder).is_dir()
    assert "NewImageClassifier" in (project / "README.md").read_text()
    assert not [p for p in (workspace / "projects").iterdir() if p.name.startswith(".")]


def test_train_py_runs_one_epoch_and_the_project_tests_pass(workspace):
    tool.invoke({"project_name": "Demo"})
    project = workspace / "Demo"
    train = subprocess.run([sys.executable, "train.py", "--config", "configs/base.yaml", "--run-name", "first"],
                           cwd=project, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    assert (project / "experiments/first/model.pt").is_file()
    assert '"epoch": 1' in train.stdout
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                           capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout


def test_refuses_to_overwrite_a_non_empty_folder(workspace):
    (workspace / "Taken").mkdir()
    (workspace / "Taken" / "notes.txt").write_text("mine")
    message = tool.invoke({"project_name": "Taken"})
    assert message.startswith("Error:") and "already exists" in message
    assert [p.name for p in (workspace / "Taken").iterdir()] == ["notes.txt"]


def test_an_existing_empty_folder_is_used(workspace):
    (workspace / "Empty").mkdir()
    assert tool.invoke({"project_name": "Empty"})["status"] == "success"
    assert (workspace / "Empty" / "train.py").is_file()


def test_bad_names_and_escapes_are_refused(workspace):
    assert "not a valid folder name" in tool.invoke({"project_name": "../evil"})
    assert "not a valid folder name" in tool.invoke({"project_name": ""})
    assert "outside the workspace" in tool.invoke({"project_name": "Ok", "base_dir": "/tmp"})
    assert list(workspace.iterdir()) == []
