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


@pytest.fixture
def llm_server(monkeypatch: pytest.MonkeyPatch):
    """Start a scripted OpenAI-compatible HTTP server on 127.0.0.1 and point torchscout at it.

    ``llm_server(*behaviours, default=..., idle_s=..., timeout_s=..., retries=...)`` returns the
    running :class:`tests.openai_server.OpenAIServer`; the real ``langchain-openai`` client talks
    to it (``TORCHSCOUT_LLM=openai:tiny``, ``OPENAI_BASE_URL``) with short test deadlines.
    """
    from tests.openai_server import OpenAIServer

    servers: list[OpenAIServer] = []

    def start(*script, default=None, respond=None, idle_s: float = 0.5, timeout_s: float = 5.0,
              retries: int = 2) -> OpenAIServer:
        server = OpenAIServer(*script, default=default, respond=respond).__enter__()
        servers.append(server)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("TORCHSCOUT_LLM", "openai:tiny")
        monkeypatch.setenv("TORCHSCOUT_LLM_IDLE_TIMEOUT_S", str(idle_s))
        monkeypatch.setenv("TORCHSCOUT_LLM_TIMEOUT_S", str(timeout_s))
        monkeypatch.setenv("TORCHSCOUT_LLM_MAX_RETRIES", str(retries))
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)
