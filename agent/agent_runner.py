"""Run the tool-calling agent on a goal, thread by thread (``torchscout agent`` is its CLI).

The agent's steps stream as one readable line each (a tool call with its arguments, the tool's
answer, the agent's remarks), then its final report. Every step is checkpointed in
``<workspace>/.torchscout/agent.sqlite`` under the thread id, so:

- ``--thread ID`` with a GOAL continues that conversation (the agent keeps what it learned);
- ``--thread ID`` of a run that was killed mid-step finishes that step first;
- ``--approve pip_install`` makes the thread stop before any package install (the pending call
  is printed) until ``--thread ID --approve yes|no`` approves or rejects it.

From Python, :func:`run_agent` does the same and returns the final answer. A run that ends at a
limit rather than with an answer -- the model call limit, the same call repeated, the step limit --
has ``status`` "stopped" and says why in ``stop_reason`` (the CLI then exits non-zero).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypedDict

from langchain.agents.middleware.human_in_the_loop import ActionRequest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError
from langgraph.types import Command, StateSnapshot

from torchscout.agent.agent_guards import NOTE_KEY, stop_reason
from torchscout.agent.agent_tools import select_tools
from torchscout.agent.approvals import is_answer, parse_actions, parse_answer
from torchscout.agent.react_agent import (
    build_agent,
    goal_message,
    open_agent_checkpointer,
    resolve_agent_model,
    thread_config,
)
from torchscout.settings import get_settings
from torchscout.tools.codegen.llm_usage import PurposeUsage, UsageScope, usage_by_purpose, usage_scope
from torchscout.tools.errors import ToolError
from torchscout.tools.workspace import atomic_write_text

LINE_CHARS = 160
EventPrinter = Callable[[str], None]


def short_text(text: str, limit: int = LINE_CHARS) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _text_of(message: Any) -> str:
    return message.content if isinstance(message.content, str) else str(message.text)


def describe_message(message: Any) -> list[str]:
    """One line per thing that happened: a tool call, a tool's answer, the agent's words, a guard's note."""
    lines = []
    if isinstance(message, AIMessage):
        if message.response_metadata.get(NOTE_KEY):
            lines.append(f"note: {message.response_metadata[NOTE_KEY]}")
        if _text_of(message).strip():
            lines.append(f"agent: {short_text(_text_of(message))}")
        for call in message.tool_calls:
            lines.append(f"-> {call['name']} {short_text(json.dumps(call.get('args', {}), default=str))}")
    elif isinstance(message, ToolMessage):
        text = _text_of(message)
        failed = message.status == "error" or text.startswith("Error:")
        lines.append(f"{'x' if failed else '<-'} {message.name}: {short_text(text)}")
    return lines


def describe_update(update: dict[str, Any]) -> list[str]:
    """Lines for one ``stream_mode="updates"`` chunk of the agent graph."""
    lines: list[str] = []
    for value in update.values():
        if isinstance(value, dict):
            for message in value.get("messages") or []:
                if isinstance(message, BaseMessage):
                    lines += describe_message(message)
    return lines


GATES_FILE = "agent_gates.json"  # thread id -> gated actions, in <workspace>/.torchscout/
WAITING = "waiting_for_approval"


class AgentOutcome(TypedDict):
    """What :func:`run_agent` returns."""

    thread_id: str
    status: Literal["finished", "waiting_for_approval", "stopped"]
    approval: list[ActionRequest] | None   # the gated tool calls the thread waits on
    answer: str                            # the agent's final message (empty while waiting)
    stop_reason: str | None                # why a "stopped" run ended at a limit instead of an answer
    model_calls: int
    tool_calls: int
    tool_errors: int
    llm_usage: dict[str, PurposeUsage]     # this invocation's LLM calls, tokens and seconds, per purpose


def _gates_path() -> Path:
    return get_settings().state_dir / GATES_FILE


def thread_gates(thread_id: str) -> list[str]:
    """Actions gated in agent thread ``thread_id`` (kept across invocations, so a resumed thread stays gated)."""
    path = _gates_path()
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")).get(thread_id, []))


def _remember_gates(thread_id: str, actions: list[str]) -> None:
    path = _gates_path()
    known = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    known[thread_id] = actions
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(known, indent=2))


def split_approve(approve: Any) -> tuple[list[str], str | None]:
    """``approve`` as (actions to gate, answer): "yes"/"no" answer a waiting thread, action names gate.

    Raises ToolError naming the argument when it is neither.
    """
    if approve is None:
        return [], None
    if is_answer(approve):
        return [], parse_answer(approve, "--approve")
    try:
        return parse_actions(approve), None
    except ValueError as exc:
        raise ToolError(f"--approve takes yes|no (to answer a waiting thread) or the actions to gate "
                        f"(pip_install, full_train): {exc}") from exc


def pending_approval(snapshot: StateSnapshot) -> list[ActionRequest]:
    """The tool calls an agent thread is waiting on (``[{name, args, description}]``; empty when not waiting)."""
    return [request for item in snapshot.interrupts or () if isinstance(item.value, dict)
            for request in item.value.get("action_requests") or []]


