"""What LLM calls cost, the limits a caller puts around them, and the fallbacks a user must see.

Every model call (:func:`torchscout.tools.codegen.llm_call.call_model`) and every cache hit is
recorded as a :class:`CallRecord` into each active :class:`UsageScope`. A scope is opened by
whoever runs LLM calls under limits -- the research graph around each step, the LLM evals around
a suite -- and carries:

- ``deadline``: a ``time.monotonic()`` value no call may run past (the graph's share of the time
  budget); a call that would start after it is refused with :class:`LLMBudgetError`;
- ``max_calls`` / ``max_tokens`` with what was used before the scope opened (the run's
  ``budget.max_llm_calls`` / ``max_llm_tokens``);
- ``on_call``: where the records go (the graph appends them to ``runs/<name>/llm_calls.jsonl``);
- ``on_notice``: where a fallback notice goes (the graph prints it as an event line). Without a
  scope, notices are logged as warnings.

Scopes live in a context variable, so LangGraph's parallel tasks each see their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Literal, NotRequired

from typing_extensions import TypedDict  # pydantic reads TypedDicts from here on Python 3.11

from torchscout.tools.errors import ToolError

logger = logging.getLogger(__name__)

CallOutcome = Literal["ok", "truncated", "failed", "timeout", "cached"]


class CallRecordJSON(TypedDict):
    """:class:`CallRecord` as stored (the research graph adds ``time``, ``step`` and ``round``)."""

    purpose: str
    model: str
    outcome: CallOutcome
    requests: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    tokens_estimated: bool
    time: NotRequired[float]
    step: NotRequired[str]
    round: NotRequired[int | None]


@dataclass(frozen=True)
class CallRecord:
    """One logical model call (its retries included) or one cache hit."""

    purpose: str
    model: str
    outcome: CallOutcome
    requests: int = 0            # HTTP requests / attempts sent (0 for a cache hit)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    tokens_estimated: bool = False  # the server reported no usage: ~4 characters per token

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_json(self) -> CallRecordJSON:
        return CallRecordJSON(**{**asdict(self), "seconds": round(self.seconds, 3)})


class LLMBudgetError(ToolError):
    """A limit of the active scope (deadline, calls, tokens) was reached; the call was not made."""


@dataclass
class UsageScope:
    """Limits and sinks for the LLM calls made while it is active (see the module docstring)."""

    deadline: float | None = None
    max_calls: int | None = None
    max_tokens: int | None = None
    calls_before: int = 0
    tokens_before: int = 0
    on_call: Callable[[CallRecord], None] | None = None
    on_notice: Callable[[str], None] | None = None
    records: list[CallRecord] = field(default_factory=list)

    def calls_used(self) -> int:
        return self.calls_before + sum(1 for record in self.records if record.outcome != "cached")

    def tokens_used(self) -> int:
        return self.tokens_before + sum(record.tokens for record in self.records)

    def seconds_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def refusal(self) -> str | None:
        """Why no further call may start in this scope, or None."""
        if self.max_calls is not None and self.calls_used() >= self.max_calls:
            return f"the run's LLM call budget is used up ({self.calls_used()} of max_llm_calls {self.max_calls})"
        if self.max_tokens is not None and self.tokens_used() >= self.max_tokens:
            return (f"the run's LLM token budget is used up ({self.tokens_used():,} of max_llm_tokens "
                    f"{self.max_tokens:,})")
        left = self.seconds_left()
        if left is not None and left < MIN_CALL_SECONDS:
            return "the time budget left for LLM calls in this step is used up"
        return None


# a call with less time than this left is not started: it could not finish anyway
MIN_CALL_SECONDS = 1.0

_scopes: ContextVar[tuple[UsageScope, ...]] = ContextVar("torchscout_llm_scopes", default=())


@contextmanager
def usage_scope(scope: UsageScope) -> Iterator[UsageScope]:
    """Make ``scope`` active (inside any outer ones) while the block runs."""
    token = _scopes.set((*_scopes.get(), scope))
    try:
        yield scope
    finally:
        _scopes.reset(token)


def check_limits(purpose: str) -> None:
    """Raise LLMBudgetError when an active scope refuses another call."""
    for scope in _scopes.get():
        reason = scope.refusal()
        if reason:
            raise LLMBudgetError(f"{purpose}: no LLM call made: {reason}")


def seconds_left() -> float | None:
    """The tightest deadline of the active scopes, in seconds from now (None: no deadline)."""
    lefts = [left for scope in _scopes.get() if (left := scope.seconds_left()) is not None]
    return min(lefts) if lefts else None


def record_call(record: CallRecord) -> None:
    for scope in _scopes.get():
        scope.records.append(record)
        if scope.on_call is not None:
            scope.on_call(record)


def notify(text: str) -> None:
    """A fallback or a dropped answer the user must see: to the innermost scope's sink, else the log."""
    for scope in reversed(_scopes.get()):
        if scope.on_notice is not None:
            scope.on_notice(text)
            return
    logger.warning("%s", text)


class PurposeUsage(TypedDict):
    """The LLM use of one purpose (planner, assembler-block, summary-analysis, ...)."""

    calls: int
    ok: int                 # calls whose reply arrived whole (not truncated)
    requests: int
    cache_hits: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cost_usd: float | None  # only when prices are configured


def usage_by_purpose(records: list[CallRecordJSON], prompt_price: float | None = None,
                     completion_price: float | None = None) -> dict[str, PurposeUsage]:
    """Totals per purpose of :meth:`CallRecord.as_json` records; prices in USD per million tokens."""
    totals: dict[str, PurposeUsage] = {}
    for record in records:
        entry = totals.setdefault(str(record.get("purpose", "?")), PurposeUsage(
            calls=0, ok=0, requests=0, cache_hits=0, prompt_tokens=0, completion_tokens=0, seconds=0.0,
            cost_usd=None))
        if record.get("outcome") == "cached":
            entry["cache_hits"] += 1
            continue
        entry["calls"] += 1
        entry["ok"] += record.get("outcome") == "ok"
        entry["requests"] += int(record.get("requests", 0))
        entry["prompt_tokens"] += int(record.get("prompt_tokens", 0))
        entry["completion_tokens"] += int(record.get("completion_tokens", 0))
        entry["seconds"] = round(entry["seconds"] + float(record.get("seconds", 0.0)), 3)
    if prompt_price is not None or completion_price is not None:
        for entry in totals.values():
            entry["cost_usd"] = round((entry["prompt_tokens"] * (prompt_price or 0.0)
                                       + entry["completion_tokens"] * (completion_price or 0.0)) / 1e6, 6)
    return totals
