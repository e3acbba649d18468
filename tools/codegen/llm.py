"""The internal LLM: which chat model torchscout uses, and one cached way to call it.

``settings.llm`` (``TORCHSCOUT_LLM`` or ``torchscout.configure(llm=...)``) decides:

- ``"builtin"`` (default): no model; tools use their deterministic builtin backends.
  :func:`get_chat_model` returns ``None``.
- an ``init_chat_model`` spec such as ``"openai:gpt-4.1-mini"`` or ``"ollama:qwen2.5-coder"``:
  created with temperature 0 and the configured timeout / transport retries. When
  ``OPENAI_BASE_URL`` is set (a local OpenAI-compatible server: vLLM, llama.cpp, LM Studio)
  a spec without a provider prefix, e.g. ``"qwen2.5-coder-7b"``, is served by it.
- a LangChain ``BaseChatModel`` instance (only through ``configure``): used as given, with
  retries on transport errors added around it.

Every call goes through :func:`invoke_cached`, which keeps a persistent response cache in
``<workspace>/.torchscout/llm_cache.sqlite`` keyed by purpose + prompt version + model +
the exact messages: a repeated request never reaches the model, so replays are free::

    from torchscout.tools.codegen.llm import get_chat_model, invoke_cached
    if get_chat_model() is not None:
        text = invoke_cached([("system", "..."), ("user", "...")],
                             purpose="planner", prompt_version="planner@1")
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from torchscout.settings import get_settings
from torchscout.tools.codegen.llm_cache import CACHE_FILE_NAME, ResponseCache, cache_key
from torchscout.tools.errors import ToolError

logger = logging.getLogger(__name__)

# providers whose LangChain classes accept `timeout` and `max_retries` (their SDKs retry with backoff)
_PROVIDERS_WITH_SDK_RETRIES = {
    "openai", "azure_openai", "anthropic", "mistralai", "groq", "deepseek", "xai", "fireworks", "together",
}

MessageLike = BaseMessage | tuple[str, str]


def _transport_error_types() -> tuple[type[BaseException], ...]:
    """Errors worth retrying: the network or the server hiccuped, the request itself was fine."""
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import httpx

        types.append(httpx.TransportError)
    except ImportError:
        pass
    try:
        import openai

        types.extend([openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                      openai.InternalServerError])
    except ImportError:
        pass
    return tuple(types)


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
    """The chat model for an ``init_chat_model`` spec (temperature 0, timeout, retries), built once."""
    settings = get_settings()
    key = (spec, settings.llm_timeout_s, settings.llm_max_retries, os.environ.get("OPENAI_BASE_URL"))
    if key not in _models_by_key:
        model = _build_from_spec(spec)
        _models_by_key[key] = model
        _spec_of_model[id(model)] = spec
    return _models_by_key[key]


def _build_from_spec(spec: str) -> BaseChatModel:
    from langchain.chat_models import init_chat_model

    settings = get_settings()
    provider = _provider_of(spec)
    kwargs: dict[str, Any] = {"temperature": 0}
    base_url = os.environ.get("OPENAI_BASE_URL")
    if provider is None and base_url:
        provider, kwargs["model_provider"] = "openai", "openai"
    if provider == "openai" and base_url:
        kwargs["base_url"] = base_url
        kwargs.setdefault("api_key", os.environ.get("OPENAI_API_KEY") or "not-needed-for-a-local-server")
    if provider in _PROVIDERS_WITH_SDK_RETRIES:
        kwargs.update(timeout=settings.llm_timeout_s, max_retries=settings.llm_max_retries)
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


def _as_message(message: MessageLike) -> BaseMessage:
    if isinstance(message, BaseMessage):
        return message
    role, content = message
    classes = {"system": SystemMessage, "user": HumanMessage, "human": HumanMessage,
               "assistant": AIMessage, "ai": AIMessage}
    if role not in classes:
        raise ValueError(f"unknown message role {role!r}; use one of {sorted(classes)}")
    return classes[role](content=content)


def _as_record(message: BaseMessage) -> dict[str, str]:
    content = message.content if isinstance(message.content, str) else message.text
    return {"role": message.type, "content": content}


def response_text(message: Any) -> str:
    """The plain text of a chat model's reply (string content or content blocks)."""
    if isinstance(message, BaseMessage):
        return message.content if isinstance(message.content, str) else str(message.text)
    return str(message)


def cache() -> ResponseCache:
    """The response cache of the current workspace."""
    return ResponseCache(get_settings().state_dir / CACHE_FILE_NAME)


def invoke_cached(
    messages: Sequence[MessageLike],
    *,
    purpose: str,
    prompt_version: str,
    model: BaseChatModel | None = None,
) -> str:
    """Ask the chat model (``model`` or the configured one) and return its reply text, cached.

    ``purpose`` names the caller (``"assembler"``, ``"summary-analysis"``, ``"planner"``...),
    ``prompt_version`` the prompt's version string: both go into the cache key with the model
    identity and the exact messages, so a changed prompt never reuses a stale answer.
    Transport errors are retried with exponential backoff (``settings.llm_max_retries``).
    Raises ToolError when no model is configured, the model keeps failing or rejects the request.
    """
    chat_model = model if model is not None else get_chat_model()
    if chat_model is None:
        raise ToolError(f"{purpose} needs an LLM but TORCHSCOUT_LLM is 'builtin'; set it to an "
                        "init_chat_model spec such as 'openai:gpt-4.1-mini'")
    converted = [_as_message(message) for message in messages]
    records = [_as_record(message) for message in converted]
    identity = model_identity(chat_model)
    key = cache_key(purpose=purpose, prompt_version=prompt_version, model=identity, messages=records)
    store = cache()
    cached = store.get(key)
    if cached is not None:
        logger.debug("LLM cache hit for %s (%s)", purpose, key[:12])
        return cached
    retries = get_settings().llm_max_retries
    runnable = chat_model.with_retry(
        retry_if_exception_type=_transport_error_types(), stop_after_attempt=retries + 1,
        exponential_jitter_params={"max": 20.0, "jitter": 0.5},
    ) if retries else chat_model
    try:
        reply = runnable.invoke(converted)
    except _transport_error_types() as exc:
        raise ToolError(f"the LLM ({identity}) could not be reached after {retries + 1} attempt(s): {exc}") from exc
    except ToolError:
        raise
    except Exception as exc:  # noqa: BLE001 - the provider's own errors: a bad key, an unknown model, a too-long request
        # callers (code generation, the planner) handle ToolError; a provider's exception class would crash them
        raise ToolError(f"the LLM ({identity}) rejected the {purpose} request with {type(exc).__name__}: {exc}. "
                        "Check the model name and its API key (TORCHSCOUT_LLM), or use 'builtin'") from exc
    text = response_text(reply)
    store.put(key, purpose=purpose, prompt_version=prompt_version, model=identity, messages=records,
              response=text)
    return text
