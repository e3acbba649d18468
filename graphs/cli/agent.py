"""``torchscout agent "GOAL" [--thread ID] [--max-calls N] [--approve ...]``: the tool-calling agent's CLI.

The work is :func:`torchscout.agent.agent_runner.run_agent`; this prints its lines and answer.
"""

from __future__ import annotations

import json

import typer


def agent_command(
    goal: str = typer.Argument("", help="What the agent should achieve, in words (empty: finish --thread)."),
    thread: str | None = typer.Option(None, "--thread", "-t",
                                      help="Thread id: continue or resume this conversation (default: a new one)."),
    max_calls: int | None = typer.Option(
        None, "--max-calls", min=1,
        help="Most model calls the agent may make in this run (default: the setting agent_max_model_calls, 40)."),
    approve: str | None = typer.Option(
        None, "--approve",
        help="pip_install (and/or full_train, comma-separated): stop for your approval before that tool runs; "
             "yes|no: answer a thread that is waiting for approval (with --thread)."),
    tools: str | None = typer.Option(
        None, "--tools",
        help="The tools the agent gets: all (default), core (the research loop without shell, pip and "
             "tokenizers: a smaller prompt), or tool names separated by commas."),
) -> None:
    """Let the LLM agent pursue GOAL with torchscout's 15 tools (needs TORCHSCOUT_LLM).

    Exits 0 with the agent's answer, 1 when a limit ended the run (model calls, a repeated call,
    steps), 2 on a usage or LLM error.
    """
    # imported when the command runs: `torchscout --help` must not load LangChain and torch
    from torchscout.agent.agent_runner import WAITING, run_agent, short_text
    from torchscout.tools.errors import ToolError

    try:
        result = run_agent(goal, thread_id=thread, max_model_calls=max_calls, approve=approve, tools=tools,
                           on_line=lambda line: typer.echo(line, err=True))
    except ToolError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if result["status"] == WAITING:
        for request in result["approval"]:
            typer.echo(f"approval needed: {request['name']} {short_text(json.dumps(request.get('args', {})))}")
            if request.get("description"):
                typer.echo(f"  {request['description']}")
        typer.echo(f"waiting for approval: torchscout agent --thread {result['thread_id']} --approve yes|no")
        return
    typer.echo(result["answer"])
    usage = result["llm_usage"].get("agent")
    spent = (f" ({usage['prompt_tokens']:,} prompt + {usage['completion_tokens']:,} completion tokens, "
             f"{usage['seconds']:.1f}s in this run)" if usage else "")
    typer.echo(f"[thread {result['thread_id']}: {result['model_calls']} model calls{spent}, {result['tool_calls']} "
               f"tool calls, {result['tool_errors']} tool errors; continue with --thread {result['thread_id']}]",
               err=True)
    if result["status"] == "stopped":  # a limit ended the run, not an answer: say so in the exit status
        typer.echo(f"{result['stop_reason']}", err=True)
        raise typer.Exit(1)
