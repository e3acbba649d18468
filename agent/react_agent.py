"""Agent mode: a LangChain tool-calling agent with torchscout's 15 tools.

``build_agent()`` returns the compiled agent (``langchain.agents.create_agent``):

- the configured chat model (``TORCHSCOUT_LLM`` / ``torchscout.configure(llm=...)``) or ``llm``,
  wrapped in :class:`~torchscout.tools.codegen.llm_bounded.BoundedChatModel`: every call has the
  deadline, idle timeout, single retry layer, token cap and accounting of all LLM calls;
- all 15 tools of :data:`torchscout.tools.ALL_TOOLS` (or ``tools``), with the short descriptions of
  :mod:`torchscout.agent.agent_tools` (the first prompt is about 3,500 tokens instead of 5,800);
- the system prompt ``prompts/agent_system.yaml``, which teaches the PRD's research loop;
- the guards of :mod:`torchscout.agent.agent_guards`: a tool call written as text is parsed (or
  answered with the tool list), a reply cut at the token cap is asked again shorter, and the same
  call made 3 times in a row ends the run;
- ``ToolErrorMiddleware``: an exception escaping a tool becomes an error ``ToolMessage`` the model
  reads, instead of ending the run (torchscout's own tools already answer ``Error: ...``; this
  covers tools added by the caller and bugs);
- ``ModelCallLimitMiddleware``: at most ``max_model_calls`` model calls per run, then the agent
  ends with a message saying the limit was reached;
- a checkpointer, by default the SQLite file ``<workspace>/.torchscout/agent.sqlite``: a run is
  resumable by its ``thread_id``;
- with ``approve=["pip_install"]`` (or ``full_train``), LangChain's ``HumanInTheLoopMiddleware``:
  the agent stops before the gated tool runs (``pip_install_pytorch_package`` /
  ``pytorch_full_trainer``) and the thread waits until it is resumed with an approve or reject
  decision (``torchscout agent --thread ID --approve yes|no``).

Example::

    from torchscout.agent.react_agent import build_agent, thread_config
    agent = build_agent()                                   # the configured LLM
    agent.invoke({"messages": [("user", "Find a digits classifier over 95% accuracy")]},
                 thread_config("digits-1"))
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import (
    HumanInTheLoopMiddleware,
    ModelCallLimitMiddleware,
    ToolErrorMiddleware,
)
from langchain.agents.middleware.human_in_the_loop import InterruptOnConfig
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.sqlite import SqliteSaver

from torchscout.agent.agent_guards import (
    RepeatedCallMiddleware,
    TextToolCallMiddleware,
    TruncatedReplyMiddleware,
)
from torchscout.agent.agent_tools import agent_tools
from torchscout.agent.approvals import parse_actions
from torchscout.agent.sqlite_checkpoints import open_sqlite_saver
from torchscout.prompts.loader import load_prompt
from torchscout.settings import get_settings
from torchscout.tools import ALL_TOOLS
from torchscout.tools.codegen.llm import chat_model_from_spec, get_chat_model, max_tokens_for
from torchscout.tools.codegen.llm_bounded import BoundedChatModel
from torchscout.tools.errors import ToolError
from torchscout.tools.packages.pip_install import build_pip_command

logger = logging.getLogger(__name__)

AGENT_CHECKPOINT_FILE = "agent.sqlite"
MAX_ERROR_MESSAGE_CHARS = 2000

AGENT_NOT_CONFIGURED = (
    "agent mode needs a chat model that can call tools, but none is configured (TORCHSCOUT_LLM is "
    "'builtin'). Configure one, then run the command again:\n"
    "  export TORCHSCOUT_LLM=openai:gpt-4.1-mini      # and OPENAI_API_KEY=...\n"
    "  export TORCHSCOUT_LLM=anthropic:claude-sonnet-4-5   # and ANTHROPIC_API_KEY=...\n"
    "  export TORCHSCOUT_LLM=ollama:qwen2.5-coder      # a local Ollama server\n"
    "For a local OpenAI-compatible server (vLLM, llama.cpp, LM Studio) also set "
    "OPENAI_BASE_URL=http://localhost:8000/v1 and use the served model name. "
    "From Python: torchscout.configure(llm='openai:gpt-4.1-mini') or build_agent(llm=<a chat model>)."
)


def tool_error_message(error: Exception, request: ToolCallRequest) -> str:
    """What the model reads when a tool raised: the tool, the exception type and its message."""
    name = request.tool.name if request.tool is not None else request.tool_call["name"]
    logger.warning("tool %s raised %s: %s", name, type(error).__name__, error)
    text = str(error).strip() or "(no message)"
    return (f"Error: {name} raised {type(error).__name__}: {text[:MAX_ERROR_MESSAGE_CHARS]}. "
            "Check the arguments against the tool's description and try again, or take another approach.")


# The tool each gated action stands for in agent mode.
GATED_TOOLS = {"pip_install": "pip_install_pytorch_package", "full_train": "pytorch_full_trainer"}


def _describe_pip_install(tool_call: Any, state: Any, runtime: Any) -> str:
    """What the reviewer reads: the exact pip command the tool would run, or why it would refuse."""
    args = tool_call.get("args") or {}
    try:
        argv, _, notes = build_pip_command(
            str(args.get("package_name", "")), args.get("version"), str(args.get("pytorch_version", "2.1.0")),
            args.get("cuda_version") or None, bool(args.get("upgrade")), Path("constraints.txt"))
    except ToolError as exc:
        return f"pip install request the tool will refuse: {exc}"
    extra = "".join(f" ({note})" for note in notes)
    return f"Install a package into the Python environment at {sys.prefix}: {shlex.join(argv)}{extra}"


def _describe_call(tool_call: Any, state: Any, runtime: Any) -> str:
    return f"{tool_call['name']} {json.dumps(tool_call.get('args') or {}, default=str)[:MAX_ERROR_MESSAGE_CHARS]}"


def _not_a_dry_run(request: ToolCallRequest) -> bool:
    return not (request.tool_call.get("args") or {}).get("dry_run")


def approval_middleware(actions: Sequence[str]) -> HumanInTheLoopMiddleware | None:
    """Human-in-the-loop gates for ``actions`` (see :data:`GATED_TOOLS`); None when there are none.

    A reviewer may approve or reject each gated call; a pip dry run installs nothing and is not gated.
    """
    gates: dict[str, bool | InterruptOnConfig] = {}
    for action in parse_actions(list(actions)):
        config = InterruptOnConfig(allowed_decisions=["approve", "reject"],
                                   description=_describe_pip_install if action == "pip_install" else _describe_call)
        if action == "pip_install":
            config["when"] = _not_a_dry_run
        gates[GATED_TOOLS[action]] = config
    if not gates:
        return None
    return HumanInTheLoopMiddleware(interrupt_on=gates, description_prefix="Approval needed")


def agent_checkpoint_path() -> Path:
    return get_settings().state_dir / AGENT_CHECKPOINT_FILE


def open_agent_checkpointer(path: Path | None = None) -> SqliteSaver:
    """A SqliteSaver on a long-lived connection to ``<workspace>/.torchscout/agent.sqlite``."""
    return open_sqlite_saver(path or agent_checkpoint_path())


def resolve_agent_model(llm: BaseChatModel | str | None) -> BaseChatModel:
    """``llm`` as a chat model, else the configured one; a ToolError says how to configure one."""
    if isinstance(llm, BaseChatModel):
        return llm
    if isinstance(llm, str) and llm.strip().lower() not in {"", "builtin"}:
        return chat_model_from_spec(llm.strip())
    model = get_chat_model() if llm is None else None
    if model is None:
        raise ToolError(AGENT_NOT_CONFIGURED)
    return model


def system_prompt() -> str:
    """The agent's system prompt, with the workspace filled in."""
    prompt = load_prompt("agent_system")
    return prompt.render(workspace=get_settings().workspace, goal="")[0][1]


