"""Run one command confined: ``python -P -m torchscout.tools.sandbox.launcher SPEC_FD STATUS_FD``.

The spec (JSON, read from ``SPEC_FD``): ``{"policy", "argv", "env", "cwd", "timeout_s"}``. This
process becomes the command's supervisor (``confine.supervise``); the confined job process
executes the command (in a PID namespace, as the child of a PID 1 that reaps orphans until the
command exits; then the kernel kills whatever is left there). The supervisor's status line goes
to ``STATUS_FD``; the command's output to this process's stdout.

Imports only the standard library and the sandbox's kernel modules, so it starts in ~50 ms.
"""

from __future__ import annotations

import json
import os
import sys

from torchscout.tools.sandbox import confine

COMMAND_NOT_FOUND = 127


def _exec(spec: dict) -> None:
    try:
        os.chdir(spec["cwd"])
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as exc:
        sys.stderr.write(f"could not start {spec['argv'][0]!r}: {exc.strerror or exc}\n")
        sys.stderr.flush()
        os._exit(COMMAND_NOT_FOUND)


def body(spec: dict) -> int:
    _exec(spec)
    return COMMAND_NOT_FOUND


def main(argv: list[str]) -> None:
    spec_fd, status_fd = int(argv[1]), int(argv[2])
    with os.fdopen(spec_fd, "rb") as source:
        spec = json.loads(source.read())

    def on_setup_error(message: str) -> None:
        sys.stderr.write(f"sandbox: {message}\n")
        sys.stderr.flush()

    confine.supervise(spec["policy"], lambda: body(spec), timeout_s=spec["timeout_s"],
                      on_setup_error=on_setup_error, status_fd=status_fd)


if __name__ == "__main__":
    main(sys.argv)
