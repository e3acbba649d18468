"""One lookup style: every name table is a Registry, and every one fails the same helpful way."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

import torchscout
from torchscout import tools
from torchscout.agent.planners import PLANNERS, get_planner
from torchscout.agent.task import TaskError, load_task
from torchscout.tools.errors import ToolError, UnknownNameError
from torchscout.tools.lookup import Registry
from torchscout.tools.scaffold.train_script import DATA_KINDS
from torchscout.tools.training.components import LOSSES, SCHEDULERS, build_loss, build_scheduler
from torchscout.tools.training.datasets import DATASETS
from torchscout.tools.training.metrics import METRICS, check_metric_names

REGISTRIES = {"datasets": DATASETS, "metrics": METRICS, "planners": PLANNERS, "tools": tools.TOOLS,
              "losses": LOSSES, "schedulers": SCHEDULERS, "data kinds": DATA_KINDS, "exports": torchscout.EXPORTS}


def _typo(name: str) -> str:
    return name[:-1] + ("x" if name[-1] != "x" else "y")


def _assert_helpful(error: BaseException, registry: Registry, asked: str, meant: str) -> None:
    message = str(error)
    assert isinstance(error, UnknownNameError)
    assert isinstance(error, ToolError) and isinstance(error, KeyError) and isinstance(error, ValueError)
    assert message.startswith(f"unknown {registry.kind} {asked!r} (did you mean {meant}")
    assert message.endswith(f"; known {registry.plural}: {', '.join(registry.names())}")


@pytest.mark.parametrize("registry", REGISTRIES.values(), ids=list(REGISTRIES))
def test_every_registry_names_the_near_matches_and_the_known_names(registry):
    meant = registry.names()[0]
    with pytest.raises(UnknownNameError) as caught:
        registry.get(_typo(meant))
    _assert_helpful(caught.value, registry, _typo(meant), meant)
    assert registry.check(meant) == meant and meant in registry and _typo(meant) not in registry


@pytest.mark.parametrize("registry", REGISTRIES.values(), ids=list(REGISTRIES))
def test_every_entry_has_a_description(registry):
    descriptions = registry.descriptions()
    assert list(descriptions) == registry.names() and len(registry) == len(descriptions) > 0
    assert all(text.strip() for text in descriptions.values()), descriptions


@pytest.mark.parametrize(("look_up", "registry", "asked", "meant"), [
    (lambda: get_planner("buitlin"), PLANNERS, "buitlin", "builtin"),
    (lambda: tools.get_tool("reed_file"), tools.TOOLS, "reed_file", "read_file"),
    (lambda: check_metric_names(["acuracy"]), METRICS, "acuracy", "accuracy"),
    (lambda: build_loss("CrossEntropyLos"), LOSSES, "CrossEntropyLos", "CrossEntropyLoss"),
    (lambda: build_scheduler("StepLRR", None, 1, 1), SCHEDULERS, "StepLRR", "StepLR"),
], ids=["planner", "tool", "metric", "loss", "scheduler"])
def test_the_public_lookups_raise_the_registry_error(look_up, registry, asked, meant):
    with pytest.raises(UnknownNameError) as caught:
        look_up()
    _assert_helpful(caught.value, registry, asked, meant)


def test_a_task_reports_an_unknown_metric_or_planner_on_its_field():
    base = {"name": "t", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10}
    with pytest.raises(TaskError, match=r"metric: unknown metric 'acuracy' \(did you mean accuracy"):
        load_task({**base, "metric": "acuracy"})
    with pytest.raises(TaskError, match=r"planner: unknown planner 'buitlin' \(did you mean builtin\?\); "
                                        r"known planners: builtin, llm"):
        load_task({**base, "planner": "buitlin"})


def test_decorators_lazy_entries_and_sources(tmp_path, monkeypatch):
    (tmp_path / "demo_operations.py").write_text(textwrap.dedent('''
        from torchscout.tools.lookup import Registry

        DEMO = Registry("operation", sources=("demo_operation_source",))
        DEMO.add_lazy("root", "math:sqrt")
        '''), encoding="utf-8")
    (tmp_path / "demo_operation_source.py").write_text(textwrap.dedent('''
        from demo_operations import DEMO

        @DEMO.register("double", "twice", description="multiply by two")
        def double(value):
            return 2 * value
        '''), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("demo_operations", "demo_operation_source"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    DEMO = importlib.import_module("demo_operations").DEMO
    assert "demo_operation_source" not in sys.modules  # nothing imported before the first lookup
    assert DEMO.get("twice")(21) == 42 and DEMO.get("double") is DEMO.get("twice")
    assert DEMO.names() == ["root", "double", "twice"]
    assert DEMO.get("root")(9) == 3.0
    assert DEMO.descriptions() == {"root": "Return the square root of x.", "double": "multiply by two",
                                   "twice": "multiply by two"}
    with pytest.raises(ValueError, match="'double' is registered twice"):
        DEMO.add("double", abs, description="another")
    DEMO.remove("twice")
    assert "twice" not in DEMO
    with pytest.raises(UnknownNameError, match="known operations: root, double"):
        DEMO.remove("twice")
    with pytest.raises(ValueError, match="'module:attribute'"):
        DEMO.add_lazy("broken", "math.sqrt")


def test_an_empty_registry_says_so():
    with pytest.raises(UnknownNameError, match="unknown widget 'x'; known widgets: none are registered"):
        Registry("widget").get("x")


def test_import_torchscout_and_the_tool_table_stay_cheap():
    """`import torchscout`, the tool names and the registries' own code load neither torch nor LangChain."""
    code = ("import sys, torchscout, torchscout.tools as tools\n"
            "names = tools.TOOL_NAMES, torchscout.EXPORTS.names(), 'read_file' in tools.TOOLS, dir(torchscout)\n"
            "print(sorted(m for m in ('torch', 'langchain_core', 'pydantic') if m in sys.modules))\n"
            "print(type(tools.read_file).__name__, 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "TorchscoutTool False"]
