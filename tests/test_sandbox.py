"""The sandbox: a warm fork server runs jobs in child processes with time and memory limits."""

from __future__ import annotations

import os
import time

import pytest

from tests import sandbox_helpers as jobs
from torchscout.settings import configure
from torchscout.tools.errors import CommandTimeoutError, ToolError, UserCodeError
from torchscout.tools.sandbox.runner import run_in_sandbox

HERE = [jobs.REPO_ROOT]


def test_a_job_returns_its_value_from_a_child_in_the_workspace(workspace, monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_TEST_MARKER", "seen-by-the-child")
    result = run_in_sandbox(jobs.add, {"a": 2, "b": 3}, extra_sys_path=HERE)
    assert result.ok, result.error_text()
    assert result.value["sum"] == 5
    assert result.value["cwd"] == str(workspace)
    assert result.value["workspace"] == str(workspace)
    assert result.value["marker"] == "seen-by-the-child"  # the caller's current environment, not a stale one
    assert jobs.CALLS["count"] == 0  # it ran elsewhere


def test_secret_looking_variables_reach_a_job_only_when_allow_listed(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-123")
    assert run_in_sandbox(jobs.add, {"a": 1, "b": 1}, extra_sys_path=HERE).value["token"] is None
    configure(sandbox_env_allow=["MY_SERVICE_TOKEN"])
    assert run_in_sandbox(jobs.add, {"a": 1, "b": 1}, extra_sys_path=HERE).value["token"] == "tok-123"


def test_each_job_is_a_fresh_fork_of_one_warm_server():
    # (how fast a fork is belongs in a benchmark, not in a test that other work on the machine can slow)
    first = run_in_sandbox(jobs.add, {"a": 1, "b": 1}, extra_sys_path=HERE)
    second = run_in_sandbox(jobs.add, {"a": 1, "b": 1}, extra_sys_path=HERE)
    # a fresh process each time (the first job's call left no trace), with torch imported before the fork
    assert first.value["calls_in_this_process"] == second.value["calls_in_this_process"] == 1
    assert first.value["torch_was_imported"] and second.value["torch_was_imported"]
    # each with a private temporary folder, removed afterwards
    assert first.value["tmpdir"] != second.value["tmpdir"]
    assert not os.path.exists(first.value["tmpdir"])


def test_an_exception_comes_back_as_data_with_its_traceback():
    result = run_in_sandbox(jobs.raise_value_error, {"message": "the shapes do not match"}, extra_sys_path=HERE)
    assert not result.ok
    assert result.error_type == "ValueError"
    assert result.error == "the shapes do not match"
    assert "raise_value_error" in result.traceback
    error = result.to_error("running the probe")
    assert isinstance(error, UserCodeError)
    assert "ValueError: the shapes do not match" in str(error)


def test_output_of_the_child_is_captured_not_mixed_into_the_protocol():
    result = run_in_sandbox(jobs.chatty, {"lines": 3}, extra_sys_path=HERE)
    assert result.ok and result.value == 3
    assert "line 2" in result.output and "to stderr" in result.output


def test_a_job_past_its_time_limit_is_killed_and_the_server_survives():
    started = time.monotonic()
    result = run_in_sandbox(jobs.sleep_forever, {}, timeout_s=0.5, extra_sys_path=HERE)
    assert time.monotonic() - started < 5
    assert result.timed_out and not result.ok
    assert "0.5 s time limit" in result.error
    assert isinstance(result.to_error("the probe"), CommandTimeoutError)
    assert run_in_sandbox(jobs.add, {"a": 1, "b": 2}, extra_sys_path=HERE).value["sum"] == 3


def test_the_memory_limit_stops_a_large_allocation():
    result = run_in_sandbox(jobs.allocate_bytes, {"n_bytes": 3 << 30}, memory_limit_bytes=1 << 30,
                            extra_sys_path=HERE)
    assert not result.ok
    assert "allocate" in result.error.lower() or result.error_type == "MemoryError"
    small = run_in_sandbox(jobs.allocate_bytes, {"n_bytes": 64 << 20}, memory_limit_bytes=1 << 30,
                           extra_sys_path=HERE)
    assert small.ok and small.value == (64 << 20) // 4


def test_a_crash_in_native_code_is_reported_with_the_signal():
    result = run_in_sandbox(jobs.crash_hard, {}, extra_sys_path=HERE)
    assert not result.ok
    assert result.error_type == "Killed"
    assert "SIGSEGV" in result.error


def test_only_importable_functions_and_json_arguments_are_accepted():
    with pytest.raises(ToolError, match="module-level function"):
        run_in_sandbox(lambda: 1, {})
    with pytest.raises(ToolError, match="JSON-able"):
        run_in_sandbox(jobs.add, {"a": object(), "b": 1})


def test_a_server_still_starting_at_exit_is_killed_not_waited_for():
    # `torchscout run` starts the server early; a bad task file then fails the command while the
    # server still imports torch. Exiting must end that server at once instead of waiting for it.
    import signal
    import threading

    from torchscout.tools.sandbox.server_client import ForkServer

    server = ForkServer()
    outcome: dict[str, BaseException | None] = {}

    def start() -> None:
        try:
            server.ensure_started()
            outcome["error"] = None
        except ToolError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=start)
    thread.start()
    deadline = time.monotonic() + 30
    while server._starting is None and time.monotonic() < deadline:
        time.sleep(0.005)
    starting = server._starting
    assert starting is not None, "the server never began starting"
    server.stop_at_exit()
    thread.join(30)
    assert not thread.is_alive()
    assert starting.wait(5) == -signal.SIGKILL
    assert isinstance(outcome["error"], ToolError) and "did not start" in str(outcome["error"])
    assert server._process is None and server._starting is None


def test_every_forked_job_keeps_the_memory_a_training_step_frees():
    # glibc's moving thresholds can hand a training step fresh pages every step (a page fault per
    # 4 KiB, 15-20% slower epochs: tools/sandbox/allocator.py); every job fixes them, keeping what a
    # step frees (here 93 MiB, more than the 64 MiB jobs kept before) for the next step
    result = run_in_sandbox(jobs.kept_after_freeing_mib, {}, timeout_s=60)
    assert result.ok, result.error
    assert result.value >= 90, f"{result.value:.1f} of 93 freed MiB kept"


def test_kept_memory_is_set_for_the_process_unless_the_user_chose_glibcs_thresholds():
    import json
    import subprocess
    import sys

    environment = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}

    def probe(function: str, **extra: str):
        completed = subprocess.run(
            [sys.executable, "-c", f"import json; from tests import sandbox_helpers as h; print(json.dumps(h.{function}()))"],
            env={**environment, **extra}, capture_output=True, text=True, check=True, cwd=jobs.REPO_ROOT)
        return json.loads(completed.stdout.splitlines()[-1])

    assert probe("kept_after_freeing_mib") < 1  # glibc's default, what a job would get without it
    kept = probe("kept_after_freeing_mib_with_kept_memory")
    assert kept["set"] and kept["kept_mib"] >= 90, kept
    mine = probe("kept_after_freeing_mib_with_kept_memory", MALLOC_TRIM_THRESHOLD_="0")
    assert not mine["set"] and mine["kept_mib"] < 1, mine
