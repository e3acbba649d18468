"""The planning context as compact text for the LLM planner's prompt.

A model reads tables far better than nested JSON, and every token of history costs on each
round, so the context is rendered as short sections::

    TASK      name, goal, dataset, input, classes, metric and direction, target, limits
    VOCABULARY   the layer types and searched axes of the builtin space for these inputs
    LEADERBOARD  best first: id | metric | params | FLOPs | time | optimizer | design in one line
    FAILED    id, status and the last lines of the error (traceback tail)
    CURVES    per-epoch validation metric of the leading candidates
    ANALYSES  the summary tool's analysis of the leading candidates

The rendering is deterministic (a function of the context only), so identical inputs give
identical prompts and the response cache answers a replayed round.
"""

from __future__ import annotations

import json
from typing import Any

from torchscout.agent.proposal import CandidateOutcome, PlanningContext
from torchscout.agent.records import FAILED_STATUSES
from torchscout.agent.search_space import vocabulary_text
from torchscout.agent.task import Task
from torchscout.agent.training_configs import TrainingRecord

LEADERBOARD_ROWS = 10
FAILED_ROWS = 6
ERROR_TAIL_LINES = 6
ERROR_TAIL_CHARS = 700
CURVE_ROWS = 4
ANALYSIS_CHARS = 500


def human_count(value: float | int | None) -> str:
    """12345 -> '12.3k', 4.2e6 -> '4.2M'; '-' for unknown."""
    if value is None:
        return "-"
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.1f}{suffix}"
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def _param_text(params: dict[str, Any]) -> str:
    return ",".join(f"{key}={json.dumps(value, separators=(',', ':'))}" for key, value in params.items())


def layer_text(layer: dict[str, Any]) -> str:
    """One layer of a blueprint in one short token: ``Conv2d(out_channels=32,kernel_size=3)``."""
    kind = str(layer.get("type", "?"))
    if kind == "Residual" and isinstance(layer.get("layers"), list):
        return f"Residual[{layers_text(layer['layers'])}]"
    if kind == "Parallel" and isinstance(layer.get("branches"), list):
        branches = " | ".join(layers_text(branch) for branch in layer["branches"] if isinstance(branch, list))
        return f"Parallel[{branches}]"
    params = layer.get("params") or {}
    return f"{kind}({_param_text(params)})" if params else kind


def layers_text(layers: list[Any]) -> str:
    return " > ".join(layer_text(layer) if isinstance(layer, dict) else str(layer) for layer in layers)


def design_text(item: CandidateOutcome) -> str:
    layers = (item.model_config_ or {}).get("layers")
    return layers_text(layers) if isinstance(layers, list) and layers else "(no blueprint recorded)"


def training_text(training: TrainingRecord | None) -> str:
    if not training:
        return "-"
    text = f"{training.get('optimizer', '?')} lr={training.get('lr', '?')}"
    if training.get("weight_decay"):
        text += f" wd={training['weight_decay']}"
    if training.get("momentum") is not None:
        text += f" mom={training['momentum']}"
    return text


def error_tail(error: str | None) -> str:
    """The last lines of an error or traceback, where the cause usually is."""
    if not error:
        return "(no error text recorded)"
    lines = [line for line in error.strip().splitlines() if line.strip()]
    tail = "\n".join(lines[-ERROR_TAIL_LINES:])
    return tail[-ERROR_TAIL_CHARS:]


def task_text(task: Task, vocab_sizes: list[int]) -> str:
    budget = task.budget
    lines = [
        f"name: {task.name}",
        f"goal: {task.goal or '(none given)'}",
        f"dataset: {task.dataset}" + (f" {json.dumps(task.dataset_params)}" if task.dataset_params else ""),
        f"input: one sample has shape {task.input_shape} ({task.input_dtype}, {task.modality}); "
        f"the batch dimension comes first",
        (f"predicts: {task.num_targets} regression target(s), loss {task.loss}" if task.is_regression
         else f"classes: {task.num_classes}"),
        f"metric: {task.metric} ({'higher' if task.maximize else 'lower'} is better)"
        + (f", target {task.target}" if task.target is not None else ""),
        f"quick evaluation: {budget.quick_epochs} epoch(s), batch size {budget.batch_size}",
    ]
    limits = []
    if budget.max_params:
        limits.append(f"at most {human_count(budget.max_params)} parameters")
    if budget.max_flops:
        limits.append(f"at most {human_count(budget.max_flops)} FLOPs per sample")
    if limits:
        lines.append("limits (candidates over them are rejected unevaluated): " + ", ".join(limits))
    if vocab_sizes:
        lines.append(f"tokenizers trained, pick one per candidate with vocab_size: {sorted(vocab_sizes)}")
    return "\n".join(lines)


