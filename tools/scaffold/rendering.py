"""The scaffold's templates (``tools/scaffold/templates/``) and how a ``{{name}}`` in them is filled."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def template_root() -> Traversable:
    return resources.files("torchscout.tools.scaffold") / "templates"


def read_template(relative: str) -> str:
    """The text of ``templates/<relative>``."""
    return (template_root() / relative).read_text(encoding="utf-8")


def render(text: str, values: Mapping[str, str]) -> str:
    """Fill every ``{{name}}``; a placeholder without a value is a bug in the templates, never left in a file."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ValueError(f"template placeholder {match.group(0)} has no value")
        return values[match.group(1)]

    return PLACEHOLDER.sub(value, text)
