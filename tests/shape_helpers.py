"""Check real data against the TypedDicts that describe it: keys, nested shapes and value types.

Nothing in the project runs a static type checker, so a TypedDict could drift away from what a
tool returns without anyone noticing; :func:`assert_shape` compares the two at run time.
"""

from __future__ import annotations

import types
from typing import (
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)


def _mismatches(value: Any, expected: Any, where: str) -> list[str]:
    """Every way ``value`` differs from the type ``expected`` (empty when it fits)."""
    origin = get_origin(expected)
    if expected is Any:
        return []
    if origin in (NotRequired, Required):
        return _mismatches(value, get_args(expected)[0], where)
    if is_typeddict(expected):
        return _typeddict_mismatches(value, expected, where)
    if origin in (Union, types.UnionType):
        attempts = [_mismatches(value, option, where) for option in get_args(expected)]
        return [] if any(not attempt for attempt in attempts) else [f"{where}: {value!r} fits no part of {expected}"]
    if origin is Literal:
        return [] if value in get_args(expected) else [f"{where}: {value!r} is not one of {get_args(expected)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, expected a list"]
        return [problem for index, item in enumerate(value)
                for problem in _mismatches(item, get_args(expected)[0], f"{where}[{index}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, expected a dict"]
        key_type, value_type = get_args(expected)
        return [problem for key, item in value.items()
                for problem in [*_mismatches(key, key_type, f"{where} key"), *_mismatches(item, value_type, f"{where}.{key}")]]
    if expected is float:
        fits = isinstance(value, int | float) and not isinstance(value, bool)
    elif expected is int:
        fits = isinstance(value, int) and not isinstance(value, bool)
    elif expected is None or expected is type(None):
        fits = value is None
    else:
        fits = isinstance(value, expected)
    return [] if fits else [f"{where}: {value!r} ({type(value).__name__}) is not {getattr(expected, '__name__', expected)}"]


def _required_keys(expected: Any, hints: dict[str, Any]) -> set[str]:
    """The required keys, NotRequired/Required read from the hints: with postponed annotations
    (``from __future__ import annotations``) Python 3.11's ``__required_keys__`` misses them."""
    marked = {key: get_origin(hint) for key, hint in hints.items()}
    return {key for key in hints
            if marked[key] is Required or (key in expected.__required_keys__ and marked[key] is not NotRequired)}


def _typeddict_mismatches(value: Any, expected: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: {type(value).__name__}, expected a dict ({expected.__name__})"]
    hints = get_type_hints(expected, include_extras=True)
    problems = [f"{where}: missing required key {key!r} of {expected.__name__}"
                for key in sorted(_required_keys(expected, hints) - set(value))]
    problems += [f"{where}: key {key!r} is not in {expected.__name__}" for key in sorted(set(value) - set(hints))]
    for key in sorted(set(value) & set(hints)):
        problems += _mismatches(value[key], hints[key], f"{where}.{key}")
    return problems


def assert_shape(value: Any, expected: Any, where: str = "value") -> None:
    problems = _mismatches(value, expected, where)
    assert not problems, "\n".join(problems)

