"""The torchscout command line (typer), installed as the console script ``torchscout``.

    torchscout tools                          list the tools, one line each
    torchscout tool NAME --args '{json}'      call one tool and print its result as JSON

The research commands (run, resume, history, replay, trace, report, export, runs) and
``train`` register themselves below.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import typer

app = typer.Typer(
    name="torchscout",
    help="torchscout: an autonomous PyTorch research agent. Tools, training and resumable research runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


@app.callback()
def _configure_logging(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details.")) -> None:
    # The level sits on the console handler, not the root logger: the trainer raises its own
    # logger to INFO for train.log, and those records must not reach the console.
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[console],
                        format="%(levelname)s %(name)s: %(message)s")


@app.command("tools")
def list_tools() -> None:
    """List torchscout's 15 tools with a one-line description each."""
    from torchscout.tools import ALL_TOOLS

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


@app.command("tool")
def call_tool(
    name: str = typer.Argument(..., help="Tool name, as listed by `torchscout tools`."),
    args: str = typer.Option("{}", "--args", "-a", help="The tool's arguments as a JSON object."),
    schema: bool = typer.Option(False, "--schema", help="Print the tool's argument schema instead of calling it."),
) -> None:
    """Call one tool with JSON arguments and print its result as JSON (exit code 1 on `Error:`)."""
    from torchscout.tools import get_tool

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


from torchscout.graphs.cli import register_research_commands  # noqa: E402 - after the app it extends

register_research_commands(app)

from torchscout.agent.agent_cli import agent_command  # noqa: E402 - after the app it extends

app.command("agent")(agent_command)

from torchscout.tools.training.cli import train_command  # noqa: E402 - after the app it extends

app.command("train")(train_command)


def __getattr__(name: str) -> Any:
    """``app.graph``: the research graph for langgraph.json, built on first use (keeps the CLI fast)."""
    if name == "graph":
        from torchscout.graphs.graph import build_graph

        return build_graph()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Entry point of the ``torchscout`` console script."""
    app()


if __name__ == "__main__":
    main()
