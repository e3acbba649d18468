"""One way to look a name up: a registry of named entries, each with a description.

Every table that turns a name from a config, a task file or a call into something torchscout
builds is a :class:`Registry` -- datasets, metrics, losses, schedulers, planners, the 15 tools
and the package's public names -- so they all register, list and fail the same way:

- an entry is recorded with a decorator (``@DATASETS.register("mnist", description=...)``),
  with :meth:`Registry.add` for a value that is not a definition (a lambda, a torch class), or
  with :meth:`Registry.add_lazy` as ``"module:attribute"`` where importing the module up front
  would cost too much (``import torchscout.tools`` must not import torch);
- ``sources`` names modules whose import registers entries; they are imported on the first
  lookup, not before;
- an unknown name raises :class:`~torchscout.tools.errors.UnknownNameError`, worded the same
  for every registry: ``unknown dataset 'mnsit' (did you mean mnist?); known datasets: ...``.

Only light standard-library modules are imported here (no dataclasses, which pulls in ``inspect``),
so any module, ``import torchscout`` included, may use a registry for free.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from importlib import import_module
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from torchscout.tools.errors import UnknownNameError

T = TypeVar("T")
Registered = TypeVar("Registered")
_UNLOADED: Any = object()  # the value of a lazy entry that was not used yet


class Entry(Generic[T]):
    """One name of a registry: its value (loaded on first use for a lazy entry) and what it is."""

    __slots__ = ("name", "target", "_value", "_description")

    def __init__(self, name: str, target: str | None, value: T, description: str | None) -> None:
        self.name = name
        self.target = target  # "module:attribute" of a lazy entry, else None
        self._value = value
        self._description = description

    def same_as(self, other: Entry[T]) -> bool:
        """Whether ``other`` records the same thing (importing a source module twice is not a clash)."""
        return (self.target, self._value) == (other.target, other._value)

    @property
    def value(self) -> T:
        if self._value is _UNLOADED:
            module_name, _, attribute = self.target.partition(":")
            self._value = getattr(import_module(module_name), attribute)
        return self._value

    @property
    def description(self) -> str:
        """The description given at registration, else the first line of the value's own description."""
        if self._description is None:
            text = getattr(self.value, "description", None) or self.value.__doc__ or ""
            self._description = text.strip().split("\n", 1)[0]
        return self._description


class Registry(Generic[T]):
    """Names -> values of one kind (``kind`` names it in messages: "dataset", "loss_function", ...)."""

    def __init__(self, kind: str, *, plural: str | None = None, sources: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._sources = sources
        self._sources_loaded = not sources
        self._entries: dict[str, Entry[T]] = {}

    # -- recording --------------------------------------------------------------------------

    def register(self, *names: str, description: str) -> Callable[[Registered], Registered]:
        """Decorator: record the decorated function or class under each of ``names``."""

        def record(value: Registered) -> Registered:
            for name in names:
                self._record(Entry(name, None, value, description))
            return value

        return record

    def add(self, name: str, value: T, *, description: str | None = None) -> None:
        """Record ``value`` under ``name``; without a ``description`` the first line of its docstring is one."""
        self._record(Entry(name, None, value, description))

    def add_lazy(self, name: str, target: str, *, description: str | None = None) -> None:
        """Record ``"module:attribute"`` under ``name``; it is imported when the entry is first used.

        Without a ``description`` the entry describes itself with its value's ``description`` (or
        docstring) when asked, which imports the module then.
        """
        if target.count(":") != 1:
            raise ValueError(f"a lazy {self.kind} entry is 'module:attribute', got {target!r}")
        self._record(Entry(name, target, _UNLOADED, description))

    def remove(self, name: str) -> None:
        """Forget ``name`` (a plug-in withdrawing its entry); an unknown name raises UnknownNameError."""
        self.entry(name)
        del self._entries[name]

    def _record(self, entry: Entry[T]) -> None:
        earlier = self._entries.get(entry.name)
        if earlier is not None and not earlier.same_as(entry):
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice; give the second one another name")
        self._entries[entry.name] = entry

    # -- looking up -------------------------------------------------------------------------

    def get(self, name: str) -> T:
        """The value registered as ``name``; an unknown name raises UnknownNameError."""
        return self.entry(name).value

    def entry(self, name: str) -> Entry[T]:
        """The entry registered as ``name`` (value and description); an unknown name raises UnknownNameError."""
        entry = self._loaded().get(name)
        if entry is None:
            raise self.unknown(name)
        return entry

    def check(self, name: str) -> str:
        """``name`` itself when it is registered; else UnknownNameError (a ValueError too, for validators)."""
        self.entry(name)
        return name

    def names(self) -> list[str]:
        """Every registered name, in the order of registration."""
        return list(self._loaded())

    def descriptions(self) -> dict[str, str]:
        """Name -> description of every entry."""
        return {name: entry.description for name, entry in self._loaded().items()}

    def unknown(self, name: str) -> UnknownNameError:
        """The error for a name that is not registered: the near matches, then every known name."""
        from torchscout.tools.errors import UnknownNameError  # on failure only: ToolError loads LangChain

        known = self.names()
        near = difflib.get_close_matches(str(name), known, n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        listing = ", ".join(known) if known else "none are registered"
        return UnknownNameError(f"unknown {self.kind} {name!r}{hint}; known {self.plural}: {listing}")

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"

    def _loaded(self) -> dict[str, Entry[T]]:
        if not self._sources_loaded:
            for module in self._sources:
                import_module(module)  # its decorators record its entries
            self._sources_loaded = True
        return self._entries
