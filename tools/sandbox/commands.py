"""Run a command (an argv list, never a shell string) confined, with a time limit and bounded output.

:func:`run_command` is what bash_run, python_run and pip_install_pytorch_package use::

    policy = checked_policy("shell", temp_dir=folder, network=False)    # capabilities.py
    result = run_command(["bash", "-c", "make test"], timeout_s=600, policy=policy, env=environment)
    result.as_text()   # output (head and tail when long) + "[exit code 0 after 2.1 s]"

With a policy, the command runs under the launcher (``launcher.py``): namespaces, Landlock,
limits, and a supervisor that kills the whole tree at the deadline and whatever is left in the
background when the command ends. With ``policy=None`` (the user's own ``torchscout train
--nproc``) it runs in its own process group, killed as a group at the deadline. Either way its
output is read from a pipe into a bounded head and tail: nothing spools to disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from torchscout.tools.errors import ToolError
from torchscout.tools.sandbox.output import MAX_OUTPUT_CHARS, BoundedOutput
from torchscout.tools.sandbox.policy import SandboxPolicy
from torchscout.tools.workspace import workspace_root

MAX_TIMEOUT_S = 24 * 3600
GRACE_S = 10.0  # the launcher enforces the limit; past it by this much, the group is killed from here
KILL_GRACE_S = 2.0  # between SIGTERM and SIGKILL
LAUNCHER = [sys.executable, "-P", "-m", "torchscout.tools.sandbox.launcher"]


@dataclass(frozen=True)
class CommandResult:
    """What a finished command left behind."""

    output: str
    exit_code: int | None
    timed_out: bool
    duration_s: float
    cut_chars: int
    mechanisms: tuple[str, ...] = field(default=())

    def as_text(self) -> str:
        """The output followed by one bracketed line an agent can read at a glance."""
        if self.timed_out:
            status = f"timed out after {self.duration_s:.1f} s; the command and everything it started were killed"
        else:
            status = f"exit code {self.exit_code} after {self.duration_s:.1f} s"
        body = self.output if self.output.endswith("\n") or not self.output else self.output + "\n"
        return f"{body}[{status}]"


def check_argv(argv: list[str]) -> None:
    if not argv:
        raise ToolError("nothing to run: the command is empty")
    for argument in argv:
        if "\x00" in argument:
            raise ToolError("the command contains a NUL byte (\\x00), which no program can receive as an "
                            "argument; remove it")


def _read_until_done(process: subprocess.Popen, output: BoundedOutput, deadline: float) -> bool:
    """Read the merged output until end of file; False when the deadline came first."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return True
            output.feed(chunk)


def _kill_group(process: subprocess.Popen) -> None:
    """SIGTERM the command's process group, then SIGKILL what is left.

    The SIGTERM first matters for unconfined commands: torchrun, asked nicely, stops its workers,
    which run in sessions of their own where the group's SIGKILL would not reach them. (A confined
    command's supervisor kills its whole tree either way.)
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=KILL_GRACE_S)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):  # grandchildren that ignored SIGTERM
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _start(argv: list[str], policy: SandboxPolicy | None, cwd: Path, env: Mapping[str, str] | None,
           timeout_s: float) -> tuple[subprocess.Popen, int | None]:
    """Start the command (under the launcher when confined); (process, status pipe's read end)."""
    common = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT,
              "start_new_session": True}
    if policy is None:
        return subprocess.Popen(argv, cwd=cwd, env=env, **common), None
    spec_read, spec_write = os.pipe()
    status_read, status_write = os.pipe()
    try:
        # the launcher starts with the command's environment already: /proc/PID/environ of every process
        # in the job shows the environment its program started with, so no secret may be in it
        process = subprocess.Popen([*LAUNCHER, str(spec_read), str(status_write)], cwd=cwd, env=env,
                                   pass_fds=(spec_read, status_write), **common)
    finally:
        os.close(spec_read)
        os.close(status_write)
    spec = {"policy": policy, "argv": argv, "env": dict(env if env is not None else os.environ), "cwd": str(cwd),
            "timeout_s": timeout_s}  # (env None: the caller's own, which it chose to pass on whole)
    with os.fdopen(spec_write, "wb") as sink:
        sink.write(json.dumps(spec).encode("utf-8"))
    return process, status_read


def run_command(argv: list[str], *, timeout_s: float, policy: SandboxPolicy | None, cwd: Path | None = None,
                env: Mapping[str, str] | None = None, max_output_chars: int = MAX_OUTPUT_CHARS) -> CommandResult:
    """Run ``argv`` and return its combined, bounded output (see the module docstring)."""
    check_argv(argv)
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ToolError(f"timeout_s must be between 0 and {MAX_TIMEOUT_S} seconds, got {timeout_s}")
    started = time.monotonic()
    try:
        process, status_read = _start(argv, policy, cwd or workspace_root(), env, timeout_s)
    except OSError as exc:
        raise ToolError(f"could not start {argv[0]!r}: {exc}") from exc
    output = BoundedOutput(max_output_chars)
    try:
        finished = _read_until_done(process, output, started + timeout_s + (GRACE_S if policy else 0))
        if finished:
            process.wait()
        else:
            _kill_group(process)
    except BaseException:
        _kill_group(process)
        raise
    finally:
        assert process.stdout is not None
        process.stdout.close()
    status = _read_status(status_read)
    timed_out = not finished or bool(status.get("timed_out"))
    exit_code = None if timed_out else _exit_code(status, process.returncode)
    return CommandResult(output.text(), exit_code, timed_out, time.monotonic() - started, output.cut,
                         tuple(status.get("mechanisms", ())))


def _exit_code(status: dict, returncode: int) -> int:
    """The command's exit code as a shell reports it (128 + N for a command killed by signal N)."""
    if status.get("exit_code") is not None:
        return int(status["exit_code"])
    if status.get("signal"):
        return 128 + int(status["signal"])
    return returncode if returncode >= 0 else 128 - returncode


def _read_status(status_read: int | None) -> dict:
    if status_read is None:
        return {}
    with os.fdopen(status_read, "rb") as source:
        try:
            os.set_blocking(source.fileno(), False)
            return json.loads(source.read() or b"{}")
        except (json.JSONDecodeError, BlockingIOError, TypeError):
            return {}
