"""Shared fixtures: every test runs in its own empty workspace with the network refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import network_guard

# Offline switches for the libraries that would otherwise try the network.
for variable, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "TORCHSCOUT_PROGRESS": "0",
    "OPENAI_API_KEY": "sk-test-not-a-real-key",
}.items():
    os.environ.setdefault(variable, value)
os.environ["TORCHSCOUT_LLM"] = "builtin"

network_guard.install()


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh workspace folder, set as TORCHSCOUT_WORKSPACE and as the current directory."""
    from torchscout.settings import reset_configuration

    root = tmp_path / "workspace"
    root.mkdir()
    monkeypatch.setenv("TORCHSCOUT_WORKSPACE", str(root))
    monkeypatch.delenv("TORCHSCOUT_DATA_DIR", raising=False)
    monkeypatch.setenv("TORCHSCOUT_LLM", "builtin")
    monkeypatch.chdir(root)
    reset_configuration()
    yield root
    reset_configuration()
