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


def test_llm_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_LLM_MAX_TOKENS", "planner=3000, agent=4096")
    monkeypatch.setenv("TORCHSCOUT_LLM_CACHE", "0")
    monkeypatch.setenv("TORCHSCOUT_LLM_ANALYSIS", "off")
    monkeypatch.setenv("TORCHSCOUT_LLM_IDLE_TIMEOUT_S", "12.5")
    monkeypatch.setenv("TORCHSCOUT_LLM_PROMPT_PRICE", "0.4")
    settings = get_settings()
    assert settings.llm_max_tokens == {"planner": 3000, "agent": 4096}
    assert (settings.llm_cache, settings.llm_analysis) == (False, False)
    assert settings.llm_idle_timeout_s == 12.5 and settings.llm_prompt_price == 0.4
    assert settings.llm_completion_price is None and settings.llm_max_retries == 2
    monkeypatch.setenv("TORCHSCOUT_LLM_MAX_TOKENS", "planner:3000")
    with pytest.raises(SettingsError, match="purpose=tokens pairs"):
        get_settings()


def test_every_environment_variable_is_in_the_readme_settings_table():
    from pathlib import Path

    from torchscout.settings import ENV_VARIABLES

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    missing = [variable for variable, field in ENV_VARIABLES.items()
               if not any(f"`{variable}`" in row and f"`{field}`" in row for row in rows)]
    assert not missing, f"add these settings to the README's settings table: {missing}"
