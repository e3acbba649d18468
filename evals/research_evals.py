"""Research evals: the builtin planner against the baselines, with the same wall-clock budget, per task.

For each task of the suite (:data:`evals.eval_tasks.EVAL_TASKS`: one entry per task) the builtin
planner's research run goes first; its wall-clock time is the budget ``B`` the search baselines
get (:mod:`evals.search_baselines`: the fixed model and random search). The classical baselines
(scikit-learn models a research run fits on flat and signal inputs in seconds) are read from the
run's ``result.json`` when it has them, so the neural search is compared with a one-liner too.

Reported per method: the best validation metric of its final model, its parameters, wall time
and the evaluations (training runs) used. A small validation set (digits: 180 images) cannot
separate good models by one run, so each trained method's final training is then repeated with
``REPLICA_SEEDS`` more seeds (other splits and initialisations; outside the budget) and methods
are ranked on the mean: methods within two standard errors of the best are tied, fewer
parameters break a tie, and a remaining tie is reported as one.
Seeds are fixed, so a rerun measures the same thing.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

from evals.eval_tasks import EvalTask, suite_tasks
from evals.search_baselines import CANDIDATE_ERRORS, fixed_baseline, random_search
from torchscout.agent.task import load_task
from torchscout.settings import get_settings
from torchscout.tools.training.evaluation import pytorch_full_trainer

logger = logging.getLogger(__name__)
REPLICA_SEEDS = 2  # each method's final training is repeated with this many more seeds (outside the budget)
CLASSICAL = "classical"  # the method-name prefix of a classical baseline: "classical:ridge"


def replicate(final_run: dict[str, Any], seeds: list[int], name: str) -> list[float | None]:
    """The final training again with other seeds (same config, epochs and time limit): its spread."""
    values = []
    for seed in seeds:
        config = {**final_run["config"], "seed": seed, "wandb": {"mode": "disabled"}}
        result = pytorch_full_trainer(final_run["script"], final_run["class_name"], config,
                                      experiment_name=f"{name}-s{seed}", log_base_dir="evals_runs/replicas")
        values.append((result.get("best_metric") or {}).get("value"))
    return values


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
    state = run_state(run_name)
    result = {"best_metric": metric, "params": params, "wall_s": round(wall, 1),
              "evaluations": outcome.get("evaluations"), "status": outcome.get("status"),
              "final_epochs": len(full.get("history") or []), "design": winner.get("label"),
              "report": outcome.get("report_path"), "run_dir": outcome.get("run_dir"),
              "stopped_by": state.get("stopped_by"),
              "rounds": state.get("round"), "budget_s": 60.0 * float(task_data["budget"]["max_minutes"])}
    if full.get("trainer_config") and winner:
        candidate = state["candidates"][winner["candidate_id"]]
        result["final_run"] = {"script": candidate["script"], "class_name": candidate["class_name"],
                               "config": full["trainer_config"]}
    return result


def classical_baselines(run_dir: str | None, metric: str) -> dict[str, dict[str, Any]]:
    """The classical baselines the research run fitted (``result.json``'s ``baselines``), as methods.

    Each is ``{name: {metric: value}}`` there (or ``{name: {"validation": {metric: value}}}``); a
    run without them (token and image inputs, or a version that does not fit them) gives none.
    """
    if not run_dir:
        return {}
    path = get_settings().workspace / run_dir / "result.json"
    if not path.is_file():
        return {}
    baselines = json.loads(path.read_text(encoding="utf-8")).get("baselines") or {}
    methods = {}
    for name, values in baselines.items():
        scores = values.get("validation", values) if isinstance(values, dict) else {}
        value = scores.get(metric) if isinstance(scores, dict) else None
        if isinstance(value, int | float):
            methods[f"{CLASSICAL}:{name}"] = {"best_metric": float(value), "params": None, "design": name,
                                              "evaluations": 1}
    return methods


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


def compare_on(key: str, entry: EvalTask, suite: str, seed: int) -> dict[str, Any]:
    """Builtin planner vs the fixed model vs random search (same budget) vs the classical baselines on one task."""
    skipped = entry.skipped()
    if skipped:
        return {"skipped": skipped}
    task_data = {**entry.task_data(suite), "seed": seed}
    task = load_task(task_data)
    methods: dict[str, dict[str, Any]] = {}
    methods["builtin"] = planner_run(task_data, "builtin", f"eval-{key}-builtin-s{seed}")
    budget_s = methods["builtin"]["wall_s"]
    logger.info("%s: builtin planner used %.0fs; the search baselines get the same", key, budget_s)
    for name, method in (("fixed", fixed_baseline), ("random", random_search)):
        started = time.monotonic()
        try:
            methods[name] = method(task, budget_s)
        except CANDIDATE_ERRORS as exc:
            methods[name] = {"best_metric": None, "wall_s": round(time.monotonic() - started, 1),
                             "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    methods.update(classical_baselines(methods["builtin"].get("run_dir"), task.metric))
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
    return {key: compare_on(key, entry, suite, seed) for key, entry in suite_tasks(suite).items()}
