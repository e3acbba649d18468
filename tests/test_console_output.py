"""What `torchscout run` / `resume` print: event lines always, progress bars only on a terminal, and
`--quiet` / `--json-events` for scripts."""

from __future__ import annotations

import io
import json
import subprocess

from typer.testing import CliRunner

from tests.research_helpers import cli_command, cli_env, digits_task, write_task
from torchscout.settings import get_settings, reset_configuration

TINY = {"max_rounds": 1, "candidates_per_round": 1, "screen_steps": 5, "quick_epochs": 1, "full_epochs": 1,
        "optimizer_trials": 0, "confirm_seeds": 1, "max_minutes": 5}


class _Stream(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def test_progress_bars_default_to_on_only_when_stderr_is_a_terminal(monkeypatch):
    monkeypatch.delenv("TORCHSCOUT_PROGRESS", raising=False)
    for terminal in (True, False):
        monkeypatch.setattr("sys.stderr", _Stream(terminal))
        reset_configuration()
        assert get_settings().progress is terminal
    monkeypatch.setenv("TORCHSCOUT_PROGRESS", "1")  # an explicit choice wins, terminal or not
    reset_configuration()
    assert get_settings().progress is True


def test_json_events_for_scripts_quiet_for_the_outcome_only_and_no_bars_when_redirected(workspace, monkeypatch):
    from torchscout.app import app

    # one tiny run, paused at the full-training gate: `run --json-events` as a script would start it
    task = write_task(workspace, {**digits_task("scripted", **TINY), "approve": ["full_train"]})
    environment = {key: value for key, value in cli_env(workspace).items() if key != "TORCHSCOUT_PROGRESS"}
    environment["TORCHSCOUT_WANDB_MODE"] = "disabled"
    done = subprocess.run(cli_command("run", str(task), "--json-events"), cwd=workspace, env=environment,
                          capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]  # every line is one JSON object
    assert len(records) > 3 and all(isinstance(record, dict) and "event" in record for record in records)
    assert {"proposed", "evaluated"} <= {record["event"] for record in records}
    outcome = records[-1]
    assert outcome["event"] == "outcome" and outcome["status"] == "waiting_for_approval"
    assert outcome["name"] == "scripted" and outcome["approval"]["action"] == "full_train"
    # stderr went to a pipe: no progress bar drew a single refresh there
    assert "\r" not in done.stderr and "it/s" not in done.stderr and "batch/s" not in done.stderr

    # `resume --quiet`: the outcome's lines, none of the events it streamed
    monkeypatch.setenv("TORCHSCOUT_WANDB_MODE", "disabled")
    runner = CliRunner()
    finished = runner.invoke(app, ["resume", "scripted", "--approve", "no", "--quiet"])
    assert finished.exit_code == 0, finished.output
    lines = finished.output.strip().splitlines()
    assert lines[0].startswith("run scripted: finished") and "report: runs/scripted/report.md" in lines
    assert not any(line.startswith(("decision", "evaluated", "skipped", "setup")) for line in lines)
    both = runner.invoke(app, ["resume", "scripted", "--quiet", "--json-events"])
    assert both.exit_code == 2 and "either --quiet or --json-events" in both.output
