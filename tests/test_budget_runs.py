"""End to end: a run that the time budget ends, the final training's early stopping, rungs across a resume."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.research_helpers import cli_command, cli_env, digits_task, events, run_cli, write_task
from torchscout.agent import search_space
from torchscout.agent.report import write_report
from torchscout.agent.task import load_task
from torchscout.graphs import fidelity
from torchscout.graphs.nodes_final import full_train
from torchscout.graphs.state import initial_state
from torchscout.tools.modeling.assembler import pytorch_model_assembler


@pytest.fixture(autouse=True)
def no_wandb(monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_WANDB_MODE", "disabled")  # W&B logging is not what these tests are about


def _budget_driven(name: str, **budget) -> dict:
    """A digits task with no max_rounds: small rounds, three rungs (a 10-step screen, 1 and 2 epochs)."""
    task = digits_task(name, candidates_per_round=4, screen_steps=10, quick_epochs=1, max_rungs=3, full_epochs=6,
                       full_patience=2, optimizer_trials=0, confirm_seeds=1, **budget)
    del task["budget"]["max_rounds"]
    return task


def test_a_run_without_max_rounds_stops_on_time_with_the_final_phase_kept_and_says_so(workspace):
    from torchscout.graphs.driver import research, run_state

    # patience that never runs out: only the clock can end this search
    task = _budget_driven("timed", max_minutes=0.75, patience_rounds=50)
    started = time.monotonic()
    outcome = research(task)
    wall = time.monotonic() - started

    state = run_state("timed")
    assert outcome["status"] == "finished" and state["stopped_by"] == "time", state.get("stop_reason")
    assert state["round"] >= 2 and outcome["full_training"]["status"] == "completed"
    assert state["elapsed_s"] <= 45 + 10 and wall <= 45 + 20  # the final phase fitted in what was kept back
    # rung 1 (1 epoch) for the best screened, rung 2 (2 epochs) for fewer of them
    search = [item for item in state["evaluations"].values() if item["kind"] in {"screen", "quick", "rung"}]
    by_rung = Counter(fidelity.rung_of(item) for item in search)
    epochs = {fidelity.rung_of(item): item["epochs"] for item in search}
    assert by_rung[0] > by_rung[1] > by_rung[2] >= 1 and epochs[1] == 1 and epochs[2] == 2
    report = (workspace / "runs" / "timed" / "report.md").read_text()
    assert "**Search stopped by:** time (the time budget" in report
    assert "rounds until time or patience" in report and "## Successive halving" in report


def _assembled_digits_model(task, script: str) -> dict:
    blueprint = dict(search_space.BASELINES["image"])
    config = search_space.compile_blueprint(blueprint, task, "Winner")
    pytorch_model_assembler(config, script)
    return {"id": "r1c0", "round": 1, "status": "evaluated", "script": script, "class_name": "Winner",
            "params": 1, "training": {"optimizer": "AdamW", "lr": 0.003}}


def test_the_final_training_stops_early_and_evaluates_the_restored_best_epoch(workspace):
    task = load_task(digits_task("final", full_epochs=40, full_patience=1))
    candidate = _assembled_digits_model(task, "runs/final/candidates/r1c0/model.py")
    winner = {"label": "r1c0:AdamW@0.003", "candidate_id": "r1c0", "training": candidate["training"],
              "search_metric": 0.9, "search_key": "r1c0/quick", "stats": {"mean": 0.9, "std": 0.0, "n": 1,
                                                                          "values": [0.9]}}
    state = {**initial_state(task.model_dump(), "final"), "candidates": {"r1c0": candidate},
             "final": {"winner": winner, "full_train": "run"}}

    training = full_train(state, None)["full_training"]

    config = training["trainer_config"]
    assert config["epochs"] == 40 and config["early_stopping"] == {"metric": "accuracy", "patience": 1, "mode": "max"}
    assert training["stop_reason"] == "early_stopping" and training["stopped_early"]
    best = training["best_metric"]
    assert training["epochs_completed"] == best["epoch"] + 1 < 40  # one epoch without a better accuracy
    # the final evaluation used the best epoch's weights, restored from best.pt: it measures the same accuracy
    assert training["restored_epoch"] == best["epoch"] and training["final_eval"]["checkpoint"] == "best"
    assert training["final_eval"]["accuracy"] == pytest.approx(best["value"])
    report = (workspace / write_report({**state, "full_training": training})).read_text()
    assert (f"best val_accuracy = {best['value']:.4f} at epoch {best['epoch']} of {best['epoch'] + 1} run (cap 40); "
            "stopped early after 1 epochs without a better accuracy; the best checkpoint "
            f"(epoch {best['epoch']}) was restored for the final evaluation") in report


def _kill_during_a_rung(workspace: Path, task_path: Path, run: str) -> tuple[set[str], str]:
    log = (workspace / "first.log").open("w")
    process = subprocess.Popen(cli_command("run", str(task_path), "--name", run), cwd=workspace,
                               env={**cli_env(workspace), "TORCHSCOUT_WANDB_MODE": "disabled"}, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline, in_flight = time.monotonic() + 300, None
    try:
        while True:
            recorded = events(workspace, run)
            last = recorded[-1] if recorded else {}
            if last.get("event") == "started" and last.get("kind") == "rung" and any(
                    item["event"] == "evaluated" and item.get("kind") == "rung" for item in recorded):
                # a second longer-rung evaluation is in flight; once it has run a moment, the evaluation
                # before it is surely checkpointed (its write lands just after the next one starts)
                if in_flight == last["key"]:
                    break
                in_flight = last["key"]
                time.sleep(0.3)
                continue
            in_flight = None
            assert process.poll() is None, (workspace / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never reached a second rung evaluation"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()
    return {item["key"] for item in events(workspace, run) if item["event"] == "evaluated"}, in_flight


@pytest.mark.slow
def test_a_run_killed_during_a_longer_rung_resumes_without_repeating_an_evaluation(workspace):
    from torchscout.graphs.driver import run_state

    task = _budget_driven("rungs", max_minutes=10, patience_rounds=2)
    task["budget"]["max_rounds"] = 3
    finished_before, in_flight = _kill_during_a_rung(workspace, write_task(workspace, task), "rungs")

    resumed = run_cli(workspace, "resume", "rungs", timeout=600)

    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    counts = Counter(item["key"] for item in events(workspace, "rungs") if item["event"] == "evaluated")
    assert all(count == 1 for count in counts.values()), counts
    assert finished_before <= set(counts) and any(key.endswith("/rung2") for key in finished_before)
    assert in_flight.endswith("/rung2") and in_flight not in finished_before and counts[in_flight] == 1
    state = run_state("rungs")
    assert state["phase"] == "done" and set(state["evaluations"]) >= set(counts)