def leaderboard_text(context: PlanningContext) -> str:
    ranked = context.ranked()
    if not ranked:
        return "(no candidate has been evaluated yet)"
    rows = ["id | " + context.task.metric + " | params | FLOPs | time | training | design"]
    for item in ranked[:LEADERBOARD_ROWS]:
        duration = f"{item.duration_s:.1f}s" if item.duration_s is not None else "-"
        rows.append(f"{item.id} | {item.metric:.4f} | {human_count(item.params)} | {human_count(item.flops)} | "
                    f"{duration} | {training_text(item.training)} | {design_text(item)}")
    if len(ranked) > LEADERBOARD_ROWS:
        rows.append(f"... and {len(ranked) - LEADERBOARD_ROWS} more evaluated candidates")
    return "\n".join(rows)


def failed_candidates(context: PlanningContext) -> list[CandidateOutcome]:
    """Candidates that produced no metric because something went wrong, latest round first."""
    failed = [item for item in context.history
              if item.metric is None and (item.error or item.status in FAILED_STATUSES)]
    return sorted(failed, key=lambda item: (-item.round, item.id))


def failures_text(context: PlanningContext) -> str:
    failed = failed_candidates(context)
    if not failed:
        return "(none)"
    blocks = [f"{item.id} (round {item.round}, {item.status}): {design_text(item)}\n  error: "
              + error_tail(item.error).replace("\n", "\n  ") for item in failed[:FAILED_ROWS]]
    return "\n".join(blocks)


def _leaders_with(context: PlanningContext, attribute: str) -> list[tuple[CandidateOutcome, Any]]:
    # `curve` and `analysis` are optional extras a graph may attach to the outcomes it passes in
    found = []
    for item in context.ranked():
        value = getattr(item, attribute, None)
        if value:
            found.append((item, value))
    return found[:CURVE_ROWS]


def curves_text(context: PlanningContext) -> str:
    rows = []
    for item, curve in _leaders_with(context, "curve"):
        values = " ".join(f"{float(value):.3f}" for value in curve if isinstance(value, int | float))
        rows.append(f"{item.id}: {values}")
    return "\n".join(rows) or "(no per-epoch curves recorded)"


def analyses_text(context: PlanningContext) -> str:
    rows = [f"{item.id}: {str(text).strip()[:ANALYSIS_CHARS]}" for item, text in _leaders_with(context, "analysis")]
    return "\n".join(rows) or "(no summary analyses recorded)"


def render_context(context: PlanningContext) -> str:
    """Every section, ready to go into the planner prompt's ``${context}``."""
    sections = [
        ("TASK", task_text(context.task, context.vocab_sizes)),
        (f"VOCABULARY FOR {context.task.modality.upper()} INPUTS", vocabulary_text(context.task.modality)),
        (f"LEADERBOARD (best first, {len(context.ranked())} evaluated)", leaderboard_text(context)),
        ("FAILED CANDIDATES (latest first)", failures_text(context)),
        ("PER-EPOCH VALIDATION CURVES", curves_text(context)),
        ("SUMMARY ANALYSES", analyses_text(context)),
    ]
    return "\n\n".join(f"## {title}\n{body}" for title, body in sections)


def blueprint_json(item: CandidateOutcome) -> str:
    """The full layer list of one candidate as compact JSON (to be edited by the model)."""
    return json.dumps((item.model_config_ or {}).get("layers", []), separators=(",", ":"))
