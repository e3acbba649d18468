"""``torchscout agent "GOAL" [--thread ID] [--max-calls N]``: run the tool-calling agent on a goal.

The agent's steps stream as one readable line each (a tool call with its arguments, the tool's
answer, the agent's remarks), then its final report. Every step is checkpointed in
``<workspace>/.torchscout/agent.sqlite`` under the thread id, so:

- ``--thread ID`` with a GOAL continues that conversation (the agent keeps what it learned);
- ``--thread ID`` of a run that was killed mid-step finishes that step first.

From Python, :func:`run_agent` does the same and returns the final answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import typer

# LangChain is imported inside the functions: `torchscout --help` must stay fast.

DEFAULT_MAX_MODEL_CALLS = 40
LINE_CHARS = 160
EventPrinter = Callable[[str], None]


def _short(text: str, limit: int = LINE_CHARS) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _text_of(message: Any) -> str:
    return message.content if isinstance(message.content, str) else str(message.text)


def describe_message(message: Any) -> list[str]:
    """One line per thing that happened: a tool call, a tool's answer, or the agent's words."""
    from langchain_core.messages import AIMessage, ToolMessage

    lines = []
    if isinstance(message, AIMessage):
        if _text_of(message).strip():
            lines.append(f"agent: {_short(_text_of(message))}")
        for call in message.tool_calls:
            lines.append(f"-> {call['name']} {_short(json.dumps(call.get('args', {}), default=str))}")
    elif isinstance(message, ToolMessage):
        text = _text_of(message)
        failed = message.status == "error" or text.startswith("Error:")
        lines.append(f"{'x' if failed else '<-'} {message.name}: {_short(text)}")
    return lines


def describe_update(update: dict[str, Any]) -> list[str]:
    """Lines for one ``stream_mode="updates"`` chunk of the agent graph."""
    from langchain_core.messages import BaseMessage

    lines: list[str] = []
    for value in update.values():
        if isinstance(value, dict):
            for message in value.get("messages") or []:
                if isinstance(message, BaseMessage):
                    lines += describe_message(message)
    return lines


def run_agent(goal: str | None, *, thread_id: str | None = None, max_model_calls: int = DEFAULT_MAX_MODEL_CALLS,
              llm: Any = None, on_line: EventPrinter | None = None) -> dict[str, Any]:
    """Run (or continue) agent thread ``thread_id`` on ``goal``; returns the final answer and counts.

    ``llm``: a chat model, an init_chat_model spec, or None for the configured one.
    """
    from langchain_core.messages import AIMessage, ToolMessage

    from torchscout.agent.react_agent import (
        build_agent,
        goal_message,
        open_agent_checkpointer,
        resolve_agent_model,
        thread_config,
    )
    from torchscout.tools.errors import ToolError

    thread_id = thread_id or time.strftime("agent-%Y%m%d-%H%M%S")
    model = resolve_agent_model(llm)  # before opening the checkpoint file: no model, nothing written
    saver = open_agent_checkpointer()
    try:
        agent = build_agent(model, saver, max_model_calls=max_model_calls)
        config = thread_config(thread_id, max_model_calls)
        inputs: list[dict[str, Any] | None] = []
        if agent.get_state(config).next:
            inputs.append(None)  # a run stopped mid-step: finish that step from its checkpoint first
        if goal and goal.strip():
            inputs.append({"messages": [goal_message(goal)]})
        if not inputs:
            raise ToolError(f"nothing to do: give a GOAL (thread {thread_id!r} has no interrupted step to finish)")
        for payload in inputs:
            for update in agent.stream(payload, config, stream_mode="updates", durability="sync"):
                for line in describe_update(update):
                    if on_line is not None:
                        on_line(line)
        messages = agent.get_state(config).values.get("messages", [])
    finally:
        saver.conn.close()
    final = next((message for message in reversed(messages) if isinstance(message, AIMessage)), None)
    return {
        "thread_id": thread_id,
        "answer": _text_of(final) if final is not None else "",
        "model_calls": sum(isinstance(message, AIMessage) for message in messages),
        "tool_calls": sum(isinstance(message, ToolMessage) for message in messages),
        "tool_errors": sum(isinstance(message, ToolMessage) and (message.status == "error"
                                                                 or _text_of(message).startswith("Error:"))
                           for message in messages),
    }


def agent_command(
    goal: str = typer.Argument("", help="What the agent should achieve, in words (empty: finish --thread)."),
    thread: str | None = typer.Option(None, "--thread", "-t",
                                      help="Thread id: continue or resume this conversation (default: a new one)."),
    max_calls: int = typer.Option(DEFAULT_MAX_MODEL_CALLS, "--max-calls", min=1,
                                  help="Most model calls the agent may make in this run."),
) -> None:
    """Let the LLM agent pursue GOAL with torchscout's 15 tools (needs TORCHSCOUT_LLM)."""
    from torchscout.tools.errors import ToolError

    try:
        result = run_agent(goal, thread_id=thread, max_model_calls=max_calls,
                           on_line=lambda line: typer.echo(line, err=True))
    except ToolError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(result["answer"])
    typer.echo(f"[thread {result['thread_id']}: {result['model_calls']} model calls, {result['tool_calls']} tool "
               f"calls, {result['tool_errors']} tool errors; continue with --thread {result['thread_id']}]",
               err=True)
