"""Speculative evaluations in idle worker slots (graphs.speculation) and the slots' order.

One real digits run (one worker, one round) gives a state with measured candidates. The tests then
replay its quick step against a speculator with real confined evaluations: the idle slot runs the
leader's next rung, and its result is the one a real evaluation of that job gives.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.research_helpers import digits_task
from torchscout.agent.records import evaluations_of
from torchscout.graphs import fidelity
from torchscout.graphs.evaluate import evaluate_confined
from torchscout.graphs.jobs import job_cost, rung_jobs
from torchscout.graphs.speculation import Speculator
from torchscout.graphs.workers import Slots, plan_workers


def test_waiting_jobs_take_free_slots_costliest_first():
    slots = Slots(1)
    order: list[str] = []
    holder = slots.held()
    holder.__enter__()  # the only slot is taken: the others queue

    def wait(name: str, priority: float) -> None:
        with slots.held(priority=priority):
            order.append(name)

    threads = []
    for name, priority in (("small", 1.0), ("large", 100.0), ("medium", 10.0)):
        threads.append(threading.Thread(target=wait, args=(name, priority)))
        threads[-1].start()
        time.sleep(0.05)  # all three wait before the slot comes free
    assert slots.waiting == 3
    holder.__exit__(None, None, None)
    for thread in threads:
        thread.join(5)
    assert order == ["large", "medium", "small"]


def test_an_idle_slot_is_taken_only_when_no_job_waits_for_it():
    slots = Slots(2)
    with slots.held():
        index = slots.take_idle()
        assert index is not None
        assert slots.take_idle() is None  # both slots are out now
        kept = []  # the waiter's context stays referenced: it holds its slot until the test ends
        waiter = threading.Thread(target=lambda: kept.append((held := slots.held(), held.__enter__())))
        waiter.start()
        time.sleep(0.05)
        slots.give_back(index)
        waiter.join(5)
        assert not waiter.is_alive()  # the waiting job got the slot given back
    assert slots.take_idle() is not None  # free again once the holder left; the waiter still holds one
    assert slots.take_idle() is None


def _use(workspace) -> None:
    from torchscout.settings import configure

    configure(workspace=workspace, wandb_mode="disabled", progress=False, llm="builtin")


@pytest.fixture(scope="module")
def measured_workspace(tmp_path_factory):
    """The workspace of a finished one-worker digits run: one round of four candidates, rungs up to 4 epochs."""
    from torchscout.graphs.driver import research
    from torchscout.settings import reset_configuration

    workspace = tmp_path_factory.mktemp("speculation")
    _use(workspace)
    try:
        task = digits_task("spec", max_rounds=1, candidates_per_round=4, screen_steps=30, quick_epochs=1,
                           optimizer_trials=0, confirm_seeds=1, full_epochs=4, max_minutes=20, workers=1)
        assert research(task, name="spec")["status"] == "finished"
    finally:
        reset_configuration()
    return workspace


@pytest.fixture
def measured_run(measured_workspace):
    """The finished run's state, with its workspace configured for this test."""
    from torchscout.graphs.driver import run_state

    _use(measured_workspace)
    return run_state("spec")


def _quick_step(state):
    """The run's state as its quick step began (nothing at rung 1 or deeper yet) and that step's jobs."""
    early = {key: item for key, item in evaluations_of(state).items() if fidelity.rung_of(item) == fidelity.SCREEN}
    before = {**state, "evaluations": early}
    promoted = [item for item in state["candidates"].values() if item.get("promoted_rung", 0) >= fidelity.QUICK]
    return before, rung_jobs(before, fidelity.QUICK, promoted)


def test_an_idle_slot_runs_the_leaders_next_rung_with_the_result_a_real_evaluation_gives(measured_run):
    before, jobs = _quick_step(measured_run)
    assert len(jobs) >= 2 and [job_cost(job) for job in jobs] == sorted(map(job_cost, jobs), reverse=True)
    threads = plan_workers(None, 2).threads
    slots = Slots(2)
    speculator = Speculator(slots, lambda job, left, slot: evaluate_confined(job, left, threads=threads))
    first, second = jobs[0], jobs[1]
    speculator.begin_step(before, [first, second])
    held = {job["key"]: slots.take_idle() for job in (first, second)}  # each running job holds a slot
    for job in (first, second):
        speculator.started(job, 600.0)
    assert speculator.claim(first) is None  # nothing is idle while the step's jobs all run
    # the first finishes (its recorded result) and frees its slot; the second still runs
    slots.give_back(held[first["key"]])
    speculator.finished(first, evaluations_of(measured_run)[first["key"]])
    next_key = fidelity.evaluation_key(first["candidate_id"], fidelity.QUICK + 1)
    # the leader so far is the first job's candidate: its next rung runs in the idle slot
    next_jobs = rung_jobs(before, fidelity.QUICK + 1, [measured_run["candidates"][first["candidate_id"]]])
    speculation = speculator.claim(next_jobs[0])
    assert speculation is not None and speculation.job["key"] == next_key
    assert slots.take_idle() is None  # the speculation and the running job hold both slots
    speculated = speculation.result_for(600.0)
    assert speculated is not None and speculated["speculative"] is True
    real = evaluate_confined(next_jobs[0], 600.0, threads=threads)
    assert speculated["metric"] == real["metric"] and speculated["train_loss"] == real["train_loss"]
    # its result made it the leader at rung 2: the rung after that followed in the same slot
    deeper = rung_jobs(before, fidelity.QUICK + 2, [measured_run["candidates"][first["candidate_id"]]])[0]
    chained = speculator.claim(deeper)
    assert chained is not None and chained.done.wait(120)
    slots.give_back(held[second["key"]])
    speculator.finished(second, evaluations_of(measured_run)[second["key"]])
    assert slots.take_idle() is not None and slots.take_idle() is not None  # all given back