def _resume_command(snapshot: Any, answer: str) -> Any:
    """Command(resume=...) with one decision per gated tool call of every pending interrupt."""
    reason = ("The user declined this action (--approve no): it was not executed. Do not retry it; continue "
              "without it or explain what you would need.")
    decision = {"type": "approve"} if answer == "yes" else {"type": "reject", "message": reason}
    return Command(resume={item.id: {"decisions": [decision] * len(item.value.get("action_requests") or [])}
                           for item in snapshot.interrupts})


def _plan_inputs(agent: Any, config: RunnableConfig, thread_id: str, goal: str | None,
                 answer: str | None) -> list[Any]:
    snapshot = agent.get_state(config)
    waiting = pending_approval(snapshot)
    inputs: list[Any] = []
    if answer is not None:
        if not waiting:
            raise ToolError(f"thread {thread_id!r} is not waiting for an approval; --approve yes|no answers one")
        inputs.append(_resume_command(snapshot, answer))
    elif waiting:
        if goal and goal.strip():
            raise ToolError(f"thread {thread_id!r} is waiting for approval of {waiting[0]['name']}; answer first: "
                            f"torchscout agent --thread {thread_id} --approve yes|no")
        return []  # still waiting: say so again, run nothing
    elif snapshot.next:
        inputs.append(None)  # a run stopped mid-step: finish that step from its checkpoint first
    if goal and goal.strip():
        inputs.append({"messages": [goal_message(goal)]})
    return inputs


def _stream_inputs(agent: Any, config: RunnableConfig, inputs: list[Any], on_line: EventPrinter | None) -> str | None:
    """Stream each input through the agent, printing its lines; the reason when the step limit ended it."""
    try:
        for payload in inputs:
            for update in agent.stream(payload, config, stream_mode="updates", durability="sync"):
                for line in describe_update(update):
                    if on_line is not None:
                        on_line(line)
            if pending_approval(agent.get_state(config)):
                break  # stopped at a gate: the rest waits for the answer
    except GraphRecursionError:
        return f"stopped: the run reached its step limit ({config.get('recursion_limit')} graph steps)"
    return None


def run_agent(goal: str | None, *, thread_id: str | None = None, max_model_calls: int | None = None,
              llm: Any = None, on_line: EventPrinter | None = None, approve: Any = None,
              tools: str | list[str] | None = None) -> AgentOutcome:
    """Run (or continue) agent thread ``thread_id`` on ``goal``; returns the final answer and counts.

    ``llm``: a chat model, an init_chat_model spec, or None for the configured one.
    ``approve``: actions to gate in this thread (["pip_install"], "pip_install,full_train"), kept for
    later runs of the thread; or "yes"/"no" to answer a thread waiting for approval. A run that
    stops at a gate returns ``status`` "waiting_for_approval" with the pending calls in ``approval``.
    ``tools``: ``all`` (default), ``core`` or tool names (see :func:`torchscout.agent.agent_tools.select_tools`).
    """
    thread_id = thread_id or time.strftime("agent-%Y%m%d-%H%M%S")
    new_gates, answer = split_approve(approve)
    chosen_tools = select_tools(tools)  # bad arguments and a missing model fail before anything is written
    model = resolve_agent_model(llm)
    saver = open_agent_checkpointer()
    try:
        gates = thread_gates(thread_id)
        if [action for action in new_gates if action not in gates]:
            gates = [*gates, *(action for action in new_gates if action not in gates)]
            _remember_gates(thread_id, gates)
        agent = build_agent(model, saver, max_model_calls=max_model_calls, approve=gates, tools=chosen_tools)
        config = thread_config(thread_id, max_model_calls)
        inputs = _plan_inputs(agent, config, thread_id, goal, answer)
        if not inputs and not pending_approval(agent.get_state(config)):
            raise ToolError(f"nothing to do: give a GOAL (thread {thread_id!r} has no interrupted step to finish)")
        scope = UsageScope()
        with usage_scope(scope):
            step_limit = _stream_inputs(agent, config, inputs, on_line)
        snapshot = agent.get_state(config)
        messages = snapshot.values.get("messages", [])
        waiting = pending_approval(snapshot)
    finally:
        saver.conn.close()
    final = next((message for message in reversed(messages) if isinstance(message, AIMessage)), None)
    stopped = step_limit or (None if waiting else stop_reason(final))
    return AgentOutcome(
        thread_id=thread_id,
        status=WAITING if waiting else "stopped" if stopped else "finished",
        approval=waiting or None,
        answer=_text_of(final) if final is not None and not waiting else "",
        stop_reason=stopped,
        model_calls=sum(isinstance(message, AIMessage) for message in messages),
        tool_calls=sum(isinstance(message, ToolMessage) for message in messages),
        tool_errors=sum(isinstance(message, ToolMessage) and (message.status == "error"
                                                              or _text_of(message).startswith("Error:"))
                        for message in messages),
        llm_usage=usage_by_purpose([record.as_json() for record in scope.records]),
    )
