"""How a plain tool function becomes a LangChain ``StructuredTool``.

Every tool in torchscout is three things: a pydantic args model (one description per field),
a plain function that raises on bad input, and the ``StructuredTool`` made here. The tool
object never lets an exception reach the calling agent: bad arguments and
:class:`~torchscout.tools.errors.ToolError` become an ``Error: ...`` string the agent can act
on, and an unexpected exception (a bug in torchscout or in the user's code) becomes an
``Error: ...`` string too, with the full traceback written to the log.

Every answer goes through :func:`torchscout.tools.answers.checked_answer` (the answer contract:
a JSON object with ``status`` and ``message``, at most ~4,000 characters, the rest in a file), and
every error names workspace files by their relative paths and, for PyTorch's shape and dtype
errors, says what to change.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import CallbackManagerForToolRun
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel, ValidationError

from torchscout.tools.answers import MAX_ANSWER_CHARS, Answer, checked_answer
from torchscout.tools.errors import ToolError, UserCodeError, traceback_tail, user_location, what_to_change
from torchscout.tools.limits import nesting_problem
from torchscout.tools.workspace import workspace_root

logger = logging.getLogger(__name__)


# A builder of the agent's answer from what the plain function returned and the call's arguments.
AnswerShaper = Callable[[Any, Answer], Answer]


def format_tool_error(error: ToolException) -> str:
    """The text an agent receives when a tool raised: workspace-relative paths, what to change, ~4,000 characters."""
    message = (str(error).strip() or type(error).__name__).replace(f"{workspace_root()}/", "")
    hint = what_to_change(message)
    if hint and hint not in message:
        message = f"{message}\n{hint}"
    if len(message) > MAX_ANSWER_CHARS - 100:
        head, tail = message[:1500], message[-(MAX_ANSWER_CHARS - 1700):]
        message = f"{head}\n... [{len(message) - len(head) - len(tail):,} characters left out] ...\n{tail}"
    return message if message.startswith("Error:") else f"Error: {message}"


def format_validation_error(error: ValidationError | Exception) -> str:
    """List every invalid argument with its location and the reason, one per line."""
    if not isinstance(error, ValidationError):
        return f"Error: invalid arguments: {error}"
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item.get("loc", ())) or "(arguments)"
        problems.append(f"{location}: {item.get('msg', 'invalid value')}")
    return f"Error: invalid arguments for {error.title}: " + "; ".join(problems)


def _never_raise(tool_name: str, function: Callable[..., Any], answer: AnswerShaper | None) -> Callable[..., Any]:
    """Wrap ``function`` so its answer keeps the contract and anything it raises reaches LangChain as a ToolException."""

    @functools.wraps(function)
    def call(**kwargs: Any) -> Any:
        try:
            result = function(**kwargs)
            return checked_answer(tool_name, answer(result, kwargs) if answer is not None else result)
        except ToolException:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - an agent must get a message, not a crash
            where = user_location(exc)
            if where is not None:  # the workspace's code raised: show it, not a torchscout bug
                raise UserCodeError(f"{tool_name} failed in {where} with {type(exc).__name__}: {exc}",
                                    traceback_tail(exc)) from exc
            logger.exception("tool %s failed unexpectedly", tool_name)
            raise ToolError(
                f"{tool_name} failed with {type(exc).__name__}: {exc}. "
                "If the arguments look right, this is a bug; the traceback is in the torchscout log."
            ) from exc

    # StructuredTool inspects the signature; keep the real one.
    call.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]
    return call


class TorchscoutTool(StructuredTool):
    """A ``StructuredTool`` that keeps the PRD's argument names intact.

    Two LangChain details would otherwise get in the way of the PRD's exact names:
    - ``StructuredTool._run`` receives LangChain's ``RunnableConfig`` as a keyword named
      ``config``, which silently replaced a tool argument called ``config`` (the tokenizer
      manager's); here that keyword is ``run_config``.
    - pydantic reserves the attribute ``model_config``, so an argument of that name (the
      assembler's) is a field with that *alias*; the schema sent to a model uses the aliases.
    """

    def run(self, tool_input: str | dict, *args: Any, **kwargs: Any) -> Any:
        refused = self._refused_input(tool_input, kwargs.get("tool_call_id"))
        return refused if refused is not None else super().run(tool_input, *args, **kwargs)

    async def arun(self, tool_input: str | dict, *args: Any, **kwargs: Any) -> Any:
        refused = self._refused_input(tool_input, kwargs.get("tool_call_id"))
        return refused if refused is not None else await super().arun(tool_input, *args, **kwargs)

    def _refused_input(self, tool_input: object, tool_call_id: str | None) -> Any:
        """An error answer for input LangChain itself cannot handle (it prints the input recursively
        before validating it: 600 nested lists raised RecursionError out of ``invoke``), else None."""
        problem = nesting_problem(tool_input, "the tool input")
        if problem is None:
            return None
        content = f"Error: invalid arguments for {self.name}: {problem}"
        if tool_call_id is None:
            return content
        return ToolMessage(content, tool_call_id=tool_call_id, name=self.name, status="error")

    def _run(self, *args: Any, run_config: RunnableConfig,
             run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    @property
    def tool_call_schema(self) -> Any:  # type: ignore[override]
        schema = self.args_schema
        if isinstance(schema, type) and any(field.alias for field in schema.model_fields.values()):
            return {**schema.model_json_schema(by_alias=True), "description": self.description}
        return super().tool_call_schema


def make_tool(
    function: Callable[..., Any],
    args_schema: type[BaseModel],
    *,
    name: str | None = None,
    description: str | None = None,
    answer: AnswerShaper | None = None,
) -> TorchscoutTool:
    """Build the agent-facing tool for ``function`` with ``args_schema`` validating its arguments.

    ``answer(result, arguments)`` builds the agent's answer when the plain function returns
    something else (the PRD's ``None`` or text); either way the answer contract is checked.
    """
    tool_name = name or function.__name__
    text = description or inspect.getdoc(function)
    if not text:
        raise ValueError(f"tool {tool_name} needs a docstring or a description an LLM can act on")
    return TorchscoutTool.from_function(
        func=_never_raise(tool_name, function, answer),
        name=tool_name,
        description=text,
        args_schema=args_schema,
        handle_tool_error=format_tool_error,
        handle_validation_error=format_validation_error,
    )
