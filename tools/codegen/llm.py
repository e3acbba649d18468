"""The internal LLM: which chat model torchscout uses, and one cached, bounded way to ask it.

``settings.llm`` (``TORCHSCOUT_LLM`` or ``torchscout.configure(llm=...)``) decides:

- ``"builtin"`` (default): no model; tools use their deterministic builtin backends.
  :func:`get_chat_model` returns ``None``.
- an ``init_chat_model`` spec such as ``"openai:gpt-4.1-mini"`` or ``"ollama:qwen2.5-coder"``:
  created with temperature 0, the idle timeout as its transport timeout and *no* SDK retries
  (:mod:`~torchscout.tools.codegen.llm_call` is the one retry layer). When ``OPENAI_BASE_URL`` is
  set (a local OpenAI-compatible server: vLLM, llama.cpp, LM Studio) a spec without a provider
  prefix, e.g. ``"qwen2.5-coder-7b"``, is served by it.
- a LangChain ``BaseChatModel`` instance (only through ``configure``): used as given (its own
  client settings, retries included, are the caller's choice).

Every request goes through :func:`ask`: a persistent response cache in
``<workspace>/.torchscout/llm_cache.sqlite`` keyed by purpose + prompt version + model + the exact
messages (+ options such as a raised temperature), then :func:`~torchscout.tools.codegen.llm_call.call_model`
(deadline, idle timeout, retries, a reply token cap per purpose, accounting). A reply is replayed
from the cache only after the caller :func:`accept`-ed it (its code passed validation, its JSON
was usable), so a failure is never replayed::

    from torchscout.tools.codegen.llm import accept, ask, get_chat_model
    if get_chat_model() is not None:
        reply = ask([("system", "..."), ("user", "...")], purpose="planner", prompt_version="planner@1")
        if usable(reply.text) and not reply.truncated:
            accept(reply)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableBinding
from pydantic import BaseModel

from torchscout.settings import get_settings
from torchscout.tools.codegen.llm_cache import CACHE_FILE_NAME, ResponseCache, cache_key
from torchscout.tools.codegen.llm_call import CallKwargs, call_model, text_of
from torchscout.tools.codegen.llm_usage import CallRecord, record_call
from torchscout.tools.errors import ToolError

logger = logging.getLogger(__name__)

# providers whose LangChain classes accept `timeout` and `max_retries` (set to 0: llm_call retries)
_PROVIDERS_WITH_SDK_RETRIES = {
    "openai", "azure_openai", "anthropic", "mistralai", "groq", "deepseek", "xai", "fireworks", "together",
}

# Reply token caps per purpose (settings.llm_max_tokens overrides them): a plan or a file of code
# needs room, an analysis paragraph or a tokenizer choice does not.
DEFAULT_MAX_TOKENS = {"planner": 2048, "assembler-block": 2048, "custom_optimizer": 2048, "agent": 2048,
                      "summary-analysis": 400, "tokenizer_advice": 400}
FALLBACK_MAX_TOKENS = 2048

MessageLike = BaseMessage | tuple[str, str]


def _provider_of(spec: str) -> str | None:
    prefix, separator, _ = spec.partition(":")
    if separator:
        from langchain.chat_models.base import _BUILTIN_PROVIDERS

        if prefix in _BUILTIN_PROVIDERS:
            return prefix
    return None


# models built from specs, kept (so ids stay unique) and reused while the settings are unchanged
_models_by_key: dict[tuple[Any, ...], BaseChatModel] = {}
_spec_of_model: dict[int, str] = {}


def chat_model_from_spec(spec: str) -> BaseChatModel:
    """The chat model for an ``init_chat_model`` spec (temperature 0, idle timeout, no SDK retries), built once."""
    settings = get_settings()
    key = (spec, settings.llm_idle_timeout_s, os.environ.get("OPENAI_BASE_URL"))
    if key not in _models_by_key:
        model = _build_from_spec(spec)
        _models_by_key[key] = model
        _spec_of_model[id(model)] = spec
    return _models_by_key[key]


def _build_from_spec(spec: str) -> BaseChatModel:
    from langchain.chat_models import init_chat_model

    settings = get_settings()
    provider = _provider_of(spec)
    kwargs: CallKwargs = {"temperature": 0}
    base_url = os.environ.get("OPENAI_BASE_URL")
    if provider is None and base_url:
        provider, kwargs["model_provider"] = "openai", "openai"
    if provider == "openai" and base_url:
        kwargs["base_url"] = base_url
        kwargs.setdefault("api_key", os.environ.get("OPENAI_API_KEY") or "not-needed-for-a-local-server")
    if provider in _PROVIDERS_WITH_SDK_RETRIES:
        # the transport timeout is the idle timeout: an abandoned request's worker ends with it
        kwargs.update(timeout=settings.llm_idle_timeout_s, max_retries=0)
    try:
        return init_chat_model(spec, **kwargs)
    except (ImportError, ValueError) as exc:
        raise ToolError(
            f"cannot create the chat model {spec!r} (TORCHSCOUT_LLM): {exc}. Use an init_chat_model spec "
            "such as 'openai:gpt-4.1-mini' or 'ollama:qwen2.5-coder' (its langchain-<provider> package "
            "must be installed), or 'builtin'."
        ) from exc


def get_chat_model() -> BaseChatModel | None:
    """The configured chat model, or ``None`` when the builtin backend is configured."""
    settings = get_settings()
    if settings.llm_is_builtin:
        return None
    if isinstance(settings.llm, BaseChatModel):
        return settings.llm
    if isinstance(settings.llm, str):
        return chat_model_from_spec(settings.llm.strip())
    raise ToolError(
        f"settings.llm must be 'builtin', an init_chat_model spec string or a BaseChatModel, "
        f"got {type(settings.llm).__name__}"
    )


def model_identity(model: BaseChatModel) -> str:
    """A stable name for ``model`` in cache keys and results: its spec (``openai:gpt-4.1-mini``)
    when it was built from one, else ``<class>:<model name>``."""
    if id(model) in _spec_of_model:
        return _spec_of_model[id(model)]
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    return f"{type(model).__name__}:{name}" if isinstance(name, str) else type(model).__name__


def as_message(message: MessageLike) -> BaseMessage:
    if isinstance(message, BaseMessage):
        return message
    role, content = message
    classes = {"system": SystemMessage, "user": HumanMessage, "human": HumanMessage,
               "assistant": AIMessage, "ai": AIMessage}
    if role not in classes:
        raise ValueError(f"unknown message role {role!r}; use one of {sorted(classes)}")
    return classes[role](content=content)


def _as_record(message: BaseMessage) -> dict[str, str]:
    return {"role": message.type, "content": text_of(message)}


def response_text(message: Any) -> str:
    """The plain text of a chat model's reply (string content or content blocks)."""
    return text_of(message)


