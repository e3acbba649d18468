"""The builtin planner on a saturated metric: the smallest tied design leads and smaller variants of it are tried."""

from __future__ import annotations

import pytest

from torchscout.agent import search_space
from torchscout.agent.builtin_planner import BuiltinPlanner
from torchscout.agent.proposal import CandidateOutcome, PlanningContext
from torchscout.agent.task import load_task
from torchscout.tools.modeling.assembler import pytorch_model_assembler

DIGITS = {"name": "digits", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10, "seed": 0,
          "budget": {"candidates_per_round": 6}}


def _params(blueprint: dict, name: str) -> int:
    task = load_task(DIGITS)
    config = search_space.compile_blueprint(blueprint, task, name)
    return int(pytorch_model_assembler(config, f"models/{name.lower()}.py")["total_params"])


def _outcome(name: str, blueprint: dict, metric: float, params: int) -> CandidateOutcome:
    return CandidateOutcome(id=name, round=1, status="evaluated", blueprint=blueprint, metric=metric, params=params)


def _context(history: list[CandidateOutcome], seed: int = 0) -> PlanningContext:
    task = load_task({**DIGITS, "seed": seed})
    return PlanningContext(task=task, round=2, num_candidates=6, history=history)


def _saturated_history() -> tuple[list[CandidateOutcome], dict]:
    baseline = dict(search_space.BASELINES["image"])
    wide = {**baseline, "width": 64, "blocks": 3, "head": "flatten"}
    small = {**baseline, "stream": "residual"}  # can shrink along width, blocks and stream
    history = [_outcome("r1c0", wide, 0.9944, _params(wide, "Wide")),
               _outcome("r1c1", small, 0.9889, _params(small, "Small")),
               _outcome("r1c2", {**baseline, "lr": 3e-4, "width": 16, "blocks": 1}, 0.90, 1_000)]
    return history, small


def test_smallest_tied_design_is_the_parent_and_half_the_mutations_shrink_it(workspace):
    history, small = _saturated_history()
    proposal = BuiltinPlanner().propose(_context(history))
    assert proposal.mode == "improve" and "r1c1" in proposal.notes
    shrinks = [spec for spec in proposal.candidates if spec.rationale.startswith("Smaller variant of r1c1")]
    # two designs tie at the top (0.9944 and 0.9889 are within 0.01): saturated, so half of 5 mutations shrink
    assert len(shrinks) == 2
    parent_size = _params(small, "Parent")
    for index, spec in enumerate(shrinks):
        assert spec.parent == "r1c1"
        assert _params(spec.blueprint, f"Shrunk{index}") < parent_size, spec.rationale
    assert all(spec.parent in {"r1c1", "r1c0", None} for spec in proposal.candidates)


def test_an_unsaturated_round_shrinks_once_and_the_best_metric_still_leads(workspace):
    baseline = dict(search_space.BASELINES["image"])
    history = [_outcome("r1c0", baseline, 0.93, 19_562),
               _outcome("r1c1", {**baseline, "width": 16}, 0.88, 5_210)]
    proposal = BuiltinPlanner().propose(_context(history))
    shrinks = [spec for spec in proposal.candidates if spec.rationale.startswith("Smaller variant")]
    assert len(shrinks) == 1 and shrinks[0].parent == "r1c0"
    assert sum(spec.parent == "r1c0" for spec in proposal.candidates) >= 3


@pytest.mark.parametrize("seed", [0, 5])
def test_shrinking_stays_deterministic_per_seed(workspace, seed):
    history, _ = _saturated_history()
    first = BuiltinPlanner().propose(_context(history, seed))
    again = BuiltinPlanner().propose(_context(history, seed))
    assert first.model_dump() == again.model_dump()


def test_smaller_choice_steps_each_size_axis_down_and_stops_at_the_smallest():
    space = search_space.space_for("image")
    assert search_space.smaller_choice("width", 32, space["width"]) == 16
    assert search_space.smaller_choice("width", 16, space["width"]) is None
    assert search_space.smaller_choice("head", "flatten", space["head"]) == "avgpool"
    assert search_space.smaller_choice("head", "avgpool", space["head"]) is None
    assert search_space.smaller_choice("stream", "residual", space["stream"]) == "parallel"
    assert search_space.smaller_choice("vocab_size", 1000, [300, 1000]) == 300
