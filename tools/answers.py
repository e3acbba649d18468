"""The answer contract: what every tool hands an agent, checked in one place.

An answer is a JSON object (never None, never a bare list) with

- ``status``: one word (``success``, ``completed``, ``failed``, ``diverged``, ``dry_run``);
- ``message``: a sentence or two an LLM can act on (what happened, what to do next);
- the key numbers, and the workspace-relative paths of anything the tool wrote;
- at most :data:`MAX_ANSWER_CHARS` characters as JSON. Whatever does not fit (a full history, a
  long log, a per-layer table) is written to a file under ``.torchscout/answers/`` and the answer
  names it in ``details_path``.

A key whose value is unknown (None) is left out rather than sent as ``null``. Errors are not
answers: a tool that cannot do what was asked answers ``Error: ...`` text (see
:mod:`torchscout.tools.toolkit`). :func:`checked_answer` is what ``make_tool`` runs on every
answer, so no tool can hand an agent anything else.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError
from torchscout.tools.workspace import atomic_write_text, relative_to_workspace, workspace_root

MAX_ANSWER_CHARS = 4000
DETAILS_FOLDER = "answers"  # under the workspace's state folder (.torchscout)
LONG_VALUE_CHARS = 600  # a value longer than this (as JSON) is shortened when the answer does not fit
MESSAGE_KEYS = ("message", "error", "traceback")  # texts in which absolute workspace paths become relative


# A tool's answer: a JSON object with status and message first, then the tool's own keys (each
# family types its keys in its types.py; the contract itself only needs these two).
Answer = dict[str, Any]


class AnswerContractError(ToolError):
    """A tool's answer broke the contract (None, a list, no status): a bug in torchscout, reported as one."""


def to_json(answer: Any) -> str:
    """The answer as the agent receives it (LangChain sends a dict as ``json.dumps(..., ensure_ascii=False)``)."""
    return json.dumps(answer, ensure_ascii=False)


def checked_answer(tool_name: str, answer: Any) -> Answer:
    """``answer`` made plain JSON data, checked against the contract and fitted to the size limit."""
    if not isinstance(answer, Mapping):
        raise AnswerContractError(f"{tool_name} answered {type(answer).__name__}, not a JSON object; this is a "
                                  "bug in torchscout (the tool's work may still have been done)")
    plain = _plain(answer)
    status = plain.pop("status", None)
    if not isinstance(status, str) or not status:
        raise AnswerContractError(f"{tool_name} answered without a status; this is a bug in torchscout")
    message = plain.pop("message", None) or f"{tool_name}: {status}."
    root = f"{workspace_root()}/"
    shaped = {"status": status, "message": message, **plain}
    for key in MESSAGE_KEYS:
        if isinstance(shaped.get(key), str):
            shaped[key] = shaped[key].replace(root, "")
    return fit_answer(tool_name, shaped)


def _plain(value: Any) -> Any:
    """JSON data: None-valued keys dropped, non-finite floats as text, paths relative, tensors as numbers."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Path):
        return relative_to_workspace(value)
    if hasattr(value, "item") and callable(value.item):
        try:
            return _plain(value.item())
        except (TypeError, ValueError, RuntimeError):
            return str(value)
    return str(value)


def write_details(tool_name: str, text: str, suffix: str = "json") -> str:
    """Write ``text`` to a new file under ``.torchscout/answers/``; its workspace-relative path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = get_settings().state_dir / DETAILS_FOLDER / f"{tool_name}-{stamp}-{uuid.uuid4().hex[:6]}.{suffix}"
    atomic_write_text(path, text)
    return relative_to_workspace(path)


def fit_answer(tool_name: str, answer: Answer) -> Answer:
    """``answer`` if it fits; else the whole of it goes to a details file and the answer keeps the short parts."""
    text = to_json(answer)
    if len(text) <= MAX_ANSWER_CHARS:
        return answer
    try:
        details: str | None = write_details(tool_name, json.dumps(answer, ensure_ascii=False, indent=1))
    except OSError as exc:
        details = None
        note = f" The answer ({len(text):,} characters) was shortened; its full form could not be saved ({exc})."
    else:
        note = (f" The answer ({len(text):,} characters) was shortened: the full answer is in {details} "
                "(read_file with offset pages through it).")
    short = {key: _shortened(value) for key, value in answer.items() if key not in ("status", "message")}
    fitted = {"status": answer["status"], "message": _cut(str(answer["message"]), 1500) + note, **short}
    if details:
        fitted["details_path"] = details
    omitted: list[str] = []
    while len(to_json(fitted)) > MAX_ANSWER_CHARS and len(fitted) > 2 + bool(details):
        key = next(key for key in reversed(fitted) if key not in ("status", "message", "details_path"))
        omitted.insert(0, key)
        del fitted[key]
        fitted["omitted_keys"] = omitted
    return fitted


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 40].rstrip() + f" ... [{len(text):,} characters in all]"


def _shortened(value: Any) -> Any:
    """A long value in a few hundred characters: a text's head, a list's first items, a mapping's short entries."""
    if len(to_json(value)) <= LONG_VALUE_CHARS:
        return value
    if isinstance(value, str):
        return _cut(value, LONG_VALUE_CHARS)
    if isinstance(value, list):
        kept: list[Any] = []
        for item in value:
            if len(to_json([*kept, item])) > LONG_VALUE_CHARS - 60:
                break
            kept.append(item)
        return [*kept, f"... {len(value) - len(kept)} more of {len(value)} items in details_path"]
    if isinstance(value, dict):
        small = {key: item for key, item in value.items() if len(to_json(item)) <= 80}
        kept_keys: Answer = {}
        for key, item in small.items():
            if len(to_json({**kept_keys, key: item})) > LONG_VALUE_CHARS - 80:
                break
            kept_keys[key] = item
        left = len(value) - len(kept_keys)
        return {**kept_keys, "...": f"{left} more keys in details_path"} if left else kept_keys
    return value
