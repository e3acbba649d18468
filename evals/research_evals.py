"""Research evals: the builtin planner against two baselines with the same total training budget.

For each task the builtin planner's research run goes first; its wall-clock time is the budget
``B`` the baselines get:

- **fixed**: one reasonable model (the modality's baseline design of the search space, trained
  with its default settings): one timed epoch to learn its speed, then
  ``pytorch_full_trainer`` for as many epochs as fit in what is left of ``B`` (cosine schedule,
  best checkpoint kept), like the research run's own final training;
- **random**: random search over the same space: random designs quick-evaluated with the task's
  ``quick_epochs`` until 60% of ``B`` is used, then the best one trained like ``fixed`` in the rest.

Reported per method: the best validation metric of its final model, its parameters, wall time
and the evaluations (training runs) used. A small validation set (digits: 180 images) cannot
separate good models by one run, so each method's final training is then repeated with
``REPLICA_SEEDS`` more seeds (other splits and initialisations; outside the budget) and methods
are ranked on the mean: methods within two standard errors of the best are tied, fewer
parameters break a tie, and a remaining tie is reported as one.
Seeds are fixed, so a rerun measures the same thing.
"""

from __future__ import annotations

import logging
import math
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchscout.agent import search_space
from torchscout.agent.task import Task, load_task
from torchscout.graphs.evaluate import dataset_params, metric_value, metrics_requested, optimizer_spec
from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError, UserCodeError
from torchscout.tools.modeling.assembler import pytorch_model_assembler
from torchscout.tools.training.evaluation import pytorch_full_trainer, pytorch_quick_evaluator

logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
RANDOM_SEARCH_SHARE = 0.6
MAX_FINAL_EPOCHS = 200
MIN_FINAL_SECONDS = 5.0
SPEED_PROBE_EPOCHS = 2  # the fixed model's timing run
REPLICA_SEEDS = 2  # each method's final training is repeated with this many more seeds (outside the budget)
VALIDATION_MARGIN = 1.25  # an epoch's validation pass and bookkeeping on top of its training time
CANDIDATE_ERRORS = (ToolError, UserCodeError, RuntimeError, ValueError)

_DIGITS = {
    "name": "digits", "goal": "A small, accurate classifier for 8x8 handwritten digits.", "dataset": "digits",
    "input_shape": [1, 8, 8], "num_classes": 10, "metric": "accuracy", "mode": "max",
}
_TEXT = {
    "name": "text_synthetic", "goal": "Classify generated sentences by topic.", "dataset": "text_classification",
    "dataset_params": {"data_path": "data/text_synthetic.csv", "text_column": "text", "label_column": "label",
                       "max_length": 32},
    "input_shape": [32], "input_dtype": "int64", "num_classes": 4, "metric": "accuracy", "mode": "max",
    "tokenizer": {"type": "BPE", "vocab_sizes": [300, 1000]},
}
_CIFAR = {
    "name": "cifar10", "goal": "A conv net for CIFAR-10.", "dataset": "cifar10", "data_root": "data",
    "input_shape": [3, 32, 32], "num_classes": 10, "metric": "accuracy", "mode": "max",
}

