"""Multi-fidelity search: the rungs of successive halving, and ranking results across rungs.

Every candidate of a round gets the short screen (rung 0); the best of the round earn the quick
evaluation (rung 1, ``quick_epochs``). From there the rungs span the rounds (asynchronous
successive halving): the best ``1/halving_rate`` of every result at a rung so far train
``halving_rate`` times longer at the next one (rung k: ``quick_epochs * halving_rate**(k-1)``
epochs, never more than ``full_epochs``), while ``max_rungs`` allows it and their measured cost
fits in the search time left (``graphs.nodes_rounds.halve`` decides). So a short screen picks
the few worth training, and as the rounds go the best few of the whole search are compared
after training for real.

A result at a deeper rung is stronger evidence than one at a shallower rung, so rankings across
candidates and rounds (the best so far, the configurations to confirm) put deeper rungs first and
compare metrics only within a rung; progress between rounds is judged at the deepest rung both
reached. Records written before rungs existed read as screen (rung 0) or quick (rung 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from torchscout.agent import selection
from torchscout.agent.records import EvaluationKind, EvaluationRecord
from torchscout.agent.task import Task
from torchscout.tools.training.status import COMPLETED

SCREEN, QUICK = 0, 1
SEARCH_KINDS: frozenset[EvaluationKind] = frozenset({"quick", "rung"})  # what ranks candidates in the search


def rung_of(record: Mapping[str, object]) -> int:
    """The rung an evaluation (or a plan entry, a job) ran at; older records: screen 0, anything else 1."""
    if record.get("rung") is not None:
        return int(record["rung"])
    return SCREEN if record.get("kind") == "screen" else QUICK


def rung_epochs(task: Task, rung: int) -> int:
    """Epochs of an evaluation at ``rung`` (the screen is capped by steps instead)."""
    budget = task.budget
    if rung <= QUICK:
        return budget.quick_epochs
    epochs = budget.quick_epochs * budget.halving_rate ** (rung - 1)
    return min(epochs, budget.full_epochs) if budget.full_epochs > 0 else epochs


def rung_max_steps(task: Task, rung: int) -> int | None:
    """The step cap of an evaluation at ``rung``: screen_steps, or quick_max_steps grown like the epochs."""
    budget = task.budget
    if rung == SCREEN:
        return budget.screen_steps
    if budget.quick_max_steps is None:
        return None
    return budget.quick_max_steps * budget.halving_rate ** max(rung - 1, 0)


def has_next_rung(task: Task, rung: int) -> bool:
    """Whether rung ``rung + 1`` exists: within max_rungs and longer than ``rung``."""
    return rung + 1 < task.budget.max_rungs and rung_epochs(task, rung + 1) > rung_epochs(task, rung)


def evaluation_key(candidate_id: str, rung: int) -> str:
    """The state key of a candidate's evaluation at a rung: ``r1c0/screen``, ``r1c0/quick``, ``r1c0/rung2``."""
    return f"{candidate_id}/{rung_kind(rung) if rung <= QUICK else f'rung{rung}'}"


def rung_kind(rung: int) -> EvaluationKind:
    return "screen" if rung == SCREEN else "quick" if rung == QUICK else "rung"


def completed(records: Iterable[EvaluationRecord], kinds: Iterable[EvaluationKind]) -> list[EvaluationRecord]:
    wanted = set(kinds)
    return [item for item in records
            if item["kind"] in wanted and item["status"] == COMPLETED and item.get("metric") is not None]


def ranked(records: Iterable[EvaluationRecord], maximize: bool,
           params_of: Callable[[str], int | None] | None = None) -> list[EvaluationRecord]:
    """Completed ``records`` best first: the deepest rung first, by metric within a rung.

    With ``params_of`` (candidate id -> parameters), results of the deepest rung tied with its best
    (within the search noise) put the smaller model first, as :func:`selection.prefer_smaller_among_ties`.
    """
    by_rung: dict[int, list[EvaluationRecord]] = {}
    for item in records:
        if item.get("metric") is not None:
            by_rung.setdefault(rung_of(item), []).append(item)
    ordered: list[EvaluationRecord] = []
    for position, rung in enumerate(sorted(by_rung, reverse=True)):
        group = sorted(by_rung[rung], key=lambda item: item["metric"], reverse=maximize)
        if position == 0 and params_of is not None:
            group = selection.prefer_smaller_among_ties(group, lambda item: item["metric"],
                                                        lambda item: params_of(item["candidate_id"]), maximize)
        ordered += group
    return ordered


def improved(current: list[EvaluationRecord], earlier: list[EvaluationRecord], task: Task) -> bool:
    """Whether the current round's results beat the earlier rounds' at the deepest rung both reached.

    The first round with a result improves by definition; a round whose rungs share none with the
    earlier ones (all its results failed) does not.
    """
    if not current:
        return False
    if not earlier:
        return True
    common = {rung_of(item) for item in current} & {rung_of(item) for item in earlier}
    if not common:
        return False
    rung = max(common)

    def best(items: list[EvaluationRecord]) -> float:
        values = [item["metric"] for item in items if rung_of(item) == rung]
        return max(values) if task.maximize else min(values)

    return task.better(best(current), best(earlier))
