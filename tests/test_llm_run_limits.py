"""LLM limits of a research run, against a real OpenAI-compatible HTTP server on 127.0.0.1:
the analysis only for candidates that will be evaluated (and skippable), and ``budget.max_llm_calls``."""

from __future__ import annotations

import json

from tests.openai_server import Behaviour
from tests.planner_helpers import CONV_LAYERS, MLP_LAYERS, answer_json, planned
from torchscout.graphs.driver import research, run_state
from torchscout.graphs.events import read_events
from torchscout.graphs.llm_budget import read_ledger

BUDGET = {"max_rounds": 1, "candidates_per_round": 2, "screen_steps": 5, "quick_epochs": 1, "full_epochs": 0,
          "optimizer_trials": 0, "confirm_seeds": 1, "max_minutes": 3}
TASK = {"name": "limits", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10, "metric": "accuracy",
        "planner": "builtin", "budget": {**BUDGET, "max_params": 100_000}}
ANALYSIS = "Most parameters sit in the Conv2d layers."


def _analysis_requests(server) -> int:
    return sum("MEASURED" in request["body"]["messages"][0]["content"] for request in server.requests)


def test_the_llm_analyses_only_candidates_within_the_limits(llm_server, workspace):
    server = llm_server(default=Behaviour(text=ANALYSIS), idle_s=5, timeout_s=20)

    research(TASK, name="sizes")

    state = run_state("sizes")
    rejected = [item for item in state["candidates"].values() if item["status"] == "rejected"]
    kept = [item for item in state["candidates"].values() if item.get("params") and item["status"] != "rejected"]
    assert rejected and kept  # the builtin planner's second design is over max_params 100,000
    assert _analysis_requests(server) == len(kept)
    for item in rejected:
        summary = json.loads((workspace / f"runs/sizes/candidates/{item['id']}/summary.json").read_text())
        assert summary["analysis_backend"] == "builtin"
    for item in kept:
        summary = json.loads((workspace / f"runs/sizes/candidates/{item['id']}/summary.json").read_text())
        assert summary["analysis"] == ANALYSIS and summary["analysis_backend"] == "llm:openai:tiny"


def test_the_analysis_is_skippable(llm_server, monkeypatch):
    server = llm_server(default=Behaviour(text=ANALYSIS), idle_s=5, timeout_s=20)
    monkeypatch.setenv("TORCHSCOUT_LLM_ANALYSIS", "0")

    research(TASK, name="no-analysis")

    assert server.requests == []
    assert read_ledger("runs/no-analysis") == []


def test_max_llm_calls_hands_later_rounds_to_the_builtin_planner(llm_server, monkeypatch, workspace):
    plan = answer_json(planned(CONV_LAYERS, "A conv baseline."), planned(MLP_LAYERS, "An MLP."))
    server = llm_server(default=Behaviour(text=plan), idle_s=5, timeout_s=20)
    monkeypatch.setenv("TORCHSCOUT_LLM_ANALYSIS", "0")
    task = {**TASK, "planner": "llm", "budget": {**BUDGET, "max_rounds": 2, "patience_rounds": 2,
                                                 "max_llm_calls": 1}}

    outcome = research(task, name="capped")

    assert len(server.requests) == 1
    state = run_state("capped")
    planners = {item["round"]: item["planner"] for item in state["candidates"].values()}
    assert planners == {1: "llm", 2: "builtin (llm fallback)"}
    notices = [event["text"] for event in read_events("runs/capped") if event["event"] == "llm"]
    assert notices == ["round 2: LLM plan unusable (planner: no LLM call made: the run's LLM call budget is used "
                       "up (1 of max_llm_calls 1)); builtin planner proposes"]
    report = (workspace / outcome["report_path"]).read_text(encoding="utf-8")
    assert "Rounds the LLM planned: 1." in report and "stood in for round 2" in report
    assert "| planner | 1 | 1 | 1 | 0 |" in report
