"""LLM evals (``--suite llm``): what a configured chat model adds, measured.

    python evals/run.py --suite llm --llm openai:NAME     # any OpenAI-compatible server via OPENAI_BASE_URL

- **novel_blocks**: blueprints naming layer types torch.nn lacks; the assembler's LLM backend
  writes each block. Pass = the model file is written and validated.
- **custom_optimizers**: ``register_custom_optimizer`` from a description. Pass = registered.
- **tokenizer_advice**: the ``auto`` tokenizer choice on two corpora. Pass = the LLM's advice was
  usable (sane for the corpus) and used.
- **planner**: the LLM planner against the builtin planner on the quick digits task; its summary
  analyses count for ``summary-analysis``.

Every model call is recorded by torchscout's own call layer (an active
:class:`~torchscout.tools.codegen.llm_usage.UsageScope`): calls, requests, prompt/completion
tokens and seconds per purpose, and whether the purpose's answers were used (``success``).
*Repair rounds* are the calls beyond one per generated file. Skipped when no LLM is configured.
"""

from __future__ import annotations

from typing import Any

from evals.eval_tasks import EVAL_TASKS
from evals.research_evals import planner_run
from torchscout.settings import get_settings
from torchscout.tools.codegen.llm import get_chat_model, model_identity
from torchscout.tools.codegen.llm_usage import UsageScope, usage_by_purpose, usage_scope
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


def _rates(outcomes: list[dict[str, Any]], scope: UsageScope, purpose: str) -> dict[str, Any]:
    calls = [record for record in scope.records if record.purpose == purpose and record.outcome != "cached"]
    passed = sum(outcome["passed"] for outcome in outcomes)
    files = sum(outcome.get("files", 1) for outcome in outcomes)
    tokens = [record.tokens for record in calls]
    return {"cases": len(outcomes), "pass_rate": passed / len(outcomes) if outcomes else None,
            "calls": len(calls), "calls_per_case": len(calls) / len(outcomes) if outcomes else None,
            "repair_rounds": max(len(calls) - files, 0),
            "tokens_per_call": sum(tokens) / len(tokens) if tokens else None,
            "latency_s_per_call": sum(record.seconds for record in calls) / len(calls) if calls else None,
            "outcomes": outcomes}


def novel_blocks_eval(scope: UsageScope) -> dict[str, Any]:
    from torchscout.tools.modeling.assembler import pytorch_model_assembler

    outcomes = []
    for blueprint in NOVEL_BLUEPRINTS:
        try:
            result = pytorch_model_assembler(blueprint, f"evals_llm/{blueprint['model_name']}.py")
            outcomes.append({"name": blueprint["model_name"], "passed": True,
                             "files": len(result.get("generated_blocks") or [])})
        except (ToolError, UserCodeError) as exc:
            outcomes.append({"name": blueprint["model_name"], "passed": False, "error": str(exc)[:300]})
    return _rates(outcomes, scope, "assembler-block")


def custom_optimizer_eval(scope: UsageScope) -> dict[str, Any]:
    from torchscout.tools.optim.configurator import pytorch_optimizer_configurator

    outcomes = []
    for name, description in OPTIMIZER_DESCRIPTIONS.items():
        try:
            pytorch_optimizer_configurator(action="register_custom_optimizer", config_name=name,
                                           optimizer_details={"description": description},
                                           output_script_path=f"evals_llm/optimizers/{name.lower()}.py")
            outcomes.append({"name": name, "passed": True})
        except (ToolError, UserCodeError) as exc:
            outcomes.append({"name": name, "passed": False, "error": str(exc)[:300]})
    return _rates(outcomes, scope, "custom_optimizer")


