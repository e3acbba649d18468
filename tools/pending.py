"""Tools whose issues have not landed yet: real argument schemas, a clear error when called."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from torchscout.tools.errors import ToolError
from torchscout.tools.toolkit import make_tool


def pending_tool(name: str, args_schema: type[BaseModel], capability: str):
    def not_yet(**_: Any) -> dict[str, Any]:
        raise ToolError(f"{name} is not implemented yet: it lands with the {capability} work")

    not_yet.__name__ = name
    return make_tool(not_yet, args_schema, name=name, description=f"{name}: not implemented yet ({capability}).")


class _AnyArgs(BaseModel):
    model_config = {"extra": "allow"}
    note: str = Field(default="", description="unused")
