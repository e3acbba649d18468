"""bash_run and python_run: real child processes, real timeouts, real output capping."""

import json
import os
import random
import sys
import time

import pytest

from torchscout.tools import bash_run, python_run
from torchscout.tools.errors import CommandTimeoutError
from torchscout.tools.shell import commands as plain


def _living_with_argument(argument: str) -> list[int]:
    """Host PIDs of live (not zombie) processes with ``argument`` on their command line.

    (A PID printed inside the sandbox is a PID of its own namespace, so tests find processes by a
    unique argument instead.)
    """
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                arguments = cmdline.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as stat:
                zombie = stat.read().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            continue
        if argument.encode() in arguments and not zombie:
            found.append(int(entry))
    return found


def _unique_seconds() -> str:
    return f"{60 + random.random():.6f}"


def test_bash_run_returns_combined_output_and_exit_code(workspace):
    result = bash_run.invoke({"command": "echo out; echo err >&2; pwd; exit 3"})
    lines = result["output"].splitlines()
    assert "out" in lines and "err" in lines
    assert str(workspace) in lines
    assert result["status"] == "failed" and result["exit_code"] == 3 and "exit code 3" in result["message"]
    assert plain.bash_run("exit 3").splitlines()[-1].startswith("[exit code 3 after")  # the PRD's text


def test_timeout_kills_the_whole_process_tree_including_background_children(workspace):
    seconds = _unique_seconds()
    started = time.monotonic()
    message = bash_run.invoke({"command": f"sleep {seconds} & setsid sleep {seconds} & echo started; wait",
                               "timeout_s": 1})
    assert time.monotonic() - started < 15
    assert message.startswith("Error:") and "timed out after" in message and "killed" in message
    assert "started" in message
    deadline = time.monotonic() + 5
    while _living_with_argument(seconds) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _living_with_argument(seconds), "a background sleep survived the timeout"


def test_background_children_do_not_outlive_a_command_that_ends_normally(workspace):
    seconds = _unique_seconds()
    result = bash_run.invoke({"command": f"nohup sleep {seconds} >/dev/null 2>&1 & setsid sleep {seconds} & "
                                         "echo done"})
    assert result["exit_code"] == 0 and result["status"] == "success", result
    deadline = time.monotonic() + 5
    while _living_with_argument(seconds) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _living_with_argument(seconds), "a background child survived the command"


def test_plain_function_raises_on_timeout():
    with pytest.raises(CommandTimeoutError, match="timed out"):
        plain.bash_run("sleep 5", timeout_s=0.5)


def test_long_output_keeps_head_and_tail_and_says_how_much_was_cut(workspace):
    text = plain.bash_run("seq 1 100000")
    assert text.startswith("1\n2\n3\n")
    assert "99999\n100000\n" in text
    assert "bytes of output cut" in text
    assert len(text) < plain.MAX_OUTPUT_CHARS + 500
    # the agent's answer: the head, the end, and a log with all the (capped) output
    result = bash_run.invoke({"command": "seq 1 100000"})
    assert result["output"].startswith("1\n2\n3\n") and result["output"].endswith("99999\n100000\n")
    assert len(json.dumps(result)) <= 4000
    log = (workspace / result["log_path"]).read_text()
    assert log.startswith("1\n2\n3\n") and "bytes of output cut" in log and log.endswith("100000\n")


def test_python_run_uses_this_interpreter_and_passes_arguments(workspace):
    (workspace / "scripts").mkdir()
    (workspace / "scripts/show.py").write_text(
        "import sys\nprint(sys.executable)\nprint(sys.argv[1:])\nsys.exit(int(sys.argv[-1]))\n")
    result = python_run.invoke({"script_path": "scripts/show.py", "args": ["--epochs", "10", "0"]})
    assert sys.executable in result["output"]
    assert "['--epochs', '10', '0']" in result["output"]
    assert result["exit_code"] == 0
    failed = python_run.invoke({"script_path": "scripts/show.py", "args": ["4"]})
    assert failed["exit_code"] == 4 and failed["status"] == "failed"


def test_python_run_reports_tracebacks_as_output(workspace):
    (workspace / "boom.py").write_text("import json\n\nraise ValueError('bad config')\n")
    result = python_run.invoke({"script_path": "boom.py"})
    assert "ValueError: bad config" in result["output"] and result["exit_code"] == 1
    # the traceback names the script relative to the workspace, and the message points at the line
    assert 'File "boom.py", line 3' in result["output"] and str(workspace) not in result["output"]
    assert "at boom.py:3" in result["message"]


def test_python_run_times_out_and_refuses_missing_or_outside_scripts(workspace):
    (workspace / "slow.py").write_text("import time\ntime.sleep(30)\n")
    assert "timed out" in python_run.invoke({"script_path": "slow.py", "timeout_s": 0.5})
    assert python_run.invoke({"script_path": "nope.py"}).startswith("Error:")
    assert "outside the workspace" in python_run.invoke({"script_path": "../x.py"})


def test_invalid_timeouts_and_empty_commands_are_refused():
    assert bash_run.invoke({"command": "true", "timeout_s": -1}).startswith("Error: invalid arguments")
    assert bash_run.invoke({"command": "   "}).startswith("Error:")


def test_python_and_pip_in_bash_run_are_this_environments_even_when_not_activated(monkeypatch):
    # as when the agent is started as .venv/bin/torchscout: the venv's bin is not on PATH
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    result = bash_run.invoke({"command": "python -c 'import sys, torch; print(sys.prefix)'"})
    assert result["output"].splitlines()[0] == sys.prefix, result
    assert result["exit_code"] == 0
