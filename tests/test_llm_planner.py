"""The LLM planner: draft / improve / debug turns, re-asking, builtin fallback, and the cache."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage

from tests.planner_helpers import (
    CONV_LAYERS,
    MLP_LAYERS,
    WIDER_CONV,
    answer_json,
    context,
    outcome,
    planned,
    scripted,
)
from torchscout.agent.llm_planner import FALLBACK_PLANNER_NAME, LLMPlanner, choose_mode
from torchscout.agent.proposal import PlanningContext, Proposal
from torchscout.agent.task import load_task
from torchscout.settings import configure
from torchscout.tools.errors import ToolError

SHAPE_ERROR = ("Traceback (most recent call last):\n  File \"model.py\", line 20, in forward\n"
               "    return self.fc(x)\nRuntimeError: mat1 and mat2 shapes cannot be multiplied (64x144 and 256x10)")


def _prompt_text(model) -> str:
    return "\n".join(str(message.content) for message in model.seen[-1])


def test_draft_turn_turns_a_fenced_json_reply_into_a_valid_proposal():
    reply = "Here is my plan.\n```json\n" + answer_json(
        planned(CONV_LAYERS, "A one-block conv net is a sound baseline for 8x8 digits."),
        planned(MLP_LAYERS, "An MLP on the 64 pixels checks whether convolution matters here."),
        notes="A conv baseline and an MLP for contrast.") + "\n```"
    model = scripted(reply)

    proposal = LLMPlanner(model).propose(context(1, []))

    assert isinstance(proposal, Proposal)
    assert (proposal.mode, proposal.planner) == ("draft", "llm")
    assert proposal.notes == "A conv baseline and an MLP for contrast."
    assert [spec.model_config_["model_name"] for spec in proposal.candidates] == ["R1C0", "R1C1"]
    first = proposal.candidates[0]
    assert first.model_config_["input_shape"] == [1, 8, 8]
    assert first.model_config_["layers"] == CONV_LAYERS
    assert first.training.optimizer == "AdamW" and first.rationale.startswith("A one-block conv net")
    prompt = _prompt_text(model)
    assert "DRAFT 2 new candidates" in prompt and "input: one sample has shape [1, 8, 8]" in prompt
    assert model.calls == 1


def test_improve_turn_sees_the_leaderboard_and_names_its_parent():
    history = [outcome("R1C0", 1, CONV_LAYERS, 0.91), outcome("R1C1", 1, MLP_LAYERS, 0.84)]
    model = scripted(answer_json(
        planned(WIDER_CONV, "R1C0 is still rising at the last epoch: double its width.", parent="R1C0"),
        planned(MLP_LAYERS + [], "A lower learning rate for the MLP.", parent="R1C1",
                training={"optimizer": "Adam", "lr": 0.001})))

    proposal = LLMPlanner(model).propose(context(2, history))

    assert proposal.mode == "improve" and proposal.planner == "llm"
    assert [spec.parent for spec in proposal.candidates] == ["R1C0", "R1C1"]
    assert proposal.candidates[0].model_config_["layers"][0]["params"]["out_channels"] == 32
    assert proposal.candidates[1].training.lr == 0.001
    prompt = _prompt_text(model)
    assert "IMPROVE" in prompt
    assert "R1C0 | 0.9100 | 12.0k | 250.0k | 3.2s | AdamW lr=0.003 wd=0.01 | Conv2d(" in prompt


def test_debug_turn_shows_the_error_tail_and_fixes_the_failure():
    broken = [*CONV_LAYERS[:4], {"type": "Linear", "params": {"in_features": 256, "out_features": 10}}]
    history = [outcome("R1C0", 1, CONV_LAYERS, 0.91), outcome("R1C1", 1, broken, None, error=SHAPE_ERROR)]
    ctx = context(2, history)
    assert choose_mode(ctx) == "debug"
    model = scripted(answer_json(
        planned(CONV_LAYERS[:4] + [{"type": "Linear", "params": {"out_features": 10}}],
                "R1C1 hard-coded in_features=256 but the flattened map has 144 values; let it be inferred.",
                parent="R1C1"),
        planned(WIDER_CONV, "Wider version of the best.", parent="R1C0")))

    proposal = LLMPlanner(model).propose(ctx)

    assert proposal.mode == "debug" and proposal.planner == "llm"
    assert proposal.candidates[0].parent == "R1C1"
    prompt = _prompt_text(model)
    assert "DEBUG" in prompt and "mat1 and mat2 shapes cannot be multiplied (64x144 and 256x10)" in prompt


def test_an_unusable_reply_is_answered_with_the_problem_and_asked_again():
    model = scripted(
        "I think a ResNet would be good!",
        answer_json(planned(CONV_LAYERS, "Baseline.", training={"optimizer": "Adamm", "lr": 0.01})),
        answer_json(planned(CONV_LAYERS, "Baseline."), planned(MLP_LAYERS, "MLP.")),
    )

    proposal = LLMPlanner(model).propose(context(1, []))

    assert proposal.planner == "llm" and len(proposal.candidates) == 2
    assert "usable after 3 attempts" in proposal.notes
    assert model.calls == 3
    second, third = model.seen[1], model.seen[2]
    assert "contains no JSON object" in second[-1].content
    assert "unknown optimizer type 'Adamm'" in third[-1].content and "did you mean" in third[-1].content


def test_garbage_after_every_retry_falls_back_to_the_builtin_planner_for_that_round():
    model = scripted("no idea", "{not json", json.dumps({"candidates": [{"layers": "Conv2d"}]}))
    planner = LLMPlanner(model)

    proposal = planner.propose(context(1, []))

    assert model.calls == 3
    assert proposal.planner == FALLBACK_PLANNER_NAME
    assert proposal.notes.startswith("LLM planner fallback: the model's draft answer was unusable")
    assert len(proposal.candidates) == 2 and all(spec.blueprint for spec in proposal.candidates)
    assert planner.rounds[-1].fell_back and planner.rounds[-1].attempts == 3


def test_an_unreachable_model_also_falls_back_instead_of_ending_the_run():
    class Unreachable(type(scripted())):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            raise ConnectionError("connection refused")

    configure(llm_max_retries=0)  # no backoff waits in a test
    proposal = LLMPlanner(Unreachable(messages=iter([]), seen=[])).propose(context(1, []))

    assert proposal.planner == FALLBACK_PLANNER_NAME and "could not be reached" in proposal.notes


def test_identical_inputs_are_answered_from_the_response_cache():
    reply = answer_json(planned(CONV_LAYERS, "Baseline."), planned(MLP_LAYERS, "MLP."))
    model = scripted(reply)
    history = [outcome("R1C0", 1, MLP_LAYERS[:1] + MLP_LAYERS[1:], None, error="boom", status="rejected")]

    first = LLMPlanner(model).propose(context(1, history))
    second = LLMPlanner(model).propose(context(1, history))  # a fresh planner, as after a resume

    assert model.calls == 1
    assert first == second


def test_structured_output_is_used_when_the_model_supports_tool_calling():
    arguments = {"notes": "structured", "candidates": [planned(CONV_LAYERS, "Baseline.")]}
    model = scripted(AIMessage(content="", tool_calls=[{"name": "PlannerAnswer", "args": arguments, "id": "c1"}]),
                     tool_calling=True)
    planner = LLMPlanner(model)

    first = planner.propose(context(1, []))
    again = LLMPlanner(model).propose(context(1, []))

    assert first.notes == "structured" and first.candidates[0].model_config_["layers"] == CONV_LAYERS
    assert planner._asker.structured_ok is True
    assert again == first and model.calls == 1


def test_text_models_get_the_vocabulary_of_a_trained_tokenizer():
    task = load_task({"name": "text", "dataset": "text_classification", "input_shape": [32],
                      "input_dtype": "int64", "num_classes": 2, "budget": {"candidates_per_round": 1}})
    layers = [{"type": "Embedding", "params": {"num_embeddings": 999, "embedding_dim": 32}},
              {"type": "Mean", "params": {"dim": 1}}, {"type": "Linear", "params": {"out_features": 2}}]
    ctx = PlanningContext(task=task, round=1, num_candidates=1, history=[], vocab_sizes=[500, 2000])
    model = scripted(answer_json(planned(layers, "Bag of embeddings.", vocab_size=7)),
                     answer_json(planned(layers, "Bag of embeddings.", vocab_size=2000)))

    proposal = LLMPlanner(model).propose(ctx)

    spec = proposal.candidates[0]
    assert spec.vocab_size == 2000 and spec.model_config_["input_dtype"] == "int64"
    assert spec.model_config_["layers"][0]["params"]["num_embeddings"] == 2000
    assert "7 has no trained tokenizer; use one of [500, 2000]" in model.seen[1][-1].content


def test_optimizer_turn_proposes_named_trials_for_the_best():
    history = [outcome("R1C0", 1, CONV_LAYERS, 0.91)]
    model = scripted(json.dumps({"notes": "two ideas", "trials": [
        {"name": "sgd_nesterov", "training": {"optimizer": "SGD", "lr": 0.05, "momentum": 0.9},
         "rationale": "Momentum SGD is the classic strong baseline for conv nets."},
        {"name": "adamw_low", "training": {"optimizer": "AdamW", "lr": 0.001, "weight_decay": 0.05},
         "rationale": "Smaller step, stronger decay."}]}))

    proposal = LLMPlanner(model).propose_optimizers(context(3, history), count=2)

    assert proposal.mode == "optimizer" and proposal.planner == "llm"
    assert [trial.name for trial in proposal.optimizer_trials] == ["sgd_nesterov", "adamw_low"]
    assert "R1C0" in _prompt_text(model)


def test_without_a_configured_llm_the_planner_says_how_to_configure_one():
    with pytest.raises(ToolError, match="TORCHSCOUT_LLM") as error:
        LLMPlanner()
    assert "openai:gpt-4.1-mini" in str(error.value) and "planner: builtin" in str(error.value)


def test_context_text_carries_curves_and_analyses_when_the_graph_attaches_them():
    from torchscout.agent.planner_context import render_context
    from torchscout.agent.proposal import CandidateOutcome

    class OutcomeWithExtras(CandidateOutcome):
        curve: list[float] = []
        analysis: str | None = None

    best = OutcomeWithExtras(**outcome("R1C0", 1, CONV_LAYERS, 0.93).model_dump(by_alias=True),
                             curve=[0.61, 0.84, 0.93], analysis="Most parameters are in the linear head.")
    failed = outcome("R1C1", 1, MLP_LAYERS, None, error=SHAPE_ERROR)

    text = render_context(context(2, [best, failed]))

    assert "## PER-EPOCH VALIDATION CURVES\nR1C0: 0.610 0.840 0.930" in text
    assert "## SUMMARY ANALYSES\nR1C0: Most parameters are in the linear head." in text
    assert "R1C1 (round 1, failed): Flatten > Linear(out_features=128) > GELU > Linear(out_features=10)" in text
    assert text.count("RuntimeError: mat1 and mat2") == 1


def test_a_candidate_too_large_to_build_is_refused_in_the_sandbox_not_in_this_process():
    huge = [{"type": "Flatten"}, {"type": "Unflatten", "params": {"dim": 1, "unflattened_size": [8, 8]}},
            {"type": "LSTM", "params": {"hidden_size": 200_000}, "output_index": 0},
            {"type": "Last", "params": {"dim": 1}}, {"type": "Linear", "params": {"out_features": 10}}]
    model = scripted(answer_json(planned(huge, "A very wide recurrent model.")),
                     answer_json(planned(CONV_LAYERS, "Baseline."), planned(MLP_LAYERS, "An MLP.")))

    proposal = LLMPlanner(model).propose(context(1, []))

    assert proposal.planner == "llm" and len(proposal.candidates) == 2
    problem = model.seen[1][-1].content
    assert "candidates[0]: it does not fit this task's input [1, 8, 8]" in problem and "LSTM" in problem
