"""bash_run and python_run: run a child process in the workspace, safely bounded.

Both share :func:`run_command`: the child gets its own process group (so a timeout kills
everything it started, not just the shell), stdout and stderr are merged into a temporary
file (so a chatty child cannot fill memory), and the text handed back keeps the head and
the tail of long output and says how much was cut.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from torchscout.tools.errors import CommandTimeoutError, ToolError
from torchscout.tools.toolkit import make_tool
from torchscout.tools.workspace import resolve, workspace_root

MAX_OUTPUT_CHARS = 20_000
MAX_TIMEOUT_S = 24 * 3600
KILL_GRACE_S = 2.0


@dataclass(frozen=True)
class CommandResult:
    """What a finished child process left behind."""

    output: str
    exit_code: int | None
    timed_out: bool
    duration_s: float
    cut_chars: int

    def as_text(self) -> str:
        """The output followed by one bracketed line an agent can read at a glance."""
        if self.timed_out:
            status = f"timed out after {self.duration_s:.1f} s; the whole process group was killed"
        else:
            status = f"exit code {self.exit_code} after {self.duration_s:.1f} s"
        body = self.output if self.output.endswith("\n") or not self.output else self.output + "\n"
        return f"{body}[{status}]"


def _read_capped(handle, max_chars: int) -> tuple[str, int]:
    """Return (text, characters cut): all of it, or its head and tail around a marker line."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    if size <= max_chars:
        return handle.read().decode("utf-8", errors="replace"), 0
    half = max_chars // 2
    head = handle.read(half).decode("utf-8", errors="replace")
    handle.seek(size - half)
    tail = handle.read().decode("utf-8", errors="replace")
    cut = size - 2 * half
    marker = f"\n... [{cut:,} bytes of output cut; the first and last {half:,} are shown] ...\n"
    return head + marker + tail, cut


def _kill_group(process: subprocess.Popen) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is still alive."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=KILL_GRACE_S)
            if sig == signal.SIGKILL:
                return
        except subprocess.TimeoutExpired:
            continue
    # the leader is gone after SIGTERM; grandchildren may ignore SIGTERM, so always SIGKILL too
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def run_command(
    argv: list[str],
    *,
    timeout_s: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    max_output_chars: int = MAX_OUTPUT_CHARS,
) -> CommandResult:
    """Run ``argv`` (never through a shell string) and return its combined, capped output."""
    if not argv:
        raise ToolError("nothing to run: the command is empty")
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ToolError(f"timeout_s must be between 0 and {MAX_TIMEOUT_S} seconds, got {timeout_s}")
    started = time.monotonic()
    with tempfile.TemporaryFile() as output:
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd or workspace_root(),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a timeout can kill all of it
            )
        except OSError as exc:
            raise ToolError(f"could not start {argv[0]!r}: {exc}") from exc
        timed_out = False
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
        except BaseException:
            _kill_group(process)
            raise
        duration = time.monotonic() - started
        text, cut = _read_capped(output, max_output_chars)
    return CommandResult(text, None if timed_out else process.returncode, timed_out, duration, cut)


def active_environment() -> dict[str, str]:
    """os.environ with this interpreter's environment first on PATH.

    The agent runs inside a virtual environment that may never have been "activated" (started as
    `.venv/bin/torchscout`); without this, `python` or `pip` in a shell command would be the
    system's, without torch.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    scripts = str(Path(sys.executable).parent)
    paths = env.get("PATH", "").split(os.pathsep) if env.get("PATH") else []
    env["PATH"] = os.pathsep.join([scripts, *(entry for entry in paths if entry != scripts)])
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    return env


def _result_or_timeout(result: CommandResult, what: str) -> str:
    if result.timed_out:
        raise CommandTimeoutError(f"{what} {result.as_text()}")
    return result.as_text()


class BashRunArgs(BaseModel):
    command: str = Field(description="The shell command line to run with bash in the workspace root.")
    timeout_s: float = Field(default=600, gt=0, le=MAX_TIMEOUT_S,
                             description="Kill the command (and everything it started) after this many seconds.")


class PythonRunArgs(BaseModel):
    script_path: str = Field(description="Python script to run, relative to the workspace root.")
    args: list[str] = Field(default_factory=list, description="Command-line arguments for the script.")
    timeout_s: float = Field(default=3600, gt=0, le=MAX_TIMEOUT_S,
                             description="Kill the script (and its children) after this many seconds.")


def bash_run(command: str, timeout_s: float = 600) -> str:
    """Run a shell command with bash in the workspace root; return stdout+stderr and the exit code.

    `python` and `pip` in the command are the agent's own environment's (it comes first on PATH).

    The last line of the result is `[exit code N after T s]`. Output over 20,000 characters
    keeps its head and tail and says how much was cut. After `timeout_s` the command and
    every process it started are killed and an error says so.
    """
    if not command.strip():
        raise ToolError("the command is empty")
    result = run_command(["bash", "-c", command], timeout_s=timeout_s, env=active_environment())
    return _result_or_timeout(result, "the command")


def python_run(script_path: str, args: list[str] | None = None, timeout_s: float = 3600) -> str:
    """Run a Python script with this environment's interpreter, in the workspace root.

    Returns stdout+stderr and a last line `[exit code N after T s]`; a non-zero exit code is
    reported, not raised. After `timeout_s` the script and its children are killed.
    """
    script = resolve(script_path, must_exist=True, kind="script_path")
    if not script.is_file():
        raise ToolError(f"{script_path!r} is not a file")
    arguments = [str(argument) for argument in (args or [])]
    result = run_command([sys.executable, str(script), *arguments], timeout_s=timeout_s,
                         env=active_environment())
    return _result_or_timeout(result, f"python {script_path}")


bash_run_tool = make_tool(bash_run, BashRunArgs)
python_run_tool = make_tool(python_run, PythonRunArgs)
