"""End to end on the new task and input kinds: a regression run paused and resumed, and a [C, L] signal run.

Each run goes through the whole graph: classical baselines, screen and quick evaluations, seed
confirmation, full training, the report and ``result.json``. Budgets are tiny; the assertions are
about what flows where (float targets, r2 and errors, the test split, baselines), not about quality.
"""

from __future__ import annotations

import json
from collections import Counter

import torch

from tests.research_helpers import events, run_cli, write_task
from torchscout.agent.records import evaluations_of
from torchscout.graphs.driver import research, resume, run_state
from torchscout.tools.loading import load_class

TINY = {"max_rounds": 1, "candidates_per_round": 2, "screen_steps": 10, "quick_epochs": 2, "full_epochs": 3,
        "optimizer_trials": 0, "confirm_seeds": 2, "max_minutes": 5, "batch_size": 32}


def _result(workspace, name: str) -> dict:
    return json.loads((workspace / "runs" / name / "result.json").read_text())


def test_a_regression_run_pauses_resumes_and_reports_r2_on_val_and_test_next_to_ridge(workspace):
    task = {"name": "diabetes", "dataset": "diabetes", "input_shape": [10], "task_type": "regression",
            "loss_function": "HuberLoss", "budget": TINY, "approve": ["full_train"], "seed": 1}
    paused = research(task)
    assert paused["status"] == "waiting_for_approval"
    before = Counter(item["key"] for item in events(workspace, "diabetes") if item["event"] == "evaluated")
    finished = resume("diabetes", approve="yes")
    assert finished["status"] == "finished"

    evaluated = Counter(item["key"] for item in events(workspace, "diabetes") if item["event"] == "evaluated")
    assert before and all(evaluated[key] == 1 for key in before)  # nothing was evaluated twice
    state = run_state("diabetes")
    quick = [item for item in evaluations_of(state).values() if item["kind"] == "quick"]
    assert quick and all(set(item["metrics"]) == {"r2", "rmse", "mae"} for item in quick)
    training = state["full_training"]
    assert training["status"] == "completed" and training["trainer_config"]["loss_function"] == "HuberLoss"
    assert "num_classes" not in training["trainer_config"]
    assert "val_r2" in training["history"][-1] and training["final_eval"]["split"] == "test"

    result = _result(workspace, "diabetes")
    winner = state["final"]["winner"]["candidate_id"]
    assert result["winner"]["id"] == winner and result["winner"]["params"] == state["candidates"][winner]["params"]
    assert result["winner"]["blueprint"]["layers"][-1] == {"type": "Linear", "params": {"out_features": 1}}
    assert set(result["validation"]) == set(result["test"]) == {"loss", "r2", "rmse", "mae"}
    assert result["test"]["r2"] == training["final_eval"]["r2"]
    assert set(result["baselines"]) == set(result["baselines_test"]) == {"ridge", "hist_gradient_boosting"}
    assert 0.2 < result["baselines"]["ridge"]["r2"] < 0.8
    assert result["task"]["task_type"] == "regression" and result["evaluations"] == len(state["evaluations"])
    assert 0 < result["budget_used_s"] <= 5 * 60
    time_use = result["time_use"]  # measured, not estimated: every evaluation and the training recorded it
    assert time_use["wall_s"] == result["budget_used_s"] and 0 < time_use["training_s"] < time_use["in_evaluations_s"]
    assert 0 < time_use["training_fraction"] < time_use["evaluation_fraction"] <= 1
    assert {"evaluate", "full_train", "propose"} <= set(time_use["nodes_s"])
    assert all(item.get("timings", {}).get("wall_s", 0) > 0 for item in quick)
    report = (workspace / "runs" / "diabetes" / "report.md").read_text()
    assert "regression of 1 target(s); metric **r2**" in report
    assert "## Neural model vs classical baselines" in report and "| ridge | test |" in report
    assert "Test split (evaluated once, after the choice)" in report


def test_a_signal_task_runs_end_to_end_from_the_command_line(workspace):
    task = {"name": "signals", "dataset": "signals_synthetic", "input_shape": [1, 32], "num_classes": 4,
            "dataset_params": {"num_samples": 320, "length": 32, "num_classes": 4, "noise": 0.1},
            "budget": TINY, "seed": 0}
    completed = run_cli(workspace, "run", str(write_task(workspace, task)))
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "Classical baselines on the same split: logistic_regression accuracy=" in completed.stdout

    state = run_state("signals")
    assert state["candidates"]["r1c0"]["blueprint"]["encoder"] == "conv"  # the round opens with a 1D conv net
    assert state["candidates"]["r1c0"]["model_config"]["layers"][0]["type"] == "Conv1d"
    result = _result(workspace, "signals")
    winner = state["candidates"][result["winner"]["id"]]
    model = load_class(winner["script"], winner["class_name"])().eval()
    with torch.no_grad():
        assert model(torch.randn(5, 1, 32)).shape == (5, 4)
    assert 0.0 <= result["test"]["accuracy"] <= 1.0
    assert set(result["baselines"]) == {"logistic_regression", "hist_gradient_boosting"}
    report = (workspace / "runs" / "signals" / "report.md").read_text()
    assert "| logistic_regression | validation |" in report
