"""One logical model call: the only retry layer, one deadline, streaming with an idle timeout.

:func:`call_model` is the single place torchscout talks to a chat model (code generation, the
planner, analyses, tokenizer advice and agent mode all end here):

- **one deadline**: the call, its retries included, ends within ``llm_timeout_s`` -- or sooner when
  an active :class:`~torchscout.tools.codegen.llm_usage.UsageScope` (the research graph's share of
  the time budget) says so;
- **an idle timeout**: a provider that streams is read chunk by chunk in a worker thread, and the
  caller waits for each chunk (the first included) at most ``llm_idle_timeout_s``: a slow server
  that keeps sending is not cut off, a silent one is abandoned;
- **one retry layer**: up to ``llm_max_retries`` more attempts after a transport error, a silent
  server, HTTP 429, 5xx or a malformed response, with a short backoff, while the deadline leaves
  time. Models built from a spec get ``max_retries=0`` (see ``llm.py``), so the SDK never retries
  underneath; a 4xx (bad key, unknown model, bad request) fails at once;
- **accounting**: each call becomes one :class:`~torchscout.tools.codegen.llm_usage.CallRecord`
  (requests, prompt/completion tokens, seconds, outcome).
"""

from __future__ import annotations

import contextvars
import json
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core import exceptions as lc_errors
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, message_chunk_to_message

from torchscout.settings import get_settings
from torchscout.tools.codegen.llm_usage import (
    MIN_CALL_SECONDS,
    CallOutcome,
    CallRecord,
    LLMBudgetError,
    check_limits,
    record_call,
)
from torchscout.tools.codegen.llm_usage import seconds_left as scope_seconds_left
from torchscout.tools.errors import ToolError

# provider packages whose chat models stream natively (and report usage while streaming)
STREAMING_PACKAGES = {"langchain_openai", "langchain_anthropic", "langchain_ollama", "langchain_mistralai",
                      "langchain_groq", "langchain_deepseek", "langchain_xai", "langchain_fireworks",
                      "langchain_together", "langchain_google_genai", "langchain_aws"}
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 8.0
CHARS_PER_TOKEN = 4  # the estimate when a server reports no usage
CallKwargs = dict[str, Any]  # keyword arguments of one chat-model call (token cap, tools, response format...)


@dataclass(frozen=True)
class ModelReply:
    """The whole reply of one logical call, with what it cost."""

    message: AIMessage
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    requests: int

    @property
    def truncated(self) -> bool:
        """The reply hit the token cap (``finish_reason: length``) and is cut off."""
        return self.finish_reason == "length"


class LLMCallError(ToolError):
    """The call failed: ``kind`` is ``unreachable`` (transport, after the retries), ``timeout`` (the
    deadline passed) or ``rejected`` (the server refused the request); ``requests`` were sent."""

    def __init__(self, message: str, *, kind: str, requests: int, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.requests = requests
        self.cause = cause


class _Silent(TimeoutError):
    """No chunk arrived within the idle timeout."""


class _DeadlinePassed(TimeoutError):
    """The call's deadline passed while a reply was still arriving."""


def text_of(message: Any) -> str:
    """The plain text of a chat message (string content or content blocks)."""
    if isinstance(message, BaseMessage):
        return message.content if isinstance(message.content, str) else str(message.text)
    return str(message)


def _transient_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ConnectionError, TimeoutError, json.JSONDecodeError,
                                        lc_errors.ModelConnectionError, lc_errors.ModelTimeoutError,
                                        lc_errors.ModelRateLimitError, lc_errors.ModelAPIError]
    try:
        import httpx

        types += [httpx.TransportError, httpx.RemoteProtocolError]
    except ImportError:
        pass
    try:
        import openai

        types += [openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError,
                  openai.APIResponseValidationError]
    except ImportError:
        pass
    return tuple(types)


def is_transient(error: BaseException) -> bool:
    """Worth another attempt: the network, a silent or overloaded server, a garbled response."""
    if isinstance(error, lc_errors.ContextOverflowError):
        return False
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return status in (408, 409, 429) or status >= 500
    return isinstance(error, _transient_types())


def streams(model: BaseChatModel) -> bool:
    """Whether ``model`` is read as a stream (its provider streams natively); else it is called whole."""
    return type(model).__module__.split(".")[0] in STREAMING_PACKAGES


def _produce(model: BaseChatModel, messages: list[BaseMessage], kwargs: CallKwargs,
             chunks: queue.Queue, stop: threading.Event) -> None:
    """The worker: put each chunk (or the whole reply, or the error) on ``chunks``; quit when asked."""
    try:
        if streams(model):
            for chunk in model.stream(messages, **kwargs):
                if stop.is_set():
                    return  # leaving the loop closes the HTTP response
                chunks.put(("chunk", chunk))
        else:
            chunks.put(("chunk", model.invoke(messages, **kwargs)))
        chunks.put(("end", None))
    except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, which decides
        chunks.put(("error", exc))


