"""The research graph's shape, its pure routers, reducers and budget arithmetic."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from langgraph.types import Send

from torchscout.agent.task import ROUND_CAP, load_task
from torchscout.graphs import budget, routing, training_cost
from torchscout.graphs.budget import RunContext
from torchscout.graphs.graph import build_graph, recursion_limit
from torchscout.graphs.state import initial_state, merge_records, task_of

ROOT = Path(__file__).resolve().parents[1]
NODES = {"setup", "tokenizer", "propose", "assemble", "inspect", "quick_eval", "halve", "refine", "optimizers",
         "optimizer_eval", "confirm", "confirm_eval", "select", "full_train", "analyze"}


def _state(**task_changes) -> dict:
    task = load_task({"name": "t", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10,
                      "budget": {"max_minutes": 10, "full_epochs": 5}, **task_changes}).model_dump()
    return dict(initial_state(task, "t"))


def _candidate(cid: str, status: str, round_index: int = 1, **extra) -> dict:
    return {"id": cid, "round": round_index, "status": status, "training": {"optimizer": "AdamW", "lr": 1e-3},
            "script": f"runs/t/candidates/{cid}/model.py", "class_name": cid.upper(), **extra}


def test_the_graph_has_every_step_of_the_research_loop():
    graph = build_graph()
    assert NODES <= set(graph.get_graph().nodes)
    edges = {(edge.source, edge.target) for edge in graph.get_graph().edges}
    assert ("full_train", "analyze") in edges and ("select", "full_train") in edges
    assert ("refine", "propose") in edges  # the refinement loop


def test_langgraph_json_points_at_app_graph():
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["graphs"]["research"] == "./app.py:graph"
    app = importlib.import_module("torchscout.app")
    assert "propose" in app.graph.get_graph().nodes


def test_routers_fan_out_one_task_per_candidate_and_skip_finished_ones():
    state = _state()
    assert routing.after_setup(state) == "propose"
    state.update(phase="search", round=1, candidates={
        "r1c0": _candidate("r1c0", "proposed"), "r1c1": _candidate("r1c1", "proposed"),
        "r0c9": _candidate("r0c9", "proposed", round_index=0)})
    sends = routing.after_propose(state)
    assert [send.arg["candidate"]["id"] for send in sends] == ["r1c0", "r1c1"]
    assert all(isinstance(send, Send) and send.node == "assemble" for send in sends)

    state["candidates"] = {"r1c0": _candidate("r1c0", "inspected"), "r1c1": _candidate("r1c1", "rejected"),
                           "r1c2": _candidate("r1c2", "inspected")}
    state["evaluations"] = {"r1c0/screen": {"status": "completed"}}
    sends = routing.after_inspect(state)
    assert [send.arg["key"] for send in sends] == ["r1c2/screen"]
    job = sends[0].arg
    assert job["kind"] == "screen" and job["max_steps"] == state["task"]["budget"]["screen_steps"]
    assert job["candidate"]["script"].endswith("r1c2/model.py") and job["reserve_s"] > 0

    state["evaluations"]["r1c2/screen"] = {"status": "completed"}
    assert routing.after_inspect(state) == "halve"


def test_halving_routes_and_phase_routes():
    state = _state()
    state.update(round=1, rung=1, candidates={"r1c0": _candidate("r1c0", "screened", promoted=True),
                                              "r1c1": _candidate("r1c1", "screened")})
    assert [send.arg["key"] for send in routing.after_halve(state)] == ["r1c0/quick"]
    state["rung"] = 2
    assert routing.after_halve(state) == "refine"
    assert routing.after_refine({"phase": "search"}) == "propose"
    assert routing.after_refine({"phase": "optimizer"}) == "optimizers"
    assert routing.after_propose({**state, "phase": "optimizer"}) == "optimizers"
    assert routing.after_select({"final": {"full_train": "run"}}) == "full_train"
    assert routing.after_select({"final": {"full_train": "skipped: no time"}}) == "analyze"
    assert routing.after_setup(_state(input_shape=[16], input_dtype="int64")) == "tokenizer"


def test_records_merge_field_by_field():
    merged = merge_records({"a": {"status": "assembled", "params": 3}}, {"a": {"status": "evaluated"},
                                                                          "b": {"status": "proposed"}})
    assert merged == {"a": {"status": "evaluated", "params": 3}, "b": {"status": "proposed"}}


def _measured(key: str, candidate_id: str, epochs: int, duration_s: float) -> dict:
    """A completed evaluation whose epochs each trained 1,000 samples in 1 s."""
    history = [{"epoch": index + 1, "samples": 1000, "samples_per_s": 1000.0, "epoch_time_s": 1.0}
               for index in range(epochs)]
    return {"key": key, "kind": "quick", "candidate_id": candidate_id, "status": "completed", "metric": 0.9,
            "epochs": epochs, "history": history, "duration_s": duration_s, "training": {}}


def test_budget_counts_state_time_plus_this_invocation():
    state = _state()
    assert budget.budget_s(task_of(state)) == 600
    assert budget.reserve_s(state) == 150  # nothing measured yet: a prior share of the budget
    state["elapsed_s"] = 100.0
    assert budget.search_time_left_s(state, None) == 350
    context = RunContext(used_before_s=500.0)
    assert budget.search_time_left_s(state, context) < -49
    assert budget.total_time_left_s(state, context) <= 100
    assert recursion_limit(task_of(state)) >= 40


def test_the_reserve_is_what_the_final_phase_costs_at_the_measured_throughput():
    state = _state()
    state["elapsed_s"] = 100.0
    # 1 epoch in 3 s and 3 epochs in 6 s: 1.5 s of setup, 1 s of training and 0.5 s around each epoch
    state["evaluations"] = {"a/screen": _measured("a/screen", "a", 1, 3.0), "a/quick": _measured("a/quick", "a", 3, 6.0)}
    evaluation_s = 1.5 + 3 * 1.5  # the final phase compares at the quick rung (3 epochs): 6 s per evaluation
    # full_epochs 5 is a cap; early stopping (patience 3) is expected to end it after min(5, 2 x 3) epochs
    full_s = 1.5 + 5 * 1.5 + training_cost.FULL_TRAIN_EXTRA_S
    after_trials = full_s + training_cost.REPORT_S
    assert budget.reserve_s(state, "confirm") == pytest.approx(after_trials)
    assert budget.reserve_s(state, "optimizer") == pytest.approx(2 * 3 * evaluation_s + after_trials)  # 2 x 3 seeds
    search = (3 + 2 * 3) * evaluation_s + after_trials  # 3 optimizer trials too
    assert budget.reserve_s(state) == pytest.approx(search)
    assert budget.search_time_left_s(state, None) == pytest.approx(600 - 100 - search)
    state["task"]["budget"]["max_minutes"] = 1  # never more than half the budget
    assert budget.reserve_s(state) == pytest.approx(30)
    # a long final training is expected to stop early: time is kept for half its cap (two patience windows at least)
    long_run = task_of(_state(budget={"full_epochs": 40}))
    assert long_run.budget.early_stopping_patience == 8 and training_cost.expected_full_epochs(long_run) == 20


def test_a_run_without_max_rounds_gets_a_recursion_limit_for_the_round_cap():
    bounded, open_ended = task_of(_state(budget={"max_rounds": 3})), task_of(_state())
    assert open_ended.budget.max_rounds is None and open_ended.budget.rounds_cap == ROUND_CAP
    steps_per_round = 2 * open_ended.budget.max_rungs + 6
    assert recursion_limit(open_ended) >= steps_per_round * ROUND_CAP > recursion_limit(bounded)
    assert (bounded.budget.patience, open_ended.budget.patience) == (1, 2)


def test_the_planner_sees_metrics_curves_analyses_and_traceback_tails():
    from torchscout.graphs.common import planning_context

    state = _state()
    state["candidates"] = {
        "r1c0": _candidate("r1c0", "evaluated", metric=0.9, screen_metric=0.7, analysis="Linear head holds 80%."),
        "r1c1": _candidate("r1c1", "screened", screen_metric=0.6),
        "r1c2": _candidate("r1c2", "failed", error="shape mismatch"),
    }
    state["evaluations"] = {"r1c0/quick": {"history": [{"val_accuracy": 0.5}, {"val_accuracy": 0.9}]}}
    state["failures"] = [{"candidate_id": "r1c2", "stage": "assemble", "traceback": "RuntimeError: mat1 and mat2"}]
    context = planning_context(state, 2)
    by_id = {item.id: item for item in context.history}
    assert context.round == 2 and context.best.id == "r1c0"
    assert by_id["r1c0"].curve == [0.5, 0.9] and by_id["r1c0"].analysis == "Linear head holds 80%."
    assert by_id["r1c1"].metric == 0.6  # screened only: its short-budget metric
    assert by_id["r1c2"].error.endswith("RuntimeError: mat1 and mat2") and by_id["r1c2"].metric is None


def test_nodes_that_touch_the_machine_retry_transient_errors_only():
    from torchscout.graphs.graph import TRANSIENT_RETRY

    graph = build_graph()
    for node in ("assemble", "inspect", "quick_eval", "optimizer_eval", "confirm_eval", "full_train"):
        assert graph.builder.nodes[node].retry_policy == TRANSIENT_RETRY, node
    assert ConnectionError in TRANSIENT_RETRY.retry_on and ValueError not in TRANSIENT_RETRY.retry_on
