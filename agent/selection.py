"""Choosing the winner: the top configurations, their seed statistics, and whether the gap beats the noise."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from typing import TypeVar

from torchscout.agent.records import Configuration, EvaluationRecord, SeedStats
from torchscout.agent.training_configs import TrainingRecord

Item = TypeVar("Item")  # whatever is ranked: evaluation records, candidate records, planner outcomes
MetricOf = Callable[[Item], float | None]
ParamsOf = Callable[[Item], int | None]


def training_label(training: TrainingRecord) -> str:
    """A short, stable name for a training setting (the optimizer trial name when there is one)."""
    if training.get("trial"):
        return str(training["trial"])
    return f"{training.get('optimizer', '?')}@{training.get('lr', 0):g}"


def config_key(candidate_id: str, training: TrainingRecord) -> str:
    stable = {key: training.get(key) for key in ("optimizer", "lr", "weight_decay", "momentum", "config_name")}
    return f"{candidate_id}|{json.dumps(stable, sort_keys=True)}"


def top_configurations(ranked: list[EvaluationRecord], count: int = 2, params: dict[str, int] | None = None,
                       maximize: bool = True) -> list[Configuration]:
    """The best ``count`` distinct (candidate, training) pairs from ranked evaluations.

    With ``params`` (candidate id -> parameter count) results tied with the best within the
    search noise put the smaller model first (:func:`prefer_smaller_among_ties`).
    """
    if params is not None:
        ranked = prefer_smaller_among_ties(ranked, lambda item: item.get("metric"),
                                           lambda item: params.get(item["candidate_id"]), maximize)
    chosen: list[Configuration] = []
    seen: set[str] = set()
    for item in ranked:
        key = config_key(item["candidate_id"], item["training"])
        if key in seen:
            continue
        seen.add(key)
        label = f"{item['candidate_id']}:{training_label(item['training'])}"
        chosen.append(Configuration(label=label, candidate_id=item["candidate_id"], training=item["training"],
                                    search_metric=item["metric"], search_key=item["key"]))
        if len(chosen) == count:
            break
    return chosen


def seed_statistics(values: list[float]) -> SeedStats:
    mean = statistics.fmean(values) if values else None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return SeedStats(mean=mean, std=std, n=len(values), values=values)


def gap_beats_noise(first: SeedStats, second: SeedStats) -> tuple[float, float, bool]:
    """(difference of means, its ~95% margin, whether the difference is larger than the margin).

    The margin is twice the standard error of the difference of two means (Welch), so "larger
    than the noise" means the seeds would rarely produce this gap by chance.
    """
    difference = first["mean"] - second["mean"]
    if first["n"] < 2 or second["n"] < 2:
        return difference, math.nan, False
    margin = 2 * math.sqrt(first["std"] ** 2 / first["n"] + second["std"] ** 2 / second["n"])
    return difference, margin, abs(difference) > margin


# -- ties during the search ---------------------------------------------------------------------

# A single quick evaluation is one seed on one validation split. Two results closer than this are
# not evidence that one design is better: on digits (180 validation images) three seeds of the
# same model spread by up to 0.0064 accuracy, and one image is 0.0056.
RATE_TIE_TOLERANCE = 0.01       # absolute, for metrics in [0, 1] such as accuracy or F1
RELATIVE_TIE_TOLERANCE = 0.02   # relative to the best value, for every other metric (losses, ...)


def tie_tolerance(best_value: float, maximize: bool) -> float:
    """How far from ``best_value`` a single-run result may be and still count as a tie with it."""
    if maximize and 0.0 <= best_value <= 1.0:
        return RATE_TIE_TOLERANCE
    return RELATIVE_TIE_TOLERANCE * abs(best_value)


def prefer_smaller_among_ties(items: list[Item], metric_of: MetricOf[Item], params_of: ParamsOf[Item],
                              maximize: bool) -> list[Item]:
    """``items`` best first, where results tied with the best (within :func:`tie_tolerance`) put the
    model with fewer parameters first: a smaller model that is as good is the better model.

    Only the leading group is reordered (never a chain of ties drifting away from the best);
    everything else keeps its metric order. ``metric_of`` / ``params_of`` read one item; items
    without a metric are dropped, a missing parameter count sorts last within the tie.
    """
    scored = [item for item in items if metric_of(item) is not None]
    scored.sort(key=metric_of, reverse=maximize)
    if not scored:
        return []
    best = metric_of(scored[0])
    tolerance = tie_tolerance(best, maximize)
    tied = [item for item in scored if abs(metric_of(item) - best) <= tolerance + 1e-12]
    rest = [item for item in scored if abs(metric_of(item) - best) > tolerance + 1e-12]

    def size(item: Item) -> float:
        params = params_of(item)
        return math.inf if params is None else float(params)

    # fewer parameters first; among equal sizes the better metric first (sort is stable)
    tied.sort(key=size)
    return tied + rest


def order_confirmed(top: list[Configuration], maximize: bool, params: dict[str, int]) -> list[Configuration]:
    """The confirmed configurations, winner first: best mean over seeds, unless the gap to a smaller
    model is not larger than the seed noise (:func:`gap_beats_noise`), in which case the smaller wins.

    Each entry needs ``stats`` (from :func:`seed_statistics`) and ``candidate_id``.
    """
    ordered = sorted(top, key=lambda entry: entry["stats"]["mean"], reverse=maximize)
    if len(ordered) < 2:
        return ordered
    first, second = ordered[0], ordered[1]
    _, margin, significant = gap_beats_noise(first["stats"], second["stats"])
    if math.isnan(margin):
        return ordered  # unconfirmed single values: no noise estimate, the better mean stands
    first_size = params.get(first["candidate_id"], math.inf)
    second_size = params.get(second["candidate_id"], math.inf)
    if not significant and second_size < first_size:
        ordered[0], ordered[1] = second, first
    return ordered


# The screen is a few dozen optimizer steps: far from converged, and a smaller model is further
# behind there than after training. A screen within this distance of the best is "within reach".
RATE_SCREEN_REACH = 0.1        # absolute, for metrics in [0, 1]
RELATIVE_SCREEN_REACH = 0.2    # relative to the best value, for every other metric


def smaller_contender(screened: list[Item], promoted: list[Item], metric_of: MetricOf[Item],
                      params_of: ParamsOf[Item], maximize: bool) -> Item | None:
    """The candidate to promote besides the top half: smaller than every promoted one, with the best
    screen among those, if that screen is within reach of the best (:data:`RATE_SCREEN_REACH`).

    Successive halving on a short screen favours large models (more capacity learns faster per
    step); this keeps one smaller design per round in the race, at the cost of one cheap evaluation.
    """
    scored = [item for item in screened if metric_of(item) is not None]
    sizes = [params_of(item) for item in promoted]
    if not scored or not promoted or any(size is None for size in sizes):
        return None
    best = max(metric_of(item) for item in scored) if maximize else min(metric_of(item) for item in scored)
    reach = RATE_SCREEN_REACH if maximize and 0.0 <= best <= 1.0 else RELATIVE_SCREEN_REACH * abs(best)
    smallest_promoted = min(sizes)
    contenders = [item for item in scored if item not in promoted and params_of(item) is not None
                  and params_of(item) < smallest_promoted and abs(metric_of(item) - best) <= reach]
    if not contenders:
        return None
    return (max if maximize else min)(contenders, key=metric_of)
