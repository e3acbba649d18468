"""What the LLM planner asks the model to return, and how a reply becomes a :class:`Proposal`.

The model answers in a small schema (:class:`PlannerAnswer`: candidates as a layer list, training
settings, a rationale) rather than the full ``Proposal``: the input shape, dtype and class names
come from the task, not from the model. The prompts describe that schema by example (the
``<...>`` format at the end of each planner prompt), not as a JSON Schema document, which weak
models echo back. :func:`candidates_from_answer` checks a reply against the task and the history
and raises :class:`AnswerProblem` with the reasons, which the planner sends back to the model:

- the layer format, optimizer names, tokenizer vocabularies, duplicates of earlier designs;
- the task: each candidate is compiled by the assembler's compiler in the sandbox child (a fraction
  of a second, mostly on meta tensors): it must accept this task's input (an Embedding cannot read
  float images, a Conv2d cannot read flat vectors), give one output per class, and stay within
  ``max_params``.

Layer types are *not* checked against a fixed list: the model may invent a layer, and the
assembler's LLM backend writes the code for it (such a candidate is measured after assembly).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from torchscout.agent.llm_answers import AnswerProblem
from torchscout.agent.proposal import CandidateSpec, OptimizerTrialSpec, PlanningContext, TrainingSettings
from torchscout.agent.training_configs import TrainingRecord
from torchscout.tools.codegen.llm_json import JSONObject
from torchscout.tools.errors import ToolError
from torchscout.tools.modeling.blueprint_compiler import compile_blueprint
from torchscout.tools.optim.specs import resolve_optimizer_class
from torchscout.tools.sandbox.runner import run_in_sandbox

# compile_blueprint renders the source for this (never written) path
_CHECK_PATH = ".torchscout/planner_check.py"
CHECK_TIMEOUT_S = 60.0


class PlannedCandidate(BaseModel):
    """One architecture the model proposes."""

    model_config = ConfigDict(extra="ignore")

    layers: list[dict[str, Any]] = Field(
        min_length=1,
        description="The model's layers in order, in the assembler's format: {type, params} per layer; "
                    "{type: 'Residual', layers: [...]}; {type: 'Parallel', branches: [[...], [...]], "
                    "merge: 'concat'|'add', dim: 1}.")
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    vocab_size: int | None = Field(default=None, description="Text tasks: the tokenizer vocabulary to use.")
    parent: str | None = Field(default=None, description="Id of the candidate this one changes or fixes.")
    rationale: str = Field(min_length=1, description="Why this candidate is worth an evaluation.")


class PlannerAnswer(BaseModel):
    """The model's answer for one round."""

    model_config = ConfigDict(extra="ignore")

    notes: str = Field(default="", description="The reasoning for the round as a whole, briefly.")
    candidates: list[PlannedCandidate] = Field(min_length=1)


class OptimizerAnswer(BaseModel):
    """The model's optimizer settings for the best architecture."""

    model_config = ConfigDict(extra="ignore")

    notes: str = Field(default="", description="The reasoning, briefly.")
    trials: list[OptimizerTrialSpec] = Field(min_length=1)


def _layer_problems(layers: list[Any], where: str) -> list[str]:
    problems = []
    for index, layer in enumerate(layers):
        place = f"{where}.layers[{index}]"
        if not isinstance(layer, dict) or not isinstance(layer.get("type"), str) or not layer["type"].strip():
            problems.append(f"{place}: every layer is an object with a 'type' string")
            continue
        if not layer["type"].replace("_", "a").isalnum():
            problems.append(f"{place}: type {layer['type']!r} must be a class name such as 'Conv2d'")
        if "params" in layer and not isinstance(layer["params"], dict):
            problems.append(f"{place}: 'params' must be an object of keyword arguments")
        if layer["type"] == "Residual":
            inner = layer.get("layers")
            if not isinstance(inner, list) or not inner:
                problems.append(f"{place}: a Residual needs a non-empty 'layers' list")
            else:
                problems += _layer_problems(inner, place)
        if layer["type"] == "Parallel":
            branches = layer.get("branches")
            if not isinstance(branches, list) or len(branches) < 2 or not all(isinstance(b, list) for b in branches):
                problems.append(f"{place}: a Parallel needs 'branches', a list of at least two layer lists")
            else:
                for number, branch in enumerate(branches):
                    problems += _layer_problems(branch, f"{place}.branches[{number}]")
    return problems


def _optimizer_problem(training: TrainingSettings, where: str) -> str | None:
    try:
        resolve_optimizer_class(training.optimizer)
    except ToolError as exc:
        return f"{where}.training.optimizer: {exc}"
    return None


def design_signature(layers: list[Any], training: TrainingRecord | TrainingSettings | None) -> str:
    """Equal for two candidates with the same layers and training settings (duplicate detection)."""
    settings = training.model_dump() if isinstance(training, TrainingSettings) else training
    return json.dumps({"layers": layers, "training": settings}, sort_keys=True, default=str)


def _with_vocabulary(layers: list[dict[str, Any]], vocab_size: int, where: str) -> list[dict[str, Any]]:
    """The layers with the (first) Embedding sized for the tokenizer the candidate uses."""
    fixed = json.loads(json.dumps(layers))
    for layer in fixed:
        if layer.get("type") == "Embedding":
            layer["params"] = {**(layer.get("params") or {}), "num_embeddings": vocab_size}
            return fixed
    raise AnswerProblem(f"{where}: a model for token ids must start with an Embedding layer "
                        f"(num_embeddings = its vocab_size)")


