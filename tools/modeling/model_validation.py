"""Sandbox probes that check generated model code before it is written.

Both run in the sandbox child (:func:`torchscout.tools.sandbox.runner.run_in_sandbox`) and follow the
:func:`torchscout.tools.codegen.pipeline.generate_code` contract: ``code_path`` first, a JSON-able
report back, an exception on failure (its message is what the repair loop shows the LLM).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchscout.tools.loading import load_class
from torchscout.tools.modeling.dtypes import torch_dtype
from torchscout.tools.modeling.types import BlockCheck, ModelCheck

DUMMY_BATCH = 2


class ValidationFailure(AssertionError):
    """The code imported and ran, but did not do what was asked."""


def dummy_input(shape: list[int], dtype: str) -> torch.Tensor:
    """A batch of ``DUMMY_BATCH`` inputs of ``shape``: noise for features, zeros for token ids."""
    full = [DUMMY_BATCH, *shape]
    if dtype == "int64":
        return torch.zeros(full, dtype=torch.long)
    return torch.randn(full, dtype=torch_dtype(dtype))


def _forward(model: nn.Module, sample: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        output = model(sample)
    if isinstance(output, tuple | list):
        raise ValidationFailure(f"forward returned a {type(output).__name__}; it must return one tensor")
    if not isinstance(output, torch.Tensor):
        raise ValidationFailure(f"forward returned {type(output).__name__}, not a tensor")
    if not torch.isfinite(output.float()).all():
        raise ValidationFailure("forward produced NaN or infinite values on a dummy batch")
    return output


def validate_model(code_path: str, model_name: str, input_shape: list[int], input_dtype: str = "float32",
                   expected_output_shape: list[int] | None = None) -> ModelCheck:
    """Import the file, instantiate ``model_name()``, run a dummy batch, check the output shape."""
    cls = load_class(code_path, model_name, base=nn.Module)
    model = cls().eval()
    output = _forward(model, dummy_input(input_shape, input_dtype))
    output_shape = list(output.shape[1:])
    if output.shape[0] != DUMMY_BATCH:
        raise ValidationFailure(f"the output's batch dimension is {output.shape[0]}, expected {DUMMY_BATCH}")
    if expected_output_shape is not None and output_shape != list(expected_output_shape):
        raise ValidationFailure(f"the output shape is (N, {', '.join(map(str, output_shape))}), expected "
                                f"(N, {', '.join(map(str, expected_output_shape))})")
    return {"output_shape": output_shape, "total_params": sum(p.numel() for p in model.parameters())}


def validate_block(code_path: str, class_name: str, params: dict[str, Any], input_shape: list[int],
                   input_dtype: str = "float32") -> BlockCheck:
    """Import the file, instantiate ``class_name(**params)``, run a batch of ``input_shape`` (batch included)."""
    cls = load_class(code_path, class_name, base=nn.Module)
    block = cls(**params).eval()
    sample = dummy_input(list(input_shape[1:]), input_dtype)
    output = _forward(block, sample)
    return {"output_shape": list(output.shape[1:]), "params": sum(p.numel() for p in block.parameters())}
