"""End to end on digits: a run killed with SIGKILL during quick_eval, resumed, and then inspected.

One run serves every test in this module (it is the expensive part): started with the CLI in a
subprocess, killed with ``kill -9`` while an evaluation is in flight, finished with
``torchscout resume``. The tests then check that no completed evaluation was repeated, that the
best model reaches 0.90 accuracy, and that history / replay / trace / report / export / runs work
on it, including the exported project's own tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.research_helpers import cli_command, cli_env, digits_task, events, run_cli, write_task
from torchscout.app import app
from torchscout.tools.scaffold.train_script import render_train_script
from torchscout.tools.training.vision_sources import DATASET_STATISTICS

RUN = "digits"


def _kill_during_an_evaluation(workspace: Path, task_path: Path) -> dict:
    log = (workspace / "first_attempt.log").open("w")
    process = subprocess.Popen(cli_command("run", str(task_path), "--name", RUN), cwd=workspace,
                               env=cli_env(workspace), stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while True:
            recorded = events(workspace, RUN)
            evaluated = [item for item in recorded if item["event"] == "evaluated"]
            if len(evaluated) >= 2 and recorded[-1]["event"] == "started" and recorded[-1]["kind"] in {"screen",
                                                                                                       "quick"}:
                break  # an evaluation has just started: it is in flight now
            assert process.poll() is None, (workspace / "first_attempt.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never reached its third evaluation"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the whole group: sandbox children die too
        process.wait()
        log.close()
    return {"pid": process.pid, "events": events(workspace, RUN)}


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory) -> dict:
    workspace = tmp_path_factory.mktemp("research") / "workspace"
    workspace.mkdir()
    task_path = write_task(workspace, digits_task(RUN, candidates_per_round=2, full_epochs=3))
    first = _kill_during_an_evaluation(workspace, task_path)
    resumed = run_cli(workspace, "resume", RUN, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    return {"workspace": workspace, "first": first, "resume_output": resumed.stdout}


@pytest.fixture
def run_workspace(killed_and_resumed, monkeypatch) -> Path:
    workspace = killed_and_resumed["workspace"]
    monkeypatch.setenv("TORCHSCOUT_WORKSPACE", str(workspace))
    monkeypatch.chdir(workspace)
    return workspace


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_resume_after_kill_keeps_every_completed_evaluation(killed_and_resumed, run_workspace):
    from torchscout.graphs.driver import run_state

    first = killed_and_resumed["first"]
    before = first["events"]
    done = {"evaluated", "failed", "skipped"}
    finished_before = {item["key"] for item in before if item["event"] in done and "key" in item}
    # an evaluation that finished in the instant before the kill may not have reached its checkpoint
    racing = before[-1].get("key") if before[-1]["event"] in done else None
    durable = finished_before - {racing}
    in_flight = {item["key"] for item in before if item["event"] == "started" and "key" in item} - finished_before
    assert len(durable) >= 2 and in_flight

    every = events(run_workspace, RUN)
    finished = [item for item in every if item["event"] in done and "key" in item]
    for key in durable:
        assert sum(item["key"] == key for item in finished) == 1, f"{key} was evaluated again after the resume"
    for key in in_flight:  # killed mid-way: redone by the resumed process
        redone = [item for item in finished if item["key"] == key]
        assert len(redone) == 1 and redone[0]["pid"] != first["pid"]

    state = run_state(RUN)
    assert len(state["evaluations"]) == len({item["key"] for item in finished})
    for item in before:
        if item["event"] == "evaluated":
            assert state["evaluations"][item["key"]]["metric"] == pytest.approx(item["metric"])
    assert "finished" in killed_and_resumed["resume_output"]


def test_digits_run_ends_with_a_report_and_a_model_above_90_percent(run_workspace):
    from torchscout.graphs.driver import run_state

    state = run_state(RUN)
    assert state["phase"] == "done"
    winner = state["final"]["winner"]
    assert winner["stats"]["n"] == 2  # confirmed with two seeds
    best = state["full_training"]["best_metric"]
    assert best["value"] >= 0.90, best
    assert (run_workspace / state["full_training"]["best_checkpoint_path"]).is_file()
    run_dir = run_workspace / "runs" / RUN
    for name in ("report.md", "pareto.png", "curves.png", "task.yaml", "events.jsonl"):
        assert (run_dir / name).is_file(), name
    candidate_dir = run_dir / "candidates" / winner["candidate_id"]
    assert {"model.py", "summary.json"} <= {path.name for path in candidate_dir.iterdir()}
    assert (run_dir / "project" / "src" / "models" / "best_model.py").is_file()
    assert list((run_dir / "wandb_logs" / "wandb").glob("offline-run-*"))  # one W&B run per evaluation


def test_every_record_of_the_finished_run_uses_the_status_vocabulary(run_workspace):
    from torchscout.agent.records import EVALUATION_STATUSES, STATUSES
    from torchscout.graphs.driver import run_state

    state = run_state(RUN)
    assert {item["status"] for item in state["candidates"].values()} <= STATUSES
    assert {item["status"] for item in state["evaluations"].values()} <= EVALUATION_STATUSES
    assert state["full_training"]["status"] == "completed"
    assert "evaluated" in {item["status"] for item in state["candidates"].values()}
    assert json.loads(json.dumps(state)) == state  # plain JSON data all the way down


def test_history_lists_checkpoints_and_replay_forks_the_run(run_workspace):
    rows = json.loads(_invoke("history", RUN, "--json"))
    assert rows[0]["node"] == "input" and rows[-1]["next"] == []
    nodes = " ".join(row["node"] for row in rows)
    for node in ("setup", "propose", "assemble", "quick_eval", "refine", "confirm_eval", "full_train", "analyze"):
        assert node in nodes, node
    assert rows[-1]["best_metric"] >= 0.9
    table = _invoke("history", RUN)
    assert rows[5]["checkpoint_id"] in table

    fork_point = next(row for row in rows if row["next"] == ["analyze"])
    output = _invoke("replay", RUN, "--checkpoint", fork_point["checkpoint_id"])
    assert "report" in output and "finished" in output
    after = json.loads(_invoke("history", RUN, "--json"))
    missing = CliRunner().invoke(app, ["replay", RUN, "--checkpoint", "no-such-checkpoint"])
    assert missing.exit_code == 1 and "no checkpoint" in missing.output
    assert {row["checkpoint_id"] for row in rows} < {row["checkpoint_id"] for row in after}


def test_trace_exports_every_step_as_json(run_workspace, tmp_path):
    trace = json.loads(_invoke("trace", RUN, "--json"))
    steps = trace["steps"]
    assert len(steps) >= 10 and trace["state_mode"] == "diff"
    assert all({"checkpoint_id", "step", "node", "state_diff", "metadata", "branch"} <= set(step) for step in steps)
    full = json.loads(_invoke("trace", RUN, "--json", "--full-state"))
    last = [step for step in full["steps"] if step["branch"] == "main"][-1]
    assert last["state"]["phase"] == "done" and last["state"]["candidates"]
    _invoke("trace", RUN, "--output", str(tmp_path / "trace.json"))
    assert json.loads((tmp_path / "trace.json").read_text())["steps"][0]["node"] == "input"


def test_report_and_runs_commands(run_workspace):
    report = _invoke("report", RUN)
    assert report.startswith(f"# Research report: {RUN}") and "## Leaderboard" in report
    listing = _invoke("runs")
    assert RUN in listing and "finished" in listing


def test_export_writes_a_standalone_project_whose_tests_pass(run_workspace):
    output = _invoke("export", RUN, "exported/digits_best")
    project = run_workspace / "exported" / "digits_best"
    assert "exported" in output
    for name in ("train.py", "configs/best.yaml", "src/models/best_model.py", "weights/best.pt",
                 "requirements.txt", "tests/test_best_model.py"):
        assert (project / name).is_file(), name
    # the scaffold's template, rendered with the digits loader: no second training script
    normalisation = {name: (stats.mean, stats.std) for name, stats in DATASET_STATISTICS.items()}
    assert (project / "train.py").read_text() == render_train_script("digits_best", ["digits"], normalisation)
    requirements = (project / "requirements.txt").read_text()
    assert "torch==" in requirements and "scikit-learn==" in requirements
    for path in project.rglob("*.py"):
        source = path.read_text()
        assert "import torchscout" not in source and "from torchscout" not in source, path
    env = {key: value for key, value in os.environ.items() if not key.startswith("TORCHSCOUT_")}
    result = subprocess.run([cli_command()[0], "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/test_best_model.py"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "passed" in result.stdout and "failed" not in result.stdout
