"""The end of a round: successive halving over its rungs (``halve``), then the verdict (``refine``).

``halve`` runs after each rung of the round (see :mod:`torchscout.graphs.fidelity`): after the
screen it promotes the best ``1/halving_rate`` of the round to the quick evaluation (plus one
smaller model within reach, since a short screen favours large models); after the quick
evaluation and each longer rung it promotes the best ``1/halving_rate`` of every result at that
rung so far, from any round, to a rung ``halving_rate`` times longer (asynchronous successive
halving), as far as their cost, estimated from what they measured, fits in the search time left. ``refine`` then names the best so far and decides whether the search goes
on: it stops at the target, at ``max_rounds``, after ``patience_rounds`` without improvement, or
when the search time left (the budget less the estimated final phase) would not fit another
round; the run records which one in ``stopped_by``.
"""

from __future__ import annotations

import math

from langgraph.runtime import Runtime

from torchscout.agent import selection
from torchscout.agent.records import (
    CandidateRecord,
    EvaluationRecord,
    ResearchState,
    StopCause,
    evaluations_of,
)
from torchscout.agent.task import ROUND_CAP, Task
from torchscout.graphs import budget, fidelity
from torchscout.graphs.budget import RunContext
from torchscout.graphs.common import context_of, decision, round_candidates, timed
from torchscout.graphs.events import emit
from torchscout.graphs.executor import executor_for
from torchscout.graphs.state import task_of
from torchscout.graphs.training_cost import throughput
from torchscout.graphs.workers import parallel_wall_s


def _params_of(state: ResearchState):
    candidates = state.get("candidates") or {}
    return lambda candidate_id: candidates.get(candidate_id, {}).get("params")


def _announce(state: ResearchState, text: str) -> ResearchState:
    emit(state["run_dir"], "decision", text=text)
    return ResearchState(decisions=[decision("halve", text, state["round"])])


