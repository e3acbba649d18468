"""The research commands of the CLI: help, errors that say what to do, an empty workspace."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from torchscout.app import app

COMMANDS = ["run", "resume", "history", "replay", "trace", "report", "export", "runs"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_research_command_has_useful_help(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert len(result.output.split()) > 15


def test_top_level_help_lists_the_research_commands():
    output = CliRunner().invoke(app, ["--help"]).output
    for command in COMMANDS:
        assert command in output


def test_run_with_a_bad_task_file_names_the_field(workspace):
    (workspace / "task.yaml").write_text("name: t\ndataset: digits\ninput_shape: [1, 8, 8]\nnum_classes: 10\n"
                                         "budget:\n  max_rounds: 0\n")
    result = CliRunner().invoke(app, ["run", "task.yaml"])
    assert result.exit_code == 1
    assert "budget.max_rounds" in result.output and result.output.startswith("Error:")
    missing = CliRunner().invoke(app, ["run", "nowhere.yaml"])
    assert missing.exit_code == 1 and "does not exist" in missing.output


@pytest.mark.parametrize("args", [["resume", "ghost"], ["history", "ghost"], ["report", "ghost"],
                                  ["trace", "ghost", "--json"], ["export", "ghost", "out"],
                                  ["replay", "ghost", "--checkpoint", "abc"]])
def test_unknown_runs_are_reported_clearly(workspace, args):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "no run named 'ghost'" in result.output


def test_runs_on_an_empty_workspace_says_how_to_start(workspace):
    result = CliRunner().invoke(app, ["runs"])
    assert result.exit_code == 0 and "torchscout run examples/digits.yaml" in result.output


def test_a_warm_up_that_fails_in_the_background_prints_nothing(capfd):
    # a command that ends while a warm-up still imports tears the import down under it; the user
    # sees the command's own answer, not a thread's traceback
    from torchscout.graphs import warm_up

    def torn_down() -> None:
        raise ImportError("sys.meta_path is None, Python is likely shutting down")

    warm_up._in_background(torn_down).join(10)
    assert capfd.readouterr().err == ""