def cache() -> ResponseCache:
    """The response cache of the current workspace."""
    return ResponseCache(get_settings().state_dir / CACHE_FILE_NAME)


def max_tokens_for(purpose: str) -> int:
    """The reply token cap of ``purpose``: the setting, else the default table."""
    return get_settings().llm_max_tokens.get(purpose) or DEFAULT_MAX_TOKENS.get(purpose, FALLBACK_MAX_TOKENS)


def _openai_class() -> type | None:
    try:
        from langchain_openai.chat_models.base import BaseChatOpenAI
    except ImportError:
        return None
    return BaseChatOpenAI


def request_options(model: BaseChatModel, purpose: str, *, temperature: float | None = None,
                    structured: type[BaseModel] | None = None) -> tuple[BaseChatModel, CallKwargs]:
    """``model`` set up for one request of ``purpose`` and the keyword arguments of its call.

    OpenAI-compatible models take the token cap, usage reporting, a temperature and JSON-schema
    output (``structured``) per request; a local server (a base URL other than OpenAI's) also gets
    the classic ``max_tokens`` field, which older servers read instead of ``max_completion_tokens``.
    Other providers get a copy with their own token-cap / temperature fields set, and ``structured``
    as a forced tool call. Raises NotImplementedError when ``structured`` is asked of a model that
    can do neither.
    """
    cap = max_tokens_for(purpose)
    openai_class = _openai_class()
    if openai_class is not None and isinstance(model, openai_class):
        kwargs: CallKwargs = {"max_tokens": cap, "stream_usage": True}
        base = str(getattr(model, "openai_api_base", None) or "")
        if base and "api.openai.com" not in base:
            kwargs["extra_body"] = {**(getattr(model, "extra_body", None) or {}), "max_tokens": cap}
        if temperature is not None:
            kwargs["temperature"] = temperature
        if structured is not None:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": structured.__name__, "schema": structured.model_json_schema(), "strict": False}}
        return model, kwargs
    fields = type(model).model_fields
    update: CallKwargs = {}
    cap_field = next((name for name in ("max_tokens", "num_predict", "max_output_tokens") if name in fields), None)
    if cap_field is not None:
        update[cap_field] = cap
    if temperature is not None and "temperature" in fields:
        update["temperature"] = temperature
    configured = model.model_copy(update=update) if update else model
    if structured is None:
        return configured, {}
    if type(configured).bind_tools is BaseChatModel.bind_tools:
        raise NotImplementedError(f"{type(model).__name__} has no structured output")
    bound = configured.bind_tools([structured], tool_choice="any")
    if isinstance(bound, RunnableBinding) and isinstance(bound.bound, BaseChatModel):
        return bound.bound, dict(bound.kwargs)
    return configured, {}


