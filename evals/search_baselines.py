"""The two search baselines of the research evals, given the wall-clock time the builtin planner used.

- **fixed**: one reasonable model (the modality's baseline design of the search space, trained
  with its default settings): a short timed run to learn its speed, then ``pytorch_full_trainer``
  for as many epochs as fit in what is left (the research run's own final-training config:
  cosine schedule, early stopping on the task metric, best checkpoint kept);
- **random**: random search over the same space: random designs quick-evaluated with the task's
  ``quick_epochs`` until 60% of the budget is used, then the best one trained like ``fixed``.

Both build their configs with the research graph's own functions (``graphs.evaluate.eval_config``
and ``graphs.nodes_final.trainer_config``), so every task kind the graph handles is handled here.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

from torchscout.agent import search_space
from torchscout.agent.records import CandidateRecord, TokenizerRecord
from torchscout.agent.task import Task
from torchscout.agent.training_configs import FullTrainConfig, QuickEvalConfig, TrainingRecord
from torchscout.graphs.evaluate import eval_config, metric_value
from torchscout.graphs.nodes_final import trainer_config
from torchscout.graphs.state import EvaluationJob
from torchscout.tools.errors import ToolError, UserCodeError
from torchscout.tools.modeling.assembler import pytorch_model_assembler
from torchscout.tools.training.evaluation import pytorch_full_trainer, pytorch_quick_evaluator

RANDOM_SEARCH_SHARE = 0.6
MAX_FINAL_EPOCHS = 200
MIN_FINAL_SECONDS = 5.0
SPEED_PROBE_EPOCHS = 2  # the fixed model's timing run
VALIDATION_MARGIN = 1.25  # an epoch's validation pass and bookkeeping on top of its training time
CANDIDATE_ERRORS = (ToolError, UserCodeError, RuntimeError, ValueError)


@dataclass
class Model:
    """An assembled design: what the training tools need to train it."""

    candidate: CandidateRecord
    params: int


@dataclass
class QuickResult:
    """A quick evaluation's metric and what it says about the model's training speed."""

    metric: float | None
    seconds_per_epoch: float  # training + validation of one epoch
    overhead_s: float         # loading, checks and set-up, paid once per training run


def tokenizers_for(task: Task, run_name: str) -> dict[str, TokenizerRecord]:
    if task.modality != "tokens":
        return {}
    from torchscout.graphs.text_data import train_tokenizers

    return train_tokenizers(task, run_name, f"evals_runs/{run_name}")


def build(task: Task, blueprint: dict[str, Any], name: str, vocab_size: int | None) -> Model:
    """Assemble ``blueprint`` into evals_runs/<name>/model.py."""
    class_name = "".join(part.title() for part in name.replace("-", "_").split("_"))
    config = search_space.compile_blueprint(blueprint, task, class_name, vocab_size=vocab_size)
    script = f"evals_runs/{name}/model.py"
    result = pytorch_model_assembler(config, script)
    candidate = CandidateRecord(id=name, script=script, class_name=class_name, vocab_size=vocab_size,
                                training=training_of(blueprint))
    return Model(candidate=candidate, params=int(result["total_params"]))


def training_of(blueprint: dict[str, Any]) -> TrainingRecord:
    optimizer = blueprint["optimizer"]
    lr = min(blueprint["lr"] * (10 if optimizer == "SGD" else 1), 1.0)  # as the builtin planner does
    return TrainingRecord(optimizer=optimizer, lr=lr, weight_decay=0.01 if optimizer == "AdamW" else 0.0,
                          momentum=0.9 if optimizer == "SGD" else None)


def _quick_config(task: Task, model: Model, tokenizers: dict[str, TokenizerRecord], epochs: int,
                  time_budget_s: float) -> QuickEvalConfig:
    job = EvaluationJob(key=f"{model.candidate['id']}/quick", kind="quick", candidate_id=model.candidate["id"],
                        training=model.candidate["training"], seed=task.seed, epochs=epochs,
                        max_steps=task.budget.quick_max_steps, task=task.model_dump(), run_dir="evals_runs",
                        tokenizers=tokenizers, candidate=model.candidate, reserve_s=0.0, time_left_s=time_budget_s)
    return eval_config(job, time_budget_s)


def quick(task: Task, model: Model, tokenizers: dict[str, TokenizerRecord], epochs: int,
          time_budget_s: float) -> QuickResult:
    result = pytorch_quick_evaluator(model.candidate["script"], model.candidate["class_name"],
                                     _quick_config(task, model, tokenizers, epochs, time_budget_s))
    history = result.get("history") or []
    if result.get("status") != "completed" or not history:
        return QuickResult(None, math.inf, 0.0)
    # the fastest epoch: the first one also pays one-time warm-up costs
    train_s = [float(entry.get("epoch_time_s") or 0.0) for entry in history]
    per_epoch = VALIDATION_MARGIN * min(train_s)
    overhead = max(result["duration_s"] - VALIDATION_MARGIN * sum(train_s), 0.0)
    return QuickResult(metric_value(result, task), per_epoch, overhead)


def final_training(task: Task, model: Model, tokenizers: dict[str, TokenizerRecord], seconds_left: float,
                   speed: QuickResult, name: str) -> dict[str, Any]:
    """Train for at most the epochs that fit in ``seconds_left``, as the research run's final training does."""
    training_s = max(seconds_left - speed.overhead_s, MIN_FINAL_SECONDS)
    epochs = int(max(1, min(MAX_FINAL_EPOCHS, training_s // max(speed.seconds_per_epoch, 1e-3))))
    config: FullTrainConfig = trainer_config(task, model.candidate, model.candidate["training"], tokenizers,
                                             name, training_s, epochs=epochs)
    config["wandb"] = {**config["wandb"], "mode": "disabled"}
    result = pytorch_full_trainer(model.candidate["script"], model.candidate["class_name"], config,
                                  experiment_name=name, log_base_dir="evals_runs/final")
    best = result.get("best_metric") or {}
    return {"metric": best.get("value"), "epochs": len(result.get("history") or []), "status": result.get("status"),
            "final_run": {"script": model.candidate["script"], "class_name": model.candidate["class_name"],
                          "config": config}}


def fixed_baseline(task: Task, budget_s: float) -> dict[str, Any]:
    """The modality's baseline design, trained for the whole budget."""
    started = time.monotonic()
    tokenizers = tokenizers_for(task, f"fixed-{task.name}")
    blueprint = dict(search_space.BASELINES[task.modality])
    vocab = None
    if tokenizers:
        sizes = sorted(int(size) for size in tokenizers)
        vocab = sizes[len(sizes) // 2]
        blueprint["vocab_size"] = vocab
    model = build(task, blueprint, f"fixed_{task.name}", vocab)
    speed = quick(task, model, tokenizers, SPEED_PROBE_EPOCHS, budget_s)
    left = budget_s - (time.monotonic() - started)
    final = final_training(task, model, tokenizers, left, speed, f"fixed-{task.name}")
    return {"best_metric": final["metric"], "params": model.params, "wall_s": round(time.monotonic() - started, 1),
            "evaluations": 2, "final_epochs": final["epochs"], "design": search_space.signature(blueprint),
            "final_run": final["final_run"]}


def _random_blueprint(task: Task, rng: random.Random, vocab_sizes: list[int]) -> dict[str, Any]:
    blueprint = {axis: rng.choice(choices) for axis, choices in search_space.space_for(task.modality).items()}
    if vocab_sizes:
        blueprint["vocab_size"] = rng.choice(vocab_sizes)
    return search_space.normalize(blueprint, task.modality)


def random_search(task: Task, budget_s: float) -> dict[str, Any]:
    """Random designs from the same space for 60% of the budget, then the best trained in the rest."""
    started = time.monotonic()
    rng = random.Random(task.seed)
    tokenizers = tokenizers_for(task, f"random-{task.name}")
    vocab_sizes = sorted(int(size) for size in tokenizers)
    tried: list[dict[str, Any]] = []
    seen: set[str] = set()
    while time.monotonic() - started < RANDOM_SEARCH_SHARE * budget_s or not any(t["metric"] for t in tried):
        if len(tried) >= 64 or time.monotonic() - started > 0.9 * budget_s:
            break
        blueprint = _random_blueprint(task, rng, vocab_sizes)
        if search_space.signature(blueprint) in seen:
            continue
        seen.add(search_space.signature(blueprint))
        entry: dict[str, Any] = {"blueprint": blueprint, "metric": None}
        try:
            model = build(task, blueprint, f"random_{task.name}_{len(tried)}", blueprint.get("vocab_size"))
            left = RANDOM_SEARCH_SHARE * budget_s - (time.monotonic() - started)
            speed = quick(task, model, tokenizers, task.budget.quick_epochs, max(left, MIN_FINAL_SECONDS))
            entry.update(model=model, metric=speed.metric, speed=speed)
        except CANDIDATE_ERRORS as exc:
            entry["error"] = str(exc).splitlines()[0][:200]
        tried.append(entry)
    scored = [entry for entry in tried if entry["metric"] is not None]
    if not scored:
        return {"best_metric": None, "params": None, "wall_s": round(time.monotonic() - started, 1),
                "evaluations": len(tried), "error": "no random design trained successfully"}
    best = (max if task.maximize else min)(scored, key=lambda entry: entry["metric"])
    left = budget_s - (time.monotonic() - started)
    final = final_training(task, best["model"], tokenizers, left, best["speed"], f"random-{task.name}")
    return {"best_metric": final["metric"], "params": best["model"].params,
            "wall_s": round(time.monotonic() - started, 1), "evaluations": len(tried) + 1,
            "final_epochs": final["epochs"], "design": search_space.signature(best["blueprint"]),
            "final_run": final["final_run"]}
