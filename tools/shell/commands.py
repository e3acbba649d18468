"""bash_run and python_run: run a command in the workspace, confined by the kernel sandbox.

Both go through :func:`torchscout.tools.sandbox.commands.run_command` with the ``shell`` policy:
the command writes only the workspace and a private temp folder, reads no home-folder secrets,
gets no network unless the ``sandbox_network`` setting is ``on``, sees an environment without
secrets, runs under memory, process, file-size and CPU limits, and is killed with everything it
started at the timeout (background children are reaped when it ends, too). Its output keeps its
head and tail and says how much was cut.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from torchscout.settings import get_settings
from torchscout.tools.errors import CommandTimeoutError, ToolError
from torchscout.tools.sandbox.capabilities import checked_policy
from torchscout.tools.sandbox.commands import MAX_TIMEOUT_S, CommandResult, run_command
from torchscout.tools.sandbox.environment import cache_environment, child_environment
from torchscout.tools.sandbox.output import MAX_OUTPUT_CHARS
from torchscout.tools.sandbox.policy import DEFAULT_MEMORY_LIMIT_BYTES
from torchscout.tools.shell.answers import command_answer
from torchscout.tools.toolkit import make_tool
from torchscout.tools.workspace import resolve

__all__ = ["MAX_OUTPUT_CHARS", "MAX_TIMEOUT_S", "active_environment", "bash_run", "python_run", "run_shell_command"]


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


def run_shell_command(argv: list[str], timeout_s: float, *, profile: str = "shell", network: bool | None = None,
                      extra_read: list[str] | None = None) -> CommandResult:
    """Run ``argv`` confined by ``profile``'s policy, in this environment's Python (``active_environment``).

    ``network`` defaults to the ``sandbox_network`` setting (pip passes True); ``extra_read`` are
    folders outside the workspace the command must read (pip's constraints file).
    """
    settings = get_settings()
    network = settings.sandbox_network == "on" if network is None else network
    with tempfile.TemporaryDirectory(prefix=f"torchscout-{profile}-", ignore_cleanup_errors=True) as folder:
        policy = checked_policy(profile, temp_dir=folder, network=network, timeout_s=timeout_s,
                                memory_bytes=DEFAULT_MEMORY_LIMIT_BYTES, extra_read=extra_read or [])
        env = child_environment(active_environment(), user_allowed=settings.sandbox_env_allow, network=network,
                                packages=profile == "packages")
        env["TMPDIR"] = folder
        if profile != "packages":  # (pip keeps its own cache in the home folder, which it may write)
            env.update(cache_environment(settings.state_dir))
        return run_command(argv, timeout_s=timeout_s, policy=policy, env=env)


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
    The command runs in a sandbox: it writes only inside the workspace (and $TMPDIR), cannot read
    home-folder secrets, has no network unless the `sandbox_network` setting is "on", and sees no
    API keys or tokens in its environment; background processes are stopped when it ends.

    The answer has status (success for exit code 0, else failed), exit_code, duration_s and
    output: long output keeps its head and its last ~2,500 characters, and log_path names a file
    with all of it. After `timeout_s` the command and every process it started are killed and
    an error says so.
    """
    if not command.strip():
        raise ToolError("the command is empty")
    return _result_or_timeout(run_shell_command(["bash", "-c", command], timeout_s), "the command")


def python_run(script_path: str, args: list[str] | None = None, timeout_s: float = 3600) -> str:
    """Run a Python script with this environment's interpreter, in the workspace root.

    The answer has status (success for exit code 0, else failed), exit_code, duration_s and
    output (stdout+stderr; long output keeps its head and end, log_path has all of it); a
    non-zero exit code is reported, not raised. After `timeout_s` the script and its children
    are killed.
    """
    script = resolve(script_path, must_exist=True, kind="script_path")
    if not script.is_file():
        raise ToolError(f"{script_path!r} is not a file")
    arguments = [str(argument) for argument in (args or [])]
    result = run_shell_command([sys.executable, str(script), *arguments], timeout_s)
    return _result_or_timeout(result, f"python {script_path}")


bash_run_tool = make_tool(bash_run, BashRunArgs, answer=lambda text, arguments: command_answer("bash_run", text))
python_run_tool = make_tool(
    python_run, PythonRunArgs,
    answer=lambda text, arguments: command_answer("python_run", text, f"`python {arguments['script_path']}`"))
