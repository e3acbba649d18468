"""The tools as agent mode presents them: short descriptions, short argument notes, an optional subset.

Every tool schema is sent with every model call, so their size is paid on each step. The tools'
own docstrings are written for people reading the API; the agent gets the short descriptions of
``prompts/agent_system.yaml`` (``texts``) and each argument's first sentence, with the PRD's
tool and argument names unchanged. :func:`first_prompt_size` measures what the first request
carries (system prompt + tool schemas)::

    tools = agent_tools(select_tools("core"))
    first_prompt_size(tools)   # {"characters": ..., "estimated_tokens": ...}
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from typing import TypedDict

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, create_model

from torchscout.prompts.loader import load_prompt
from torchscout.tools import TOOL_NAMES, get_tool
from torchscout.tools.errors import ToolError

ARGUMENT_NOTE_CHARS = 120
CHARS_PER_TOKEN = 4
# the research loop without shell, package installs and tokenizers: a smaller first prompt
CORE_TOOLS = ("read_file", "write_file", "list_directory", "pytorch_model_assembler", "pytorch_model_summary",
              "pytorch_quick_evaluator", "pytorch_full_trainer", "pytorch_optimizer_configurator")
TOOL_SETS = {"all": tuple(TOOL_NAMES), "core": CORE_TOOLS}
# a sentence ends at "." or ";" followed by a space, but not inside "e.g." or "i.e."
_FIRST_SENTENCE = re.compile(r"^(.+?(?<!\be\.g)(?<!\bi\.e)[.;])(\s|$)", re.DOTALL)


def select_tools(spec: str | Sequence[str] | None) -> list[BaseTool]:
    """The tools named by ``spec``: ``all`` (default), ``core``, or tool names (a list or comma-separated)."""
    if spec is None or (isinstance(spec, str) and spec.strip() in ("", "all")):
        return [get_tool(name) for name in TOOL_NAMES]
    if isinstance(spec, str) and spec.strip() in TOOL_SETS:
        return [get_tool(name) for name in TOOL_SETS[spec.strip()]]
    names = [part.strip() for part in (spec.split(",") if isinstance(spec, str) else spec) if part.strip()]
    try:
        return [get_tool(name) for name in dict.fromkeys(names)]
    except KeyError as exc:
        raise ToolError(f"--tools: {exc.args[0] if exc.args else exc}; or use one of the sets "
                        f"{', '.join(TOOL_SETS)}") from exc


def _short(text: str) -> str:
    flat = " ".join(text.split())
    found = _FIRST_SENTENCE.match(flat)
    first = found.group(1) if found else flat
    return first if len(first) <= ARGUMENT_NOTE_CHARS else first[: ARGUMENT_NOTE_CHARS - 3].rstrip() + "..."


def _compact_arguments(schema: type[BaseModel]) -> type[BaseModel]:
    """``schema`` with each argument's description cut to its first sentence (validation unchanged)."""
    overrides = {}
    for name, info in schema.model_fields.items():
        if info.description and _short(info.description) != info.description:
            shorter = copy.copy(info)
            shorter.description = _short(info.description)
            overrides[name] = (info.annotation, shorter)
    if not overrides:
        return schema
    return create_model(schema.__name__, __base__=schema, __module__=schema.__module__, **overrides)


def agent_tools(tools: Sequence[BaseTool]) -> list[BaseTool]:
    """Copies of ``tools`` with the agent's short descriptions (tools without one keep theirs)."""
    short = load_prompt("agent_system").texts
    compact = []
    for tool in tools:
        update: dict[str, object] = {"description": short.get(tool.name, tool.description)}
        if isinstance(tool.args_schema, type) and issubclass(tool.args_schema, BaseModel):
            update["args_schema"] = _compact_arguments(tool.args_schema)
        compact.append(tool.model_copy(update=update))
    return compact


class PromptSize(TypedDict):
    """What the agent's first request carries before any history."""

    characters: int
    estimated_tokens: int   # characters / 4: no tokenizer is downloaded for this
    system_characters: int
    tool_characters: dict[str, int]


def first_prompt_size(tools: Sequence[BaseTool], system: str) -> PromptSize:
    """The size of the system prompt plus the tool schemas as an OpenAI-style request sends them."""
    per_tool = {tool.name: len(json.dumps(convert_to_openai_tool(tool))) for tool in tools}
    total = len(system) + sum(per_tool.values())
    return PromptSize(characters=total, estimated_tokens=total // CHARS_PER_TOKEN, system_characters=len(system),
                      tool_characters=per_tool)
