"""pip_install_pytorch_package: command construction, validation, and a real pip run."""

import sys
from importlib import metadata

import pytest
from packaging.version import Version

from torchscout.tools import pip_install_pytorch_package as tool
from torchscout.tools.packages.pip_install import (
    build_pip_command,
    companion_versions,
    installed_torch_version,
)
from torchscout.tools.packages.pip_install import pip_install_pytorch_package as plain_install


@pytest.mark.parametrize(("torch_version", "vision", "audio"), [
    ("2.1.0", "0.16.0", "2.1.0"),
    ("2.0.1", "0.15.2", "2.0.2"),
    ("2.4.1", "0.19.1", "2.4.1"),
    ("2.14.1", "0.29.1", "2.14.1"),
    ("1.13.1", "0.14.1", "0.13.1"),
])
def test_companion_versions_match_pytorch_releases(torch_version, vision, audio):
    assert companion_versions(Version(torch_version)) == {"torchvision": vision, "torchaudio": audio}


def test_torchvision_gets_the_release_matching_installed_torch_from_the_cuda_index(tmp_path):
    argv, constraints, notes = build_pip_command("torchvision", None, "2.1.0", "cu121", False, tmp_path / "c.txt")
    installed = installed_torch_version()
    assert constraints == f"torch=={installed}\n"
    assert f"torchvision=={companion_versions(installed)['torchvision']}" in argv
    assert argv[argv.index("--index-url") + 1] == "https://download.pytorch.org/whl/cu121"
    assert argv[argv.index("--constraint") + 1] == str(tmp_path / "c.txt")
    assert argv[:4] == [sys.executable, "-m", "pip", "install"]


def test_other_packages_use_the_normal_index_and_keep_torch_pinned(tmp_path):
    argv, constraints, _ = build_pip_command("timm", "1.0.3", "2.1.0", "cu118", True, tmp_path / "c.txt")
    assert "--index-url" not in argv
    assert "timm==1.0.3" in argv and "--upgrade" in argv
    assert constraints.startswith("torch==")


def test_a_mismatched_torchvision_version_is_refused_before_pip_runs():
    message = tool.invoke({"package_name": "torchvision", "version": "0.15.2"})
    assert message.startswith("Error:") and "does not match torch" in message


@pytest.mark.parametrize(("arguments", "needle"), [
    ({"package_name": "timm; rm -rf /"}, "not a valid package name"),
    ({"package_name": "timm", "version": "1.0 || true"}, "not a valid version"),
    ({"package_name": "timm", "cuda_version": "cu118 --index-url http://evil"}, "cuda_version"),
    ({"package_name": "timm", "pytorch_version": "latest"}, "pytorch_version"),
])
def test_injection_attempts_and_bad_versions_are_refused(arguments, needle):
    message = tool.invoke({**arguments, "dry_run": True})
    assert message.startswith("Error:") and needle in message


def test_dry_run_returns_the_command_and_the_constraint():
    text = plain_install("torchaudio", cuda_version="cpu", dry_run=True)
    assert "would run:" in text and "torchaudio==" in text
    assert "whl/cpu" in text and "torch cannot be replaced" in text
    answer = tool.invoke({"package_name": "torchaudio", "cuda_version": "cpu", "dry_run": True})
    assert answer["status"] == "dry_run" and "torchaudio==" in answer["command"]
    assert "whl/cpu: cuda_version='cpu' was given" in answer["message"]
    assert any("torch cannot be replaced" in note for note in answer["notes"])


def test_the_wheel_index_follows_the_installed_torch_unless_cuda_version_is_given():
    import torch

    expected = "cu" + torch.version.cuda.replace(".", "") if torch.version.cuda else "cpu"
    local = Version(metadata.version("torch")).local
    expected = local if local else expected
    answer = tool.invoke({"package_name": "torchvision", "dry_run": True})
    assert f"--index-url https://download.pytorch.org/whl/{expected}" in answer["command"]
    assert f"whl/{expected}: the installed torch" in answer["message"] and "pass cuda_version" in answer["message"]
    chosen = tool.invoke({"package_name": "torchvision", "cuda_version": "cu121", "dry_run": True})
    assert "--index-url https://download.pytorch.org/whl/cu121" in chosen["command"]
    other = tool.invoke({"package_name": "timm", "dry_run": True})
    assert "--index-url" not in other["command"] and "normal package index" in other["message"]


def test_a_real_pip_run_with_the_torch_constraint_in_place():
    # an exact, already-installed requirement: pip answers from the environment, no network
    installed = metadata.version("PyYAML")
    answer = tool.invoke({"package_name": "PyYAML", "version": installed})
    assert "Requirement already satisfied" in answer["output"]
    assert answer["status"] == "success" and answer["exit_code"] == 0
    assert "--constraint" in answer["command"]
