"""JSON objects in model replies: find every one, use the first that passes its checks.

Models wrap JSON in prose, in fenced blocks, or write several objects in one reply (an example,
then an answer, then a correction). A greedy ``\\{.*\\}`` spans all of them and parses none;
:func:`json_objects` decodes each top-level object on its own, left to right, and
:func:`first_valid` returns the first one its ``check`` accepts, or raises with what was wrong with
each.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
JSONObject = dict[str, Any]  # a decoded JSON object: its values are whatever the model wrote
_decoder = json.JSONDecoder()


class NoUsableJSON(ValueError):
    """No JSON object in the reply passed the checks; the message says why, for the model to act on."""


def json_objects(text: str) -> Iterator[JSONObject]:
    """Every top-level JSON object in ``text``, in order (objects nested in one are not repeated)."""
    position = text.find("{")
    while position != -1:
        try:
            value, end = _decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            yield value
        position = text.find("{", end)


def first_valid(text: str, check: Callable[[JSONObject], T]) -> T:
    """``check(obj)`` of the first object it accepts (it raises ValueError to refuse one).

    Raises NoUsableJSON naming the problem of each refused object, or saying there was no
    parsable object at all.
    """
    problems: list[str] = []
    for number, value in enumerate(json_objects(text), start=1):
        try:
            return check(value)
        except ValueError as exc:
            problems.append(f"object {number}: {exc}")
    if problems:
        raise NoUsableJSON("; ".join(problems))
    if "{" not in text:
        raise NoUsableJSON("the reply contains no JSON object; reply with a single JSON object only")
    raise NoUsableJSON(f"the reply is not valid JSON ({_decode_error(text)}); reply with one JSON object, "
                       "double-quoted keys, no comments or trailing commas")


def _decode_error(text: str) -> str:
    try:
        _decoder.raw_decode(text, text.find("{"))
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "no complete object"
