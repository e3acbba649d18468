"""``executor: ray`` against a real local Ray cluster (a head and one worker node, one CPU each).

One module fixture starts the cluster with ``ray start`` on this machine, runs a small digits task
with the local executor (two workers, one thread each: what the cluster's two one-CPU nodes give
each evaluation too), then the same task with ``executor: ray`` through the CLI, kills the driver
with SIGKILL while an evaluation is in flight and finishes it with ``torchscout resume``. The
cluster is stopped with ``ray stop`` whatever happens. Slow: a run costs a minute or more here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.research_helpers import cli_command, cli_env, digits_task, events, run_cli, write_task

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))
DONE = {"evaluated", "failed", "skipped"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ray(*args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([RAY, *args], env=environment, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def ray_auth_off():
    """Every Ray process of these tests (ray start, the drivers, a local instance) without token auth.

    Ray 2.60 turns token auth on for `ray start --head` when ~/.ray/auth_token exists (a local
    `ray.init()` writes one), but not for `ray start --address`, whose worker is then refused; saying
    the mode explicitly keeps the tests independent of what earlier Ray runs left in the home folder.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        yield


@pytest.fixture(scope="module")
def ray_cluster(ray_auth_off):
    address = f"127.0.0.1:{_free_port()}"
    node = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--object-store-memory", str(100 << 20),
            "--disable-usage-stats"]
    try:
        head = _ray("start", "--head", "--port", address.split(":")[1], "--include-dashboard", "false", *node)
        assert head.returncode == 0, head.stdout[-2000:] + head.stderr[-2000:]
        worker = _ray("start", "--address", address, *node)
        assert worker.returncode == 0, worker.stdout[-2000:] + worker.stderr[-2000:]
        yield address
    finally:
        _ray("stop", "--force")


def _task(name: str, **keys) -> dict:
    task = digits_task(name, max_rounds=1, candidates_per_round=3, optimizer_trials=1, confirm_seeds=1,
                       full_epochs=0, max_minutes=30, workers=2)
    task.update(keys)
    return task


def _kill_during_an_evaluation(workspace: Path, task_path: Path, run: str) -> dict:
    log = (workspace / "first_attempt.log").open("w")
    process = subprocess.Popen(cli_command("run", str(task_path), "--name", run), cwd=workspace,
                               env=cli_env(workspace), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 400
    try:
        while True:
            recorded = events(workspace, run)
            finished = [item for item in recorded if item["event"] in DONE and "key" in item]
            started = {item["key"] for item in recorded if item["event"] == "started"}
            if len(finished) >= 2 and started - {item["key"] for item in finished}:
                break  # two evaluations are recorded and another one is in flight in the cluster
            assert process.poll() is None, (workspace / "first_attempt.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never reached its third evaluation"
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)  # the driver only: the evaluations run in the cluster's workers
        process.wait()
        with contextlib.suppress(ProcessLookupError):  # then what it started itself, if anything is left
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
    return {"pid": process.pid, "events": events(workspace, run)}


@pytest.fixture(scope="module")
def runs(ray_cluster, tmp_path_factory) -> dict:
    local = tmp_path_factory.mktemp("local") / "workspace"
    local.mkdir()
    finished = run_cli(local, "run", str(write_task(local, _task("digits_local"))), timeout=600)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]

    cluster = tmp_path_factory.mktemp("cluster") / "workspace"
    cluster.mkdir()
    task_path = write_task(cluster, _task("digits_ray", executor="ray", ray_address=ray_cluster))
    first = _kill_during_an_evaluation(cluster, task_path, "digits_ray")
    resumed = run_cli(cluster, "resume", "digits_ray", timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    return {"local": local, "cluster": cluster, "first": first, "resume_output": resumed.stdout}


def _state(workspace: Path, run: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    from torchscout.graphs.driver import run_state
    from torchscout.settings import reset_configuration

    monkeypatch.setenv("TORCHSCOUT_WORKSPACE", str(workspace))
    monkeypatch.chdir(workspace)
    reset_configuration()
    return run_state(run)


def test_the_cluster_run_gives_every_candidate_the_local_runs_metrics(runs, monkeypatch):
    local = _state(runs["local"], "digits_local", monkeypatch)["evaluations"]
    cluster_state = _state(runs["cluster"], "digits_ray", monkeypatch)
    cluster = cluster_state["evaluations"]
    assert sorted(cluster) == sorted(local)
    assert sum(item["status"] == "completed" for item in cluster.values()) >= 3
    for key, item in local.items():
        assert (cluster[key]["status"], cluster[key]["metric"]) == (item["status"], item["metric"]), key
    setup = cluster_state["decisions"][0]["text"]
    assert "2 evaluation(s) at once (ray, 1 thread(s) each)" in setup
    assert "finished" in runs["resume_output"]


def test_without_an_address_a_local_ray_instance_runs_the_evaluations(runs, monkeypatch, workspace):
    finished = run_cli(workspace, "run", str(write_task(workspace, _task("digits_own_ray", executor="ray"))),
                       timeout=600)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    local = _state(runs["local"], "digits_local", monkeypatch)["evaluations"]
    own = _state(workspace, "digits_own_ray", monkeypatch)
    assert "evaluation(s) at once (ray," in own["decisions"][0]["text"]
    assert {key: item["metric"] for key, item in own["evaluations"].items()} == {
        key: item["metric"] for key, item in local.items()}


def test_a_killed_cluster_run_resumes_keeping_its_finished_evaluations(runs, monkeypatch):
    before = runs["first"]["events"]
    finished_before = {item["key"] for item in before if item["event"] in DONE and "key" in item}
    # an evaluation that finished in the instant before the kill may not have reached its checkpoint
    racing = before[-1].get("key") if before[-1]["event"] in DONE else None
    durable = finished_before - {racing}
    in_flight = {item["key"] for item in before if item["event"] == "started"} - finished_before
    assert len(durable) >= 2 and in_flight

    every = events(runs["cluster"], "digits_ray")
    finished = [item for item in every if item["event"] in DONE and "key" in item]
    for key in durable:
        assert sum(item["key"] == key for item in finished) == 1, f"{key} was evaluated again after the resume"
    for key in in_flight:  # lost with the driver: sent to the cluster again by the resumed one
        redone = [item for item in finished if item["key"] == key]
        assert len(redone) == 1 and redone[0]["pid"] != runs["first"]["pid"]
    state = _state(runs["cluster"], "digits_ray", monkeypatch)
    assert len(state["evaluations"]) == len({item["key"] for item in finished})
