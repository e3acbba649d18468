"""The research evals' suite: the task table, the classical baselines read from a run, who leads per task."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from evals import research_evals  # noqa: E402
from evals.eval_tasks import EVAL_TASKS, EvalTask, suite_tasks  # noqa: E402
from evals.research_evals import classical_baselines, compare_on, leader, versus  # noqa: E402
from evals.scoreboard import render_scoreboard  # noqa: E402
from torchscout.agent.task import load_task  # noqa: E402


def test_every_task_is_one_table_entry_built_from_its_example_with_the_suite_budget():
    assert list(suite_tasks("quick")) == ["digits", "text_synthetic"]
    assert {"digits", "text_synthetic", "signals", "diabetes", "breast_cancer", "cifar10"} <= set(suite_tasks("full"))
    quick, full = EVAL_TASKS["digits"].task_data("quick"), EVAL_TASKS["digits"].task_data("full")
    assert "target" not in full and quick["budget"]["max_rounds"] == 4
    # the full suite removes the example's round limit: the planner spends its wall-clock budget
    assert "max_rounds" not in full["budget"] and full["budget"]["max_minutes"] == 5
    assert full["budget"]["max_params"] == 500_000  # the example's own limits stay
    assert load_task(full).budget.max_rounds is None
    missing = EvalTask("no_such_example", {"full": {}})
    assert missing.skipped() == "examples/no_such_example.yaml is not in this checkout"


def test_the_classical_baselines_of_a_run_are_read_from_its_result_file(workspace):
    run_dir = workspace / "runs" / "tab"
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps({"baselines": {
        "ridge": {"r2": 0.45, "rmse": 55.1}, "hist_gradient_boosting": {"validation": {"r2": 0.41}},
        "broken": {"error": "did not converge"}}}))
    methods = classical_baselines("runs/tab", "r2")
    assert methods == {"classical:ridge": {"best_metric": 0.45, "params": None, "design": "ridge", "evaluations": 1},
                       "classical:hist_gradient_boosting": {"best_metric": 0.41, "params": None,
                                                            "design": "hist_gradient_boosting", "evaluations": 1}}
    assert classical_baselines("runs/none", "r2") == {} and classical_baselines(None, "r2") == {}


def test_the_scoreboard_shows_who_leads_on_each_task_against_search_and_classical_baselines():
    methods = {"builtin": {"mean": 0.94, "std": 0.004, "seed_metrics": [1, 1, 1], "params": 30_000,
                           "stopped_by": "time", "rounds": 7},
               "fixed": {"mean": 0.90, "std": 0.004, "seed_metrics": [1, 1, 1], "params": 20_000},
               "random": {"mean": 0.91, "std": 0.004, "seed_metrics": [1, 1, 1], "params": 90_000},
               "classical:logistic_regression": {"best_metric": 0.70, "params": None},
               "classical:hist_gradient_boosting": {"best_metric": 0.81, "params": None}}
    tabular = {"builtin": {"mean": 0.50, "std": 0.01, "seed_metrics": [1, 1, 1], "params": 2_000},
               "classical:ridge": {"best_metric": 0.52, "params": None}}
    research = {
        "signals": {"budget_s": 600.0, "metric": "accuracy", "mode": "max", "replica_seeds": [1, 2],
                    "methods": methods, "leader": leader(methods, True), "versus": versus(methods, True)},
        "diabetes": {"budget_s": 300.0, "metric": "r2", "mode": "max", "replica_seeds": [1, 2],
                     "methods": tabular, "leader": leader(tabular, True), "versus": versus(tabular, True)},
        "cifar10": {"skipped": "no CIFAR-10 data"},
    }
    board = render_scoreboard({"suite": "full", "seed": 0, "started_at": "t", "duration_s": 1.0, "machine": {},
                               "research_evals": research})
    assert "### Who leads, per task" in board
    assert ("| signals | accuracy | 600 | **builtin** | 0.9400 | 0.9000 | 0.9100 | 0.8100 (hist_gradient_boosting) "
            "| ahead | ahead |") in board
    assert "| diabetes | r2 | 300 | **classical:ridge** | 0.5000 | - | - | 0.5200 (ridge) | - | behind |" in board
    assert "| cifar10 | - | - | skipped |" in board
    assert "leader: **builtin** (builtin search stopped by time after 7 round(s))" in board


@pytest.mark.slow
def test_a_tiny_comparison_runs_the_planner_and_both_search_baselines_on_the_same_budget(workspace, monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_WANDB_MODE", "disabled")
    monkeypatch.setattr(research_evals, "REPLICA_SEEDS", 1)
    tiny = EvalTask("digits", {"tiny": {"max_rounds": 1, "candidates_per_round": 2, "screen_steps": 5,
                                        "quick_epochs": 1, "full_epochs": 2, "optimizer_trials": 0,
                                        "confirm_seeds": 1, "max_minutes": 1}})
    result = compare_on("digits", tiny, "tiny", seed=0)
    methods = result["methods"]
    assert set(methods) == {"builtin", "fixed", "random"}
    assert methods["builtin"]["stopped_by"] == "max_rounds"
    for name in ("builtin", "fixed", "random"):
        assert methods[name]["best_metric"] is not None and len(methods[name]["seed_metrics"]) == 2, name
    assert methods["fixed"]["wall_s"] <= result["budget_s"] + 15 and result["leader"]
