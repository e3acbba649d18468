"""Choosing among results: ties within the search noise prefer the smaller model, on every level."""

from __future__ import annotations

from torchscout.agent import selection
from torchscout.agent.task import load_task
from torchscout.graphs.nodes_rounds import halve, refine


def _item(name: str, metric: float | None, params: int | None) -> dict:
    return {"candidate_id": name, "metric": metric, "params": params}


def _order(items: list[dict], maximize: bool = True) -> list[str]:
    ranked = selection.prefer_smaller_among_ties(items, lambda item: item["metric"], lambda item: item["params"],
                                                 maximize)
    return [item["candidate_id"] for item in ranked]


def test_results_tied_with_the_best_put_the_smaller_model_first_and_only_those():
    items = [_item("big", 0.995, 200_000), _item("small", 0.99, 5_000), _item("medium", 0.988, 20_000),
             _item("worse", 0.96, 1_000), _item("failed", None, 10)]
    # within 0.01 of the top: big, small, medium (by size); "worse" keeps its metric place; failures drop out
    assert _order(items) == ["small", "medium", "big", "worse"]
    # a gap beyond the tolerance is not a tie: the better model stays first
    assert _order([_item("big", 0.99, 200_000), _item("small", 0.97, 5_000)]) == ["big", "small"]
    # ties are measured from the top result, never chained away from it
    chain = [_item("a", 0.99, 9_000), _item("b", 0.981, 8_000), _item("c", 0.972, 100)]
    assert _order(chain) == ["b", "a", "c"]
    # an unknown size sorts last inside the tie
    assert _order([_item("unknown", 0.99, None), _item("known", 0.99, 50_000)]) == ["known", "unknown"]


def test_losses_tie_relative_to_their_size_and_lower_is_better():
    assert selection.tie_tolerance(0.9, maximize=True) == selection.RATE_TIE_TOLERANCE
    assert selection.tie_tolerance(2.0, maximize=False) == 2.0 * selection.RELATIVE_TIE_TOLERANCE
    losses = [_item("big", 0.500, 90_000), _item("small", 0.509, 3_000), _item("bad", 0.70, 10)]
    assert _order(losses, maximize=False) == ["small", "big", "bad"]


def test_top_configurations_use_sizes_when_given_and_keep_the_old_order_without():
    ranked = [{"candidate_id": "r1c0", "metric": 0.99, "key": "r1c0/quick", "training": {"optimizer": "AdamW"}},
              {"candidate_id": "r2c1", "metric": 0.985, "key": "r2c1/quick", "training": {"optimizer": "Adam"}},
              {"candidate_id": "r1c2", "metric": 0.95, "key": "r1c2/quick", "training": {"optimizer": "SGD"}}]
    assert [entry["candidate_id"] for entry in selection.top_configurations(ranked)] == ["r1c0", "r2c1"]
    sizes = {"r1c0": 50_000, "r2c1": 4_000, "r1c2": 100}
    chosen = selection.top_configurations(ranked, params=sizes)
    assert [entry["candidate_id"] for entry in chosen] == ["r2c1", "r1c0"]
    assert chosen[0]["search_metric"] == 0.985


def _confirmed(name: str, values: list[float]) -> dict:
    return {"candidate_id": name, "stats": selection.seed_statistics(values)}


def test_confirmed_winner_is_the_smaller_model_only_when_the_gap_is_within_the_seed_noise():
    sizes = {"big": 50_000, "small": 5_000}
    noisy = [_confirmed("big", [1.0, 0.9944, 1.0]), _confirmed("small", [0.9944, 1.0, 0.9944])]
    assert [entry["candidate_id"] for entry in selection.order_confirmed(noisy, True, sizes)] == ["small", "big"]
    clear = [_confirmed("big", [0.99, 0.991, 0.99]), _confirmed("small", [0.95, 0.951, 0.95])]
    assert [entry["candidate_id"] for entry in selection.order_confirmed(clear, True, sizes)] == ["big", "small"]
    single = [_confirmed("big", [0.99]), _confirmed("small", [0.985])]  # no noise estimate: the mean decides
    assert [entry["candidate_id"] for entry in selection.order_confirmed(single, True, sizes)] == ["big", "small"]


def _search_state(tmp_round: int, candidates: dict, evaluations: dict) -> dict:
    task = load_task({"name": "digits", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10,
                      "budget": {"max_rounds": 5, "patience_rounds": 1}})
    return {"task": task.model_dump(), "run_dir": "runs/sel", "run_name": "sel", "round": tmp_round,
            "candidates": candidates, "evaluations": evaluations, "elapsed_s": 0.0}


