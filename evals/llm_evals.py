"""LLM evals (``--suite llm``): what a configured chat model adds, measured.

- **novel_blocks**: blueprints naming layer types torch.nn lacks; the assembler's LLM backend
  writes each block. Pass = the model file is written and validated.
- **custom_optimizers**: ``register_custom_optimizer`` from a description. Pass = registered.
- **planner**: the LLM planner against the builtin planner on the quick digits task.

For every model call: latency and tokens (from the reply's usage metadata, when the server
reports it), through a callback on the chat model. *Repair rounds* are the calls beyond one
per generated file. Skipped when no LLM is configured.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from evals.eval_tasks import EVAL_TASKS
from evals.research_evals import planner_run
from torchscout.settings import configure
from torchscout.tools.codegen.llm import get_chat_model, model_identity
from torchscout.tools.errors import ToolError, UserCodeError

NOVEL_BLUEPRINTS: list[dict[str, Any]] = [
    {"model_name": "SENet", "input_shape": [1, 8, 8], "layers": [
        {"type": "Conv2d", "params": {"out_channels": 16, "kernel_size": 3, "padding": 1}}, {"type": "ReLU"},
        {"type": "SqueezeExcite", "params": {"channels": 16, "reduction": 4}},
        {"type": "Flatten"}, {"type": "Linear", "params": {"out_features": 10}}]},
    {"model_name": "SeparableNet", "input_shape": [3, 32, 32], "layers": [
        {"type": "DepthwiseSeparableConv2d", "params": {"in_channels": 3, "out_channels": 32, "kernel_size": 3}},
        {"type": "ReLU"}, {"type": "AdaptiveAvgPool2d", "params": {"output_size": 1}}, {"type": "Flatten"},
        {"type": "Linear", "params": {"out_features": 10}}]},
    {"model_name": "GluMlp", "input_shape": [64], "layers": [
        {"type": "GatedLinearUnit", "params": {"in_features": 64, "out_features": 128}},
        {"type": "Linear", "params": {"out_features": 5}}]},
    {"model_name": "PosEncNet", "input_shape": [32], "input_dtype": "int64", "layers": [
        {"type": "Embedding", "params": {"num_embeddings": 300, "embedding_dim": 32}},
        {"type": "LearnedPositionalEncoding", "params": {"max_len": 32, "dim": 32}},
        {"type": "Mean", "params": {"dim": 1}}, {"type": "Linear", "params": {"out_features": 4}}]},
]

OPTIMIZER_DESCRIPTIONS: dict[str, str] = {
    "LionOpt": "The Lion optimizer (sign of an interpolation of momentum and gradient, decoupled weight "
               "decay), with parameters lr, betas=(0.9, 0.99), weight_decay.",
    "CentralizedAdamW": "AdamW with gradient centralization: subtract the mean of each weight gradient "
                        "(over all dims but the first) for tensors with more than one dimension.",
    "LookaheadSGD": "SGD with momentum wrapped in Lookahead: every k=5 steps move slow weights towards the "
                    "fast weights by alpha=0.5 and copy them back.",
}


class CallRecorder(BaseCallbackHandler):
    """Latency and token counts of every chat-model call."""

    def __init__(self) -> None:
        self.started: dict[uuid.UUID, float] = {}
        self.calls: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized: dict[str, Any], messages: Any, *, run_id: uuid.UUID,
                            **kwargs: Any) -> None:
        self.started[run_id] = time.perf_counter()

    def on_llm_end(self, response: LLMResult, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        latency = time.perf_counter() - self.started.pop(run_id, time.perf_counter())
        tokens = None
        for generations in response.generations:
            for generation in generations:
                usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
                if usage:
                    tokens = (tokens or 0) + int(usage.get("total_tokens", 0))
        self.calls.append({"latency_s": latency, "tokens": tokens})


def _rates(outcomes: list[dict[str, Any]], recorder: CallRecorder, calls_before: int) -> dict[str, Any]:
    calls = recorder.calls[calls_before:]
    tokens = [call["tokens"] for call in calls if call["tokens"] is not None]
    passed = sum(outcome["passed"] for outcome in outcomes)
    files = sum(outcome.get("files", 1) for outcome in outcomes)
    return {"cases": len(outcomes), "pass_rate": passed / len(outcomes) if outcomes else None,
            "calls": len(calls), "calls_per_case": len(calls) / len(outcomes) if outcomes else None,
            "repair_rounds": max(len(calls) - files, 0),
            "tokens_per_call": sum(tokens) / len(tokens) if tokens else None,
            "latency_s_per_call": sum(call["latency_s"] for call in calls) / len(calls) if calls else None,
            "outcomes": outcomes}


def novel_blocks_eval(recorder: CallRecorder) -> dict[str, Any]:
    from torchscout.tools.modeling.assembler import pytorch_model_assembler

    before = len(recorder.calls)
    outcomes = []
    for blueprint in NOVEL_BLUEPRINTS:
        try:
            result = pytorch_model_assembler(blueprint, f"evals_llm/{blueprint['model_name']}.py")
            outcomes.append({"name": blueprint["model_name"], "passed": True,
                             "files": len(result.get("generated_blocks") or [])})
        except (ToolError, UserCodeError) as exc:
            outcomes.append({"name": blueprint["model_name"], "passed": False, "error": str(exc)[:300]})
    return _rates(outcomes, recorder, before)


def custom_optimizer_eval(recorder: CallRecorder) -> dict[str, Any]:
    from torchscout.tools.optim.configurator import pytorch_optimizer_configurator

    before = len(recorder.calls)
    outcomes = []
    for name, description in OPTIMIZER_DESCRIPTIONS.items():
        try:
            pytorch_optimizer_configurator(action="register_custom_optimizer", config_name=name,
                                           optimizer_details={"description": description},
                                           output_script_path=f"evals_llm/optimizers/{name.lower()}.py")
            outcomes.append({"name": name, "passed": True})
        except (ToolError, UserCodeError) as exc:
            outcomes.append({"name": name, "passed": False, "error": str(exc)[:300]})
    return _rates(outcomes, recorder, before)


def run_llm_evals(seed: int = 0) -> dict[str, Any]:
    model = get_chat_model()
    if model is None:
        return {"skipped": "no LLM configured (TORCHSCOUT_LLM is 'builtin'); set it to an init_chat_model "
                           "spec such as openai:gpt-4.1-mini to run this suite"}
    recorder = CallRecorder()
    model.callbacks = [*(model.callbacks or []), recorder]
    configure(llm=model)
    task = {**EVAL_TASKS["digits"].task_data("quick"), "seed": seed}
    planner = {"task": "digits (quick budget)", "methods": {
        "llm": planner_run(task, "llm", f"eval-llm-planner-s{seed}"),
        "builtin": planner_run(task, "builtin", f"eval-builtin-planner-s{seed}"),
    }}
    return {"model": model_identity(model), "novel_blocks": novel_blocks_eval(recorder),
            "custom_optimizers": custom_optimizer_eval(recorder), "planner": planner,
            "model_calls": len(recorder.calls)}
