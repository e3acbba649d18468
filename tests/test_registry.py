"""The workspace registry: register, replace, look up, list, and concurrent writers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from torchscout.tools import registry
from torchscout.tools.errors import ToolError


def test_register_get_and_list(workspace: Path) -> None:
    result = registry.register("optimizer_config", "tuned_adamw", {"type": "AdamW", "default_params": {"lr": 1e-3}})
    assert result == {"kind": "optimizer_config", "name": "tuned_adamw", "replaced": False,
                      "message": "registered optimizer config 'tuned_adamw'"}
    registry.register("tokenizer", "bpe8k", {"tokenizer_file": "tokenizers/bpe8k/tokenizer.json"})

    entry = registry.get("optimizer_config", "tuned_adamw")
    assert entry["data"]["default_params"] == {"lr": 1e-3}
    assert entry["kind"] == "optimizer_config" and entry["registered_at"]
    assert [e["name"] for e in registry.list_entries()] == ["bpe8k", "tuned_adamw"]
    assert registry.names("tokenizer") == ["bpe8k"]
    manifest = json.loads((workspace / ".torchscout" / "registry.json").read_text())
    assert manifest["version"] == 1
    assert set(manifest["entries"]) == {"optimizer_config", "custom_optimizer", "tokenizer"}


def test_reregistering_replaces_and_says_so() -> None:
    registry.register("tokenizer", "tok", {"vocab_size": 100})
    result = registry.register("tokenizer", "tok", {"vocab_size": 200})
    assert result["replaced"] is True
    assert "replaced the earlier tokenizer registered as 'tok'" in result["message"]
    assert registry.get("tokenizer", "tok")["data"] == {"vocab_size": 200}
    assert len(registry.list_entries("tokenizer")) == 1


def test_names_are_per_kind() -> None:
    registry.register("tokenizer", "shared", {"a": 1})
    assert registry.find("optimizer_config", "shared") is None
    assert registry.find(("optimizer_config", "tokenizer"), "shared")["kind"] == "tokenizer"


def test_unknown_name_lists_registered_names_and_close_matches() -> None:
    registry.register("optimizer_config", "tuned_adamw", {})
    registry.register("optimizer_config", "sgd_momentum", {})
    with pytest.raises(ToolError) as error:
        registry.get("optimizer_config", "tuned_adamv")
    message = str(error.value)
    assert "no optimizer config named 'tuned_adamv'" in message
    assert "did you mean 'tuned_adamw'" in message
    assert "Registered: sgd_momentum, tuned_adamw." in message


def test_unknown_name_in_an_empty_registry_says_nothing_is_registered() -> None:
    with pytest.raises(ToolError, match="Nothing of that kind is registered yet"):
        registry.get("tokenizer", "missing")


def test_unregister() -> None:
    registry.register("custom_optimizer", "Lion", {"script_path": "optimizers/Lion.py"})
    assert registry.unregister("custom_optimizer", "Lion") is True
    assert registry.unregister("custom_optimizer", "Lion") is False
    assert registry.names() == []


def test_corrupt_manifest_is_reported_not_overwritten(workspace: Path) -> None:
    path = workspace / ".torchscout" / "registry.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ToolError, match="registry.json is not valid JSON"):
        registry.register("tokenizer", "tok", {})
    assert path.read_text() == "{not json"


def test_bad_input_is_refused() -> None:
    with pytest.raises(ToolError, match="non-empty name"):
        registry.register("tokenizer", " ", {})
    with pytest.raises(TypeError):
        registry.register("tokenizer", "tok", {"tensor": object()})
    with pytest.raises(ValueError, match="unknown registry kind"):
        registry.register("model", "m", {})
    assert not registry.registry_path().exists()


WRITER = textwrap.dedent("""
    import sys
    from torchscout.tools import registry
    prefix, count = sys.argv[1], int(sys.argv[2])
    for index in range(count):
        registry.register("optimizer_config", f"{prefix}{index}", {"index": index, "writer": prefix})
""")


def test_concurrent_writers_in_two_processes_lose_nothing(workspace: Path) -> None:
    count = 40
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, prefix, str(count)], cwd=workspace)
               for prefix in ("a", "b")]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    names = registry.names("optimizer_config")
    assert len(names) == 2 * count
    assert {f"a{i}" for i in range(count)} | {f"b{i}" for i in range(count)} == set(names)
    assert registry.get("optimizer_config", "b7")["data"] == {"index": 7, "writer": "b"}
