"""Answers checked before use, against a real OpenAI-compatible HTTP server on 127.0.0.1.

Generated code, planner JSON, tokenizer advice and summary analyses from a weak model: the
request count, the time, what the user sees and what reached disk.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.openai_server import Behaviour
from tests.planner_helpers import CONV_LAYERS, MLP_LAYERS, answer_json, context, planned
from torchscout.agent.llm_planner import FALLBACK_PLANNER_NAME, LLMPlanner
from torchscout.agent.planner_answers import PlannerAnswer
from torchscout.prompts.loader import load_prompt
from torchscout.tools.codegen.llm import cache, get_chat_model
from torchscout.tools.codegen.llm_usage import UsageScope, usage_scope
from torchscout.tools.codegen.pipeline import CodeGenerationError
from torchscout.tools.modeling.assembler import pytorch_model_assembler
from torchscout.tools.modeling.summary import pytorch_model_summary
from torchscout.tools.text.corpus_stats import choose_tokenizer_settings

SE_BLUEPRINT = {"model_name": "SENet", "input_shape": [4, 8, 8], "layers": [
    {"type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
    {"type": "SqueezeExcite", "params": {"channels": 8, "reduction": 2}},
    {"type": "Flatten"}, {"type": "Linear", "params": {"out_features": 3}}]}


def _example_code(prompt_name: str) -> str:
    """The few-shot example's answer: what a weak model copies instead of answering."""
    return load_prompt(prompt_name).examples[0]["assistant"]


def _roles(request: dict) -> list[str]:
    return [message["role"] for message in request["body"]["messages"]]


def test_identical_wrong_code_stops_the_repair_loop_early_and_is_never_cached(llm_server, workspace):
    server = llm_server(default=Behaviour(text=_example_code("model_block")), idle_s=5, timeout_s=20)

    started = time.monotonic()
    with pytest.raises(CodeGenerationError) as caught:
        pytorch_model_assembler(SE_BLUEPRINT, "src/models/senet.py")
    seconds = time.monotonic() - started

    error = caught.value
    assert len(server.requests) == 3  # the first answer, one repair, one changed request: then it stops
    assert "repeated the same failing answer 3 times; stopped early" in str(error)
    assert "must define the class SqueezeExcite" in str(error) and "it defines PolynomialActivation" in str(error)
    first, repair, changed = server.requests
    assert _roles(first) == ["system", "user", "assistant", "user"]       # with the few-shot example
    assert _roles(repair) == ["system", "user", "assistant", "user"]      # focused: request, answer, error
    assert "PolynomialActivation" not in repair["body"]["messages"][1]["content"]  # the example is gone
    assert repair["body"]["temperature"] == 0.0 and changed["body"]["temperature"] == 0.7
    assert "same as an earlier one" in changed["body"]["messages"][-1]["content"]
    assert seconds < 20
    assert not (workspace / "src").exists()
    assert cache().stats()["entries"] == 0

    with pytest.raises(CodeGenerationError):  # running it again asks the model again: failures are not replayed
        pytorch_model_assembler(SE_BLUEPRINT, "src/models/senet.py")
    assert len(server.requests) == 6


def _schema_echo() -> str:
    return json.dumps(PlannerAnswer.model_json_schema())


def test_an_echoed_schema_is_refused_and_the_round_falls_back_visibly(llm_server):
    server = llm_server(default=Behaviour(text=_schema_echo()), idle_s=5, timeout_s=20)
    notices: list[str] = []
    planner = LLMPlanner(get_chat_model())

    with usage_scope(UsageScope(on_notice=notices.append)):
        proposal = planner.propose(context(1, []))

    assert len(server.requests) == 3
    assert proposal.planner == FALLBACK_PLANNER_NAME and len(proposal.candidates) == 2
    assert notices == [f"round 1: LLM plan unusable ({planner.rounds[-1].reason}); builtin planner proposes"]
    assert "repeated the same unusable answer" in notices[0]
    second = server.requests[1]["body"]["messages"][-1]["content"]
    assert "the format description (a JSON schema) sent back" in second
    # every request asked for schema-shaped output: a reply that failed validation does not switch it off
    assert all("response_format" in request["body"] for request in server.requests)
    assert planner._asker.structured_ok is True
    prompt = server.requests[0]["body"]["messages"][-1]["content"]
    assert '"$defs"' not in prompt and '"rationale": "<one or two sentences' in prompt  # described by example


def test_a_server_that_rejects_structured_output_is_asked_in_text_from_then_on(llm_server):
    answer = answer_json(planned(CONV_LAYERS, "Baseline."), planned(MLP_LAYERS, "An MLP."))
    server = llm_server(Behaviour(reject_response_format=True), Behaviour(text=answer),
                        Behaviour(text=answer_json(planned(CONV_LAYERS[:1] + CONV_LAYERS[1:], "Again."))),
                        idle_s=5, timeout_s=20)
    notices: list[str] = []
    planner = LLMPlanner(get_chat_model())

    with usage_scope(UsageScope(on_notice=notices.append)):
        proposal = planner.propose(context(1, []))

    assert proposal.planner == "llm" and len(proposal.candidates) == 2
    assert len(server.requests) == 2
    assert "response_format" in server.requests[0]["body"] and "response_format" not in server.requests[1]["body"]
    assert planner._asker.structured_ok is False and "rejected structured output" in notices[0]

    LLMPlanner(get_chat_model()).propose(context(2, []))  # the next round's planner remembers it
    assert len(server.requests) == 3 and "response_format" not in server.requests[2]["body"]