def tokenizer_advice_eval(scope: UsageScope) -> dict[str, Any]:
    from torchscout.settings import get_settings
    from torchscout.tools.text.corpus_stats import choose_tokenizer_settings

    folder = get_settings().workspace / "evals_llm" / "corpora"
    folder.mkdir(parents=True, exist_ok=True)
    corpora = {"tiny_words": " ".join(f"word{index % 84}" for index in range(2000)),
               "dna": "".join("ACGT"[(index * 7 + index // 3) % 4] for index in range(40_000))}
    outcomes = []
    for name, text in corpora.items():
        path = folder / f"{name}.txt"
        path.write_text(text, encoding="utf-8")
        choice = choose_tokenizer_settings([path])
        outcomes.append({"name": name, "passed": choice["chooser"] == "llm", "type": choice["type"],
                         "vocab_size": choice["vocab_size"], "chooser": choice["chooser"][:200]})
    return _rates(outcomes, scope, "tokenizer_advice")


def _planner_success(run_names: list[str]) -> dict[str, float | None]:
    """Share of rounds the LLM planned, and of summary analyses the LLM wrote, in the LLM planner's runs."""
    import json

    from torchscout.graphs.driver import run_state
    from torchscout.graphs.llm_budget import rounds_planned
    from torchscout.tools.workspace import resolve

    rounds: list[str] = []
    backends: list[str] = []
    for name in run_names:
        state = run_state(name)
        rounds += list(rounds_planned(state).values())
        for summary in sorted(resolve(state["run_dir"]).glob("candidates/*/summary.json")):
            backends.append(str(json.loads(summary.read_text(encoding="utf-8")).get("analysis_backend", "")))
    written = [backend for backend in backends if backend.startswith("llm:")]
    return {"planner": sum(planner == "llm" for planner in rounds) / len(rounds) if rounds else None,
            "summary-analysis": len(written) / len(backends) if backends else None}


def success_by_purpose(results: dict[str, Any]) -> dict[str, float | None]:
    """Each purpose's share of answers that were used (its eval's pass rate)."""
    return {"assembler-block": results["novel_blocks"]["pass_rate"],
            "custom_optimizer": results["custom_optimizers"]["pass_rate"],
            "tokenizer_advice": results["tokenizer_advice"]["pass_rate"],
            **results["planner"].get("success", {})}


def render_purpose_table(llm: dict[str, Any]) -> list[str]:
    """Markdown lines: per purpose, success, calls, whole replies, requests, tokens and seconds."""
    usage = llm.get("by_purpose") or {}
    if not usage:
        return []
    success = llm.get("success") or {}
    lines = ["", "| purpose | success | calls | whole replies | requests | prompt tokens | completion tokens "
                 "| seconds |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for purpose, entry in sorted(usage.items()):
        rate = success.get(purpose)
        shown = "-" if rate is None else f"{100 * rate:.0f}%"
        lines.append(f"| {purpose} | {shown} | {entry['calls']} | {entry['ok']} | {entry['requests']} | "
                     f"{entry['prompt_tokens']:,} | {entry['completion_tokens']:,} | {entry['seconds']:.1f} |")
    return [*lines, ""]


def run_llm_evals(seed: int = 0) -> dict[str, Any]:
    model = get_chat_model()
    if model is None:
        return {"skipped": "no LLM configured (TORCHSCOUT_LLM is 'builtin'); set it to an init_chat_model "
                           "spec such as openai:gpt-4.1-mini (or pass --llm) to run this suite"}
    settings = get_settings()
    scope = UsageScope()
    task = {**EVAL_TASKS["digits"].task_data("quick"), "seed": seed}
    with usage_scope(scope):
        results: dict[str, Any] = {"model": model_identity(model), "novel_blocks": novel_blocks_eval(scope),
                                   "custom_optimizers": custom_optimizer_eval(scope),
                                   "tokenizer_advice": tokenizer_advice_eval(scope)}
        llm_run = f"eval-llm-planner-s{seed}"
        results["planner"] = {"task": "digits (quick budget)", "methods": {
            "llm": planner_run(task, "llm", llm_run),
            "builtin": planner_run(task, "builtin", f"eval-builtin-planner-s{seed}"),
        }, "success": _planner_success([llm_run])}
    results["by_purpose"] = usage_by_purpose([record.as_json() for record in scope.records],
                                             settings.llm_prompt_price, settings.llm_completion_price)
    results["success"] = success_by_purpose(results)
    results["model_calls"] = sum(1 for record in scope.records if record.outcome != "cached")
    return results
