"""The one table of tensor dtype names the model tools accept.

Names are torch's own (``torch.float32``, ``torch.long``, ...), so a name here is a dtype
everywhere. Blueprint parsing reads the table without importing torch; :func:`torch_dtype`
imports it only when a real dtype object is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# accepted name -> canonical name (torch's aliases: torch.float is torch.float32, torch.long is torch.int64)
DTYPES: dict[str, str] = {
    "float32": "float32", "float": "float32",
    "float16": "float16", "half": "float16",
    "bfloat16": "bfloat16",
    "float64": "float64", "double": "float64",
    "int64": "int64", "long": "int64",
    "int32": "int32", "int": "int32",
}
# What a generated model takes: float features, or int64 token ids for an embedding.
MODEL_INPUT_DTYPES = ("float32", "int64")


def canonical_dtypes() -> list[str]:
    """Every dtype once, by its canonical name."""
    return sorted(set(DTYPES.values()))


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype called ``name`` (a key of :data:`DTYPES`)."""
    import torch  # here, not at the top: the blueprint parser uses this module without torch

    return getattr(torch, DTYPES[name])
