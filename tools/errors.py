"""Exceptions every tool raises for problems the caller can fix.

They subclass LangChain's ``ToolException`` so that a ``StructuredTool`` built with
:func:`torchscout.tools.toolkit.make_tool` turns them into an ``Error: ...`` message for an
agent, while a Python caller of the plain function gets the exception itself.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path

from langchain_core.tools import ToolException

from torchscout.settings import get_settings


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


# torchscout's own files are library frames even when the workspace is the torchscout checkout
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
_LIBRARY_MARKERS = ("site-packages", "dist-packages")
_MAX_CHAIN = 8


def _workspace_root() -> Path:
    return Path(os.path.realpath(get_settings().workspace))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, outermost first."""
    chain = [exc]
    while len(chain) < _MAX_CHAIN:
        current = chain[-1]
        cause = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if cause is None or cause in chain:
            break
        chain.append(cause)
    return chain


def _origin(exc: BaseException, root: Path) -> BaseException:
    """The exception whose traceback shows the user's code: the outermost one with a workspace frame, else the first."""
    chain = _chain(exc)
    for candidate in chain:
        if any(is_workspace_file(frame.filename, root) for frame in traceback.extract_tb(candidate.__traceback__)):
            return candidate
    return chain[-1]


def is_workspace_file(filename: str, root: Path | None = None) -> bool:
    """Whether a traceback frame's file is the user's code: in the workspace, not an installed library."""
    if not filename or filename.startswith("<"):
        return False
    path = Path(os.path.realpath(filename))
    root = root or _workspace_root()
    if not path.is_relative_to(root) or path.is_relative_to(_PACKAGE_ROOT):
        return False
    return not any(marker in path.parts for marker in _LIBRARY_MARKERS) and not path.is_relative_to(sys.prefix)


def shown_path(filename: str, root: Path | None = None) -> str:
    """A frame's file as a message shows it: workspace-relative, or from the library's package folder on."""
    path = Path(os.path.realpath(filename)) if filename and not filename.startswith("<") else None
    if path is None:
        return filename
    root = root or _workspace_root()
    if is_workspace_file(filename, root):
        return path.relative_to(root).as_posix()
    parts = path.parts
    for marker in (*_LIBRARY_MARKERS, "torchscout"):
        if marker in parts:
            start = parts.index(marker) + (1 if marker in _LIBRARY_MARKERS else 0)
            return "/".join(parts[start:])
    return filename


