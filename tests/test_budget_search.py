"""A planner loop that spends the budget: what ends the search, the halving rungs, and their routing.

The nodes are called on states built here (their inputs are plain data); ``refine`` and ``halve``
only read the state and the clock. The end-to-end runs are in ``test_budget_runs.py``.
"""

from __future__ import annotations

from typing import Any

from torchscout.agent.task import load_task
from torchscout.graphs import fidelity, routing
from torchscout.graphs.nodes_rounds import halve, refine
from torchscout.graphs.state import initial_state, task_of


def _state(round_index: int, **budget: Any) -> dict[str, Any]:
    settings = {"max_minutes": 30, "quick_epochs": 2, "full_epochs": 40, **budget}
    task = load_task({"name": "b", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10,
                      "budget": settings}).model_dump()
    return {**initial_state(task, "b"), "round": round_index}


def _candidate(candidate_id: str, params: int = 10_000, **fields: Any) -> dict[str, Any]:
    return {"id": candidate_id, "round": int(candidate_id[1]), "status": "evaluated", "params": params,
            "training": {"optimizer": "AdamW", "lr": 0.003}, "script": f"runs/b/candidates/{candidate_id}/model.py",
            "class_name": candidate_id.upper(), **fields}


def _result(candidate_id: str, rung: int, metric: float, duration_s: float = 1.0, epochs: int = 2) -> dict[str, Any]:
    history = [{"epoch": epoch, "samples": 1000, "samples_per_s": 4000.0, "epoch_time_s": 0.25}
               for epoch in range(1, epochs + 1)]
    return {"key": fidelity.evaluation_key(candidate_id, rung), "kind": fidelity.rung_kind(rung),
            "candidate_id": candidate_id, "status": "completed", "metric": metric, "rung": rung, "epochs": epochs,
            "duration_s": duration_s, "history": history, "training": {"optimizer": "AdamW", "lr": 0.003}}


def _with(state: dict[str, Any], *results: dict[str, Any]) -> dict[str, Any]:
    state["evaluations"] = {**state.get("evaluations", {}), **{item["key"]: item for item in results}}
    return state


# -- what ends the search ------------------------------------------------------------------------


def test_without_max_rounds_the_search_goes_on_until_patience_runs_out_and_says_so():
    state = _with(_state(2), _result("r1c0", 1, 0.95), _result("r2c0", 1, 0.94))
    state["candidates"] = {"r1c0": _candidate("r1c0"), "r2c0": _candidate("r2c0")}
    assert task_of(state).budget.max_rounds is None and task_of(state).budget.patience == 2

    first = refine(state, None)  # one round without improvement: patience 2 lets the search go on
    assert first["stale_rounds"] == 1 and first["stopped_by"] is None and first["phase"] == "search"

    state.update(round=3, stale_rounds=1, candidates={**state["candidates"], "r3c0": _candidate("r3c0")})
    second = refine(_with(state, _result("r3c0", 1, 0.93)), None)

    assert second["stopped_by"] == "patience" and second["phase"] == "optimizer"
    assert second["stop_reason"] == "no improvement for 2 round(s)"
    assert "search stops (no improvement for 2 round(s))" in second["decisions"][0]["text"]


def test_the_search_stops_on_time_when_another_round_would_not_fit_before_the_reserve():
    state = _with(_state(1, max_minutes=1), _result("r1c0", 0, 0.9, duration_s=8.0),
                  _result("r1c0", 1, 0.95, duration_s=9.0))
    state["candidates"] = {"r1c0": _candidate("r1c0")}
    state["elapsed_s"] = 20.0
    update = refine(state, None)
    # 60 s budget, 20 s used: the final phase at the measured speed (capped at half the budget) is kept
    # back, and this round's screen and quick evaluation (16 s at the steady speed: the quick one's extra
    # second is counted as a one-time cost) no longer fit in the 10 s the search has left
    assert update["stopped_by"] == "time", update["decisions"][0]["text"]
    assert "the 10 s of search time left would not fit another round (this one took 16 s" in update["stop_reason"]

    state["elapsed_s"] = 59.0
    assert refine(state, None)["stop_reason"] == "the search share of the time budget is used up"


def test_a_task_with_max_rounds_still_stops_there_and_the_target_comes_first():
    state = _with(_state(2, max_rounds=2), _result("r1c0", 1, 0.95), _result("r2c0", 1, 0.97))
    state["candidates"] = {"r1c0": _candidate("r1c0"), "r2c0": _candidate("r2c0")}
    update = refine(state, None)
    assert (update["stopped_by"], update["stop_reason"]) == ("max_rounds", "max_rounds 2 done")
    assert update["stale_rounds"] == 0 and update["best_id"] == "r2c0"

    state["task"]["target"] = 0.96
    assert refine(state, None)["stopped_by"] == "target"


# -- multi-fidelity rungs ------------------------------------------------------------------------