def _quick(name: str, metric: float) -> dict:
    return {"key": f"{name}/quick", "kind": "quick", "candidate_id": name, "status": "completed", "metric": metric,
            "training": {}}


def test_refine_names_the_smallest_tied_model_best_and_judges_progress_on_the_top_result():
    candidates = {"r1c0": {"id": "r1c0", "round": 1, "params": 19_562},
                  "r2c0": {"id": "r2c0", "round": 2, "params": 5_210},
                  "r2c1": {"id": "r2c1", "round": 2, "params": 80_000}}
    evaluations = {"a": _quick("r1c0", 0.9889), "b": _quick("r2c0", 0.9833), "c": _quick("r2c1", 0.9778)}
    update = refine(_search_state(2, candidates, evaluations), None)
    assert update["best_id"] == "r2c0" and update["best_metric"] == 0.9833
    assert "5,210 params, within the search noise of r1c0's 0.9889 with 19,562 params" in update["decisions"][0]["text"]
    # round 2 did not beat round 1's top result: a stale round, so patience 1 stops the search
    assert update["stale_rounds"] == 1 and update["stop_reason"] == "no improvement for 1 round(s)"
    evaluations["d"] = _quick("r2c1", 0.9944)
    evaluations.pop("c")
    improved = refine(_search_state(2, candidates, evaluations), None)
    assert improved["stale_rounds"] == 0 and improved["stop_reason"] is None
    # 0.9833 is 0.0111 behind the new top 0.9944: no longer a tie; r1c0 (0.9889) is, and it is smaller than r2c1
    assert improved["best_id"] == "r1c0"


def test_halving_promotes_the_smaller_of_tied_screens():
    candidates = {"r1c0": {"id": "r1c0", "round": 1, "params": 90_000, "screen_metric": 0.90},
                  "r1c1": {"id": "r1c1", "round": 1, "params": 3_000, "screen_metric": 0.895},
                  "r1c2": {"id": "r1c2", "round": 1, "params": 40_000, "screen_metric": 0.80},
                  "r1c3": {"id": "r1c3", "round": 1, "params": 10_000, "screen_metric": 0.70}}
    state = {**_search_state(1, candidates, {}), "rung": 0}
    state["task"]["budget"]["max_minutes"] = 30
    update = halve(state, None)
    assert set(update["candidates"]) == {"r1c1", "r1c0"}
    assert "promoted r1c1, r1c0" in update["decisions"][0]["text"]


def test_halving_also_promotes_one_smaller_model_within_reach_of_the_best_screen():
    candidates = {"r2c0": {"id": "r2c0", "round": 2, "params": 65_000, "screen_metric": 0.989},
                  "r2c1": {"id": "r2c1", "round": 2, "params": 21_000, "screen_metric": 0.983},
                  "r2c2": {"id": "r2c2", "round": 2, "params": 180_000, "screen_metric": 0.950},
                  "r2c3": {"id": "r2c3", "round": 2, "params": 5_178, "screen_metric": 0.911},
                  "r2c4": {"id": "r2c4", "round": 2, "params": 346, "screen_metric": 0.205},
                  "r2c5": {"id": "r2c5", "round": 2, "params": 52_000, "screen_metric": 0.940}}
    state = {**_search_state(2, candidates, {}), "rung": 0}
    update = halve(state, None)
    # top half by screen, then r2c3: smaller than all three and within 0.1 of 0.989 (r2c4 is out of reach)
    assert set(update["candidates"]) == {"r2c0", "r2c1", "r2c2", "r2c3"}
    assert "and r2c3 (5,178 params, screen 0.9110)" in update["decisions"][0]["text"]
    candidates["r2c3"]["screen_metric"] = 0.85
    assert set(halve(state, None)["candidates"]) == {"r2c0", "r2c1", "r2c2"}


def test_the_planners_idea_of_the_best_candidate_matches_the_graphs_tie_rule():
    from torchscout.agent.proposal import CandidateOutcome, PlanningContext

    task = load_task({"name": "digits", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10,
                      "metric": "accuracy", "mode": "max"})
    history = [CandidateOutcome(id="big", round=1, status="evaluated", metric=0.990, params=50_000),
               CandidateOutcome(id="small", round=1, status="evaluated", metric=0.985, params=10_000),
               CandidateOutcome(id="worse", round=1, status="evaluated", metric=0.90, params=1_000),
               CandidateOutcome(id="failed", round=1, status="failed", error="boom")]
    context = PlanningContext(task=task, round=2, num_candidates=4, history=history)
    assert [item.id for item in context.ranked()] == ["small", "big", "worse"]
    assert context.best.id == "small"