# budgets per suite: `quick` must finish on 2 CPU cores well inside 15 minutes, three methods per task.
# digits/quick: 5 quick epochs (at 3, a 5k-parameter conv net is still ~2 points behind the 20k baseline it
# ties after training, so the search could not see small models) and 40 final epochs (the baselines get
# the same wall time, which the fixed model spends on ~200 epochs).
SUITES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "digits": {**_DIGITS, "budget": {"max_rounds": 4, "candidates_per_round": 6, "screen_steps": 40,
                                         "quick_epochs": 5, "full_epochs": 40, "max_minutes": 3,
                                         "optimizer_trials": 3, "confirm_seeds": 3, "batch_size": 64}},
        "text_synthetic": {**_TEXT, "budget": {"max_rounds": 2, "candidates_per_round": 3, "screen_steps": 40,
                                               "quick_epochs": 2, "full_epochs": 8, "max_minutes": 2,
                                               "optimizer_trials": 1, "confirm_seeds": 2, "batch_size": 64}},
    },
    "full": {
        "digits": {**_DIGITS, "budget": {"max_rounds": 3, "candidates_per_round": 4, "screen_steps": 60,
                                         "quick_epochs": 4, "full_epochs": 20, "max_minutes": 10,
                                         "optimizer_trials": 3, "confirm_seeds": 3, "batch_size": 64}},
        "text_synthetic": {**_TEXT, "budget": {"max_rounds": 2, "candidates_per_round": 4, "screen_steps": 60,
                                               "quick_epochs": 4, "full_epochs": 10, "max_minutes": 8,
                                               "optimizer_trials": 2, "confirm_seeds": 3, "batch_size": 64}},
        "cifar10": {**_CIFAR, "budget": {"max_rounds": 3, "candidates_per_round": 4, "screen_steps": 200,
                                         "quick_epochs": 2, "quick_max_steps": 1500, "full_epochs": 15,
                                         "max_minutes": 45, "max_params": 2_000_000, "optimizer_trials": 2,
                                         "confirm_seeds": 2, "batch_size": 128}},
    },
}


def prepare_data(key: str) -> str | None:
    """Make the task's data available; returns why it is skipped, or None."""
    workspace = get_settings().workspace
    if key == "text_synthetic":
        target = workspace / "data" / "text_synthetic.csv"
        if not target.exists():
            subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "make_text_synthetic.py"),
                            "--out", str(target)], check=True, capture_output=True, text=True)
    if key == "cifar10":
        folders = [workspace / "data", get_settings().data_dir]
        if not any((folder / "cifar-10-batches-py").is_dir() for folder in folders):
            return ("no CIFAR-10 data (put the extracted cifar-10-batches-py folder in the data dir, "
                    "TORCHSCOUT_DATA_DIR, or run online once)")
    return None


# -- the two baselines -------------------------------------------------------------------------


def _tokenizers(task: Task, run_name: str) -> dict[str, dict[str, Any]]:
    if task.modality != "tokens":
        return {}
    from torchscout.graphs.text_data import train_tokenizers

    return train_tokenizers(task, run_name, f"evals_runs/{run_name}")


def _build(task: Task, blueprint: dict[str, Any], name: str, vocab_size: int | None) -> tuple[str, str, int]:
    """Assemble ``blueprint``; returns (script path, class name, parameters)."""
    class_name = "".join(part.title() for part in name.replace("-", "_").split("_"))
    config = search_space.compile_blueprint(blueprint, task, class_name, vocab_size=vocab_size)
    script = f"evals_runs/{name}/model.py"
    result = pytorch_model_assembler(config, script)
    return script, class_name, int(result["total_params"])


def _training_of(blueprint: dict[str, Any]) -> dict[str, Any]:
    optimizer = blueprint["optimizer"]
    lr = min(blueprint["lr"] * (10 if optimizer == "SGD" else 1), 1.0)  # as the builtin planner does
    return {"optimizer": optimizer, "lr": lr, "weight_decay": 0.01 if optimizer == "AdamW" else 0.0,
            "momentum": 0.9 if optimizer == "SGD" else None}


def _eval_config(task: Task, training: dict[str, Any], tokenizers: dict[str, Any], vocab: int | None,
                 epochs: int, time_budget_s: float) -> dict[str, Any]:
    data = task.model_dump()
    config = {"dataset": task.dataset, "dataset_params": dataset_params(data, tokenizers, vocab),
              "input_shape": [1, *task.input_shape], "num_classes": task.num_classes,
              "batch_size": task.budget.batch_size, "epochs": epochs, "optimizer": optimizer_spec(training),
              "learning_rate": training["lr"], "loss_function": "CrossEntropyLoss",
              "metrics": metrics_requested(data), "device": "auto", "seed": task.seed,
              "time_budget_s": max(time_budget_s, 1.0)}
    if task.data_root:
        config["data_root"] = task.data_root
    return config


