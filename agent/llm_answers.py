"""Structured answers from the chat model: JSON-schema output when the server supports it,
parse-and-re-ask when it does not, and the response cache either way.

:func:`ask_structured` sends a rendered prompt and returns a validated pydantic object:

1. If the model implements structured output (``with_structured_output``), it is asked for the
   schema directly. A server that rejects JSON-schema requests is remembered and not asked that
   way again; a reply that ignored the schema is parsed as text (step 2).
2. Otherwise the reply text is searched for a JSON object (a ```json block or the outermost
   braces) and validated against the schema, then by the caller's ``check``.
3. An unusable reply is answered with what was wrong and the model is asked again, up to
   ``max_attempts`` replies in all; then :class:`UnusableAnswerError` lists every problem.

Every reply goes through the persistent response cache (``.torchscout/llm_cache.sqlite``):
text replies via :func:`torchscout.tools.codegen.llm.invoke_cached`, structured replies under their
own key in the same cache. A replay with unchanged inputs therefore makes no model call.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from torchscout.tools.codegen.llm import cache, invoke_cached, model_identity, response_text
from torchscout.tools.codegen.llm_cache import cache_key
from torchscout.tools.errors import ToolError

logger = logging.getLogger(__name__)

SchemaT = TypeVar("SchemaT", bound=BaseModel)
Message = tuple[str, str]

_FENCED_JSON = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)
_ROLES: dict[str, type[BaseMessage]] = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
MAX_PROBLEM_CHARS = 1500


class AnswerProblem(ValueError):
    """A reply could not be used; the message says why, in words the model can act on."""


class UnusableAnswerError(ToolError):
    """Every attempt produced an unusable reply; ``problems`` holds one entry per attempt."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"the LLM gave no usable answer in {len(problems)} attempt(s); last problem: "
                         f"{problems[-1] if problems else 'none recorded'}")


@dataclass
class Answer(Generic[SchemaT]):
    """A validated answer and how it was obtained."""

    value: SchemaT
    attempts: int
    problems: list[str] = field(default_factory=list)


def extract_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a model reply: a fenced ```json block, else the outermost ``{...}``."""
    candidates = [block.strip() for block in _FENCED_JSON.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start:end + 1])
    if not candidates:
        raise AnswerProblem("the reply contains no JSON object; reply with a single JSON object only")
    last_error = ""
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError as exc:
            last_error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            continue
        if isinstance(value, dict):
            return value
        last_error = f"the JSON is a {type(value).__name__}, not an object"
    raise AnswerProblem(f"the reply is not valid JSON ({last_error}); reply with one JSON object, "
                        "double-quoted keys, no comments or trailing commas")


def describe_validation_error(error: ValidationError) -> str:
    problems = []
    for item in error.errors()[:12]:
        location = ".".join(str(part) for part in item.get("loc", ())) or "(answer)"
        problems.append(f"{location}: {item.get('msg', 'invalid value')}")
    return "; ".join(problems)


def parse_answer(text: str, schema: type[SchemaT]) -> SchemaT:
    """Validate the JSON object in ``text`` against ``schema`` (raises AnswerProblem)."""
    data = extract_json_object(text)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise AnswerProblem(f"the JSON does not match the required format: {describe_validation_error(exc)}") from exc


def _supports_structured_output(model: BaseChatModel) -> bool:
    # BaseChatModel.with_structured_output needs bind_tools; models without it raise NotImplementedError
    return type(model).bind_tools is not BaseChatModel.bind_tools


def _as_messages(conversation: Sequence[Message]) -> list[BaseMessage]:
    return [_ROLES[role](content=content) for role, content in conversation]


@dataclass
class StructuredAsker:
    """Asks one chat model for schema-shaped answers; remembers whether JSON-schema output works."""

    model: BaseChatModel
    purpose: str
    structured_ok: bool | None = None  # None: not tried yet

    def ask(self, conversation: Sequence[Message], schema: type[SchemaT], *, prompt_version: str,
            check: Callable[[SchemaT], None] | None = None, max_attempts: int = 3) -> Answer[SchemaT]:
        """A validated answer, re-asking with the problem after an unusable reply."""
        messages = list(conversation)
        problems: list[str] = []
        for attempt in range(1, max_attempts + 1):
            text = self._reply(messages, schema, prompt_version)
            try:
                value = parse_answer(text, schema)
                if check is not None:
                    check(value)
            except AnswerProblem as problem:
                reason = str(problem)[:MAX_PROBLEM_CHARS]
                problems.append(reason)
                logger.info("%s: unusable LLM answer (attempt %d/%d): %s", self.purpose, attempt, max_attempts,
                            reason)
                messages += [("assistant", text), ("user", reask_message(reason))]
                continue
            return Answer(value=value, attempts=attempt, problems=problems)
        raise UnusableAnswerError(problems)

    def _reply(self, messages: list[Message], schema: type[BaseModel], prompt_version: str) -> str:
        if self.structured_ok is not False and _supports_structured_output(self.model):
            text = self._structured_reply(messages, schema, prompt_version)
            if text is not None:
                return text
        return self._text_reply(messages, prompt_version)

    def _text_reply(self, messages: list[Message], prompt_version: str) -> str:
        return invoke_cached(messages, purpose=self.purpose, prompt_version=prompt_version, model=self.model)

    def _structured_reply(self, messages: list[Message], schema: type[BaseModel], prompt_version: str) -> str | None:
        """The reply as JSON text via ``with_structured_output``, or None when the server cannot do it."""
        identity = model_identity(self.model)
        version = f"{prompt_version}+structured:{schema.__name__}"
        records = [{"role": role, "content": content} for role, content in messages]
        key = cache_key(purpose=self.purpose, prompt_version=version, model=identity, messages=records)
        store = cache()
        cached = store.get(key)
        if cached is not None:
            return cached
        try:
            runnable = self.model.with_structured_output(schema, include_raw=True)
            result = runnable.invoke(_as_messages(messages))
        except NotImplementedError:
            self.structured_ok = False
            return None
        except Exception as exc:  # noqa: BLE001 - servers reject JSON-schema requests in many different ways
            # a server without JSON-schema / tool-calling support rejects the request: ask in text from now on
            logger.warning("%s: structured output failed (%s: %s); falling back to parsing text replies",
                           self.purpose, type(exc).__name__, exc)
            self.structured_ok = False
            return None
        self.structured_ok = True
        text = _structured_result_text(result)
        store.put(key, purpose=self.purpose, prompt_version=version, model=identity, messages=records, response=text)
        return text


def _structured_result_text(result: Any) -> str:
    """JSON text of a ``with_structured_output(include_raw=True)`` result, or the raw reply text."""
    parsed = result.get("parsed") if isinstance(result, dict) else result
    if isinstance(parsed, BaseModel):
        return parsed.model_dump_json(by_alias=True)
    if isinstance(parsed, dict):
        return json.dumps(parsed)
    raw = result.get("raw") if isinstance(result, dict) else None
    tool_calls = getattr(raw, "tool_calls", None) or []
    if tool_calls:
        return json.dumps(tool_calls[0].get("args", {}))
    # the server ignored the schema and answered in prose: the text parser gets a chance
    return response_text(raw) if raw is not None else ""


def reask_message(problem: str) -> str:
    return (f"Your answer could not be used: {problem}\n\n"
            "Reply again with the complete answer as a single JSON object in the required format, "
            "and nothing else.")