def _vocab_for(candidate: PlannedCandidate, context: PlanningContext, where: str) -> int | None:
    if context.task.modality != "tokens":
        return None
    sizes = sorted(context.vocab_sizes)
    if candidate.vocab_size is None:
        if not sizes:
            raise AnswerProblem(f"{where}.vocab_size: give the tokenizer vocabulary size for this text model")
        return sizes[len(sizes) // 2]
    if sizes and candidate.vocab_size not in sizes:
        raise AnswerProblem(f"{where}.vocab_size: {candidate.vocab_size} has no trained tokenizer; "
                            f"use one of {sizes}")
    return candidate.vocab_size


def _task_problem(model_config: JSONObject, context: PlanningContext, where: str) -> str | None:
    """Why the candidate cannot work on this task (input kind, outputs, max_params), or None.

    The blueprint is compiled in the sandbox child, as the assembler compiles it: a model's answer
    may ask for a layer too large to build. A blueprint naming a file of the user's (``module_path``)
    is left to the assembler; one naming a new layer type is measured after the LLM wrote it.
    """
    if "module_path" in json.dumps(model_config):
        return None
    result = run_in_sandbox(compile_blueprint, {"config": model_config, "output_path": _CHECK_PATH},
                            timeout_s=CHECK_TIMEOUT_S, threads=1)
    if not result.ok:
        if result.error_type in ("BlueprintError", "ToolError", "MemoryError"):
            return f"{where}: it does not fit this task's input {context.task.input_shape}: " + \
                str(result.error).replace("model_config.", "")
        return None  # the check itself could not run (a timeout): the assembler decides
    compiled = result.value
    if "missing_block" in compiled:
        return None
    outputs = compiled["output_shape"]
    expected = [context.task.output_size]
    if outputs != expected:
        per = "one value per target" if context.task.task_type == "regression" else "one logit per class"
        return (f"{where}: the model outputs shape {outputs} per sample; this task needs {expected} "
                f"({per}): end with a reduction and Linear(out_features={expected[0]})")
    limit = context.task.budget.max_params
    if limit is not None and compiled["total_params"] > limit:
        return (f"{where}: {compiled['total_params']:,} parameters, over the task's max_params {limit:,}; "
                "make it narrower or shallower")
    return None


def candidates_from_answer(answer: PlannerAnswer, context: PlanningContext) -> list[CandidateSpec]:
    """The usable candidates of ``answer`` as specs (raises AnswerProblem when none is usable)."""
    problems: list[str] = []
    seen = {design_signature((item.model_config_ or {}).get("layers", []), item.training)
            for item in context.history}
    known_ids = {item.id for item in context.history}
    specs: list[CandidateSpec] = []
    for index, candidate in enumerate(answer.candidates):
        where = f"candidates[{index}]"
        found = _layer_problems(candidate.layers, where)
        optimizer_problem = _optimizer_problem(candidate.training, where)
        if optimizer_problem:
            found.append(optimizer_problem)
        if found:
            problems += found
            continue
        try:
            vocab_size = _vocab_for(candidate, context, where)
            layers = _with_vocabulary(candidate.layers, vocab_size, where) if vocab_size else candidate.layers
        except AnswerProblem as problem:
            problems.append(str(problem))
            continue
        signature = design_signature(layers, candidate.training)
        if signature in seen:
            problems.append(f"{where}: the same layers and training as an earlier candidate; propose a new design")
            continue
        model_config = {"model_name": f"R{context.round}C{len(specs)}", "input_shape": list(context.task.input_shape),
                        "input_dtype": context.task.input_dtype, "layers": layers}
        task_problem = _task_problem(model_config, context, where)
        if task_problem:
            problems.append(task_problem)
            continue
        seen.add(signature)
        parent = candidate.parent if candidate.parent in known_ids else None
        specs.append(CandidateSpec(model_config=model_config, training=candidate.training,
                                   rationale=candidate.rationale.strip(), parent=parent, vocab_size=vocab_size))
        if len(specs) == context.num_candidates:
            break
    if not specs:
        raise AnswerProblem("no candidate was usable: " + "; ".join(problems))
    return specs


def trials_from_answer(answer: OptimizerAnswer, count: int) -> list[OptimizerTrialSpec]:
    """Distinct, valid optimizer trials (raises AnswerProblem when none is usable)."""
    problems: list[str] = []
    trials: list[OptimizerTrialSpec] = []
    names: set[str] = set()
    for index, trial in enumerate(answer.trials):
        where = f"trials[{index}]"
        problem = _optimizer_problem(trial.training, where)
        if problem:
            problems.append(problem)
            continue
        if not trial.name.replace("_", "a").replace("-", "a").isalnum() or trial.name in names:
            problems.append(f"{where}.name: use a short unique name of letters, digits, '_' or '-'")
            continue
        names.add(trial.name)
        trials.append(trial)
        if len(trials) == count:
            break
    if not trials:
        raise AnswerProblem("no optimizer trial was usable: " + "; ".join(problems))
    return trials
