"""Load the prompt files in this folder.

A prompt is a YAML file ``prompts/<name>.yaml`` with these keys::

    version: "custom_optimizer@1"   # goes into the LLM cache key: bump it when the text changes
    system: |                        # the system message
      You write PyTorch ...
    user: |                          # the request; ${variable} placeholders (string.Template)
      Write ${class_name} ...
    repair: |                        # optional: sent after a failed attempt; ${stage} and ${error}
      Stage ${stage} failed: ${error}. Return the whole corrected file in one ```python block.
    repeat: |                        # optional: sent when the model repeated an earlier wrong answer
      You sent the same failing file again ...; ${stage} and ${error}
    examples:                        # optional few-shot pairs, sent before the request
      - user: "..."
        assistant: "..."
    texts:                           # optional named texts a caller uses verbatim (e.g. tool descriptions)
      read_file: "Read a text file."

``${...}`` placeholders (not ``{...}``) so that code in the prompt needs no escaping.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PROMPTS_DIR = Path(__file__).resolve().parent

DEFAULT_REPAIR = (
    "Your previous answer failed at the ${stage} stage with this error:\n\n${error}\n\n"
    "Fix it and return the whole corrected file in a single ```python code block."
)

DEFAULT_REPEAT = (
    "Your answer is the same as an earlier one that failed at the ${stage} stage with this error:\n\n${error}\n\n"
    "Repeating it cannot pass. Start again from the request: re-read it, find the cause of the error, and write "
    "a different, complete file in a single ```python code block."
)


class PromptError(ValueError):
    """A prompt file is missing, malformed, or a template variable was not supplied."""


@dataclass(frozen=True)
class Prompt:
    """One prompt file, ready to render into chat messages."""

    name: str
    version: str
    system: str
    user: str
    repair: str = DEFAULT_REPAIR
    repeat: str = DEFAULT_REPEAT
    examples: list[dict[str, str]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)

    def _fill(self, template: str, variables: dict[str, Any], part: str) -> str:
        try:
            return string.Template(template).substitute({key: str(value) for key, value in variables.items()})
        except KeyError as exc:
            raise PromptError(f"prompt {self.name!r} ({part}) needs the variable {exc.args[0]!r}") from exc
        except ValueError as exc:
            raise PromptError(f"prompt {self.name!r} ({part}) has a malformed placeholder: {exc}") from exc

    def render(self, **variables: Any) -> list[tuple[str, str]]:
        """System message, few-shot pairs, then the filled-in request, as (role, content) tuples."""
        messages: list[tuple[str, str]] = [("system", self._fill(self.system, variables, "system"))]
        for example in self.examples:
            messages.append(("user", example["user"]))
            messages.append(("assistant", example["assistant"]))
        messages.append(("user", self._fill(self.user, variables, "user")))
        return messages

    def repair_message(self, *, stage: str, error: str, repeated: bool = False) -> tuple[str, str]:
        """The follow-up message after a failed attempt (``repeated``: the answer repeated an earlier one)."""
        template, part = (self.repeat, "repeat") if repeated else (self.repair, "repair")
        return ("user", self._fill(template, {"stage": stage, "error": error}, part))


def available_prompts() -> list[str]:
    return sorted(path.stem for path in PROMPTS_DIR.glob("*.yaml"))


@lru_cache(maxsize=64)
def _load_cached(path: Path, modified_ns: int) -> Prompt:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PromptError(f"prompt file {path.name} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PromptError(f"prompt file {path.name} must be a mapping")
    missing = [key for key in ("version", "system", "user") if not data.get(key)]
    if missing:
        raise PromptError(f"prompt file {path.name} lacks {', '.join(missing)}")
    examples = data.get("examples") or []
    if not all(isinstance(item, dict) and {"user", "assistant"} <= set(item) for item in examples):
        raise PromptError(f"prompt file {path.name}: every example needs 'user' and 'assistant'")
    texts = data.get("texts") or {}
    if not isinstance(texts, dict):
        raise PromptError(f"prompt file {path.name}: 'texts' must map names to texts")
    return Prompt(
        name=path.stem,
        version=str(data["version"]),
        system=str(data["system"]),
        user=str(data["user"]),
        repair=str(data.get("repair") or DEFAULT_REPAIR),
        repeat=str(data.get("repeat") or DEFAULT_REPEAT),
        examples=[{"user": str(item["user"]), "assistant": str(item["assistant"])} for item in examples],
        texts={str(name): " ".join(str(text).split()) for name, text in texts.items()},
    )


def load_prompt(name: str) -> Prompt:
    """The prompt ``prompts/<name>.yaml`` (re-read when the file changes)."""
    path = PROMPTS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise PromptError(f"no prompt named {name!r}; available: {', '.join(available_prompts()) or 'none'}")
    return _load_cached(path, path.stat().st_mtime_ns)
