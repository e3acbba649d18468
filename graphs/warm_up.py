"""Start-up work done in background threads, so that a research run's first steps find it done.

Two kinds, both paid once per process:

- the sandbox's fork server (torch, then the training stack imported in it: ~3 s), which every
  evaluation is forked from;
- the driver's own first-use costs: the first ``torch.optim`` optimizer imports ``torch._dynamo``
  (about a second; the optimizers step builds one to check each config), ``wandb``'s import (half a
  second) and W&B's service process (otherwise started by the first evaluation's W&B run).

``torchscout run|resume|replay`` call :func:`start_early` before importing the driver, whose own
imports (torch among them, ~2 s) then overlap with the server's start. ``research()`` and
``resume()`` call :func:`warm_up_in_background` once the task is valid: the training stack in the
server, the driver's first-use costs (for the CLI, the server is up or starting by then).
Nothing here raises: a run whose warm-up failed starts what it needs when it needs it and
reports its own errors.
"""

from __future__ import annotations

import contextlib
import logging
import threading

logger = logging.getLogger(__name__)


def start_fork_server() -> None:
    from torchscout.tools.sandbox.runner import warm_up

    try:
        warm_up()
    except Exception as exc:  # noqa: BLE001 - the run's first job starts the server and says what fails
        logger.debug("no early sandbox start: %s", exc)


def prepay_driver_imports(start_wandb_service: bool = False) -> None:
    """The first optimizer (imports ``torch._dynamo``) and ``wandb``; with ``start_wandb_service``
    also W&B's service process, which the first evaluation's W&B run would otherwise start (~0.2 s of
    its ~0.5 s; later runs take ~0.01 s). The service only for a run going ahead: a command that
    fails on its task file starts nothing it then has to stop."""
    import torch

    from torchscout.settings import get_settings

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    if get_settings().wandb_mode == "disabled":
        return
    import wandb

    if start_wandb_service:
        try:
            wandb.setup()
        except Exception as exc:  # noqa: BLE001 - the first evaluation's W&B run starts it, or says why not
            logger.debug("W&B service not started early: %s", exc)


def warm_training_stack(also_warm: tuple[str, ...]) -> None:
    """The fork server with the training stack (and ``also_warm``, trusted job modules) imported in it."""
    from torchscout.tools.errors import ToolError
    from torchscout.tools.training.evaluation import warm_training_sandbox

    try:
        if not warm_training_sandbox(also_warm=also_warm):
            logger.debug("sandbox warm-up job failed; the first evaluation starts the sandbox instead")
    except ToolError as exc:  # e.g. sandbox: required on a kernel that cannot confine
        logger.debug("no sandbox warm-up: %s", exc)


def _in_background(target, *args) -> threading.Thread:
    """``target(*args)`` in a daemon thread that never prints a traceback: a command that fails or
    ends while a warm-up still imports (a bad run database, a one-second run) exits with the
    interpreter tearing the import down under it, and that is nothing to show the user."""

    def quietly() -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - see above; the run itself reports what matters
            with contextlib.suppress(BaseException):
                logger.debug("warm-up %s stopped: %s: %s", target.__name__, type(exc).__name__, exc)

    thread = threading.Thread(target=quietly, name=f"warm-up-{target.__name__}", daemon=True)
    thread.start()
    return thread


def start_early() -> None:
    """For a command about to import the driver: the fork server, a process of its own, whose start
    overlaps with the driver's import on a second core. (The driver's first-use imports wait for
    :func:`warm_up_in_background`: run here they would compete with the driver's own import for the
    cores and slow a command that fails on its task file by a second.)"""
    _in_background(start_fork_server)


def warm_up_in_background(also_warm: tuple[str, ...]) -> threading.Thread:
    """While a run checks its task and sets up: the training stack in the fork server, the driver's
    first-use imports and W&B's service. Returns the sandbox's thread."""
    _in_background(prepay_driver_imports, True)
    return _in_background(warm_training_stack, also_warm)
