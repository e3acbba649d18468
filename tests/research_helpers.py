"""Shared pieces of the research-loop tests: tiny tasks, the CLI in a subprocess, the event log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def digits_task(name: str = "digits", **budget: Any) -> dict[str, Any]:
    """A digits task small enough for a test: two short rounds of three candidates."""
    settings = {"max_rounds": 2, "candidates_per_round": 3, "screen_steps": 30, "quick_epochs": 3,
                "full_epochs": 4, "optimizer_trials": 1, "confirm_seeds": 2, "max_minutes": 10,
                "max_params": 300000}
    settings.update(budget)
    return {"name": name, "goal": "A small accurate digits classifier.", "dataset": "digits",
            "input_shape": [1, 8, 8], "num_classes": 10, "metric": "accuracy", "mode": "max",
            "budget": settings, "seed": 0}


def write_task(folder: Path, task: dict[str, Any]) -> Path:
    path = folder / f"{task['name']}.yaml"
    path.write_text(yaml.safe_dump(task, sort_keys=False))
    return path


def cli_env(workspace: Path) -> dict[str, str]:
    return {**os.environ, "TORCHSCOUT_WORKSPACE": str(workspace), "TORCHSCOUT_PROGRESS": "0",
            "TORCHSCOUT_LLM": "builtin", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
            "PYTHONUNBUFFERED": "1"}


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "torchscout.graphs.cli", *args]


def run_cli(workspace: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), cwd=workspace, env=cli_env(workspace), capture_output=True,
                          text=True, timeout=timeout)


def events(workspace: Path, run_name: str) -> list[dict[str, Any]]:
    path = workspace / "runs" / run_name / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]