@dataclass
class QuickResult:
    """A quick evaluation's metric and what it says about the model's training speed."""

    metric: float | None
    seconds_per_epoch: float  # training + validation of one epoch
    overhead_s: float         # loading, checks and set-up, paid once per training run


def _quick(task: Task, script: str, class_name: str, training: dict[str, Any], tokenizers: dict[str, Any],
           vocab: int | None, epochs: int, time_budget_s: float) -> QuickResult:
    config = _eval_config(task, training, tokenizers, vocab, epochs, time_budget_s)
    if task.budget.quick_max_steps:
        config["max_steps"] = task.budget.quick_max_steps
    result = pytorch_quick_evaluator(script, class_name, config)
    history = result.get("history") or []
    if result.get("status") != "completed" or not history:
        return QuickResult(None, math.inf, 0.0)
    # the fastest epoch: the first one also pays one-time warm-up costs
    train_s = [float(entry.get("epoch_time_s") or 0.0) for entry in history]
    per_epoch = VALIDATION_MARGIN * min(train_s)
    overhead = max(result["duration_s"] - VALIDATION_MARGIN * sum(train_s), 0.0)
    return QuickResult(metric_value(result, task.model_dump()), per_epoch, overhead)


def _final_training(task: Task, script: str, class_name: str, training: dict[str, Any],
                    tokenizers: dict[str, Any], vocab: int | None, seconds_left: float,
                    speed: QuickResult, name: str) -> dict[str, Any]:
    """Train for as many epochs as fit in ``seconds_left`` (cosine schedule over them, best epoch kept)."""
    training_s = max(seconds_left - speed.overhead_s, MIN_FINAL_SECONDS)
    epochs = int(max(1, min(MAX_FINAL_EPOCHS, training_s // max(speed.seconds_per_epoch, 1e-3))))
    config = _eval_config(task, training, tokenizers, vocab, epochs, training_s)
    config.update(scheduler={"type": "CosineAnnealingLR", "params": {"T_max": epochs}}, checkpoint_interval=0,
                  save_best_model=True, monitor=task.metric, monitor_mode=task.mode, wandb={"mode": "disabled"})
    result = pytorch_full_trainer(script, class_name, config, experiment_name=name, log_base_dir="evals_runs/final")
    best = result.get("best_metric") or {}
    return {"metric": best.get("value"), "epochs": len(result.get("history") or []), "status": result.get("status"),
            "final_run": {"script": script, "class_name": class_name, "config": config}}


def replicate(final_run: dict[str, Any], seeds: list[int], name: str) -> list[float | None]:
    """The final training again with other seeds (same config, epochs and time limit): its spread."""
    values = []
    for seed in seeds:
        config = {**final_run["config"], "seed": seed, "wandb": {"mode": "disabled"}}
        result = pytorch_full_trainer(final_run["script"], final_run["class_name"], config,
                                      experiment_name=f"{name}-s{seed}", log_base_dir="evals_runs/replicas")
        values.append((result.get("best_metric") or {}).get("value"))
    return values


def fixed_baseline(task: Task, budget_s: float) -> dict[str, Any]:
    """The modality's baseline design, trained for the whole budget."""
    started = time.monotonic()
    tokenizers = _tokenizers(task, f"fixed-{task.name}")
    blueprint = dict(search_space.BASELINES[task.modality])
    vocab = None
    if tokenizers:
        sizes = sorted(int(size) for size in tokenizers)
        vocab = sizes[len(sizes) // 2]
        blueprint["vocab_size"] = vocab
    script, class_name, params = _build(task, blueprint, f"fixed_{task.name}", vocab)
    training = _training_of(blueprint)
    speed = _quick(task, script, class_name, training, tokenizers, vocab, SPEED_PROBE_EPOCHS, budget_s)
    left = budget_s - (time.monotonic() - started)
    final = _final_training(task, script, class_name, training, tokenizers, vocab, left, speed,
                            f"fixed-{task.name}")
    return {"best_metric": final["metric"], "params": params, "wall_s": round(time.monotonic() - started, 1),
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
    tokenizers = _tokenizers(task, f"random-{task.name}")
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
        vocab = blueprint.get("vocab_size")
        entry: dict[str, Any] = {"blueprint": blueprint, "metric": None}
        try:
            script, class_name, params = _build(task, blueprint, f"random_{task.name}_{len(tried)}", vocab)
            left = RANDOM_SEARCH_SHARE * budget_s - (time.monotonic() - started)
            speed = _quick(task, script, class_name, _training_of(blueprint), tokenizers, vocab,
                           task.budget.quick_epochs, max(left, MIN_FINAL_SECONDS))
            entry.update(script=script, class_name=class_name, params=params, metric=speed.metric, speed=speed)
        except CANDIDATE_ERRORS as exc:
            entry["error"] = str(exc).splitlines()[0][:200]
        tried.append(entry)
    scored = [entry for entry in tried if entry["metric"] is not None]
    if not scored:
        return {"best_metric": None, "params": None, "wall_s": round(time.monotonic() - started, 1),
                "evaluations": len(tried), "error": "no random design trained successfully"}
    best = max(scored, key=lambda entry: entry["metric"]) if task.maximize else min(scored, key=lambda e: e["metric"])
    left = budget_s - (time.monotonic() - started)
    final = _final_training(task, best["script"], best["class_name"], _training_of(best["blueprint"]), tokenizers,
                            best["blueprint"].get("vocab_size"), left, best["speed"], f"random-{task.name}")
    return {"best_metric": final["metric"], "params": best["params"],
            "wall_s": round(time.monotonic() - started, 1), "evaluations": len(tried) + 1,
            "final_epochs": final["epochs"], "design": search_space.signature(best["blueprint"]),
            "final_run": final["final_run"]}


# -- the planner under test --------------------------------------------------------------------


def planner_run(task_data: dict[str, Any], planner: str, run_name: str) -> dict[str, Any]:
    """One research run; the metric is its final model's best validation value."""
    from torchscout.graphs.driver import research, run_state  # the whole graph: imported when a run is made

    started = time.monotonic()
    outcome = research({**task_data, "planner": planner}, name=run_name)
    wall = time.monotonic() - started
    winner = outcome.get("best") or {}
    full = outcome.get("full_training") or {}
    metric = (full.get("best_metric") or {}).get("value")
    if metric is None and winner:
        metric = (winner.get("stats") or {}).get("mean", winner.get("search_metric"))
    rows = {row["candidate"]: row for row in outcome.get("leaderboard") or []}
    params = rows.get(winner.get("candidate_id"), {}).get("params") if winner else None
    result = {"best_metric": metric, "params": params, "wall_s": round(wall, 1),
              "evaluations": outcome.get("evaluations"), "status": outcome.get("status"),
              "final_epochs": len(full.get("history") or []), "design": winner.get("label"),
              "report": outcome.get("report_path")}
    if full.get("trainer_config") and winner:
        candidate = run_state(run_name)["candidates"][winner["candidate_id"]]
        result["final_run"] = {"script": candidate["script"], "class_name": candidate["class_name"],
                               "config": full["trainer_config"]}
    return result


def add_seed_statistics(name: str, method: dict[str, Any], seeds: list[int]) -> None:
    """Retrain the method's final model with ``seeds`` too; mean and std over all its final trainings."""
    final_run = method.pop("final_run", None)
    if final_run is None or method.get("best_metric") is None:
        return
    values = [method["best_metric"], *replicate(final_run, seeds, name)]
    scored = [float(value) for value in values if value is not None]
    mean = sum(scored) / len(scored)
    spread = math.sqrt(sum((value - mean) ** 2 for value in scored) / (len(scored) - 1)) if len(scored) > 1 else 0.0
    method.update(seed_metrics=values, mean=mean, std=spread)


def compare_on(key: str, task_data: dict[str, Any], seed: int) -> dict[str, Any]:
    """Builtin planner vs the fixed model vs random search on one task, with the same budget."""
    skipped = prepare_data(key)
    if skipped:
        return {"skipped": skipped}
    task_data = {**task_data, "seed": seed}
    task = load_task(task_data)
    methods: dict[str, dict[str, Any]] = {}
    methods["builtin"] = planner_run(task_data, "builtin", f"eval-{key}-builtin-s{seed}")
    budget_s = methods["builtin"]["wall_s"]
    logger.info("%s: builtin planner used %.0fs; baselines get the same", key, budget_s)
    for name, method in (("fixed", fixed_baseline), ("random", random_search)):
        try:
            methods[name] = method(task, budget_s)
        except CANDIDATE_ERRORS as exc:
            methods[name] = {"best_metric": None, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    replica_seeds = [seed + 1 + index for index in range(REPLICA_SEEDS)]
    for name, method in methods.items():
        add_seed_statistics(f"{key}-{name}", method, replica_seeds)
    return {"budget_s": budget_s, "metric": task.metric, "mode": task.mode, "methods": methods,
            "replica_seeds": replica_seeds, "leader": leader(methods, task.maximize),
            "versus": versus(methods, task.maximize)}


def _standard_error(result: dict[str, Any]) -> float:
    values = [value for value in result.get("seed_metrics") or [] if value is not None]
    return result.get("std", 0.0) / math.sqrt(len(values)) if len(values) > 1 else 0.0


def leader(methods: dict[str, dict[str, Any]], maximize: bool) -> str | None:
    """The best method by its mean over seeds (else its single metric), honest about noise.

    Methods whose mean is within two standard errors of the best count as tied with it; among
    tied methods fewer parameters win (a smaller model that is as good is better). Methods still
    equal after that are reported together, e.g. ``"tie: builtin, fixed"``.
    """
    def score(result: dict[str, Any]) -> float | None:
        value = result.get("mean", result.get("best_metric"))
        return None if value is None else (float(value) if maximize else -float(value))

    scored = {name: score(result) for name, result in methods.items() if score(result) is not None}
    if not scored:
        return None
    best_name = max(scored, key=scored.get)
    top = [name for name, value in scored.items()
           if scored[best_name] - value <= 1e-9 + 2 * math.hypot(_standard_error(methods[best_name]),
                                                                  _standard_error(methods[name]))]
    if len(top) > 1:
        fewest = min(methods[name].get("params") or math.inf for name in top)
        top = [name for name in top if (methods[name].get("params") or math.inf) == fewest]
    return top[0] if len(top) == 1 else "tie: " + ", ".join(sorted(top))


AHEAD_RULE = ("*ahead* means a higher mean over seeds by more than the noise margin (twice the standard "
              "error of the difference of the two means), or a difference within that margin (a tie) with "
              "fewer parameters. The digits and text goals ask for a small, accurate model.")


def versus(methods: dict[str, dict[str, Any]], maximize: bool, subject: str = "builtin") -> dict[str, dict[str, Any]]:
    """``subject`` against every other method, with the numbers behind the verdict (see AHEAD_RULE)."""
    mine = methods.get(subject) or {}
    verdicts: dict[str, dict[str, Any]] = {}
    for name, other in methods.items():
        if name == subject:
            continue
        first, second = mine.get("mean", mine.get("best_metric")), other.get("mean", other.get("best_metric"))
        if first is None or second is None:
            verdicts[name] = {"verdict": "no comparison: a method has no result"}
            continue
        difference = (first - second) if maximize else (second - first)  # > 0: subject better
        margin = 2 * math.hypot(_standard_error(mine), _standard_error(other))
        params, other_params = mine.get("params"), other.get("params")
        if difference > margin + 1e-9:
            verdict = "ahead (better beyond the noise)"
        elif -difference > margin + 1e-9:
            verdict = "behind (worse beyond the noise)"
        elif params is not None and other_params is not None and params != other_params:
            verdict = ("ahead (tie within the noise, fewer parameters)" if params < other_params
                       else "behind (tie within the noise, more parameters)")
        else:
            verdict = "tied"
        verdicts[name] = {"difference": difference, "margin": margin, "params": params,
                          "other_params": other_params, "verdict": verdict}
    return verdicts


def run_research_evals(suite: str, seed: int = 0) -> dict[str, Any]:
    return {key: compare_on(key, task_data, seed) for key, task_data in SUITES[suite].items()}
