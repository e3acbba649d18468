"""Speculative evaluations: useful work for the worker slots a search step leaves idle.

A search step (a round's screen, a rung of the halving) ends with its slowest evaluation, and only
then does ``halve`` decide what runs next; with more workers than the step's jobs still running,
the other slots idle meanwhile. The speculator fills them with the evaluations the next decision
is most likely to ask for, predicted from the results so far with ``halve``'s rules:

- the candidates that, ranked on what finished at the step's rung, would earn the next rung (when
  the jobs still running could push one out of the top, only if its estimated time fits in what they
  have left; when they cannot, its promotion is certain and it may run on past the step);
- the leader's next rung (the best result at the deepest rung is what the longer rungs promote, and
  what the final phase builds on), which may run on past the step.

A speculative evaluation is the same computation as the real one (same candidate, training, seed,
epochs, step cap and thread count; see :func:`~torchscout.graphs.jobs.fingerprint`), so when the
graph then sends that job, its node takes the finished (or still running) result instead of running
it again. The decisions, and so the search and every metric, are exactly those of a run without
speculation and of a run with one worker; only the wall time changes. A prediction that misses costs
little: a speculative job starts only in a free slot no job waits for
(:meth:`~torchscout.graphs.workers.Slots.take_idle`), only once every job of the step has started
and while some still run, and at most ``workers - 1`` at once, so a slot is always left for the
real jobs. A one-worker run never speculates.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from torchscout.agent.records import EvaluationRecord, ResearchState, evaluations_of
from torchscout.graphs import budget, fidelity
from torchscout.graphs.common import round_candidates
from torchscout.graphs.jobs import evaluation_job, fingerprint
from torchscout.graphs.state import EvaluationJob, task_of
from torchscout.graphs.training_cost import throughput
from torchscout.graphs.workers import Slots
from torchscout.tools.training.status import COMPLETED

logger = logging.getLogger(__name__)

# A speculative result is used only when it finished this far inside both time limits (its own and
# the real job's): an evaluation cut short by its time budget is not the one the graph asked for.
TIME_MARGIN_S = 1.0


@dataclass
class Speculation:
    """One evaluation run ahead of its step; ``done`` is set once ``record`` (None: it failed) is in."""

    job: EvaluationJob
    time_left_s: float
    done: threading.Event = field(default_factory=threading.Event)
    record: EvaluationRecord | None = None

    def result_for(self, time_left_s: float) -> EvaluationRecord | None:
        """The record, to stand for the real job given ``time_left_s``; None when it cannot."""
        self.done.wait()
        record = self.record
        if record is None or record["status"] != COMPLETED:
            return None  # a failure is run again for real: its error then comes from the job itself
        duration = float(record.get("duration_s") or 0.0)
        if duration > min(self.time_left_s, time_left_s) - TIME_MARGIN_S:
            return None
        return EvaluationRecord(**{**record, "speculative": True})


@dataclass
class _Step:
    state: ResearchState
    jobs: dict[str, EvaluationJob]
    started: dict[str, float] = field(default_factory=dict)          # key -> monotonic start
    finished: dict[str, EvaluationRecord] = field(default_factory=dict)


class Speculator:
    """Runs predicted evaluations in idle slots (``evaluate(job, time_left_s, slot)``) and hands their
    results to the real jobs that match them."""

    def __init__(self, slots: Slots, evaluate: Callable[[EvaluationJob, float, int], EvaluationRecord]) -> None:
        self._slots = slots
        self._evaluate = evaluate
        self._lock = threading.Lock()
        self._step: _Step | None = None
        self._runs: dict[str, Speculation] = {}
        self._deadline: float | None = None   # monotonic time the search's budget runs out, as last seen

    # the graph's side --------------------------------------------------------------------------
    def begin_step(self, state: ResearchState, jobs: list[EvaluationJob]) -> None:
        """A search step is about to send ``jobs`` (its routers call this)."""
        if not jobs:
            return
        with self._lock:
            previous = self._step
            if previous is None or previous.state["run_dir"] != state["run_dir"]:
                # another run in this process: its finished speculations are of no use here
                self._runs = {key: item for key, item in self._runs.items() if not item.done.is_set()}
            step = _Step(state=state, jobs={job["key"]: job for job in jobs})
            if previous is not None and previous.jobs.keys() == step.jobs.keys():  # a router run again
                step.started, step.finished = previous.started, previous.finished
            self._step = step

    def claim(self, job: EvaluationJob) -> Speculation | None:
        """The speculation that computes ``job``, if one was started."""
        with self._lock:
            return self._runs.get(fingerprint(job))

    def started(self, job: EvaluationJob, time_left_s: float) -> None:
        """A real job took its slot (or a speculation's result) with ``time_left_s`` of budget left."""
        with self._lock:
            self._deadline = time.monotonic() + time_left_s
            if self._step is not None and job["key"] in self._step.jobs:
                self._step.started.setdefault(job["key"], time.monotonic())
            self._fill_safely()

    def finished(self, job: EvaluationJob, record: EvaluationRecord) -> None:
        with self._lock:
            if self._step is not None and job["key"] in self._step.jobs:
                self._step.finished[job["key"]] = record
            self._fill_safely()

    # the slots' side ---------------------------------------------------------------------------
    def _fill_safely(self) -> None:
        """:meth:`_fill`, whose failure costs only the speculation: the run's own jobs never see it."""
        try:
            self._fill()
        except Exception as exc:  # noqa: BLE001 - e.g. a state written by an older version lacks a field
            logger.debug("no speculation this time: %s: %s", type(exc).__name__, exc)

    def _fill(self) -> None:
        """Start predicted evaluations in the idle slots (called with the lock held)."""
        step = self._step
        if step is None or self._deadline is None:
            return
        running = [key for key in step.started if key not in step.finished]
        if len(step.started) < len(step.jobs) or not running:
            return  # jobs of the step still wait for a slot, or the step is over
        known = self._known(step)
        window = self._window(step, running, known)
        in_flight = sum(1 for item in self._runs.values() if not item.done.is_set())
        for job, may_outlast_step in self._predictions(step, known):
            key = fingerprint(job)
            if key in self._runs:
                continue
            if in_flight >= self._slots.count - 1:
                return
            estimate = _estimate_s(known, job)
            if estimate is None or (estimate > window and not may_outlast_step):
                continue
            time_left = self._deadline - time.monotonic()
            if time_left < estimate + TIME_MARGIN_S:
                continue
            slot = self._slots.take_idle()
            if slot is None:
                return
            speculation = Speculation(job=job, time_left_s=time_left)
            self._runs[key] = speculation
            in_flight += 1
            threading.Thread(target=self._run, args=(speculation, slot), name=f"speculate-{job['key']}",
                             daemon=True).start()

    def _run(self, speculation: Speculation, slot: int) -> None:
        try:
            record = self._evaluate(speculation.job, speculation.time_left_s, slot)
            # as the graph records it: the rung decides which results the predictions rank together
            speculation.record = EvaluationRecord(**{**record, "rung": fidelity.rung_of(speculation.job)})
        except Exception as exc:  # noqa: BLE001 - a speculation that fails is run again for real
            logger.debug("speculative evaluation %s failed: %s", speculation.job["key"], exc)
        finally:
            self._slots.give_back(slot)
            speculation.done.set()
            with self._lock:
                self._fill_safely()

    def _known(self, step: _Step) -> ResearchState:
        """The step's state with what finished since: its own jobs' and the speculations' results."""
        evaluations = dict(evaluations_of(step.state))
        for item in self._runs.values():
            if item.done.is_set() and item.record is not None and item.job["run_dir"] == step.state["run_dir"]:
                evaluations.setdefault(item.job["key"], item.record)
        evaluations.update(step.finished)
        return ResearchState(**{**step.state, "evaluations": evaluations})

    def _window(self, step: _Step, running: list[str], known: ResearchState) -> float:
        """Seconds until the step's last running job is expected to end (0 when one cannot be estimated)."""
        now, longest = time.monotonic(), 0.0
        for key in running:
            estimate = _estimate_s(known, step.jobs[key])
            if estimate is None:
                return 0.0
            longest = max(longest, estimate - (now - step.started[key]))
        return longest

    def _predictions(self, step: _Step, known: ResearchState) -> list[tuple[EvaluationJob, bool]]:
        """Evaluations the next decisions are likely to ask for, likeliest first, each with whether it may
        run on past the step (the leader's next rung) or must fit in the step's time left."""
        task = task_of(known)
        evaluations = evaluations_of(known)
        rung = max(fidelity.rung_of(job) for job in step.jobs.values())
        at_rung = [item for item in fidelity.completed(evaluations.values(), [fidelity.rung_kind(rung)])
                   if fidelity.rung_of(item) == rung]
        pending = sum(1 for key in step.jobs if key not in step.finished)
        ordered = sorted(at_rung, key=lambda item: item["metric"], reverse=task.maximize)
        if rung == fidelity.SCREEN:
            # the round's screened candidates: those screened already or being screened (not the rejected)
            round_ids = {item["id"] for item in round_candidates(known)
                         if fidelity.evaluation_key(item["id"], rung) in evaluations} | {
                job["candidate_id"] for job in step.jobs.values()}
            ordered = [item for item in ordered if item["candidate_id"] in round_ids]
            keep = math.ceil(len(round_ids) / task.budget.halving_rate)
        else:
            keep = (len(at_rung) + pending) // task.budget.halving_rate
        # a result ranked above ``keep - pending`` stays in the top ``keep`` however the pending ones
        # turn out: its promotion is certain (time permitting), so it may run on past the step
        # (the screen always leads to the quick rung; has_next_rung compares epochs, which a screen caps by steps)
        promotes = rung == fidelity.SCREEN or fidelity.has_next_rung(task, rung)
        wanted = [(item["candidate_id"], rung + 1, index < keep - pending) for index, item in enumerate(ordered[:keep])
                  if promotes]
        leaders = fidelity.ranked(fidelity.completed(evaluations.values(), fidelity.SEARCH_KINDS), task.maximize)
        if leaders and fidelity.has_next_rung(task, fidelity.rung_of(leaders[0])):
            wanted.append((leaders[0]["candidate_id"], fidelity.rung_of(leaders[0]) + 1, True))
        candidates = known.get("candidates") or {}
        reserve = budget.reserve_s(known)
        jobs = []
        for candidate_id, next_rung, may_outlast_step in wanted:
            key = fidelity.evaluation_key(candidate_id, next_rung)
            if key in evaluations or key in step.jobs or candidate_id not in candidates:
                continue
            job = evaluation_job(known, task, key, fidelity.rung_kind(next_rung), candidate_id,
                                 candidates[candidate_id]["training"], task.seed, next_rung, reserve)
            jobs.append((job, may_outlast_step))
        return jobs


def _estimate_s(state: ResearchState, job: EvaluationJob) -> float | None:
    """Seconds ``job`` should take, from its own candidate's measured speed (None: never measured, or a
    screen, which is capped by steps rather than epochs)."""
    if job["kind"] == "screen":
        return None
    measured = any(item["candidate_id"] == job["candidate_id"] and item["status"] == COMPLETED
                   and item.get("history") for item in evaluations_of(state).values())
    model = throughput(state, job["candidate_id"]) if measured else None
    return None if model is None else model.run_s(job["epochs"])
