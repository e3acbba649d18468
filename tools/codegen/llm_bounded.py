"""A chat model whose every call goes through torchscout's one call layer.

Agent mode hands a chat model to LangChain's ``create_agent``, which calls it directly.
:class:`BoundedChatModel` wraps the configured model so those calls get what every other
LLM call of torchscout gets (:func:`~torchscout.tools.codegen.llm_call.call_model`): the
deadline, the idle timeout on a streamed reply, the one retry layer, the reply token cap of
their purpose (``agent``) and the accounting. Tools bound by the agent are bound on the
wrapped model, so the request carries them exactly as it would have::

    model = BoundedChatModel(inner=get_chat_model(), purpose="agent")
    agent = create_agent(model, tools=[...])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding
from langchain_core.tools import BaseTool

from torchscout.tools.codegen.llm import model_identity, request_options
from torchscout.tools.codegen.llm_call import call_model


class BoundedChatModel(BaseChatModel):
    """``inner`` called through :func:`call_model` (see the module docstring)."""

    inner: BaseChatModel
    purpose: str = "agent"

    @property
    def _llm_type(self) -> str:
        return f"torchscout-bounded-{self.inner._llm_type}"

    @property
    def identity(self) -> str:
        return model_identity(self.inner)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        model, options = request_options(self.inner, self.purpose)
        if stop:
            options["stop"] = stop
        reply = call_model(model, messages, purpose=self.purpose, identity=self.identity,
                           kwargs={**options, **kwargs})
        return ChatResult(generations=[ChatGeneration(message=reply.message)])

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable | BaseTool], *,
                   tool_choice: str | None = None, **kwargs: Any) -> Runnable[LanguageModelInput, BaseMessage]:
        """Bind ``tools`` the way the wrapped model binds them; the request keyword arguments are kept."""
        bound = self.inner.bind_tools(tools, tool_choice=tool_choice, **kwargs)
        return self.bind(**(dict(bound.kwargs) if isinstance(bound, RunnableBinding) else {}))
