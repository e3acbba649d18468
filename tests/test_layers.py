"""The package's imports run one way (see ARCHITECTURE.md); this keeps it so.

Every ``import`` of a torchscout module in the package is read from the source (module-level,
function-local and ``TYPE_CHECKING`` imports alike) and checked against the layers:

    app.py -> graphs (graphs.cli on top) -> agent -> tools -> prompts -> settings

and, inside tools/, against the allowed dependencies between the tool families. Because
function-local imports count as edges too, no such import can hide an import cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("agent", "graphs", "prompts", "tools")
ROOT_MODULES = ("app.py", "settings.py", "__init__.py")

# higher may import lower, never the other way round
LAYERS = {"torchscout": 7, "app": 6, "graphs.cli": 5, "graphs": 4, "agent": 3, "tools": 2,
          "prompts": 1, "settings": 0}

# tools/: the shared modules every family may use, and which families each family may import
TOOLS_SHARED = {"errors", "answers", "toolkit", "workspace", "loading", "registry", "lookup", "ownership", "limits"}
TOOLS_FAMILIES = {
    "files": set(),
    "sandbox": set(),
    "shell": {"sandbox"},
    "packages": {"shell", "sandbox"},
    "scaffold": set(),
    "codegen": {"sandbox"},
    "modeling": {"codegen", "sandbox"},
    "optim": {"codegen", "sandbox"},
    "text": {"codegen"},
    "training": {"optim", "text", "shell", "sandbox"},
}
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["torchscout", *parts])


def _package_files() -> list[Path]:
    files = [ROOT / name for name in ROOT_MODULES]
    for folder in PACKAGE_FOLDERS:
        files += sorted((ROOT / folder).rglob("*.py"))
    return [path for path in files if "templates" not in path.parts]


MODULES = {_module_name(path): path for path in _package_files()}


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported torchscout module, line) for every import statement in the file."""
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("torchscout")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("torchscout"):
                continue
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.append((child if child in MODULES else target, node.lineno))
    return found


EDGES: dict[str, list[tuple[str, int]]] = {name: _imports(path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    if module in ("torchscout", "torchscout.app", "torchscout.settings"):
        return module.removeprefix("torchscout.") if module != "torchscout" else module
    parts = module.split(".")
    if parts[1] == "graphs" and len(parts) > 2 and parts[2] == "cli":
        return "graphs.cli"
    return parts[1]


def test_the_package_is_found():
    assert {"torchscout.app", "torchscout.settings", "torchscout.graphs.graph", "torchscout.agent.task",
            "torchscout.tools.training.engine", "torchscout.prompts.loader"} <= set(MODULES)


def test_no_module_imports_a_higher_layer():
    upward = [f"{MODULES[source].relative_to(ROOT)}:{line} imports {target} ({_layer(source)} -> {_layer(target)})"
              for source, targets in EDGES.items() for target, line in targets
              if LAYERS[_layer(target)] > LAYERS[_layer(source)]]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def _family(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 3 or parts[1] != "tools":
        return None
    return parts[2]


def test_tool_families_import_only_the_families_below_them():
    wrong = []
    for source, targets in EDGES.items():
        family = _family(source)
        if family is None:
            continue
        for target, line in targets:
            other = _family(target)
            if other is None or other == family:
                continue
            if family in TOOLS_SHARED and other not in TOOLS_SHARED:
                wrong.append(f"{source}:{line}: shared module imports the {other} family")
            elif family in TOOLS_FAMILIES and other not in TOOLS_SHARED | TOOLS_FAMILIES[family]:
                wrong.append(f"{source}:{line}: the {family} family imports the {other} family")
    assert not wrong, "\n".join(wrong)


def test_tools_top_level_holds_the_families_and_a_few_shared_modules():
    modules = {path.stem for path in (ROOT / "tools").glob("*.py")} - {"__init__"}
    packages = {path.name for path in (ROOT / "tools").iterdir() if (path / "__init__.py").is_file()}
    assert modules == TOOLS_SHARED
    assert packages == set(TOOLS_FAMILIES)


def test_there_is_no_import_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for source, targets in EDGES.items():
        for target, _line in targets:
            if target in MODULES and target != source and not source.startswith(f"{target}."):
                graph[source].add(target)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(trail[trail.index(target):] + [target] if target in trail else [module, target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("path", _package_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_module_is_over_the_size_limit(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by concern"


def test_the_checker_sees_function_local_imports():
    """A guard on the guard: the import inside a function body is an edge the checks above read."""
    targets = {target for target, _line in EDGES["torchscout.graphs.cli.research"]}
    assert "torchscout.graphs.driver" in targets


# Issue 10 cut untyped `dict[str, Any]` annotations from 469 to a third; typed records and results
# (agent/records.py, tools/<family>/types.py) are where new shapes go, so the count must not creep back.
MAX_UNTYPED_DICTS = 156


def test_untyped_dict_annotations_stay_few():
    count = sum(path.read_text(encoding="utf-8").count("dict[str, Any]") for path in _package_files())
    assert count <= MAX_UNTYPED_DICTS, (
        f"{count} `dict[str, Any]` annotations in the package (limit {MAX_UNTYPED_DICTS}): give new records, "
        "configs and results a TypedDict (agent/records.py, tools/<family>/types.py)")
