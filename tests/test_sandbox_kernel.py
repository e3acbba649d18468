"""The kernel sandbox: what doctor reports, the settings, the limits, and a kernel without user namespaces.

A kernel that lacks a mechanism is made for real: ``unshare -U -r`` gives a user namespace whose
``user.max_user_namespaces`` is set to 0, so nothing started in it can make another one (no PID,
mount or network namespace for the sandbox); Landlock still works there.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import sandbox_helpers as jobs
from tests.fallback_helpers import REPO_ROOT
from tests.training_helpers import write_image_folder, write_models
from torchscout.app import app
from torchscout.settings import SettingsError, configure, get_settings
from torchscout.tools import bash_run, pytorch_quick_evaluator
from torchscout.tools.sandbox.environment import child_environment, looks_secret
from torchscout.tools.sandbox.output import BoundedOutput
from torchscout.tools.sandbox.policy import make_policy
from torchscout.tools.sandbox.runner import run_in_sandbox


def _without_user_namespaces(*command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``command`` where no user namespace can be created (skip when ``unshare -U -r`` is refused here)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-U", "-r", "true"]).returncode != 0:
        pytest.skip("unshare -U -r is not allowed on this machine")
    script = "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\""
    return subprocess.run(["unshare", "-U", "-r", "sh", "-c", script, "sh", *command], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_doctor_prints_one_line_per_protection_and_exits_zero(workspace):
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    for what in ("file system", "network", "process tree", "process count", "limits", "environment:"):
        assert what in result.output
    assert "Landlock ABI" in result.output or "Landlock is not available" in result.output


def test_doctor_exits_non_zero_when_required_cannot_be_met(workspace):
    env = {**os.environ, "TORCHSCOUT_SANDBOX": "required", "TORCHSCOUT_WORKSPACE": str(workspace)}
    done = _without_user_namespaces(sys.executable, "-m", "torchscout.graphs.cli", "doctor", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "MISSING" in done.stdout and "sandbox is 'required'" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_without_user_namespaces_the_sandbox_still_confines(tmp_path, workspace):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("CANARY-fallback\n")
    env = {**os.environ, "TORCHSCOUT_SANDBOX": "auto"}
    done = _without_user_namespaces(sys.executable, "-m", "tests.fallback_helpers", str(workspace), str(outside),
                                    env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "pid" not in report["mechanisms"] and "landlock_fs" in report["mechanisms"], report
    assert "subreaper" in report["mechanisms"] and "landlock_tcp" in report["mechanisms"], report
    assert "done" in report["shell"] and "CANARY" not in report["shell"]
    assert not report["outside_written"] and not report["tcp_reached"]
    assert report["shell_leftovers"] == [] and report["job"] == "spawned" and report["job_leftovers"] == []


def test_required_refuses_to_run_what_this_kernel_cannot_confine(workspace):
    env = {**os.environ, "TORCHSCOUT_SANDBOX": "required"}
    done = _without_user_namespaces(sys.executable, "-m", "tests.fallback_helpers", str(workspace),
                                    str(workspace.parent), env=env)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "sandbox is required" in report["error"] and "process-count limit" in report["error"]
    assert "shell" not in report  # the command never ran


def test_the_shell_sees_the_limits(workspace):
    result = bash_run.invoke({"command": "ulimit -d; ulimit -f; ulimit -n; ulimit -t; ulimit -c"})
    data, size, files, cpu, core = result["output"].splitlines()[:5]
    assert data != "unlimited" and size != "unlimited" and cpu != "unlimited"
    assert int(files) <= 16384 and core == "0"


def test_sandbox_network_on_lets_the_shell_reach_a_local_listener(workspace):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    command = f"echo hi > /dev/tcp/127.0.0.1/{port} && echo connected"
    try:
        assert "connected" not in bash_run.invoke({"command": command, "timeout_s": 10})["output"]  # the default
        configure(sandbox_network="on")
        assert "connected" in bash_run.invoke({"command": command, "timeout_s": 10})["output"]
    finally:
        listener.close()


def test_sandbox_settings_from_the_environment_and_yaml(workspace, monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_SANDBOX_ENV_ALLOW", "HF_TOKEN, MY_KEY")
    assert get_settings().sandbox_env_allow == ["HF_TOKEN", "MY_KEY"]
    (workspace / "torchscout.yaml").write_text("sandbox: required\nsandbox_network: on\n")
    settings = get_settings()
    assert settings.sandbox == "required" and settings.sandbox_network == "on"  # (YAML reads `on` as true)
    monkeypatch.setenv("TORCHSCOUT_SANDBOX", "sometimes")
    with pytest.raises(SettingsError, match="sandbox"):
        get_settings()


def test_the_environment_keeps_what_is_allowed_and_drops_what_looks_secret():
    source = {"PATH": "/bin", "LANG": "C", "CUDA_VISIBLE_DEVICES": "0", "OPENAI_API_KEY": "k", "HF_TOKEN": "t",
              "AWS_PROFILE": "p", "DB_PASSWORD": "x", "GOOGLE_APPLICATION_CREDENTIALS": "/c", "RANDOM_THING": "r",
              "https_proxy": "http://proxy"}
    kept = child_environment(source)
    assert kept == {"PATH": "/bin", "LANG": "C", "CUDA_VISIBLE_DEVICES": "0"}
    assert child_environment(source, user_allowed=["HF_TOKEN"])["HF_TOKEN"] == "t"
    assert child_environment(source, network=True)["https_proxy"] == "http://proxy"
    assert all(looks_secret(name) for name in ("WANDB_API_KEY", "AZURE_CLIENT_ID", "GITHUB_TOKEN", "X_SECRET"))


def test_no_policy_reads_a_home_folder_or_writes_outside_the_workspace(workspace, monkeypatch, tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for profile in ("validation", "evaluation", "training", "shell"):
        policy = make_policy(profile, temp_dir=str(tmp_path / "private"))
        assert policy["write"][:2] == [str(workspace), str(tmp_path / "private")]
        assert set(policy["write"][2:]) <= {"/dev/shm"}
        assert not any(path == str(home) or path.startswith(str(home / ".ssh")) for path in policy["read"])
        assert "/etc/shadow" not in policy["read"] and not policy["network"]


def test_output_keeps_a_bounded_head_and_tail():
    output = BoundedOutput(100)
    for _ in range(10_000):
        output.feed(b"y\n" * 50)
    text = output.text()
    assert output.total == 1_000_000 and len(text) < 200
    assert text.startswith("y\n") and "bytes of output cut" in text


def test_jobs_from_two_threads_run_side_by_side():
    results = []

    def sleep_one_second():
        results.append(run_in_sandbox(jobs.sleep_for, {"seconds": 1.5}, extra_sys_path=[REPO_ROOT]))

    run_in_sandbox(jobs.add, {"a": 1, "b": 1}, extra_sys_path=[REPO_ROOT])  # (the server is started)
    started = time.monotonic()
    threads = [threading.Thread(target=sleep_one_second) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result.ok for result in results)
    assert time.monotonic() - started < 2.9  # one after the other would take 3 s


def test_a_job_leaves_no_process_behind_and_cannot_write_outside(workspace):
    target = Path(REPO_ROOT) / "sandbox-pwned.txt"  # torchscout's own folder: readable, never writable
    result = run_in_sandbox(jobs.leave_a_daemon_and_write, {"seconds": "63.515151", "outside": str(target)},
                            extra_sys_path=[REPO_ROOT])
    assert result.ok, result.error_text()
    assert result.value["outside_error"] and not target.exists()
    assert "landlock_fs" in result.extra["sandbox"]
    from tests.fallback_helpers import _settle

    assert _settle("63.515151") == []


def test_a_training_with_many_dataloader_workers_runs_under_the_limits(workspace):
    write_models(workspace)
    write_image_folder(workspace / "images")
    config = {"dataset": "imagefolder", "dataset_params": {"data_path": "images"}, "num_classes": 2, "epochs": 2,
              "batch_size": 2, "device": "cpu", "preload": False, "num_workers": 8,
              "model_params": {"num_classes": 2, "channels": 3}}
    result = pytorch_quick_evaluator.invoke({"model_script_path": "models.py", "model_class_name": "SmallCNN",
                                             "eval_config": config})
    assert isinstance(result, dict) and result["status"] == "completed", result
    assert result["data_path"] == "dataloader"


@pytest.mark.slow
def test_pip_installs_into_the_environment_and_the_shell_cannot(workspace, monkeypatch):
    from torchscout.tools import pip_install_pytorch_package

    package = workspace / "wheels" / "src"
    (package / "torchscout_sandbox_probe").mkdir(parents=True)
    (package / "torchscout_sandbox_probe" / "__init__.py").write_text("VALUE = 42\n")
    (package / "pyproject.toml").write_text('[project]\nname = "torchscout-sandbox-probe"\nversion = "1.0"\n'
                                            '[build-system]\nrequires = ["setuptools"]\n'
                                            'build-backend = "setuptools.build_meta"\n')
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                    str(workspace / "wheels"), str(package)], check=True, capture_output=True)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(workspace / "wheels"))
    denied = bash_run.invoke({"command": "pip install --no-index --find-links wheels torchscout-sandbox-probe"})
    assert denied["exit_code"] != 0, denied
    try:
        answer = pip_install_pytorch_package.invoke({"package_name": "torchscout-sandbox-probe", "version": "1.0"})
        assert answer["status"] == "success" and answer["exit_code"] == 0, answer
        check = subprocess.run([sys.executable, "-c", "import torchscout_sandbox_probe as p; print(p.VALUE)"],
                               capture_output=True, text=True, cwd=Path("/"))
        assert check.stdout.strip() == "42"
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "torchscout-sandbox-probe"],
                       capture_output=True)
