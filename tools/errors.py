"""Exceptions every tool raises for problems the caller can fix.

They subclass LangChain's ``ToolException`` so that a ``StructuredTool`` built with
:func:`torchscout.tools.toolkit.make_tool` turns them into an ``Error: ...`` message for an
agent, while a Python caller of the plain function gets the exception itself.
"""

from __future__ import annotations

from langchain_core.tools import ToolException


class ToolError(ToolException):
    """A tool could not do what was asked; the message says what was wrong and what to do."""


class WorkspaceError(ToolError):
    """A path is empty, malformed, or resolves outside the workspace."""


class CommandTimeoutError(ToolError):
    """A child process ran past its time limit and was killed (with its whole process group)."""


class UnknownNameError(ToolError, KeyError, ValueError):
    """A name that no registry entry has (see :class:`torchscout.tools.lookup.Registry`).

    A ToolError for the agent, a KeyError for a caller that looks names up, and a ValueError
    so that a pydantic validator reports it as the invalid field's message.
    """

    def __str__(self) -> str:
        return BaseException.__str__(self)  # the message itself, not KeyError's quoted repr


class UserCodeError(ToolError):
    """Code from the workspace (a model, a block, an optimizer) failed to import or run.

    ``traceback_tail`` holds the last lines of the traceback, which is what an agent (or the
    LLM repair loop) needs to fix the code.
    """

    def __init__(self, message: str, traceback_tail: str = "") -> None:
        super().__init__(f"{message}\n{traceback_tail}".rstrip())
        self.traceback_tail = traceback_tail


def traceback_tail(exc: BaseException, max_lines: int = 20) -> str:
    """The last ``max_lines`` lines of ``exc``'s formatted traceback."""
    import traceback

    lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    return "\n".join(lines[-max_lines:])
