"""Settings resolution (configure > env > torchscout.yaml > defaults) and the workspace root."""

import pytest

from torchscout.settings import SettingsError, configure, get_settings
from torchscout.tools.workspace import resolve, workspace_root


def test_defaults_follow_the_workspace(workspace, monkeypatch):
    monkeypatch.delenv("TORCHSCOUT_WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    settings = get_settings()
    assert settings.workspace == workspace.resolve()
    assert settings.data_dir == workspace.resolve() / "data"
    assert settings.llm == "builtin" and settings.llm_is_builtin
    assert settings.wandb_mode == "offline"
    assert settings.state_dir == workspace.resolve() / ".torchscout"


def test_the_workspace_is_the_current_directory_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHSCOUT_WORKSPACE")
    monkeypatch.chdir(tmp_path)
    assert workspace_root() == tmp_path.resolve()


def test_environment_overrides_the_settings_file(workspace, monkeypatch):
    (workspace / "torchscout.yaml").write_text("llm: openai:gpt-4.1-mini\nwandb_mode: disabled\ndata_dir: datasets\n")
    settings = get_settings()
    assert settings.llm == "builtin"  # the environment (set by conftest) beats the file
    monkeypatch.delenv("TORCHSCOUT_LLM")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    settings = get_settings()
    assert settings.llm == "openai:gpt-4.1-mini"
    assert settings.wandb_mode == "disabled"
    assert settings.data_dir == workspace.resolve() / "datasets"
    monkeypatch.setenv("TORCHSCOUT_DATA_DIR", "/srv/data")
    monkeypatch.setenv("TORCHSCOUT_WANDB_MODE", "online")
    assert get_settings().data_dir.as_posix() == "/srv/data"
    assert get_settings().wandb_mode == "online"


def test_configure_overrides_everything_and_can_be_undone(monkeypatch):
    configure(llm="ollama:qwen2.5-coder", progress=False)
    assert get_settings().llm == "ollama:qwen2.5-coder"
    assert get_settings().progress is False
    configure(llm=None)
    assert get_settings().llm == "builtin"


def test_bad_values_name_the_problem(workspace, monkeypatch):
    with pytest.raises(SettingsError, match="unknown setting"):
        configure(lmm="typo")
    monkeypatch.setenv("TORCHSCOUT_WANDB_MODE", "sometimes")
    with pytest.raises(SettingsError, match="wandb_mode"):
        get_settings()
    monkeypatch.delenv("TORCHSCOUT_WANDB_MODE")
    monkeypatch.setenv("TORCHSCOUT_PROGRESS", "maybe")
    with pytest.raises(SettingsError, match="boolean"):
        get_settings()
    monkeypatch.delenv("TORCHSCOUT_PROGRESS")
    (workspace / "torchscout.yaml").write_text("- not a mapping\n")
    with pytest.raises(SettingsError, match="mapping"):
        get_settings()


def test_resolve_keeps_paths_inside_and_normalises(workspace):
    assert resolve("a/./b/../c.txt") == workspace.resolve() / "a" / "c.txt"
    assert resolve(str(workspace / "x")) == workspace.resolve() / "x"
    assert resolve(".") == workspace.resolve()
