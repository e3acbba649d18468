"""One typed settings object for the whole of torchscout.

Values are resolved in one place, highest priority first:
1. ``torchscout.configure(...)`` overrides made in this process,
2. environment variables (``TORCHSCOUT_*``, ``WANDB_MODE``),
3. an optional ``torchscout.yaml`` in the workspace root,
4. the defaults below.

Settings are resolved on every call to :func:`get_settings` (it is cheap), so a test
that changes an environment variable with ``monkeypatch`` sees the change at once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SETTINGS_FILE_NAME = "torchscout.yaml"
WandbMode = Literal["offline", "online", "disabled"]
SandboxMode = Literal["auto", "required"]
SandboxNetwork = Literal["none", "on"]

# Environment variable -> settings field. Kept in one table so the README and the code agree.
ENV_VARIABLES: dict[str, str] = {
    "TORCHSCOUT_WORKSPACE": "workspace",
    "TORCHSCOUT_DATA_DIR": "data_dir",
    "TORCHSCOUT_LLM": "llm",
    "TORCHSCOUT_WANDB_MODE": "wandb_mode",
    "TORCHSCOUT_PROGRESS": "progress",
    "TORCHSCOUT_LLM_TIMEOUT_S": "llm_timeout_s",
    "TORCHSCOUT_LLM_IDLE_TIMEOUT_S": "llm_idle_timeout_s",
    "TORCHSCOUT_LLM_MAX_RETRIES": "llm_max_retries",
    "TORCHSCOUT_LLM_MAX_TOKENS": "llm_max_tokens",
    "TORCHSCOUT_LLM_CACHE": "llm_cache",
    "TORCHSCOUT_LLM_ANALYSIS": "llm_analysis",
    "TORCHSCOUT_LLM_PROMPT_PRICE": "llm_prompt_price",
    "TORCHSCOUT_LLM_COMPLETION_PRICE": "llm_completion_price",
    "TORCHSCOUT_AGENT_MAX_CALLS": "agent_max_model_calls",
    "TORCHSCOUT_SANDBOX": "sandbox",
    "TORCHSCOUT_SANDBOX_NETWORK": "sandbox_network",
    "TORCHSCOUT_SANDBOX_ENV_ALLOW": "sandbox_env_allow",
}
BOOLEAN_FIELDS = {"progress", "llm_cache", "llm_analysis"}


class SettingsError(ValueError):
    """A settings value (from the environment, torchscout.yaml or configure()) is invalid."""


class Settings(BaseModel):
    """Everything torchscout reads from its environment, with a description per field."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    workspace: Path = Field(
        description="Root folder every tool path is relative to; paths outside it are refused. "
        "TORCHSCOUT_WORKSPACE, else the current directory."
    )
    data_dir: Path = Field(
        description="Where datasets live (mnist, cifar10, ...). TORCHSCOUT_DATA_DIR, else <workspace>/data."
    )
    llm: Any = Field(
        default="builtin",
        description="The internal LLM: 'builtin' (offline, deterministic), an init_chat_model spec such as "
        "'openai:gpt-4.1-mini' or 'ollama:qwen2.5-coder', or a LangChain BaseChatModel instance "
        "(only through configure()). TORCHSCOUT_LLM.",
    )
    llm_timeout_s: float = Field(
        default=300.0, gt=0, description="Deadline of one logical LLM call in seconds, its retries included. "
        "TORCHSCOUT_LLM_TIMEOUT_S.")
    llm_idle_timeout_s: float = Field(
        default=60.0, gt=0, description="Longest silence of a streaming reply (the first token included) before "
        "the request is abandoned; a slow server that keeps sending is not cut off. TORCHSCOUT_LLM_IDLE_TIMEOUT_S.")
    llm_max_retries: int = Field(
        default=2, ge=0, description="Retries of one logical LLM call after a transport error, a silent server, "
        "HTTP 429 or 5xx, within its deadline (the only retry layer). TORCHSCOUT_LLM_MAX_RETRIES.")
    llm_max_tokens: dict[str, int] = Field(
        default_factory=dict, description="Reply token caps per purpose, overriding the defaults (planner, "
        "assembler-block, custom_optimizer, summary-analysis, tokenizer_advice, agent). "
        "TORCHSCOUT_LLM_MAX_TOKENS='planner=3000,agent=4096'.")
    llm_cache: bool = Field(
        default=True, description="Answer repeated LLM requests from <workspace>/.torchscout/llm_cache.sqlite "
        "(only answers that were used are kept). TORCHSCOUT_LLM_CACHE=0 neither reads nor writes it.")
    llm_analysis: bool = Field(
        default=True, description="Let the LLM write pytorch_model_summary's analysis (one call per model). "
        "TORCHSCOUT_LLM_ANALYSIS=0 keeps the builtin rules even with an LLM configured.")
    llm_prompt_price: float | None = Field(
        default=None, ge=0, description="USD per million prompt tokens; with it the LLM accounting shows costs. "
        "TORCHSCOUT_LLM_PROMPT_PRICE.")
    llm_completion_price: float | None = Field(
        default=None, ge=0, description="USD per million completion tokens. TORCHSCOUT_LLM_COMPLETION_PRICE.")
    agent_max_model_calls: int = Field(
        default=40, ge=1, description="Most model calls of one `torchscout agent` run (--max-calls overrides it)."
    )
    wandb_mode: WandbMode = Field(
        default="offline",
        description="Weights & Biases mode: 'offline' (default; `wandb sync` uploads later), 'online' "
        "or 'disabled'. TORCHSCOUT_WANDB_MODE, else WANDB_MODE.",
    )
    progress: bool = Field(
        default_factory=lambda: sys.stderr is not None and sys.stderr.isatty(),
        description="Show tqdm progress bars on stderr; by default only when stderr is a terminal (a log file "
        "gets the event lines, not every bar refresh). TORCHSCOUT_PROGRESS=0/1 decides explicitly.",
    )

    sandbox: SandboxMode = Field(
        default="auto",
        description="How code the agent or an LLM wrote is confined (shell commands, generated-code validation, "
        "evaluations, training): 'auto' uses every kernel mechanism available and warns once about the rest; "
        "'required' refuses to run what cannot be fully confined (see `torchscout doctor`). TORCHSCOUT_SANDBOX.",
    )
    sandbox_network: SandboxNetwork = Field(
        default="none",
        description="Network for bash_run and python_run: 'none' (default) or 'on'. Generated-code validation "
        "and evaluations never get it; pip_install_pytorch_package always does. TORCHSCOUT_SANDBOX_NETWORK.",
    )
    sandbox_env_allow: list[str] = Field(
        default_factory=list,
        description="Environment variables passed to confined children even though they look like secrets "
        "(e.g. HF_TOKEN). TORCHSCOUT_SANDBOX_ENV_ALLOW, comma-separated.",
    )

    @field_validator("sandbox_network", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `on` / `off` as a boolean
        if isinstance(value, bool):
            return "on" if value else "none"
        return "none" if value == "off" else value

    @field_validator("sandbox_env_allow", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value
    @field_validator("llm_max_tokens", mode="before")
    @classmethod
    def _token_caps(cls, value: Any) -> Any:
        """``"planner=3000,agent=4096"`` (the environment's form) as a mapping."""
        if not isinstance(value, str):
            return value
        caps: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            purpose, separator, number = item.partition("=")
            if not separator or not purpose.strip():
                raise ValueError(f"write purpose=tokens pairs separated by commas, e.g. 'planner=3000', got {item!r}")
            caps[purpose.strip()] = number.strip()
        return caps

    @property
    def state_dir(self) -> Path:
        """The workspace's private folder: registry, LLM cache, graph checkpoints."""
        return self.workspace / ".torchscout"

    @property
    def llm_is_builtin(self) -> bool:
        return isinstance(self.llm, str) and self.llm.strip().lower() in {"", "builtin"}


_overrides: dict[str, Any] = {}


def configure(**overrides: Any) -> Settings:
    """Override settings for this process, e.g. ``configure(llm="openai:gpt-4.1-mini")``.

    Passing ``None`` for a field removes its override. Returns the resolved settings.
    """
    unknown = set(overrides) - set(Settings.model_fields)
    if unknown:
        raise SettingsError(
            f"unknown setting(s) {sorted(unknown)}; known settings: {sorted(Settings.model_fields)}"
        )
    for key, value in overrides.items():
        if value is None:
            _overrides.pop(key, None)
        else:
            _overrides[key] = value
    return get_settings()


def reset_configuration() -> None:
    """Forget every configure() override (used by tests)."""
    _overrides.clear()


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"expected a boolean (1/0, true/false), got {text!r}")


def _read_settings_file(workspace: Path) -> dict[str, Any]:
    path = workspace / SETTINGS_FILE_NAME
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise SettingsError(f"{path} must hold a mapping of setting names to values")
    unknown = set(loaded) - set(Settings.model_fields) - {"workspace"}
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {sorted(unknown)}")
    loaded.pop("workspace", None)  # the file lives in the workspace; it cannot move it
    return loaded


def _from_environment() -> dict[str, Any]:
    values: dict[str, Any] = {}
    if os.environ.get("WANDB_MODE"):
        values["wandb_mode"] = os.environ["WANDB_MODE"]
    for variable, field in ENV_VARIABLES.items():
        raw = os.environ.get(variable)
        if raw is None or raw == "":
            continue
        values[field] = _parse_bool(raw) if field in BOOLEAN_FIELDS else raw
    return values


def get_settings() -> Settings:
    """Resolve the settings now (overrides > environment > torchscout.yaml > defaults)."""
    environment = _from_environment()
    workspace_raw = _overrides.get("workspace") or environment.get("workspace") or os.getcwd()
    workspace = Path(workspace_raw).expanduser().resolve()

    values: dict[str, Any] = _read_settings_file(workspace)
    values.update(environment)
    values.update(_overrides)
    values["workspace"] = workspace
    data_dir = Path(values.get("data_dir") or workspace / "data").expanduser()
    values["data_dir"] = data_dir if data_dir.is_absolute() else workspace / data_dir
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError(f"invalid torchscout settings: {exc}") from exc
