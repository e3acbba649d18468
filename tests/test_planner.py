"""The builtin planner: per-modality search spaces, diversity, mutations, determinism, Proposal type."""

from __future__ import annotations

import pytest
import torch

from torchscout.agent import search_space
from torchscout.agent.builtin_planner import BuiltinPlanner
from torchscout.agent.planners import get_planner
from torchscout.agent.proposal import CandidateOutcome, PlanningContext, Proposal
from torchscout.agent.task import load_task
from torchscout.tools.errors import ToolError
from torchscout.tools.loading import load_class
from torchscout.tools.modeling.assembler import pytorch_model_assembler

TASKS = {
    "image": {"name": "img", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10},
    "flat": {"name": "flat", "dataset": "dummy", "input_shape": [20], "num_classes": 3},
    "tokens": {"name": "txt", "dataset": "text_classification", "input_shape": [16], "input_dtype": "int64",
               "num_classes": 4},
}


def _context(modality: str, round_index: int = 1, history=(), seed: int = 0, count: int = 4) -> PlanningContext:
    task = load_task({**TASKS[modality], "seed": seed, "budget": {"candidates_per_round": count}})
    vocab = [120, 400] if modality == "tokens" else []
    return PlanningContext(task=task, round=round_index, num_candidates=count, history=list(history),
                           vocab_sizes=vocab)


def _outcomes(proposal: Proposal, round_index: int, metrics: list[float]) -> list[CandidateOutcome]:
    return [CandidateOutcome(id=f"r{round_index}c{i}", round=round_index, status="evaluated",
                             blueprint=spec.blueprint, model_config=spec.model_config_,
                             training=spec.training.model_dump(), metric=metric)
            for i, (spec, metric) in enumerate(zip(proposal.candidates, metrics, strict=True))]


@pytest.mark.parametrize("modality", ["image", "flat", "tokens"])
def test_round_one_is_a_baseline_plus_distinct_designs(modality):
    proposal = BuiltinPlanner().propose(_context(modality))
    assert proposal.mode == "draft" and proposal.planner == "builtin"
    assert len(proposal.candidates) == 4
    signatures = {search_space.signature(spec.blueprint) for spec in proposal.candidates}
    assert len(signatures) == 4
    baseline = search_space.BASELINES[modality]
    assert all(proposal.candidates[0].blueprint[key] == value for key, value in baseline.items())
    assert all(spec.rationale for spec in proposal.candidates)


@pytest.mark.parametrize("modality", ["image", "flat", "tokens"])
def test_same_seed_same_proposals_other_seed_other_proposals(modality):
    first = BuiltinPlanner().propose(_context(modality, seed=3))
    again = BuiltinPlanner().propose(_context(modality, seed=3))
    other = BuiltinPlanner().propose(_context(modality, seed=4))
    assert first.model_dump() == again.model_dump()
    assert [c.blueprint for c in first.candidates] != [c.blueprint for c in other.candidates]


def test_later_rounds_mutate_the_best_and_never_repeat_a_design():
    planner = BuiltinPlanner()
    first = planner.propose(_context("image"))
    history = _outcomes(first, 1, [0.6, 0.9, 0.7, 0.5])
    second = planner.propose(_context("image", round_index=2, history=history))
    assert second.mode == "improve"
    mutations = [spec for spec in second.candidates if spec.parent is not None]
    assert len(mutations) >= 2 and mutations[0].parent == "r1c1"
    best = first.candidates[1].blueprint
    for spec in mutations[:2]:
        changed = {key for key in best if spec.blueprint.get(key) != best[key]}
        assert 1 <= len(changed) <= 2, changed
    old = {search_space.signature(spec.blueprint) for spec in first.candidates}
    assert not old & {search_space.signature(spec.blueprint) for spec in second.candidates}
    assert any("TPE" in spec.rationale for spec in second.candidates)


def test_token_candidates_use_a_trained_vocabulary_and_every_encoder_compiles(workspace):
    task = load_task(TASKS["tokens"])
    for encoder in ("bag", "textcnn", "gru", "transformer"):
        blueprint = {**search_space.BASELINES["tokens"], "encoder": encoder, "layers": 1, "kernel": 3,
                     "pooling": "last", "vocab_size": 120}
        config = search_space.compile_blueprint(blueprint, task, f"M{encoder}", vocab_size=120)
        pytorch_model_assembler(config, f"models/{encoder}.py")
        model = load_class(f"models/{encoder}.py", f"M{encoder}")()
        logits = model(torch.randint(0, 120, (3, 16)))
        assert logits.shape == (3, 4), encoder
    proposal = BuiltinPlanner().propose(_context("tokens"))
    assert {spec.vocab_size for spec in proposal.candidates} <= {120, 400}


@pytest.mark.parametrize("stream", ["residual", "parallel"])  # plain nets run in every research test
def test_image_streams_assemble_into_working_models(workspace, stream):
    task = load_task(TASKS["image"])
    blueprint = {**search_space.BASELINES["image"], "stream": stream, "blocks": 3, "head": "flatten"}
    config = search_space.compile_blueprint(blueprint, task, "Net")
    pytorch_model_assembler(config, "models/net.py")
    assert load_class("models/net.py", "Net")()(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_optimizer_proposals_are_distinct_settings_for_the_best():
    planner = BuiltinPlanner()
    first = planner.propose(_context("image"))
    context = _context("image", round_index=2, history=_outcomes(first, 1, [0.6, 0.9, 0.7, 0.5]))
    proposal = planner.propose_optimizers(context, 3)
    assert proposal.mode == "optimizer"
    assert len({trial.name for trial in proposal.optimizer_trials}) == 3
    assert {trial.training.optimizer for trial in proposal.optimizer_trials} >= {"AdamW", "SGD"}
    assert planner.propose_optimizers(_context("image"), 3).optimizer_trials == []


def test_unknown_planner_names_the_choices():
    with pytest.raises(ToolError, match="builtin"):
        get_planner("oracle")