def traceback_tail(exc: BaseException, max_lines: int = 20) -> str:
    """The part of ``exc``'s traceback that points at the user's code.

    Frames in workspace files (paths relative to the workspace) and the last library frame
    (the call that failed), then the exception; library frames in between are left out and
    counted. Without any workspace frame it is the last frames that fit ``max_lines``, as Python
    prints them.
    """
    root = _workspace_root()
    origin = _origin(exc, root)
    frames = traceback.extract_tb(origin.__traceback__)
    user = [index for index, frame in enumerate(frames) if is_workspace_file(frame.filename, root)]
    kept = user + ([len(frames) - 1] if frames and (not user or user[-1] != len(frames) - 1) else [])
    if not user:  # not the user's code (a library or torchscout itself): the last frames, as Python shows them
        kept = list(range(max(0, len(frames) - max(1, (max_lines - 2) // 2)), len(frames)))
    lines: list[str] = []
    for index in kept:
        frame = frames[index]
        lines.append(f'  File "{shown_path(frame.filename, root)}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    lines += "".join(traceback.format_exception_only(origin)).rstrip().splitlines()
    if origin is not exc:
        lines.append(f"(reported as {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})")
    left_out = len(frames) - len(kept)
    header = "Traceback (your code's frames and the failing call" + (
        f"; {left_out} library frame{'s' if left_out != 1 else ''} left out):" if left_out else "):")
    return "\n".join([header, *lines[-max(1, max_lines - 1):]])


def user_location(exc_or_traceback: BaseException | str) -> str | None:
    """``path:line`` of the last workspace frame (from an exception or a :func:`traceback_tail` text), else None."""
    if isinstance(exc_or_traceback, BaseException):
        root = _workspace_root()
        frames = [frame for frame in traceback.extract_tb(_origin(exc_or_traceback, root).__traceback__)
                  if is_workspace_file(frame.filename, root)]
        return f"{shown_path(frames[-1].filename, root)}:{frames[-1].lineno}" if frames else None
    found = [match for match in _FRAME_LINE.finditer(exc_or_traceback) if not _looks_like_library(match.group(1))]
    return f"{found[-1].group(1)}:{found[-1].group(2)}" if found else None


_FRAME_LINE = re.compile(r'File "([^"]+)", line (\d+)')


def _looks_like_library(shown: str) -> bool:
    return shown.startswith(("/", "<")) or shown.split("/")[0] in {"torch", "torchvision", "torchscout", "numpy"}


# PyTorch's shape and dtype errors, and what to change for each: (pattern, hint from the match's groups)
_SHAPE_HINTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)"),
     "a Linear layer expects {2} input features but received {1}: set its in_features to {1}, or change "
     "the layers before it (or input_size) so that they produce {2} features"),
    (re.compile(r"weight of size \[([\d, ]+)\], expected input\[([\d, ]+)\] to have (\d+) channels, "
                r"but got (\d+) channels"),
     "a convolution expects {2} input channels but received input of shape [{1}] with {3}: set its "
     "in_channels to {3}, or give input with {2} channels (input_size)"),
    (re.compile(r"Expected (\d+)D \(unbatched\) or (\d+)D \(batched\) input to (\w+), but got input of size: "
                r"\[([\d, ]+)\]"),
     "{2} expects {1}-dimensional (batched) input but received shape [{3}]: reshape the input before it or "
     "fix input_size"),
    (re.compile(r"The size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton "
                r"dimension (\d+)"),
     "two tensors differ in dimension {2} ({0} vs {1}): make the shapes agree (an output size, a residual "
     "connection, or the targets' shape)"),
    (re.compile(r"Expected input batch_size \((\d+)\) to match target batch_size \((\d+)\)"),
     "the model returned {0} rows for {1} targets: its output must keep the batch dimension first (check a "
     "view/reshape or flatten that mixes the batch into the features)"),
    (re.compile(r"running_mean should contain (\d+) elements not (\d+)"),
     "a BatchNorm layer has {1} features but received {0} channels: set its num_features to {0}"),
    (re.compile(r"normalized_shape=\[([\d, ]+)\], expected input with shape \[\*, ([\d, ]+)\], but got input "
                r"of size\s*\[([\d, ]+)\]"),
     "a LayerNorm expects the last dimension [{1}] but received input of shape [{2}]: set its normalized_shape "
     "to the input's last dimension"),
    (re.compile(r"Kernel size: \(([\d x]+)\)\. Kernel size can't be greater than actual input size"),
     "a kernel of {0} is larger than its input at that point: use a larger input_size, a smaller kernel, "
     "padding, or fewer downsampling layers before it"),
    (re.compile(r"Calculated output size: \(([\dx]+)\)\. Output size is too small"),
     "a pooling or convolution layer shrinks the input to {0}: use a larger input_size or fewer downsampling "
     "layers"),
    (re.compile(r"shape '\[([-\d, ]+)\]' is invalid for input of size (\d+)"),
     "a view/reshape to [{0}] does not fit a tensor of {1} elements: compute the size from the input (e.g. "
     "x.flatten(1)) instead of a fixed number"),
    (re.compile(r"must have the same dtype, but got (\w+) and (\w+)"),
     "the input is {0} but the weights are {1}: convert the input (input_dtype) or the model to one dtype"),
    (re.compile(r"Expected tensor for argument #1 'indices' to have one of the following scalar types"),
     "an Embedding layer needs integer token ids: give input_dtype 'long' (int64), not float"),
]


def what_to_change(error_text: str) -> str | None:
    """For a known PyTorch shape or dtype error, what to change (expected vs actual), else None."""
    for pattern, hint in _SHAPE_HINTS:
        found = pattern.search(error_text)
        if found:
            return "What to change: " + hint.format(*found.groups())
    return None
