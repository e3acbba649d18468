"""A `planner: llm` research run with a slow, useless model behind a real HTTP server on 127.0.0.1.

The run must stay within max_minutes (plus a stated margin: the step in flight when the time is
up, and the report), evaluate candidates through the builtin fallback, show every fallback as a
console line, and say in its report which rounds the LLM planned.
"""

from __future__ import annotations

import json
import time

from tests.openai_server import Behaviour
from torchscout.agent.planner_answers import PlannerAnswer
from torchscout.graphs.driver import research, run_state
from torchscout.graphs.events import format_event, read_events
from torchscout.graphs.llm_budget import llm_result, read_ledger

MAX_MINUTES = 0.4
MARGIN_S = 10.0  # the step in flight when the time runs out, and the report
TASK = {"name": "slow-llm", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10,
        "metric": "accuracy", "planner": "llm",
        "budget": {"max_rounds": 3, "candidates_per_round": 2, "screen_steps": 10, "quick_epochs": 1,
                   "full_epochs": 0, "optimizer_trials": 0, "confirm_seeds": 1, "patience_rounds": 3,
                   "max_minutes": MAX_MINUTES}}


def test_a_slow_useless_model_stays_within_the_budget_and_the_builtin_planner_evaluates(llm_server, workspace):
    # it streams its schema echo at 20 tokens/s: alive (never idle), slow, and never a usable plan
    echo = json.dumps(PlannerAnswer.model_json_schema())
    server = llm_server(default=Behaviour(text=echo, chunk_delay_s=0.05), idle_s=5, timeout_s=120)
    lines: list[str] = []

    started = time.monotonic()
    outcome = research(TASK, name="slow-llm", on_event=lambda record: lines.append(format_event(record)))
    seconds = time.monotonic() - started

    assert seconds <= MAX_MINUTES * 60 + MARGIN_S
    assert outcome["status"] == "finished" and outcome["evaluations"] >= 2
    state = run_state("slow-llm")
    completed = [item for item in state["evaluations"].values() if item["status"] == "completed"]
    assert completed and all(state["candidates"][item["candidate_id"]]["planner"] == "builtin (llm fallback)"
                             for item in completed)
    # every fallback was a console line
    fallbacks = [line for line in lines if line.startswith("llm ") and "LLM plan unusable" in line]
    assert fallbacks and fallbacks[0].startswith("llm        round 1: LLM plan unusable (")
    assert any(event["event"] == "llm" for event in read_events("runs/slow-llm"))
    # the ledger has every call the server saw, and the planner's ended at the deadline
    ledger = read_ledger("runs/slow-llm")
    assert sum(record["requests"] for record in ledger) == len(server.requests)
    assert any(record["purpose"] == "planner" and record["outcome"] == "timeout" for record in ledger)
    # the report says which rounds the LLM planned, and what the LLM cost
    report = (workspace / outcome["report_path"]).read_text(encoding="utf-8")
    assert "Rounds the LLM planned: none." in report
    assert "The builtin planner stood in for round 1: the model's draft answer was unusable (" in report
    assert "| planner |" in report and "LLM time counts against the time budget" in report
    result = llm_result(state)
    assert set(result["rounds_planned"].values()) == {"builtin fallback"}
    assert result["calls"] == sum(1 for record in ledger if record["outcome"] != "cached")
