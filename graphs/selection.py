"""Choosing the winner: the top configurations, their seed statistics, and whether the gap beats the noise."""

from __future__ import annotations

import json
import math
import statistics
from typing import Any


def training_label(training: dict[str, Any]) -> str:
    """A short, stable name for a training setting (the optimizer trial name when there is one)."""
    if training.get("trial"):
        return str(training["trial"])
    return f"{training.get('optimizer', '?')}@{training.get('lr', 0):g}"


def config_key(candidate_id: str, training: dict[str, Any]) -> str:
    stable = {key: training.get(key) for key in ("optimizer", "lr", "weight_decay", "momentum", "config_name")}
    return f"{candidate_id}|{json.dumps(stable, sort_keys=True)}"


def top_configurations(ranked: list[dict[str, Any]], count: int = 2) -> list[dict[str, Any]]:
    """The best ``count`` distinct (candidate, training) pairs from ranked evaluations."""
    chosen: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in ranked:
        key = config_key(item["candidate_id"], item["training"])
        if key in seen:
            continue
        seen.add(key)
        label = f"{item['candidate_id']}:{training_label(item['training'])}"
        chosen.append({"label": label, "candidate_id": item["candidate_id"], "training": item["training"],
                       "search_metric": item["metric"], "search_key": item["key"]})
        if len(chosen) == count:
            break
    return chosen


def seed_statistics(values: list[float]) -> dict[str, Any]:
    mean = statistics.fmean(values) if values else None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(values), "values": values}


def gap_beats_noise(first: dict[str, Any], second: dict[str, Any]) -> tuple[float, float, bool]:
    """(difference of means, its ~95% margin, whether the difference is larger than the margin).

    The margin is twice the standard error of the difference of two means (Welch), so "larger
    than the noise" means the seeds would rarely produce this gap by chance.
    """
    difference = first["mean"] - second["mean"]
    if first["n"] < 2 or second["n"] < 2:
        return difference, math.nan, False
    margin = 2 * math.sqrt(first["std"] ** 2 / first["n"] + second["std"] ** 2 / second["n"])
    return difference, margin, abs(difference) > margin
