"""``torchscout doctor``: what the sandbox enforces on this machine, one line each.

It runs one confined command (``true``) the way bash_run would and reads back which kernel
mechanisms took effect. The exit status is 1 when the ``sandbox`` setting is ``required`` and this
kernel cannot meet it (every confined job would be refused), else 0.
"""

from __future__ import annotations

import os
import platform

import typer


def _environment_line(allowed: list[str]) -> str:
    from torchscout.tools.sandbox.environment import looks_secret

    hidden = sorted(name for name in os.environ if looks_secret(name) and name not in allowed)
    if not hidden:
        return "environment: no variable here looks like a secret"
    shown = ", ".join(hidden[:8]) + (f" and {len(hidden) - 8} more" if len(hidden) > 8 else "")
    return f"environment: kept from confined children (they look like secrets): {shown}"


def doctor_command() -> None:
    """Show what the sandbox enforces on this kernel (exit 1 when `sandbox: required` cannot be met)."""
    from torchscout.settings import get_settings
    from torchscout.tools.errors import ToolError
    from torchscout.tools.sandbox import capabilities

    settings = get_settings()
    user = "root" if os.getuid() == 0 else f"uid {os.getuid()}"
    typer.echo(f"torchscout sandbox on Linux {platform.release()} ({platform.machine()}), running as {user}")
    try:
        lines = capabilities.describe()
        missing = capabilities.missing_for_required()
    except (ToolError, OSError) as exc:
        typer.echo(f"Error: could not run a confined command to check: {exc}", err=True)
        raise typer.Exit(1) from exc
    for what, enforced, how in lines:
        typer.echo(f"  {'enforced' if enforced else 'MISSING '}  {what:<20} {how}")
    allowed = ", ".join(settings.sandbox_env_allow) or "none"
    typer.echo(f"settings: sandbox: {settings.sandbox}; sandbox_network (bash_run, python_run): "
               f"{settings.sandbox_network}; sandbox_env_allow: {allowed}")
    typer.echo(_environment_line(settings.sandbox_env_allow))
    typer.echo("GPU: /dev/nvidia* and the driver libraries stay readable in confined jobs "
               "(not yet exercised on a GPU machine)")
    if not missing:
        typer.echo("sandbox: required can be met on this kernel.")
        return
    if settings.sandbox == "required":
        typer.echo(f"Error: sandbox is 'required' but this kernel lacks {'; '.join(missing)}: every confined "
                   "job would be refused. Set sandbox: auto to run with what is available.", err=True)
        raise typer.Exit(1)
    typer.echo(f"sandbox: auto runs with what is available (missing: {'; '.join(missing)}); "
               "sandbox: required would refuse to run.")