def supports_structured_output(model: BaseChatModel) -> bool:
    """Whether requests of ``model`` can ask for schema-shaped output (JSON schema or a forced tool call)."""
    openai_class = _openai_class()
    return (openai_class is not None and isinstance(model, openai_class)) or \
        type(model).bind_tools is not BaseChatModel.bind_tools


@dataclass(frozen=True)
class Reply:
    """One answer of :func:`ask`: its text, whether it was cut off, and its cache key for :func:`accept`."""

    text: str
    purpose: str
    key: str
    cached: bool = False
    finish_reason: str | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


def ask(messages: Sequence[MessageLike], *, purpose: str, prompt_version: str, model: BaseChatModel | None = None,
        temperature: float | None = None, structured: type[BaseModel] | None = None) -> Reply:
    """Ask the chat model (``model`` or the configured one); an accepted identical request is a cache hit.

    ``purpose`` names the caller (``"assembler-block"``, ``"summary-analysis"``, ``"planner"``...) and
    picks the reply token cap; ``prompt_version`` goes into the cache key with the model identity, the
    exact messages and the options, so a changed prompt never reuses a stale answer. ``structured``
    asks for output in that schema (JSON-schema output, or a forced tool call whose arguments become
    the reply text); NotImplementedError when the model cannot. Raises ToolError
    (LLMCallError, LLMBudgetError) when no model is configured, it cannot be reached within the
    deadline, it rejects the request, or a limit of the run is reached.
    """
    chat_model = model if model is not None else get_chat_model()
    if chat_model is None:
        raise ToolError(f"{purpose} needs an LLM but TORCHSCOUT_LLM is 'builtin'; set it to an "
                        "init_chat_model spec such as 'openai:gpt-4.1-mini'")
    converted = [as_message(message) for message in messages]
    records = [_as_record(message) for message in converted]
    identity = model_identity(chat_model)
    options: CallKwargs = {}
    if temperature is not None:
        options["temperature"] = temperature
    if structured is not None:
        options["structured"] = structured.__name__
    key = cache_key(purpose=purpose, prompt_version=prompt_version, model=identity, messages=records,
                    options=options)
    use_cache = get_settings().llm_cache
    store = cache()
    cached = store.get(key) if use_cache else None
    if cached is not None:
        logger.debug("LLM cache hit for %s (%s)", purpose, key[:12])
        record_call(CallRecord(purpose=purpose, model=identity, outcome="cached"))
        return Reply(text=cached, purpose=purpose, key=key, cached=True)
    bound, kwargs = request_options(chat_model, purpose, temperature=temperature, structured=structured)
    reply = call_model(bound, converted, purpose=purpose, identity=identity, kwargs=kwargs)
    text = reply.text
    if structured is not None and reply.message.tool_calls:  # a forced tool call: its arguments are the answer
        text = json.dumps(reply.message.tool_calls[0].get("args") or {})
    if use_cache:
        store.put(key, purpose=purpose, prompt_version=prompt_version, model=identity, messages=records,
                  response=text)
    return Reply(text=text, purpose=purpose, key=key, finish_reason=reply.finish_reason)


def accept(*replies: Reply) -> None:
    """Keep ``replies`` for replay: the answers they hold were used (see the module docstring)."""
    if get_settings().llm_cache:
        cache().accept([reply.key for reply in replies if not reply.cached])


def invoke_cached(messages: Sequence[MessageLike], *, purpose: str, prompt_version: str,
                  model: BaseChatModel | None = None) -> str:
    """:func:`ask` for a caller that uses any whole reply as it is: the text, accepted unless cut off."""
    reply = ask(messages, purpose=purpose, prompt_version=prompt_version, model=model)
    if not reply.truncated:
        accept(reply)
    return reply.text
