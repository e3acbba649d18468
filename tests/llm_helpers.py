"""Scripted chat models for the LLM-path tests (the only stand-in allowed: no remote model)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage


class CountingChatModel(GenericFakeChatModel):
    """GenericFakeChatModel that records every request it receives."""

    requests: list[list[Any]] = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.requests.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def scripted(*replies: str) -> CountingChatModel:
    """A chat model that answers with ``replies`` in order (and fails if asked once more)."""
    return CountingChatModel(messages=iter([AIMessage(content=reply) for reply in replies]), requests=[])


def python_block(code: str) -> str:
    return f"Here is the file.\n\n```python\n{code.strip()}\n```\n"