def _one_attempt(model: BaseChatModel, messages: list[BaseMessage], kwargs: CallKwargs,
                 deadline: float, idle_s: float) -> AIMessage:
    """One request, read within the idle timeout and the deadline."""
    chunks: queue.Queue = queue.Queue()
    stop = threading.Event()
    context = contextvars.copy_context()  # callbacks and tracing follow the call into the worker
    worker = threading.Thread(target=context.run, args=(_produce, model, messages, kwargs, chunks, stop),
                              name="torchscout-llm-call", daemon=True)
    worker.start()
    reply: AIMessageChunk | AIMessage | None = None
    idle = idle_s if streams(model) else float("inf")  # a whole reply arrives at once: only the deadline
    try:
        while True:
            left = deadline - time.monotonic()
            try:
                kind, item = chunks.get(timeout=max(0.0, min(idle, left)))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise _DeadlinePassed("the deadline passed while the reply was still arriving") from None
                raise _Silent(f"no data for {idle_s:g}s (TORCHSCOUT_LLM_IDLE_TIMEOUT_S)") from None
            if kind == "error":
                raise item
            if kind == "end":
                break
            reply = item if reply is None else reply + item
    finally:
        stop.set()  # an abandoned worker stops at its next chunk, or when its read times out
    if reply is None:
        raise ConnectionError("the server closed the reply without sending a message")
    whole = message_chunk_to_message(reply) if isinstance(reply, AIMessageChunk) else reply
    if not isinstance(whole, AIMessage):
        raise TypeError(f"the chat model answered with a {type(whole).__name__}, not an AI message")
    return whole


def _usage(message: AIMessage, messages: Sequence[BaseMessage], text: str) -> tuple[int, int, bool]:
    usage = message.usage_metadata or {}
    if usage.get("input_tokens") or usage.get("output_tokens"):
        return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)), False
    prompt_chars = sum(len(text_of(item)) for item in messages)
    return prompt_chars // CHARS_PER_TOKEN, len(text) // CHARS_PER_TOKEN, True


def call_deadline() -> float:
    """The monotonic time this call must end by: the setting, or an active scope's earlier deadline."""
    budget = get_settings().llm_timeout_s
    scope_left = scope_seconds_left()
    return time.monotonic() + (budget if scope_left is None else min(budget, scope_left))


def call_model(model: BaseChatModel, messages: Sequence[BaseMessage], *, purpose: str, identity: str,
               kwargs: CallKwargs | None = None) -> ModelReply:
    """One logical call of ``model`` (see the module docstring); raises LLMCallError or LLMBudgetError."""
    check_limits(purpose)
    settings = get_settings()
    started, deadline = time.monotonic(), call_deadline()
    attempts, requests = 1 + settings.llm_max_retries, 0
    last_error: BaseException | None = None
    out_of_time = False
    while requests < attempts:
        requests += 1
        try:
            message = _one_attempt(model, list(messages), dict(kwargs or {}), deadline, settings.llm_idle_timeout_s)
        except _DeadlinePassed as exc:
            last_error, out_of_time = exc, True
            break
        except Exception as exc:  # noqa: BLE001 - every provider raises its own classes; classified below
            if not is_transient(exc):
                _record(purpose, identity, "failed", requests, started, messages)
                raise LLMCallError(f"the LLM ({identity}) rejected the {purpose} request with "
                                   f"{type(exc).__name__}: {exc}", kind="rejected", requests=requests,
                                   cause=exc) from exc
            last_error = exc
            pause = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (requests - 1))
            if requests < attempts and deadline - time.monotonic() > pause + MIN_CALL_SECONDS:
                time.sleep(pause)
                continue
            out_of_time = requests < attempts
            break
        text = text_of(message)
        prompt_tokens, completion_tokens, estimated = _usage(message, messages, text)
        finish = (message.response_metadata or {}).get("finish_reason")
        seconds = time.monotonic() - started
        record_call(CallRecord(purpose=purpose, model=identity, outcome="truncated" if finish == "length" else "ok",
                               requests=requests, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                               seconds=seconds, tokens_estimated=estimated))
        return ModelReply(message=message, text=text, finish_reason=finish, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens, seconds=seconds, requests=requests)
    raise _give_up(purpose, identity, requests, started, out_of_time, messages, last_error)


def _give_up(purpose: str, identity: str, requests: int, started: float, timed_out: bool,
             messages: Sequence[BaseMessage], error: BaseException | None) -> LLMCallError:
    outcome: CallOutcome = "timeout" if timed_out else "failed"
    _record(purpose, identity, outcome, requests, started, messages)
    seconds = time.monotonic() - started
    if isinstance(error, _Silent | _DeadlinePassed):
        detail = str(error)  # our own words: the class name means nothing to a user
    else:
        detail = f"{type(error).__name__}: {error}" if str(error or "") else type(error).__name__
    if timed_out:
        return LLMCallError(f"the LLM ({identity}) gave no complete {purpose} reply within its deadline "
                            f"({seconds:.0f}s, {requests} request(s): {detail}; see TORCHSCOUT_LLM_TIMEOUT_S / "
                            "TORCHSCOUT_LLM_IDLE_TIMEOUT_S)", kind="timeout", requests=requests, cause=error)
    return LLMCallError(f"the LLM ({identity}) could not be reached for the {purpose} request after {requests} "
                        f"request(s) in {seconds:.0f}s: {detail}", kind="unreachable", requests=requests, cause=error)


def _record(purpose: str, identity: str, outcome: CallOutcome, requests: int, started: float,
            messages: Sequence[BaseMessage]) -> None:
    prompt_tokens = sum(len(text_of(item)) for item in messages) // CHARS_PER_TOKEN
    record_call(CallRecord(purpose=purpose, model=identity, outcome=outcome, requests=requests,
                           prompt_tokens=prompt_tokens * requests, seconds=time.monotonic() - started,
                           tokens_estimated=True))


__all__ = ["CallKwargs", "LLMBudgetError", "LLMCallError", "ModelReply", "call_deadline", "call_model",
           "is_transient", "streams", "text_of"]