def goal_message(goal: str) -> tuple[str, str]:
    """The researcher's goal as the agent's user message."""
    prompt = load_prompt("agent_system")
    return prompt.render(workspace=get_settings().workspace, goal=goal.strip())[-1]


def build_agent(llm: BaseChatModel | str | None = None, checkpointer: Any = None, *,
                tools: Sequence[BaseTool] | None = None, max_model_calls: int | None = None,
                approve: Sequence[str] = ()) -> Any:
    """The compiled torchscout agent (a LangGraph graph); see the module docstring.

    ``llm``: a chat model, an ``init_chat_model`` spec, or None for the configured model (a
    ToolError says how to configure one when there is none). ``checkpointer``: None for the
    workspace's ``agent.sqlite``, False for none, or any LangGraph checkpointer.
    ``approve``: actions that wait for a person's decision before their tool runs
    (``pip_install``, ``full_train``); they need a checkpointer.
    """
    max_model_calls = model_call_limit(max_model_calls)
    try:
        gate = approval_middleware(approve)
    except ValueError as exc:
        raise ToolError(f"approve: {exc}") from exc
    model = resolve_agent_model(llm)
    presented = agent_tools(ALL_TOOLS if tools is None else tools)
    saver = open_agent_checkpointer() if checkpointer is None else (checkpointer or None)
    middleware: list[Any] = [
        ToolErrorMiddleware(on_error=tool_error_message),
        ModelCallLimitMiddleware(run_limit=max_model_calls, exit_behavior="end"),
    ]
    if gate is not None:
        if saver is None:
            raise ToolError(f"approve={list(approve)} needs a checkpointer: the agent waits for the answer in it")
        middleware.append(gate)
    # after a model call these run last to first: a cut reply is asked again, text calls are parsed,
    # repeats are stopped, then the gate
    middleware += [RepeatedCallMiddleware(), TextToolCallMiddleware(tool.name for tool in presented),
                   TruncatedReplyMiddleware(max_tokens_for("agent"))]
    bounded = model if isinstance(model, BoundedChatModel) else BoundedChatModel(inner=model, purpose="agent")
    return create_agent(bounded, tools=presented,
                        system_prompt=system_prompt(), middleware=middleware, checkpointer=saver,
                        name="torchscout_agent")


def model_call_limit(max_model_calls: int | None) -> int:
    """``max_model_calls``, or the setting ``agent_max_model_calls`` when None; at least 1."""
    limit = get_settings().agent_max_model_calls if max_model_calls is None else max_model_calls
    if limit < 1:
        raise ToolError("max_model_calls must be at least 1")
    return limit


def thread_config(thread_id: str, max_model_calls: int | None = None) -> RunnableConfig:
    """Run config for one agent thread; the recursion limit leaves room for every allowed call."""
    max_model_calls = model_call_limit(max_model_calls)
    # each model call is followed by at most one tools step, plus the middleware's own steps
    return RunnableConfig(configurable={"thread_id": thread_id}, recursion_limit=4 * max_model_calls + 10)
