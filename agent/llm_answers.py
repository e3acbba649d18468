"""Structured answers from the chat model, checked before use.

:meth:`StructuredAsker.ask` sends a rendered prompt and returns a validated pydantic object:

1. When the model can produce schema-shaped output (JSON-schema ``response_format`` on an
   OpenAI-compatible server, a forced tool call elsewhere) it is asked that way. Only a server
   that *rejects* such a request (HTTP 400/422, or a model without the feature) switches it off
   for the rest of the run -- a reply that fails validation does not.
2. Every JSON object in the reply is tried in order (:func:`~torchscout.tools.codegen.llm_json.first_valid`):
   the first that is not an echo of a format description, matches the schema and passes the caller's
   ``check`` (the task's rules) is the answer. Several objects in one reply, prose around them and
   fenced blocks are all fine.
3. An unusable reply is answered with what was wrong, in a *focused* context (the request, that reply
   and the problem; not the whole history), up to ``max_attempts`` replies; a reply identical to an
   earlier one raises the temperature once and then stops the attempts early. A reply cut off at the
   token cap is a problem the model is told about. Then :class:`UnusableAnswerError` lists every problem.

Every reply goes through :func:`torchscout.tools.codegen.llm.ask` (deadline, retries, accounting,
cache); the replies of an answer that was used are accepted into the cache, so a replay with
unchanged inputs makes no model call, and an unusable exchange is never replayed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ValidationError

from torchscout.tools.codegen.llm import (
    Reply,
    accept,
    ask,
    max_tokens_for,
    model_identity,
    supports_structured_output,
)
from torchscout.tools.codegen.llm_call import LLMCallError
from torchscout.tools.codegen.llm_json import JSONObject, NoUsableJSON, first_valid
from torchscout.tools.codegen.llm_usage import notify
from torchscout.tools.errors import ToolError

logger = logging.getLogger(__name__)

SchemaT = TypeVar("SchemaT", bound=BaseModel)
Message = tuple[str, str]

MAX_PROBLEM_CHARS = 1500
# the temperature after a repeated unusable reply: at the default the model evidently loops
REPEAT_TEMPERATURE = 0.7
# keys only a JSON Schema document has: a reply made of them echoes a format description instead of answering
_SCHEMA_KEYS = {"$defs", "$schema", "properties"}
# what a server answers when it does not support schema-shaped requests
_REJECTED_REQUEST_STATUS = (400, 422)
# model@server -> False once the server refused a schema-shaped request (for the rest of the process)
_STRUCTURED_REFUSED: dict[str, bool] = {}


class AnswerProblem(ValueError):
    """A reply could not be used; the message says why, in words the model can act on."""


class UnusableAnswerError(ToolError):
    """Every attempt produced an unusable reply; ``problems`` holds one entry per attempt."""

    def __init__(self, problems: list[str], *, stopped_early: bool = False) -> None:
        self.problems = problems
        self.stopped_early = stopped_early
        how = "stopped early: the model repeated the same unusable answer; " if stopped_early else ""
        super().__init__(f"the LLM gave no usable answer in {len(problems)} attempt(s) ({how}last problem: "
                         f"{problems[-1] if problems else 'none recorded'})")


@dataclass
class Answer(Generic[SchemaT]):
    """A validated answer and how it was obtained."""

    value: SchemaT
    attempts: int
    problems: list[str] = field(default_factory=list)


def describe_validation_error(error: ValidationError) -> str:
    problems = []
    for item in error.errors()[:12]:
        location = ".".join(str(part) for part in item.get("loc", ())) or "(answer)"
        problems.append(f"{location}: {item.get('msg', 'invalid value')}")
    return "; ".join(problems)


def is_schema_echo(value: JSONObject) -> bool:
    """Whether ``value`` is a JSON Schema (the format description sent back) rather than an answer."""
    return bool(_SCHEMA_KEYS & set(value)) and value.get("type", "object") == "object"


def parse_answer(text: str, schema: type[SchemaT], check: Callable[[SchemaT], Any] | None = None) -> SchemaT:
    """The first JSON object in ``text`` that matches ``schema`` and passes ``check`` (raises AnswerProblem)."""

    def usable(value: JSONObject) -> SchemaT:
        if is_schema_echo(value):
            raise ValueError("it is the format description (a JSON schema) sent back, not an answer; reply with "
                             "your own values in that format")
        try:
            answer = schema.model_validate(value)
        except ValidationError as exc:
            raise ValueError(f"it does not match the required format: {describe_validation_error(exc)}") from exc
        if check is not None:
            check(answer)
        return answer

    try:
        return first_valid(text, usable)
    except NoUsableJSON as exc:
        raise AnswerProblem(str(exc)) from exc


def _same(text: str, earlier: list[str]) -> bool:
    flat = " ".join(text.split())
    return any(flat == " ".join(previous.split()) for previous in earlier)


@dataclass
class StructuredAsker:
    """Asks one chat model for schema-shaped answers; remembers whether schema-shaped output works."""

    model: BaseChatModel
    purpose: str
    structured_ok: bool | None = None  # None: not tried yet

    def __post_init__(self) -> None:
        # a planner is made per round: what a server refused once is remembered for the process
        if self.structured_ok is None:
            self.structured_ok = _STRUCTURED_REFUSED.get(self._server())

    def ask(self, conversation: Sequence[Message], schema: type[SchemaT], *, prompt_version: str,
            check: Callable[[SchemaT], Any] | None = None, max_attempts: int = 3) -> Answer[SchemaT]:
        """A validated answer, re-asking with the problem after an unusable reply (see the module docstring)."""
        request = list(conversation)
        messages, temperature = request, None
        problems: list[str] = []
        replies: list[Reply] = []
        for attempt in range(1, max_attempts + 1):
            reply = self._reply(messages, schema, prompt_version, temperature)
            replies.append(reply)
            try:
                if reply.truncated:
                    raise AnswerProblem(f"the answer was cut off at the reply limit ({max_tokens_for(self.purpose)} "
                                        "tokens); answer shorter: fewer items, one-sentence rationales, no prose")
                value = parse_answer(reply.text, schema, check)
            except AnswerProblem as problem:
                repeated = _same(reply.text, [earlier.text for earlier in replies[:-1]])
                problems.append(str(problem)[:MAX_PROBLEM_CHARS])
                logger.info("%s: unusable LLM answer (attempt %d/%d%s): %s", self.purpose, attempt, max_attempts,
                            ", a repeat" if repeated else "", problems[-1])
                if repeated and temperature is not None:
                    raise UnusableAnswerError(problems, stopped_early=True) from None
                if repeated:
                    temperature = REPEAT_TEMPERATURE
                messages = [*request, ("assistant", reply.text), ("user", reask_message(problems[-1], repeated))]
                continue
            accept(*replies)
            return Answer(value=value, attempts=attempt, problems=problems)
        raise UnusableAnswerError(problems)

    def _server(self) -> str:
        """The model and the server it is served from (one model name may live on several servers)."""
        return f"{model_identity(self.model)}@{getattr(self.model, 'openai_api_base', None) or ''}"

    def _reply(self, messages: list[Message], schema: type[BaseModel], prompt_version: str,
               temperature: float | None) -> Reply:
        if self.structured_ok is not False and supports_structured_output(self.model):
            try:
                reply = ask(messages, purpose=self.purpose, prompt_version=prompt_version, model=self.model,
                            temperature=temperature, structured=schema)
            except NotImplementedError:
                self.structured_ok = False
            except LLMCallError as exc:
                if getattr(exc.cause, "status_code", None) not in _REJECTED_REQUEST_STATUS:
                    raise
                # the server refused the schema-shaped request itself: ask in plain text from now on
                notify(f"{self.purpose}: the server rejected structured output ({exc}); asking for JSON in text")
                self.structured_ok = _STRUCTURED_REFUSED[self._server()] = False
            else:
                self.structured_ok = True
                return reply
        return ask(messages, purpose=self.purpose, prompt_version=prompt_version, model=self.model,
                   temperature=temperature)


def reask_message(problem: str, repeated: bool = False) -> str:
    again = ("You sent the same answer as before; it cannot pass. Start again from the request and write a "
             "different answer.\n\n" if repeated else "")
    return (f"{again}Your answer could not be used: {problem}\n\n"
            "Reply again with the complete answer as a single JSON object in the required format, "
            "and nothing else.")