def test_the_first_usable_of_several_json_objects_is_taken(llm_server):
    wrong_optimizer = json.loads(answer_json(planned(CONV_LAYERS, "Bad.", training={"optimizer": "Adamm"})))
    pooled_away = [{"type": "MaxPool2d", "params": {"kernel_size": 8}}] * 2 + CONV_LAYERS[3:]
    too_small = json.loads(answer_json(planned(pooled_away, "Pools an 8x8 input below 1x1.")))
    good = answer_json(planned(CONV_LAYERS, "Baseline."), planned(MLP_LAYERS, "An MLP."))
    reply = f"First try:\n{json.dumps(wrong_optimizer)}\nOr:\n```json\n{json.dumps(too_small)}\n```\nFinal:\n{good}"
    server = llm_server(Behaviour(text=reply), idle_s=5, timeout_s=20)

    proposal = LLMPlanner(get_chat_model()).propose(context(1, []))

    assert proposal.planner == "llm" and len(server.requests) == 1
    assert [spec.rationale for spec in proposal.candidates] == ["Baseline.", "An MLP."]


def test_a_candidate_that_cannot_fit_the_task_is_sent_back_with_the_reason(llm_server):
    wide = [{"type": "Flatten"}, {"type": "Linear", "params": {"out_features": 4096}},
            {"type": "Linear", "params": {"out_features": 10}}]
    wrong_outputs = [{"type": "Flatten"}, {"type": "Linear", "params": {"out_features": 7}}]
    server = llm_server(Behaviour(text=answer_json(planned(wide, "Wide."), planned(wrong_outputs, "Seven."))),
                        Behaviour(text=answer_json(planned(MLP_LAYERS, "An MLP."))), idle_s=5, timeout_s=20)

    proposal = LLMPlanner(get_chat_model()).propose(context(1, [], max_params=50_000))

    assert proposal.planner == "llm" and len(server.requests) == 2
    problem = server.requests[1]["body"]["messages"][-1]["content"]
    assert "candidates[0]: 307,210 parameters, over the task's max_params 50,000" in problem
    assert "candidates[1]: the model outputs shape [7] per sample; this task needs [10]" in problem


def test_tokenizer_advice_takes_the_first_sane_object_and_refuses_a_vocabulary_the_corpus_cannot_fill(
        llm_server, workspace):
    words = " ".join(f"word{index}" for index in range(84))
    (workspace / "tiny.txt").write_text("\n".join([words] * 3), encoding="utf-8")
    example_reason = json.loads(load_prompt("tokenizer_advice").examples[0]["assistant"])["reasons"][0]
    reply = (json.dumps({"type": "WordPiece", "vocab_size": 10000, "reasons": ["big is better"]}) + "\n" +
             json.dumps({"type": "BPE", "vocab_size": 400, "reasons": [example_reason]}) + "\n" +
             json.dumps({"type": "BPE", "vocab_size": 300, "reasons": ["84 distinct words fit a few hundred tokens"]}))
    server = llm_server(Behaviour(text=reply), Behaviour(text=reply.splitlines()[0]), idle_s=5, timeout_s=20)

    choice = choose_tokenizer_settings([workspace / "tiny.txt"])
    assert (choice["chooser"], choice["type"], choice["vocab_size"]) == ("llm", "BPE", 300)

    (workspace / "other.txt").write_text("\n".join([words[::-1]] * 3), encoding="utf-8")
    notices: list[str] = []
    with usage_scope(UsageScope(on_notice=notices.append)):
        refused = choose_tokenizer_settings([workspace / "other.txt"])
    assert refused["chooser"].startswith("builtin (the LLM's answer was unusable): ")
    assert "vocab_size 10,000 does not fit this corpus" in refused["chooser"]
    assert notices and notices[0].startswith("tokenizer advice: LLM answer unusable")
    assert len(server.requests) == 2


TWO_LAYER = '''import torch
from torch import nn


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(16, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))
'''


def test_an_analysis_keeps_only_sentences_that_agree_with_the_measurement(llm_server, workspace):
    (workspace / "small.py").write_text(TWO_LAYER, encoding="utf-8")
    grounded = "The body (Linear) holds 544 of the 676 parameters."
    invented = "The head has 12,345 parameters, far too many."
    looping = "Most of the work is in the body layer. " * 60  # until the 400-token cap cuts it
    server = llm_server(Behaviour(text=f"{grounded} {invented} {looping}"), idle_s=5, timeout_s=20)

    summary = pytorch_model_summary("small.py", "Small", [1, 16])

    assert len(server.requests) == 1
    assert summary["analysis"] == f"{grounded} Most of the work is in the body layer."
    assert "with numbers not in the measurement" in summary["analysis_backend"]
    assert "repeated" in summary["analysis_backend"] and "cut off" in summary["analysis_backend"]
    assert summary["total_params"] == 676  # numbers come from the measurement
