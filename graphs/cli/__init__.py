"""The torchscout command line (typer): every command, assembled into one app.

    torchscout run|resume|history|replay|trace|report|export|runs   research runs (``research.py``)
    torchscout agent "GOAL"                                         the tool-calling agent (``agent.py``)
    torchscout train MODEL.py CLASS CONFIG.yaml                     the full trainer (``train.py``)
    torchscout tools / tool NAME --args '{json}'                    the 15 tools (``tools.py``)
    torchscout doctor                                               what the sandbox enforces here (``doctor.py``)

The console script ``torchscout`` calls :func:`main`. Command modules import the heavy parts
(LangChain, torch, the graph) inside the command functions, so ``torchscout --help`` stays fast.
``torchscout.app`` re-exports ``app`` and ``main`` next to the graph for ``langgraph.json``.
"""

from __future__ import annotations

import logging
import sys

import typer

from torchscout.graphs.cli import research
from torchscout.graphs.cli.agent import agent_command
from torchscout.graphs.cli.doctor import doctor_command
from torchscout.graphs.cli.tools import call_tool, list_tools
from torchscout.graphs.cli.train import train_command

app = typer.Typer(
    name="torchscout",
    help="torchscout: an autonomous PyTorch research agent. Tools, training and resumable research runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _configure_logging(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details.")) -> None:
    # The level sits on the console handler, not the root logger: the trainer raises its own
    # logger to INFO for train.log, and those records must not reach the console.
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[console],
                        format="%(levelname)s %(name)s: %(message)s")


app.command("tools")(list_tools)
app.command("tool")(call_tool)
app.command("run")(research.run_command)
app.command("resume")(research.resume_command)
app.command("history")(research.history_command)
app.command("replay")(research.replay_command)
app.command("trace")(research.trace_command)
app.command("report")(research.report_command)
app.command("export")(research.export_command)
app.command("runs")(research.runs_command)
app.command("agent")(agent_command)
app.command("train")(train_command)
app.command("doctor")(doctor_command)


def main() -> None:
    """Entry point of the ``torchscout`` console script."""
    app()