def test_one_slot_never_speculates_and_a_result_cut_short_by_time_is_not_used(measured_run):
    before, jobs = _quick_step(measured_run)
    slots = Slots(1)
    calls: list[str] = []
    speculator = Speculator(slots, lambda job, left, slot: calls.append(job["key"]) or {})
    speculator.begin_step(before, jobs[:2])
    for job in jobs[:2]:
        speculator.started(job, 600.0)
    speculator.finished(jobs[0], evaluations_of(measured_run)[jobs[0]["key"]])  # as with two slots below
    time.sleep(0.2)
    assert calls == [] and slots.take_idle() is not None  # workers - 1 = 0 speculations: none started

    threads = plan_workers(None, 2).threads
    two_slots = Slots(2)
    two = Speculator(two_slots, lambda job, left, slot: evaluate_confined(job, left, threads=threads))
    two.begin_step(before, jobs[:2])
    for job in jobs[:2]:
        two.started(job, 600.0)
    two.finished(jobs[0], evaluations_of(measured_run)[jobs[0]["key"]])
    next_job = rung_jobs(before, fidelity.QUICK + 1, [measured_run["candidates"][jobs[0]["candidate_id"]]])[0]
    speculation = two.claim(next_job)
    assert speculation is not None
    speculation.done.wait(120)
    # a real job with less time left than the speculation took cannot use it: it runs for real
    assert speculation.result_for(0.5) is None
    assert speculation.result_for(600.0) is not None


def test_a_screen_result_no_pending_one_can_displace_gets_its_quick_evaluation_ahead(measured_run):
    """Three or four candidates screened, all but one done: the top two earn the quick rung, so the best
    of those done is promoted whatever the last one scores; its quick evaluation starts in the idle slot though nobody can
    say how long the fourth screen still runs. The second best could still be displaced: it waits."""
    evaluations = evaluations_of(measured_run)
    screened = [item for item in measured_run["candidates"].values() if f"{item['id']}/screen" in evaluations]
    assert len(screened) in (3, 4)  # the round's fourth may be rejected for its size
    before = {**measured_run, "evaluations": {}}
    jobs = rung_jobs(before, fidelity.SCREEN, screened)
    by_metric = sorted(jobs, key=lambda job: evaluations[job["key"]]["metric"], reverse=True)
    still_running, done = by_metric[-1], by_metric[:-1]  # the worst screen is the one still running
    threads = plan_workers(None, 2).threads
    slots = Slots(2)
    speculator = Speculator(slots, lambda job, left, slot: evaluate_confined(job, left, threads=threads))
    speculator.begin_step(before, jobs)
    for job in jobs:
        speculator.started(job, 600.0)
    for job in done:
        speculator.finished(job, evaluations[job["key"]])
    quick = {job["candidate_id"]: job for job in rung_jobs(before, fidelity.QUICK, screened)}
    best, second = done[0]["candidate_id"], done[1]["candidate_id"]
    speculation = speculator.claim(quick[best])
    assert speculation is not None
    assert speculator.claim(quick[second]) is None
    assert speculation.result_for(600.0)["metric"] == evaluations[f"{best}/quick"]["metric"]
    speculator.finished(still_running, evaluations[still_running["key"]])


def test_a_state_the_predictions_cannot_read_costs_only_the_speculation(measured_run):
    before, jobs = _quick_step(measured_run)
    # e.g. a run written by an older version: candidates without their training record
    damaged = {**before, "candidates": {key: {name: value for name, value in item.items() if name != "training"}
                                        for key, item in before["candidates"].items()}}
    calls: list[str] = []
    speculator = Speculator(Slots(2), lambda job, left, slot: calls.append(job["key"]) or {})
    speculator.begin_step(damaged, jobs[:2])
    for job in jobs[:2]:
        speculator.started(job, 600.0)
    speculator.finished(jobs[0], evaluations_of(measured_run)[jobs[0]["key"]])  # no exception reaches the job
    assert calls == []
