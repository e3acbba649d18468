"""Load Python code: a module from a workspace script, a class from a module, a model from any source.

Used by every tool that runs user or generated code in-process (the trainers, the summary's
child process, the optimizer registry). Each load gets a fresh module object named after
the file and its content hash, so editing a script and loading it again gives the new code,
and two scripts with the same file name never collide in ``sys.modules``.

A model for the summary and the training tools comes from a :class:`ModelSource`: a workspace
file or an installed module (``torchvision.models:resnet18``), naming a class or a factory function.
Installed modules are imported normally (once per process): they are not the workspace's code.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

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


# --- model sources: a workspace file (class or factory function) or an installed module ----------

ModelKwargs = dict[str, Any]  # a model constructor's keyword arguments: free-form by nature

@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``kind`` "file" (a workspace .py file) or "import" (an installed module),
    and ``name``, a class or a factory function defined there (a dotted name reaches inside a class or
    module: ``models.resnet18``)."""

    kind: str
    location: str  # the workspace path as given, or the module's dotted name
    name: str

    @property
    def label(self) -> str:
        """How answers name the model: ``models/net.py:Net`` or ``torchvision.models:resnet18``."""
        return f"{self.location}:{self.name}"


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def parse_model_source(model_script_path: str, model_class_name: str | None) -> ModelSource:
    """Read the two model arguments of the summary and training tools as one :class:`ModelSource`.

    ``model_script_path`` is a workspace .py file, an import spec ``package.module:name`` (then
    ``model_class_name`` may be left out) or an installed module's dotted name; ``model_class_name``
    names a class or a factory function (anything that returns an nn.Module) defined there.
    """
    where = (model_script_path or "").strip()
    name = (model_class_name or "").strip()
    if ":" in where:
        where, _, spec_name = where.partition(":")
        if name and spec_name and name != spec_name:
            raise ToolError(f"model_script_path {model_script_path!r} names {spec_name!r} but model_class_name is "
                            f"{name!r}; give one of them")
        name = spec_name or name
        if not _dotted(where):
            raise ToolError(f"import spec {model_script_path!r} must look like 'package.module:name', "
                            "e.g. 'torchvision.models:resnet18'")
        kind = "import"
    elif where.endswith(".py") or "/" in where or not _dotted(where):
        kind = "file"
    else:
        kind = "import"
    if not where:
        raise ToolError("model_script_path is empty: give a workspace .py file (e.g. 'src/models/net.py') or an "
                        "import spec (e.g. 'torchvision.models:resnet18')")
    if not _dotted(name):
        raise ToolError(f"model_class_name must name a class or factory function such as 'SimpleCNN' or "
                        f"'resnet18', got {model_class_name!r}")
    return ModelSource(kind, where, name)


def _import_installed(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name) and exc.name.partition(".")[0] == module_name.partition(".")[0]:
            hint = module_name.replace(".", "/") + ".py"
            raise ToolError(f"no installed module {module_name!r} ({exc}); install the package that provides it, "
                            f"or give a workspace file as model_script_path (e.g. {hint!r})") from exc
        raise UserCodeError(f"importing {module_name} failed with ModuleNotFoundError: {exc}",
                            traceback_tail(exc)) from exc
    except Exception as exc:
        raise UserCodeError(f"importing {module_name} failed with {type(exc).__name__}: {exc}",
                            traceback_tail(exc)) from exc


def _attribute(module: ModuleType, name: str, where: str) -> object:
    found: object = module
    for part in name.split("."):
        if not hasattr(found, part):
            candidates = sorted(key for key, value in vars(module).items()
                                if not key.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
                                and getattr(value, "__module__", None) == module.__name__)
            hint = f"; defined there: {', '.join(candidates[:30])}" if candidates else ""
            raise ToolError(f"{where} defines no class or function named {name!r}{hint}")
        found = getattr(found, part)
    return found


def load_model_builder(source: ModelSource, base: type) -> Callable[..., Any]:
    """The class or factory that ``source`` names: a subclass of ``base``, or a function (its result is
    checked when it is called, see :func:`build_model`)."""
    module = load_module(source.location) if source.kind == "file" else _import_installed(source.location)
    found = _attribute(module, source.name, source.location)
    if inspect.isclass(found):
        if not issubclass(found, base):
            raise ToolError(f"{source.name} in {source.location} is not a subclass of "
                            f"{base.__module__}.{base.__name__}")
        return found
    if not callable(found):
        raise ToolError(f"{source.name} in {source.location} is a {type(found).__name__}, not a class or a "
                        "factory function")
    return found


def build_model(builder: Callable[..., Any], kwargs: ModelKwargs, base: type, label: str) -> Any:
    """``builder(**kwargs)``, checked to be an instance of ``base``; a failure is the user's code's."""
    try:
        model = builder(**kwargs)
    except Exception as exc:
        raise UserCodeError(f"{label}(**{kwargs}) failed with {type(exc).__name__}: {exc}",
                            traceback_tail(exc)) from exc
    if not isinstance(model, base):
        raise ToolError(f"{label}(**{kwargs}) returned {type(model).__name__!r}, not an instance of "
                        f"{base.__name__}; give a class or a function that returns a model")
    return model
