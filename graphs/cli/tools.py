"""``torchscout tools`` and ``torchscout tool NAME --args '{json}'``: the 15 tools from the command line."""

from __future__ import annotations

import json
from typing import Any

import typer


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def list_tools() -> None:
    """List torchscout's 15 tools with a one-line description each."""
    from torchscout.tools import ALL_TOOLS  # when the command runs: importing every tool loads torch

    width = max(len(tool.name) for tool in ALL_TOOLS)
    for tool in ALL_TOOLS:
        typer.echo(f"{tool.name:<{width}}  {_first_line(tool.description)}")


def _parse_arguments(raw: str) -> dict[str, Any]:
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--args is not valid JSON: {exc}", param_hint="--args") from exc
    if not isinstance(arguments, dict):
        raise typer.BadParameter("--args must be a JSON object of argument names to values", param_hint="--args")
    return arguments


def call_tool(
    name: str = typer.Argument(..., help="Tool name, as listed by `torchscout tools`."),
    args: str = typer.Option("{}", "--args", "-a", help="The tool's arguments as a JSON object."),
    schema: bool = typer.Option(False, "--schema", help="Print the tool's argument schema instead of calling it."),
) -> None:
    """Call one tool with JSON arguments and print its result as JSON (exit code 1 on `Error:`)."""
    from torchscout.tools import get_tool  # when the command runs: `torchscout --help` stays fast

    try:
        tool = get_tool(name)
    except KeyError as exc:
        typer.echo(f"Error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from exc
    if schema:
        typer.echo(json.dumps(tool.args_schema.model_json_schema(), indent=2))
        return
    result = tool.invoke(_parse_arguments(args))
    if isinstance(result, str) and result.startswith("Error:"):
        typer.echo(result, err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(result, indent=2, default=str))
