"""The sandbox on a kernel without user namespaces, for real: run inside ``unshare -U -r`` with
``user.max_user_namespaces`` set to 0, where no further user namespace can be made.

``python -m tests.fallback_helpers WORKSPACE OUTSIDE`` tries a few hostile things through the real
tools and prints one JSON object with what happened; tests/test_sandbox_kernel.py judges it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parent.parent)


def spawn_setsid_sleeper(seconds: str) -> str:
    """A sandbox job that leaves a detached process behind, then returns."""
    subprocess.Popen(["setsid", "sleep", seconds], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return "spawned"


def living_with_argument(argument: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as stat:
                zombie = stat.read().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            continue
        if argument.encode() in command and not zombie:
            found.append(int(entry))
    return found


def _settle(argument: str) -> list[int]:
    deadline = time.monotonic() + 5
    while living_with_argument(argument) and time.monotonic() < deadline:
        time.sleep(0.05)
    return living_with_argument(argument)


def main(workspace: str, outside: str) -> dict:
    os.environ["TORCHSCOUT_WORKSPACE"] = workspace
    os.chdir(workspace)
    from torchscout.tools.errors import ToolError
    from torchscout.tools.sandbox.capabilities import probe
    from torchscout.tools.sandbox.runner import run_in_sandbox, shutdown
    from torchscout.tools.shell.commands import bash_run

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    report: dict = {}
    try:
        report["mechanisms"] = list(probe())
        marker = "61.424242"
        command = (f"echo pwned > {outside}/pwned.txt; cat {outside}/secret.txt; (setsid sleep {marker} &); "
                   f"echo x > /dev/tcp/127.0.0.1/{port}; echo done")
        report["shell"] = bash_run(command, timeout_s=30)
    except ToolError as exc:
        report["error"] = str(exc)
    report["outside_written"] = os.path.exists(f"{outside}/pwned.txt")
    report["shell_leftovers"] = _settle("61.424242")
    try:
        listener.accept()
        report["tcp_reached"] = True
    except BlockingIOError:
        report["tcp_reached"] = False
    if "error" not in report:
        from tests import fallback_helpers  # (by its module name: the sandbox imports job functions by name)

        result = run_in_sandbox(fallback_helpers.spawn_setsid_sleeper, {"seconds": "62.424242"}, extra_sys_path=[REPO_ROOT])
        report["job"] = result.value if result.ok else result.error_text()
        report["job_leftovers"] = _settle("62.424242")
        shutdown()
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
