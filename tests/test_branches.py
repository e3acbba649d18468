"""Forks are branches: `torchscout replay NAME --checkpoint ID` re-runs for real in a folder of its own.

One tiny digits run (real graph, real SQLite checkpointer, real training), finished, then forked
from its checkpoint after `propose`: the fork assembles, evaluates and trains again in
runs/<name>/branches/<id>/, and the parent's files and checkpoints stay byte for byte as they were.
The same run checks the trace contract against graphs/trace_schema.json, and the W&B runs both
branches wrote, read back from their offline ``.wandb`` files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from tests.research_helpers import digits_task
from tests.training_helpers import wandb_records
from torchscout.app import app
from torchscout.graphs.driver import checkpoint_history, checkpoint_trace, report_text, research, run_state
from torchscout.graphs.trace import SCHEMA_FILE, SCHEMA_VERSION
from torchscout.graphs.tracking import PROJECT
from torchscout.tools.errors import ToolError

RUN = "forked"
TINY = {"max_rounds": 1, "candidates_per_round": 1, "screen_steps": 5, "quick_epochs": 1, "full_epochs": 2,
        "optimizer_trials": 0, "confirm_seeds": 1, "max_minutes": 5}


@pytest.fixture(autouse=True)
def offline_wandb(monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_WANDB_MODE", "offline")


def _files(folder: Path, skip: str) -> dict[str, str]:
    """Hashes of the files under ``folder`` but ``skip`` (W&B's links to its service log are not run files)."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.is_symlink() and not str(path.relative_to(folder)).startswith(skip)}


def _checkpoint_rows(workspace: Path, ids: set[str]) -> dict[str, tuple[Any, ...]]:
    with sqlite3.connect(workspace / ".torchscout" / "graph.sqlite") as connection:
        rows = connection.execute("SELECT checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata "
                                  "FROM checkpoints WHERE thread_id = ?", (RUN,)).fetchall()
    return {row[0]: row for row in rows if row[0] in ids}


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_fork_trains_in_its_own_folder_and_leaves_the_parent_untouched(workspace):
    first = research({**digits_task(RUN, **TINY)})
    assert first["status"] == "finished" and first["full_training"]["status"] == "completed"
    run_dir = workspace / "runs" / RUN
    parent_files = _files(run_dir, skip="branches")
    assert "report.md" in parent_files and any(name.endswith("best.pt") for name in parent_files)
    rows = checkpoint_history(RUN)
    parent_rows = _checkpoint_rows(workspace, {row["checkpoint_id"] for row in rows})
    assert len(parent_rows) == len(rows)
    fork_point = next(row for row in rows if row["node"] == "propose")

    output = _invoke("replay", RUN, "--checkpoint", fork_point["checkpoint_id"])

    assert "finished" in output and f"runs/{RUN}/branches/" in output
    assert _files(run_dir, skip="branches") == parent_files  # report, result.json, checkpoints, train.log
    assert _checkpoint_rows(workspace, set(parent_rows)) == parent_rows
    state = run_state(RUN)
    branch = state["branch"]
    assert branch["parent_checkpoint_id"] == fork_point["checkpoint_id"]
    branch_dir = workspace / branch["run_dir"]
    assert branch["run_dir"] == f"runs/{RUN}/branches/{branch['branch_id']}"
    # the fork trained for real: its own epochs, its own checkpoint files, its own report
    training = state["full_training"]
    assert training["status"] == "completed" and training["epochs_completed"] == 2
    assert training["experiment_dir"].startswith(branch["run_dir"])
    assert (workspace / training["best_checkpoint_path"]).is_file()
    log = (workspace / training["experiment_dir"] / "train.log").read_text()
    assert "from epoch 1 to 2" in log and "INFO epoch=2 " in log and "resum" not in log.lower()
    candidate = state["candidates"]["r1c0"]
    assert candidate["script"].startswith(branch["run_dir"]) and (workspace / candidate["script"]).is_file()
    assert (branch_dir / "report.md").is_file() and state["report_path"] == f"{branch['run_dir']}/report.md"

    after = checkpoint_history(RUN)
    assert {row["branch"] for row in after} == {"main", branch["branch_id"]}
    forked = [row for row in after if row["branch"] == branch["branch_id"]]
    assert forked[0]["parent_checkpoint_id"] == fork_point["checkpoint_id"] and forked[0]["node"] == "replay"
    assert [row["node"] for row in forked][1:3] == ["assemble", "inspect"]
    assert [row for row in after if row["branch"] == "main"] == rows  # the parent's rows, as they were
    refused = CliRunner().invoke(app, ["replay", RUN, "--checkpoint", forked[0]["checkpoint_id"]])
    assert refused.exit_code == 1 and "not the end of one node's step" in refused.output
    assert "Traceback" not in refused.output
    listed = json.loads(_invoke("history", RUN, "--json"))
    assert listed == after
    table = _invoke("history", RUN)
    assert branch["branch_id"] in table and "main" in table and "parent" in table.splitlines()[0]

    report = report_text(RUN)
    assert "## Branch" in report and fork_point["checkpoint_id"] in report and f"runs/{RUN}/" in report
    assert "## Branch" not in (run_dir / "report.md").read_text()

    _check_trace(branch["branch_id"])
    _check_wandb(run_dir, branch["branch_id"])


def _check_trace(branch_id: str) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    trace = json.loads(_invoke("trace", RUN, "--json"))
    jsonschema.validate(trace, schema)
    full = checkpoint_trace(RUN, full_state=True)
    jsonschema.validate(json.loads(json.dumps(full)), schema)
    assert trace["schema_version"] == SCHEMA_VERSION and trace["state_mode"] == "diff"
    assert {item["branch"] for item in trace["branches"]} == {"main", branch_id}
    assert all(step["time"].endswith("+00:00") and step["state"] is None for step in trace["steps"])
    assert trace["conversions"] == []  # the state is plain data: nothing needed converting
    # the node was recorded by the node itself: parallel evaluation steps and the final ones are named
    nodes = [step["node"] for step in trace["steps"] if step["branch"] == "main"]
    assert nodes[:4] == ["input", "__start__", "setup", "baselines"] and nodes[-2:] == ["full_train", "analyze"]
    # diffs are small and rebuild every full state along the parent chain
    rebuilt: dict[str, dict[str, Any]] = {}
    for step in trace["steps"]:
        state = _apply(copy.deepcopy(rebuilt.get(step["parent_checkpoint_id"] or "", {})), step["state_diff"])
        rebuilt[step["checkpoint_id"]] = state
    for step in full["steps"]:
        assert rebuilt[step["checkpoint_id"]] == step["state"], step["checkpoint_id"]
    diff_size = len(json.dumps(trace["steps"]))
    assert diff_size < len(json.dumps(full["steps"])) / 3


def _apply(state: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    def parent_and_key(pointer: str) -> tuple[dict[str, Any], str]:
        parts = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
        target = state
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        return target, parts[-1]

    for pointer, value in diff["set"].items():
        target, key = parent_and_key(pointer)
        target[key] = copy.deepcopy(value)
    for pointer, items in diff["appended"].items():
        target, key = parent_and_key(pointer)
        target[key] = target[key] + copy.deepcopy(items)
    for pointer in diff["removed"]:
        target, key = parent_and_key(pointer)
        del target[key]
    return state


def _wandb_runs(folder: Path) -> list[dict[str, Any]]:
    """Every W&B run written under ``folder``, read back from its offline .wandb file."""
    runs = []
    for run_file in sorted(folder.rglob("run-*.wandb")):
        run: dict[str, Any] = {"file": run_file, "config": {}, "history": [], "step_metrics": {}}
        for record in wandb_records(run_file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                header = record.run
                run.update(run_id=header.run_id, project=header.project, group=header.run_group,
                           job_type=header.job_type, name=header.display_name, tags=set(header.tags))
                run["config"].update({item.key: json.loads(item.value_json) for item in header.config.update})
            elif kind == "config":
                run["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
            elif kind == "history":
                run["history"].append({item.key or ".".join(item.nested_key): json.loads(item.value_json)
                                       for item in record.history.item})
            elif kind == "metric":
                run["step_metrics"][record.metric.name or record.metric.glob_name] = record.metric.step_metric
        runs.append(run)
    return runs


def _check_wandb(run_dir: Path, branch_id: str) -> None:
    runs = _wandb_runs(run_dir)
    assert len({run["run_id"] for run in runs}) == len(runs)  # no run id in two folders
    assert {run["project"] for run in runs} == {PROJECT} and {run["group"] for run in runs} == {RUN}
    forked = [run for run in runs if f"branches/{branch_id}/" in str(run["file"])]
    main = [run for run in runs if run not in forked]
    assert all("branch:main" in run["tags"] for run in main)
    assert forked and all(f"branch:{branch_id}" in run["tags"] for run in forked)
    for branch_runs in (main, forked):
        kinds = sorted(run["job_type"] for run in branch_runs)
        assert {"screen", "quick", "full_train", "summary"} <= set(kinds), kinds
        for run in branch_runs:
            if run["job_type"] in {"screen", "quick", "confirm"}:
                config = run["config"]
                assert config["blueprint"] and config["params"] > 0 and config["flops"] > 0, config
                assert config["dataset"] == "digits" and config["batch_size"] > 0 and config["seed"] >= 0
                assert config["optimizer"] and config["learning_rate"] > 0
                assert run["step_metrics"].get("*") == "epoch"
                assert run["history"] and all(row["epoch"] >= 1 for row in run["history"])
        full = next(run for run in branch_runs if run["job_type"] == "full_train")
        assert [row["epoch"] for row in full["history"] if "val_accuracy" in row] == [1, 2]


def test_a_used_run_name_is_refused_with_the_ways_out(workspace):
    (workspace / "runs" / "taken").mkdir(parents=True)
    (workspace / "runs" / "taken" / "thread.json").write_text(json.dumps({"run_name": "taken",
                                                                          "thread_id": "5f1c-server-thread"}))
    with pytest.raises(ToolError) as refused:
        research(digits_task("taken", **TINY))
    message = str(refused.value)
    assert "\n" not in message and "--name" in message and "torchscout resume taken" in message
    assert "torchscout replay taken" in message
    assert sorted(path.name for path in (workspace / "runs" / "taken").iterdir()) == ["thread.json"]
