"""Shared pieces for the LLM planner and agent-mode tests: scripted chat models and contexts."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from torchscout.agent.proposal import CandidateOutcome, PlanningContext
from torchscout.agent.task import load_task


class CountingChatModel(GenericFakeChatModel):
    """A scripted chat model that counts the calls that reached it (cache hits do not)."""

    calls: int = 0
    seen: list[list[Any]] = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.calls += 1
        self.seen.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


class ToolCallingChatModel(CountingChatModel):
    """Scripted tool-calling model: bind_tools returns the model itself (the script holds the calls)."""

    def bind_tools(self, tools, *, tool_choice=None, **kwargs):
        return self


def scripted(*replies: Any, tool_calling: bool = False) -> CountingChatModel:
    model_class = ToolCallingChatModel if tool_calling else CountingChatModel
    return model_class(messages=iter(list(replies)), seen=[])


def digits_task(**budget: Any):
    return load_task({"name": "digits", "goal": "A small accurate digit classifier.", "dataset": "digits",
                      "input_shape": [1, 8, 8], "num_classes": 10, "metric": "accuracy",
                      "budget": {"candidates_per_round": 2, **budget}})


CONV_LAYERS = [
    {"type": "Conv2d", "params": {"out_channels": 16, "kernel_size": 3, "padding": 1}},
    {"type": "ReLU"},
    {"type": "MaxPool2d", "params": {"kernel_size": 2}},
    {"type": "Flatten"},
    {"type": "Linear", "params": {"out_features": 10}},
]

WIDER_CONV = [{**CONV_LAYERS[0], "params": {**CONV_LAYERS[0]["params"], "out_channels": 32}}, *CONV_LAYERS[1:]]

MLP_LAYERS = [
    {"type": "Flatten"},
    {"type": "Linear", "params": {"out_features": 128}},
    {"type": "GELU"},
    {"type": "Linear", "params": {"out_features": 10}},
]


def outcome(candidate_id: str, round_index: int, layers: list[dict[str, Any]], metric: float | None,
            error: str | None = None, status: str | None = None) -> CandidateOutcome:
    return CandidateOutcome(
        id=candidate_id, round=round_index, status=status or ("evaluated" if metric is not None else "failed"),
        model_config={"model_name": candidate_id, "input_shape": [1, 8, 8], "layers": layers},
        training={"optimizer": "AdamW", "lr": 0.003, "weight_decay": 0.01}, metric=metric,
        params=12_000 if metric is not None else None, flops=250_000 if metric is not None else None,
        error=error, duration_s=3.2 if metric is not None else None)


def context(round_index: int, history: list[CandidateOutcome], **budget: Any) -> PlanningContext:
    task = digits_task(**budget)
    return PlanningContext(task=task, round=round_index, num_candidates=task.budget.candidates_per_round,
                           history=history)


def answer_json(*candidates: dict[str, Any], notes: str = "Two ideas.") -> str:
    return json.dumps({"notes": notes, "candidates": list(candidates)})


def planned(layers: list[dict[str, Any]], rationale: str, **extra: Any) -> dict[str, Any]:
    return {"layers": layers, "training": {"optimizer": "AdamW", "lr": 0.003, "weight_decay": 0.01},
            "rationale": rationale, **extra}
