"""Load Python code from the workspace: a module from a script path, a class from a module.

Used by every tool that runs user or generated code in-process (the trainers, the summary's
child process, the optimizer registry). Each load gets a fresh module object named after
the file and its content hash, so editing a script and loading it again gives the new code,
and two scripts with the same file name never collide in ``sys.modules``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from torchscout.tools.errors import ToolError, UserCodeError, traceback_tail
from torchscout.tools.workspace import resolve, workspace_root


@contextlib.contextmanager
def _importable_from(*folders: Path) -> Iterator[None]:
    """Let the script import its neighbours (and workspace packages) while it loads."""
    added = [str(folder) for folder in folders if str(folder) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def load_module(script_path: str | Path) -> ModuleType:
    """Import the Python file at ``script_path`` (a workspace path) as a new module."""
    path = resolve(script_path, must_exist=True, kind="script path")
    if not path.is_file() or path.suffix != ".py":
        raise ToolError(f"{script_path!s} is not a .py file")
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
    module_name = f"torchscout_user_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ToolError(f"cannot import {script_path!s}")
    module = importlib.util.module_from_spec(spec)
    # registered before exec so dataclasses, pickling and torch.compile can find the module
    sys.modules[module_name] = module
    try:
        with _importable_from(path.parent, workspace_root()):
            spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise UserCodeError(f"importing {script_path!s} failed with {type(exc).__name__}: {exc}",
                            traceback_tail(exc)) from exc
    return module


def load_class(script_path: str | Path, class_name: str, base: type | None = None) -> type:
    """Return the class ``class_name`` defined in ``script_path``, checking it subclasses ``base``."""
    module = load_module(script_path)
    found = getattr(module, class_name, None)
    if not inspect.isclass(found):
        candidates = sorted(
            name for name, value in vars(module).items()
            if inspect.isclass(value) and value.__module__ == module.__name__
            and (base is None or issubclass(value, base))
        )
        hint = f"; classes defined there: {', '.join(candidates)}" if candidates else ""
        raise ToolError(f"{script_path!s} defines no class named {class_name!r}{hint}")
    if base is not None and not issubclass(found, base):
        raise ToolError(f"{class_name} in {script_path!s} is not a subclass of {base.__module__}.{base.__name__}")
    return found
