"""The internal LLM layer: model resolution from settings, the persistent cache, retries."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from tests.llm_helpers import scripted
from torchscout.settings import configure
from torchscout.tools.codegen.llm import cache, get_chat_model, invoke_cached, model_identity
from torchscout.tools.errors import ToolError

MESSAGES = [("system", "You answer briefly."), ("user", "Name one activation function.")]


def test_builtin_means_no_chat_model():
    assert get_chat_model() is None
    with pytest.raises(ToolError, match="needs an LLM"):
        invoke_cached(MESSAGES, purpose="test", prompt_version="t@1")


def test_a_spec_string_builds_the_model_with_temperature_zero_and_no_sdk_retries(monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_LLM", "openai:gpt-4.1-mini")
    monkeypatch.setenv("TORCHSCOUT_LLM_IDLE_TIMEOUT_S", "42")
    monkeypatch.setenv("TORCHSCOUT_LLM_MAX_RETRIES", "5")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    model = get_chat_model()
    assert type(model).__name__ == "ChatOpenAI"
    assert model.model_name == "gpt-4.1-mini"
    assert model.temperature == 0
    assert model.request_timeout == 42  # the transport timeout is the idle timeout
    assert model.max_retries == 0       # torchscout's call layer is the only one that retries
    assert get_chat_model() is model  # built once per settings
    assert model_identity(model) == "openai:gpt-4.1-mini"
    assert model_identity(scripted()) == "CountingChatModel"


def test_openai_base_url_serves_a_spec_without_provider(monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_LLM", "qwen2.5-coder-7b-instruct")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    model = get_chat_model()
    assert type(model).__name__ == "ChatOpenAI"
    assert model.model_name == "qwen2.5-coder-7b-instruct"
    assert str(model.openai_api_base).startswith("http://127.0.0.1:8000/v1")


def test_an_unknown_provider_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_LLM", "not-a-provider-model")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ToolError, match="cannot create the chat model"):
        get_chat_model()


def test_a_configured_instance_is_used_and_its_answers_are_cached():
    model = scripted("ReLU")
    configure(llm=model)
    assert get_chat_model() is model
    assert invoke_cached(MESSAGES, purpose="test", prompt_version="t@1") == "ReLU"
    # the scripted model has no second answer: the repeat must come from the cache
    assert invoke_cached(MESSAGES, purpose="test", prompt_version="t@1") == "ReLU"
    assert len(model.requests) == 1
    assert cache().stats() == {"entries": 1, "by_purpose": {"test": 1}}


def test_the_cache_persists_on_disk_and_is_keyed_by_prompt_version(workspace):
    first = scripted("GELU", "SiLU")
    configure(llm=first)
    assert invoke_cached(MESSAGES, purpose="test", prompt_version="t@1") == "GELU"
    assert (workspace / ".torchscout" / "llm_cache.sqlite").is_file()
    # a new model object (same identity) in a "later session" replays without any call
    replay = scripted()
    configure(llm=replay)
    assert invoke_cached(MESSAGES, purpose="test", prompt_version="t@1") == "GELU"
    assert replay.requests == []
    # a new prompt version is a new request
    configure(llm=first)
    assert invoke_cached(MESSAGES, purpose="test", prompt_version="t@2") == "SiLU"


class FlakyChatModel(GenericFakeChatModel):
    failures_left: int = 1

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("connection reset by peer")
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def test_transport_errors_are_retried(monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_LLM_MAX_RETRIES", "2")
    model = FlakyChatModel(messages=iter([AIMessage(content="Tanh")]), failures_left=1)
    assert invoke_cached(MESSAGES, purpose="test", prompt_version="t@1", model=model) == "Tanh"
    assert model.failures_left == 0


def test_a_model_that_stays_unreachable_is_a_tool_error(monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_LLM_MAX_RETRIES", "1")
    model = FlakyChatModel(messages=iter([]), failures_left=5)
    with pytest.raises(ToolError, match="could not be reached for the test request after 2 request"):
        invoke_cached(MESSAGES, purpose="test", prompt_version="t@1", model=model)


class RejectingChatModel(GenericFakeChatModel):
    """Like a provider answering 401: the request reaches the server, which refuses it."""

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        raise PermissionError("Error code: 401 - Incorrect API key provided")


def test_a_model_that_rejects_the_request_is_a_tool_error_naming_the_cause():
    model = RejectingChatModel(messages=iter([]))
    with pytest.raises(ToolError, match="rejected the test request with PermissionError: Error code: 401"):
        invoke_cached(MESSAGES, purpose="test", prompt_version="t@1", model=model)


def test_a_cache_written_before_answers_were_checked_is_read_but_never_replayed(workspace):
    import sqlite3

    path = workspace / ".torchscout" / "llm_cache.sqlite"
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as connection:  # the schema of the version that cached every reply
        connection.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, purpose TEXT NOT NULL, prompt_version "
                           "TEXT NOT NULL, model TEXT NOT NULL, request TEXT NOT NULL, response TEXT NOT NULL, "
                           "created_at REAL NOT NULL)")
        from torchscout.tools.codegen.llm_cache import cache_key
        key = cache_key(purpose="test", prompt_version="t@1", model="CountingChatModel",
                        messages=[{"role": "system", "content": MESSAGES[0][1]},
                                  {"role": "human", "content": MESSAGES[1][1]}])
        connection.execute("INSERT INTO responses VALUES (?, 'test', 't@1', 'CountingChatModel', '[]', "
                           "'a failed answer', 0)", (key,))
    model = scripted("Mish")
    configure(llm=model)

    assert invoke_cached(MESSAGES, purpose="test", prompt_version="t@1") == "Mish"
    assert len(model.requests) == 1
    assert cache().stats() == {"entries": 1, "by_purpose": {"test": 1}}
    with sqlite3.connect(path) as connection:  # the same request's row, now with the used answer
        assert connection.execute("SELECT response, accepted FROM responses").fetchall() == [("Mish", 1)]
