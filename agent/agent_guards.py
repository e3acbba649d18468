"""Agent-mode guards against what weak models do: tool calls written as text, and loops.

- :class:`TextToolCallMiddleware`: a reply with no tool call whose text holds one -- a JSON object
  ``{"name": ..., "arguments": {...}}`` (also ``tool``/``args``/``parameters``, OpenAI's nested
  ``{"function": {...}}``, Hermes/Qwen ``<tool_call>`` tags) -- becomes a real call when it names one
  of the agent's tools and says so in the reply's ``torchscout_note``; a call to an unknown tool is
  answered with the list of tools, and the model tries again.
- :class:`RepeatedCallMiddleware`: the same call (tool and arguments) made ``limit`` times in a row
  ends the run, with ``torchscout_stop`` on the final message saying why.
- :class:`TruncatedReplyMiddleware`: a reply cut at the token cap (``finish_reason: length``) is not
  taken as an answer or a call: the model is asked again for a shorter reply.

:func:`stop_reason` reads why a finished thread stopped (these guards, or the model call limit), so
``torchscout agent`` can exit non-zero when the run hit a limit instead of reaching its goal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState, hook_config
from langchain_core.messages import AIMessage, HumanMessage, ToolCall
from langchain_core.messages.tool import tool_call
from langgraph.runtime import Runtime

from torchscout.tools.codegen.llm_json import JSONObject, json_objects

NOTE_KEY = "torchscout_note"
STOP_KEY = "torchscout_stop"
CALL_LIMIT_PREFIX = "Model call limits exceeded"
REPEAT_LIMIT = 3
_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARGUMENT_KEYS = ("arguments", "args", "parameters", "input", "tool_input")


def _call_in(value: JSONObject, known: set[str]) -> tuple[str, Any] | None:
    """(name, arguments) when ``value`` is shaped like a tool call: it names a known tool, or it has
    both a name and arguments (so ``{"name": "DigitNet", "accuracy": 0.97}`` in an answer is not a call)."""
    function = value.get("function")
    if isinstance(function, dict):
        value = function
    name = next((value[key] for key in _NAME_KEYS if isinstance(value.get(key), str)), None)
    has_arguments = any(key in value for key in _ARGUMENT_KEYS)
    if name is None or (name not in known and not has_arguments):
        return None
    arguments = next((value[key] for key in _ARGUMENT_KEYS if key in value), {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return name, None
    return name, arguments


def text_tool_calls(text: str, tool_names: Iterable[str]) -> tuple[list[ToolCall], list[str]]:
    """The calls of known tools written in ``text``, and the names of unknown tools it tried to call."""
    known = set(tool_names)
    calls: list[ToolCall] = []
    unknown: list[str] = []
    for value in json_objects(text):
        found = _call_in(value, known)
        if found is None:
            continue
        name, arguments = found
        if name in known and isinstance(arguments, dict):
            calls.append(tool_call(name=name, args=arguments, id=f"text_call_{uuid.uuid4().hex[:12]}"))
        elif name not in known:
            unknown.append(name)
    return calls, unknown


def _text(message: AIMessage) -> str:
    return message.content if isinstance(message.content, str) else str(message.text)


def _last_ai(state: AgentState) -> AIMessage | None:
    messages = state.get("messages") or []
    return messages[-1] if messages and isinstance(messages[-1], AIMessage) else None


class TextToolCallMiddleware(AgentMiddleware):
    """Parses tool calls a model wrote as text (see the module docstring)."""

    def __init__(self, tool_names: Iterable[str]) -> None:
        super().__init__()
        self.tool_names = sorted(tool_names)

    @hook_config(can_jump_to=["model"])
    def after_model(self, state: AgentState, runtime: Runtime) -> dict[str, Any] | None:
        message = _last_ai(state)
        if message is None or message.tool_calls:
            return None
        calls, unknown = text_tool_calls(_text(message), self.tool_names)
        if calls:
            names = ", ".join(call["name"] for call in calls)
            note = f"the model wrote its tool call as text; parsed and run as {names}"
            return {"messages": [message.model_copy(update={
                "tool_calls": calls, "response_metadata": {**message.response_metadata, NOTE_KEY: note}})]}
        if unknown:
            note = f"the model wrote a call to {', '.join(unknown)} as text; no such tool"
            hint = (f"There is no tool named {', '.join(unknown)}. Call one of these through the tool-calling "
                    f"interface, not as text: {', '.join(self.tool_names)}.")
            marked = message.model_copy(update={"response_metadata": {**message.response_metadata, NOTE_KEY: note}})
            return {"messages": [marked, HumanMessage(content=hint)], "jump_to": "model"}
        return None


class TruncatedReplyMiddleware(AgentMiddleware):
    """Asks again, for a shorter reply, when a reply was cut at the token cap."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    @hook_config(can_jump_to=["model"])
    def after_model(self, state: AgentState, runtime: Runtime) -> dict[str, Any] | None:
        message = _last_ai(state)
        if message is None or message.response_metadata.get("finish_reason") != "length":
            return None
        note = f"the reply was cut at the token cap ({self.cap}, TORCHSCOUT_LLM_MAX_TOKENS agent=...); asked again"
        # the cut reply keeps its words for the record, but no half-written call runs
        marked = message.model_copy(update={"tool_calls": [], "invalid_tool_calls": [],
                                            "response_metadata": {**message.response_metadata, NOTE_KEY: note}})
        again = HumanMessage(content=f"Your reply was cut off at the {self.cap}-token limit. Reply again, shorter: "
                                     "one tool call, or a brief final report.")
        return {"messages": [marked, again], "jump_to": "model"}


def _signature(message: AIMessage) -> str:
    return json.dumps([[call["name"], call.get("args")] for call in message.tool_calls], sort_keys=True, default=str)


class RepeatedCallMiddleware(AgentMiddleware):
    """Ends a run whose model makes the same tool call ``limit`` times in a row."""

    def __init__(self, limit: int = REPEAT_LIMIT) -> None:
        super().__init__()
        self.limit = limit

    @hook_config(can_jump_to=["end"])
    def after_model(self, state: AgentState, runtime: Runtime) -> dict[str, Any] | None:
        message = _last_ai(state)
        if message is None or not message.tool_calls:
            return None
        signature = _signature(message)
        earlier = [item for item in state["messages"][:-1] if isinstance(item, AIMessage) and item.tool_calls]
        streak = 1
        for item in reversed(earlier):
            if _signature(item) != signature:
                break
            streak += 1
        if streak < self.limit:
            return None
        call = message.tool_calls[0]
        reason = (f"stopped: the agent made the same call {call['name']} "
                  f"{json.dumps(call.get('args'), default=str)[:200]} {streak} times in a row")
        # the repeated call is not run: the message keeps its words and loses its calls
        final = AIMessage(id=message.id, content=f"{_text(message)}\n\n[{reason}]".strip(),
                          response_metadata={**message.response_metadata, STOP_KEY: reason})
        return {"messages": [final], "jump_to": "end"}


def stop_reason(final: AIMessage | None) -> str | None:
    """Why a finished thread stopped short of its goal (a guard or the call limit), or None."""
    if final is None:
        return None
    if final.response_metadata.get(STOP_KEY):
        return str(final.response_metadata[STOP_KEY])
    text = _text(final)
    if text.startswith(CALL_LIMIT_PREFIX):
        return f"stopped: {text} (raise it with --max-calls)"
    return None
