"""Bounds on what the caller may ask for, derived from the machine's memory and the file system.

A single absurd argument (a 10**9-parameter blueprint, an input shape of 10**10 values, a
structure nested a thousand levels deep or containing itself) must get a one-line refusal before
anything is allocated or recursed into, not a MemoryError, an abort or a RecursionError.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

# Training with Adam keeps weights, gradients and two moments: 16 bytes per float32 parameter.
BYTES_PER_TRAINED_PARAMETER = 16
# Nesting beyond this is no real blueprint or config, and deeper ones reach Python's recursion limit
# in the libraries that print or copy them.
MAX_NESTING = 64
MAX_CONTAINERS = 200_000


def physical_memory_bytes() -> int:
    """The machine's RAM (a fixed number, so the bounds below do not change with the load)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 << 30


def max_trainable_parameters() -> int:
    """The most parameters a model may have to be trained here: its training state fits in half the RAM."""
    return physical_memory_bytes() // 2 // BYTES_PER_TRAINED_PARAMETER


def parameters_problem(count: int) -> str | None:
    """Why a model of ``count`` parameters cannot be trained on this machine, or None."""
    limit = max_trainable_parameters()
    if count <= limit:
        return None
    return (f"the model has {count:,} parameters; training it needs about "
            f"{count * BYTES_PER_TRAINED_PARAMETER / 2**30:.1f} GiB (weights, gradients, optimizer state) and "
            f"this machine allows {limit:,} parameters ({physical_memory_bytes() / 2**30:.0f} GiB of RAM); "
            "make it smaller")


def batch_problem(sample_values: int, batch_size: int, bytes_per_value: int = 4) -> str | None:
    """Why one batch of ``batch_size`` samples of ``sample_values`` numbers is too large, or None.

    One batch may take an eighth of the RAM: the model's activations take several times more.
    """
    limit = physical_memory_bytes() // 8
    needed = sample_values * batch_size * bytes_per_value
    if needed <= limit:
        return None
    return (f"one batch of {batch_size} samples of {sample_values:,} values needs {needed / 2**30:.1f} GiB, over "
            f"the {limit / 2**30:.1f} GiB a batch may take on this machine; use a smaller input_shape or batch_size")


def _children(value: object) -> Iterator[object]:
    if isinstance(value, dict):
        yield from value.values()
    elif isinstance(value, list | tuple):
        yield from value


def nesting_problem(value: object, what: str = "the input") -> str | None:
    """Why ``value`` (JSON-like data) cannot be processed: nested too deep, too large, or containing itself.

    Walks without recursion, so it is safe on exactly the inputs it refuses.
    """
    stack: list[tuple[object, int, frozenset[int]]] = [(value, 1, frozenset())]
    containers = 0
    while stack:
        item, depth, ancestors = stack.pop()
        if not isinstance(item, dict | list | tuple):
            continue
        if id(item) in ancestors:
            return f"{what} contains itself (a cycle); give plain nested data"
        if depth > MAX_NESTING:
            return f"{what} is nested more than {MAX_NESTING} levels deep"
        containers += 1
        if containers > MAX_CONTAINERS:
            return f"{what} holds more than {MAX_CONTAINERS:,} lists and mappings"
        inner = ancestors | {id(item)}
        stack.extend((child, depth + 1, inner) for child in _children(item))
    return None