@timed
def halve(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Promote the best of the round's current rung to the next one, or end the round's halving."""
    rung = state.get("rung", fidelity.SCREEN)
    if rung == fidelity.SCREEN:
        return _promote_from_screen(state, runtime)
    return _promote_deeper(state, rung, runtime)


def _promote_from_screen(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """After the screen: the best 1/halving_rate earn a quick evaluation, plus the best-screening model
    smaller than all of them when it is within reach (a short screen favours large models)."""
    task = task_of(state)
    # ties on the short screen promote the smaller model first (it also trains faster)
    screened = selection.prefer_smaller_among_ties(round_candidates(state), lambda item: item.get("screen_metric"),
                                                   lambda item: item.get("params"), task.maximize)
    keep = math.ceil(len(screened) / task.budget.halving_rate)
    if budget.search_time_left_s(state, context_of(runtime)) <= 0:
        keep = 0
    promoted = screened[:keep]
    contender = selection.smaller_contender(screened, promoted, lambda item: item.get("screen_metric"),
                                            lambda item: item.get("params"), task.maximize) if keep else None
    text = (f"Round {state['round']} screen: {len(screened)} candidates scored; promoted "
            f"{', '.join(item['id'] for item in promoted) or 'none'} to {task.budget.quick_epochs} epochs")
    if contender is not None:
        promoted.append(contender)
        text += (f", and {contender['id']} ({contender['params']:,} params, screen {contender['screen_metric']:.4f}): "
                 "smaller than every promoted model and within reach of the best screen")
    update = _announce(state, text + ".")
    update.update(rung=fidelity.QUICK, halving_done=not promoted,
                  candidates={item["id"]: CandidateRecord(promoted=True, promoted_rung=fidelity.QUICK)
                              for item in promoted})
    return update


def _finished_at(state: ResearchState, rung: int) -> list[EvaluationRecord]:
    """Every completed evaluation at ``rung``, of any round (the rungs above the screen span the rounds)."""
    return [item for item in fidelity.completed(evaluations_of(state).values(), [fidelity.rung_kind(rung)])
            if fidelity.rung_of(item) == rung]


def _within_time(state: ResearchState, ordered: list[EvaluationRecord], epochs: int,
                 left_s: float) -> list[EvaluationRecord]:
    """The leading ``ordered`` evaluations whose candidates' runs of ``epochs`` fit together in ``left_s``
    (side by side on the run's workers)."""
    workers = executor_for(task_of(state)).plan.workers
    chosen, runs = [], []
    for item in ordered:
        model = throughput(state, item["candidate_id"])
        runs.append(model.run_s(epochs) if model is not None else 0.0)
        if parallel_wall_s(runs, workers) > left_s:
            break
        chosen.append(item)
    return chosen


def _promote_deeper(state: ResearchState, rung: int, runtime: Runtime[RunContext]) -> ResearchState:
    """After rung >= 1, asynchronous successive halving over every round's results at that rung: once
    ``halving_rate`` or more finished it, the best 1/halving_rate of them train halving_rate times
    longer at the next rung (those not promoted there yet, as many as fit in the search time left)."""
    task = task_of(state)
    finished = _finished_at(state, rung)
    ordered = selection.prefer_smaller_among_ties(finished, lambda item: item["metric"],
                                                  lambda item: _params_of(state)(item["candidate_id"]), task.maximize)
    top = ordered[:len(ordered) // task.budget.halving_rate]
    candidates = state.get("candidates") or {}
    fresh = [item for item in top if candidates.get(item["candidate_id"], {}).get("promoted_rung", 0) <= rung]
    epochs, next_epochs = fidelity.rung_epochs(task, rung), fidelity.rung_epochs(task, rung + 1)
    left = budget.search_time_left_s(state, context_of(runtime))
    chosen = _within_time(state, fresh, next_epochs, left)
    head = f"Round {state['round']}, rung {rung} ({epochs} epochs): {len(finished)} result(s) over the rounds"
    if not fidelity.has_next_rung(task, rung):
        why = (f"rung {rung} is the last (max_rungs {task.budget.max_rungs}, at most full_epochs "
               f"{task.budget.full_epochs} epochs)")
    elif not top:
        why = f"fewer than {task.budget.halving_rate} results at rung {rung} to choose from"
    elif not fresh:
        why = f"they are there already: {', '.join(item['candidate_id'] for item in top)}"
    elif not chosen:
        why = f"the {max(left, 0):.0f} s of search time left do not fit a run of {next_epochs} epochs"
    else:
        names = ", ".join(f"{item['candidate_id']} ({item['metric']:.4f})" for item in chosen)
        update = _announce(state, f"{head}; the best {len(top)} earn rung {rung + 1}: promoted {names} to "
                                  f"{next_epochs} epochs.")
        update.update(rung=rung + 1, candidates={item["candidate_id"]: CandidateRecord(promoted_rung=rung + 1)
                                                 for item in chosen})
        return update
    update = _announce(state, f"{head}; the round's halving ends here: {why}.")
    update["halving_done"] = True
    return update


@timed
def refine(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Update the best so far and decide whether another round is worth it."""
    task = task_of(state)
    candidates = state.get("candidates", {})
    search = fidelity.completed(evaluations_of(state).values(), fidelity.SEARCH_KINDS)
    raw = fidelity.ranked(search, task.maximize)
    # the best is the smallest model among those tied with the top result of the deepest rung
    ranked = fidelity.ranked(search, task.maximize, _params_of(state))
    best = ranked[0] if ranked else None
    # progress: did this round beat the earlier rounds' top result, at the deepest rung both reached?
    # (judged on the top result itself, so preferring a smaller tied model never reads as a regression)
    round_of = {candidate_id: candidate.get("round", 0) for candidate_id, candidate in candidates.items()}
    current = [item for item in search if round_of.get(item["candidate_id"]) == state["round"]]
    earlier = [item for item in search if round_of.get(item["candidate_id"], 0) < state["round"]]
    stale = 0 if fidelity.improved(current, earlier, task) else state.get("stale_rounds", 0) + 1
    stopped_by, stop = _stop_verdict(state, task, raw, best["candidate_id"] if best else None, stale, runtime)
    best_text = (f"best {best['candidate_id']} {task.metric}={best['metric']:.4f} at rung {fidelity.rung_of(best)}"
                 if best else "no candidate evaluated successfully yet")
    if best is not None and best is not raw[0]:
        best_text += (f" ({_params_text(candidates, best)}, within the search noise of "
                      f"{raw[0]['candidate_id']}'s {raw[0]['metric']:.4f} with {_params_text(candidates, raw[0])})")
    text = f"After round {state['round']}: {best_text}; " + (f"search stops ({stop})." if stop else "next round.")
    emit(state["run_dir"], "decision", text=text)
    update = ResearchState(stale_rounds=stale, phase="optimizer" if stop else "search", stop_reason=stop,
                           stopped_by=stopped_by, decisions=[decision("refine", text, state["round"])])
    if best is not None:
        update.update(best_id=best["candidate_id"], best_metric=best["metric"])
    return update


def _stop_verdict(state: ResearchState, task: Task, raw: list[EvaluationRecord], best_id: str | None, stale: int,
                  runtime: Runtime[RunContext]) -> tuple[StopCause | None, str | None]:
    """(what ends the search, in one word and in words), or (None, None) to go on."""
    reached = [item for item in raw if task.reached_target(item["metric"])]
    # the reserve is estimated for the best as this round leaves it
    left = budget.search_time_left_s(ResearchState(**{**state, "best_id": best_id}), context_of(runtime))
    next_round_s = _round_cost_s(state)
    if reached:
        return "target", f"target {task.target} reached by {reached[0]['candidate_id']}"
    if task.budget.max_rounds is not None and state["round"] >= task.budget.max_rounds:
        return "max_rounds", f"max_rounds {task.budget.max_rounds} done"
    if state["round"] >= ROUND_CAP:
        return "round_cap", f"the cap of {ROUND_CAP} rounds is reached"
    if best_id is not None and stale >= task.budget.patience:
        return "patience", f"no improvement for {stale} round(s)"
    if left <= 0:
        return "time", "the search share of the time budget is used up"
    if next_round_s > left:
        return "time", (f"the {left:.0f} s of search time left would not fit another round (this one took "
                        f"{next_round_s:.0f} s to screen and quick-evaluate its candidates)")
    return None, None


def _round_cost_s(state: ResearchState) -> float:
    """Wall seconds the current round's screen and quick evaluations take at the measured steady speed
    (a run's first evaluation also pays one-time costs), each rung's side by side on the run's workers:
    what another round needs at least."""
    workers = executor_for(task_of(state)).plan.workers
    evaluations = state.get("evaluations") or {}
    total = 0.0
    for rung in (fidelity.SCREEN, fidelity.QUICK):
        seconds = []
        for candidate in round_candidates(state):
            item = evaluations.get(fidelity.evaluation_key(candidate["id"], rung))
            if item is None or not item.get("duration_s"):
                continue
            model = throughput(state, item["candidate_id"]) if item.get("history") else None
            steady = model.run_s(len(item["history"])) if model is not None else math.inf
            seconds.append(min(float(item["duration_s"]), steady))
        total += parallel_wall_s(seconds, workers)
    return total


def _params_text(candidates: dict[str, CandidateRecord], evaluation: EvaluationRecord) -> str:
    params = candidates.get(evaluation["candidate_id"], {}).get("params")
    return "? params" if params is None else f"{params:,} params"