def test_rungs_train_fewer_candidates_for_more_epochs_up_to_the_cap():
    task = task_of(_state(1, quick_epochs=3, full_epochs=20, max_rungs=4))
    assert [fidelity.rung_epochs(task, rung) for rung in (1, 2, 3)] == [3, 6, 12]
    assert fidelity.has_next_rung(task, 2) and not fidelity.has_next_rung(task, 3)  # max_rungs 4: rungs 0-3
    capped = task_of(_state(1, quick_epochs=3, full_epochs=5, max_rungs=6))
    assert fidelity.rung_epochs(capped, 2) == 5 and not fidelity.has_next_rung(capped, 2)  # never past full_epochs
    assert not fidelity.has_next_rung(task_of(_state(1, quick_epochs=3, full_epochs=3)), 1)


def test_halving_promotes_the_best_half_of_every_rounds_results_to_twice_the_epochs():
    state = _state(2)
    state["candidates"] = {"r1c0": _candidate("r1c0", promoted_rung=2), "r1c1": _candidate("r1c1"),
                           "r2c0": _candidate("r2c0", params=5_000), "r2c1": _candidate("r2c1")}
    _with(state, _result("r1c0", 1, 0.95), _result("r1c1", 1, 0.80), _result("r2c0", 1, 0.97),
          _result("r2c1", 1, 0.90), _result("r1c0", 2, 0.96, epochs=4))
    state["rung"] = 1

    update = halve(state, None)

    # 4 results at rung 1 over both rounds: the best 2 go on; r1c0 is at rung 2 already, so r2c0 alone is new
    assert update["rung"] == 2 and update["candidates"] == {"r2c0": {"promoted_rung": 2}}
    assert "promoted r2c0 (0.9700) to 4 epochs" in update["decisions"][0]["text"]
    state.update(rung=2, candidates={**state["candidates"], "r2c0": _candidate("r2c0", params=5_000,
                                                                                promoted_rung=2)})
    [send] = routing.after_halve(state)
    assert send.arg["key"] == "r2c0/rung2" and send.arg["kind"] == "rung" and send.arg["epochs"] == 4
    assert send.arg["rung"] == 2

    # the rung-2 result is recorded (a router re-run after a resume): nothing is sent again, halve goes on
    _with(state, _result("r2c0", 2, 0.98, epochs=4))
    assert routing.after_halve(state) == "halve"
    deeper = halve(state, None)
    assert deeper["rung"] == 3 and deeper["candidates"] == {"r2c0": {"promoted_rung": 3}}


def test_halving_ends_when_the_time_left_does_not_fit_a_longer_rung():
    state = _state(1, max_minutes=0.5)
    state["candidates"] = {"r1c0": _candidate("r1c0"), "r1c1": _candidate("r1c1")}
    _with(state, _result("r1c0", 1, 0.95), _result("r1c1", 1, 0.90))
    state.update(rung=1, elapsed_s=25.0)

    update = halve(state, None)

    assert update["halving_done"] is True and "candidates" not in update
    assert "do not fit a run of 4 epochs" in update["decisions"][0]["text"]
    assert routing.after_halve({**state, **update}) == "refine"


def test_the_best_is_ranked_on_the_deepest_rung_and_progress_at_the_deepest_rung_both_rounds_reached():
    state = _state(2)
    state["candidates"] = {"r1c0": _candidate("r1c0"), "r2c0": _candidate("r2c0"), "r2c1": _candidate("r2c1")}
    # r2c1 has the best quick result, but r1c0 and r2c0 trained longer: the deepest rung decides
    _with(state, _result("r1c0", 1, 0.93), _result("r2c0", 1, 0.94), _result("r2c1", 1, 0.99),
          _result("r1c0", 2, 0.95, epochs=4), _result("r2c0", 2, 0.97, epochs=4))
    update = refine(state, None)
    assert update["best_id"] == "r2c0" and update["best_metric"] == 0.97 and update["stale_rounds"] == 0
    assert "best r2c0 accuracy=0.9700 at rung 2" in update["decisions"][0]["text"]


def test_the_report_says_what_stopped_the_search_and_what_each_rung_trained(workspace):
    from torchscout.agent.report import write_report

    state = _state(3)
    state["candidates"] = {"r1c0": _candidate("r1c0"), "r2c0": _candidate("r2c0"), "r3c0": _candidate("r3c0")}
    _with(state, _result("r1c0", 1, 0.95), _result("r2c0", 1, 0.94), _result("r3c0", 1, 0.93),
          _result("r1c0", 2, 0.96, duration_s=2.5, epochs=4))
    state.update(refine(state, None), elapsed_s=120.0)
    state["stale_rounds"] = 1
    state.update(refine(state, None))
    assert state["stopped_by"] == "patience"

    text = (workspace / write_report(state)).read_text()

    assert ("**Search stopped by:** patience (rounds without improvement): no improvement for 2 round(s)."
            in text)
    assert "Used 120 s of 1800 s (7%) over 3 round(s)." in text
    assert "| 1 | 2 epochs | 3 | 3 | 0.9500 (`r1c0`) | 3.0 |" in text  # rung 1: every round's best
    assert "| 2 | 4 epochs | 1 | 1 | 0.9600 (`r1c0`) | 2.5 |" in text  # rung 2: the best of them, longer
