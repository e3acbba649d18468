"""Parallel candidate evaluations on one machine: ``budget.workers``, the slots, the plan, the same results."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.research_helpers import cli_command, cli_env, digits_task, events, write_task
from torchscout.agent.task import TaskError, load_task
from torchscout.graphs.executor import executor_for, graph_threads
from torchscout.graphs.workers import Slots, parallel_wall_s, plan_workers


def test_the_default_plan_takes_one_worker_per_gpu_else_one_per_core_up_to_a_cap():
    assert (plan_workers(None, 2).workers, plan_workers(None, 2).threads) == (2, 1)
    assert (plan_workers(None, 64).workers, plan_workers(None, 64).threads) == (8, 8)
    on_gpus = plan_workers(None, 16, ("0", "1", "2", "3"))
    assert (on_gpus.workers, on_gpus.threads) == (4, 4)
    assert [on_gpus.gpu_of(slot) for slot in range(5)] == ["0", "1", "2", "3", "0"]
    assert plan_workers(None, 4).gpu_of(0) is None
    # on a cluster an evaluation's threads fit on its largest node
    assert plan_workers(None, 64, ("0", "1"), max_threads=8).threads == 8


def test_an_evaluations_threads_do_not_depend_on_the_number_of_workers():
    # the thread count can change a float sum's rounding: fixed per machine, the metrics are too
    assert {plan_workers(workers, 2).threads for workers in (None, 1, 2, 6)} == {1}
    assert {plan_workers(workers, 64).threads for workers in (None, 1, 2, 16)} == {8}
    assert plan_workers(1, 64).workers == 1 and plan_workers(16, 64).workers == 16


def test_parallel_wall_time_is_the_busiest_slot_not_the_sum():
    assert parallel_wall_s([10, 10], 1) == 20
    assert parallel_wall_s([10, 10], 2) == 10
    assert parallel_wall_s([9, 5, 4, 3], 2) == 12  # 9+3 and 5+4
    assert parallel_wall_s([], 3) == 0


def test_slots_let_only_as_many_holders_in_as_there_are_slots():
    slots, inside, peak, lock = Slots(2), [0], [0], threading.Lock()
    seen: list[int] = []

    def hold() -> None:
        with slots.held() as index:
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
                seen.append(index)
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=hold) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 2 and sorted(set(seen)) == [0, 1]


def test_task_keys_for_workers_and_the_executor_are_validated():
    task = load_task(digits_task(workers=3, max_minutes=1))
    assert task.budget.workers == 3 and task.executor == "local" and task.ray_address is None
    assert graph_threads(task) == 3 + 4
    assert executor_for(task).plan.workers == 3
    with pytest.raises(TaskError, match="budget.workers"):
        load_task(digits_task(workers=0))
    with pytest.raises(TaskError, match="executor"):
        load_task({**digits_task(), "executor": "dask"})
    with pytest.raises(TaskError, match="ray_address: only an executor: ray run"):
        load_task({**digits_task(), "ray_address": "127.0.0.1:6379"})
    assert load_task({**digits_task(), "executor": "ray", "ray_address": "10.0.0.1:6379"}).executor == "ray"


def _in_flight_peak(recorded: list[dict]) -> int:
    """The most evaluations started and not yet finished at one time, from the event log."""
    running, peak = set(), 0
    for item in recorded:
        if item["event"] == "started":
            running.add(item["key"])
        elif item["event"] in {"evaluated", "failed", "skipped"} and "key" in item:
            running.discard(item["key"])
        peak = max(peak, len(running))
    return peak


def _run(workspace: Path, task: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command("run", str(write_task(workspace, task))), cwd=workspace,
                          env=cli_env(workspace), capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # two research runs: a minute on a quiet machine (the default suite's digits run already
# evaluates with the default workers, two on two cores)
def test_two_workers_give_every_candidate_the_same_metrics_as_one(tmp_path, monkeypatch):
    from torchscout.graphs.driver import run_state
    from torchscout.settings import reset_configuration

    evaluations = {}
    for workers in (1, 2):
        workspace = tmp_path / f"workers{workers}"
        workspace.mkdir()
        task = digits_task("digits", max_rounds=1, candidates_per_round=3, quick_epochs=2, optimizer_trials=1,
                           confirm_seeds=1, full_epochs=0, max_minutes=30, workers=workers)
        finished = _run(workspace, task)
        assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
        assert _in_flight_peak(events(workspace, "digits")) == workers
        monkeypatch.setenv("TORCHSCOUT_WORKSPACE", str(workspace))
        reset_configuration()
        state = run_state("digits")
        threads = plan_workers(None, len(os.sched_getaffinity(0))).threads  # the machine's, for any workers
        assert f"{workers} evaluation(s) at once (local, {threads} thread(s) each)" in state["decisions"][0]["text"]
        evaluations[workers] = {key: (item["status"], item["metric"]) for key, item in state["evaluations"].items()}
    assert sum(status == "completed" for status, _ in evaluations[1].values()) >= 3
    assert evaluations[2] == evaluations[1]


def test_an_unreachable_ray_cluster_is_one_clear_error_before_the_run_starts(workspace):
    pytest.importorskip("ray")
    from torchscout.graphs.driver import list_runs, research
    from torchscout.tools.errors import ToolError

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    task = {**digits_task("remote"), "executor": "ray", "ray_address": address}
    with pytest.raises(ToolError, match=f"cannot reach the Ray cluster at {address}"):
        research(task)
    assert [row["name"] for row in list_runs()] == []  # nothing was checkpointed
