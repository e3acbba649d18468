"""The LLM call layer against a real OpenAI-compatible HTTP server on 127.0.0.1 (real langchain-openai client).

Each test asserts how many requests reached the server, how long the call took against its
deadline, what the caller sees, and what reached disk (the response cache).
"""

from __future__ import annotations

import time

import pytest

from tests.openai_server import Behaviour
from torchscout.tools.codegen.llm import accept, ask, cache, invoke_cached
from torchscout.tools.codegen.llm_call import LLMCallError
from torchscout.tools.codegen.llm_usage import LLMBudgetError, UsageScope, usage_scope

MESSAGES = [("system", "You answer briefly."), ("user", "Name one activation function.")]


def warm_up() -> None:
    """One quick exchange first: the client's first request pays for imports, which is not the server's silence."""
    ask([("user", "Ready?")], purpose="agent", prompt_version="warm@1")


def timed_ask(**kwargs):
    started = time.monotonic()
    reply = ask(MESSAGES, purpose=kwargs.pop("purpose", "summary-analysis"), prompt_version="t@1", **kwargs)
    return reply, time.monotonic() - started


def test_a_slow_but_alive_server_is_not_cut_off(llm_server):
    words = "ReLU is a piecewise linear function that keeps positives and zeroes the rest of its input."
    server = llm_server(Behaviour(text="Yes."), Behaviour(text=words, chunk_delay_s=0.12), idle_s=0.6, timeout_s=10)
    warm_up()
    scope = UsageScope()

    with usage_scope(scope):
        reply, seconds = timed_ask()

    assert reply.text == words and not reply.truncated
    assert len(server.requests) == 2  # the warm-up and this one
    assert 1.5 < seconds < 10  # longer than the idle timeout several times over, well within the deadline
    body = server.requests[1]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 400 and body["max_tokens"] == 400  # the analysis cap, both fields
    [record] = scope.records
    assert (record.outcome, record.requests, record.tokens_estimated) == ("ok", 1, False)
    assert record.completion_tokens == len(words.split())  # the server's own usage report


def test_a_silent_server_is_abandoned_at_the_idle_timeout_and_retried_within_the_deadline(llm_server):
    server = llm_server(Behaviour(text="Yes."), default=Behaviour(silent=True), idle_s=0.3, timeout_s=4, retries=2)
    warm_up()

    started = time.monotonic()
    with pytest.raises(LLMCallError) as caught:
        timed_ask()

    error = caught.value
    assert len(server.requests) - 1 == 3 == error.requests  # one request and two retries: none underneath
    assert "after 3 request(s)" in str(error) and "no data for 0.3s" in str(error)
    assert error.kind == "unreachable"
    assert time.monotonic() - started < 4
    assert cache().stats()["entries"] == 0


def test_the_deadline_ends_a_call_even_while_a_slow_reply_still_streams(llm_server):
    server = llm_server(Behaviour(text="Yes."), default=Behaviour(text="word " * 200, chunk_delay_s=0.1),
                        idle_s=1, timeout_s=1.5)
    warm_up()

    started = time.monotonic()
    with pytest.raises(LLMCallError, match="no complete summary-analysis reply within its deadline") as caught:
        timed_ask()

    assert time.monotonic() - started < 1.5 + 0.5
    assert caught.value.kind == "timeout" and len(server.requests) == 2


def test_http_500s_are_retried_in_one_place_then_reported_with_the_true_count(llm_server):
    server = llm_server(default=Behaviour(status=500), idle_s=1, timeout_s=10, retries=2)

    with pytest.raises(LLMCallError) as caught:
        timed_ask()

    assert len(server.requests) == 3
    assert "could not be reached for the summary-analysis request after 3 request(s)" in str(caught.value)
    assert "500" in str(caught.value)


def test_a_server_that_recovers_answers_and_the_record_counts_every_request(llm_server):
    server = llm_server(Behaviour(status=500), Behaviour(text="x", malformed=True), Behaviour(text="GELU."),
                        idle_s=1, timeout_s=10, retries=2)
    scope = UsageScope()

    with usage_scope(scope):
        reply, _ = timed_ask()

    assert reply.text == "GELU." and len(server.requests) == 3
    assert [(record.outcome, record.requests) for record in scope.records] == [("ok", 3)]


def test_a_rejected_request_is_not_retried(llm_server):
    server = llm_server(default=Behaviour(status=404), idle_s=1, timeout_s=10, retries=3)

    with pytest.raises(LLMCallError, match="rejected the summary-analysis request") as caught:
        timed_ask()

    assert caught.value.kind == "rejected" and len(server.requests) == 1


def test_a_truncated_reply_is_flagged_and_never_replayed_from_the_cache(llm_server):
    long_text = "Tanh " * 600
    server = llm_server(Behaviour(text=long_text), Behaviour(text="Tanh."), idle_s=1, timeout_s=10)

    first, _ = timed_ask()
    assert first.truncated and first.finish_reason == "length"
    assert len(first.text.split()) == 400  # the server honoured the summary-analysis cap
    # invoke_cached accepts whole replies only: the cut-off one is not kept
    assert invoke_cached(MESSAGES, purpose="summary-analysis", prompt_version="t@1") == "Tanh."

    second, _ = timed_ask()  # answered from the cache now
    third, _ = timed_ask()

    assert (second.text, third.text, second.cached, third.cached) == ("Tanh.", "Tanh.", True, True)
    assert len(server.requests) == 2
    assert cache().stats() == {"entries": 1, "by_purpose": {"summary-analysis": 1}}


def test_the_cache_setting_off_neither_reads_nor_writes(llm_server, monkeypatch, workspace):
    server = llm_server(Behaviour(text="SiLU."), Behaviour(text="SiLU."), idle_s=1, timeout_s=10)
    monkeypatch.setenv("TORCHSCOUT_LLM_CACHE", "0")

    for _ in range(2):
        reply, _ = timed_ask()
        accept(reply)

    assert len(server.requests) == 2
    assert not (workspace / ".torchscout" / "llm_cache.sqlite").exists()


def test_a_scope_refuses_calls_past_its_call_limit_or_deadline(llm_server):
    server = llm_server(default=Behaviour(text="ELU."), idle_s=1, timeout_s=10)

    with usage_scope(UsageScope(max_calls=1)):
        timed_ask(purpose="planner")
        with pytest.raises(LLMBudgetError, match="max_llm_calls 1"):
            timed_ask(purpose="agent")
    with usage_scope(UsageScope(deadline=time.monotonic() + 0.5)), \
            pytest.raises(LLMBudgetError, match="time budget left for LLM calls"):
        timed_ask(purpose="agent")

    assert len(server.requests) == 1
