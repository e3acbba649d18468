"""Shape inference for the assembler: fill in the dimension arguments, build, run, measure.

A layer's missing dimension arguments follow from the shape of the tensor that reaches it
(``in_channels`` from dim 1 of ``(N, C, H, W)``, ``in_features`` from the last dim, ...).
Each layer is then built and run on a sample of that shape to learn its output shape.
Layers are built on the ``meta`` device first (no weight initialisation, no arithmetic: a
VGG-sized blueprint infers in milliseconds); a layer whose code does not support meta
tensors is built for real and run on zeros instead.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from torchscout.tools.errors import UserCodeError, traceback_tail
from torchscout.tools.limits import parameters_problem
from torchscout.tools.modeling.blueprint import BlueprintError, LayerNode

# argument name -> (where it comes from, how to read it off the input shape (batch included))
INFERABLE_ARGUMENTS: dict[str, tuple[str, Callable[[torch.Size], Any]]] = {
    "in_channels": ("dim 1", lambda shape: shape[1]),
    "num_features": ("dim 1", lambda shape: shape[1]),
    "num_channels": ("dim 1", lambda shape: shape[1]),
    "in_features": ("last dim", lambda shape: shape[-1]),
    "in1_features": ("last dim", lambda shape: shape[-1]),
    "in2_features": ("last dim", lambda shape: shape[-1]),
    "input_size": ("last dim", lambda shape: shape[-1]),
    "embed_dim": ("last dim", lambda shape: shape[-1]),
    "d_model": ("last dim", lambda shape: shape[-1]),
    "normalized_shape": ("last dim", lambda shape: shape[-1]),
    "sequence_length": ("dim 1", lambda shape: shape[1]),  # PositionalEmbedding over (N, L, d_model)
}


@dataclass
class BuiltLayer:
    module: nn.Module
    kwargs: dict[str, Any]  # every constructor argument, given and inferred, in signature order
    inferred: dict[str, int | bool]  # the dimension arguments and flags filled in, output_index
    n_inputs: int  # how many times forward takes the input (MultiheadAttention: 3)
    output_index: int | None
    output: torch.Tensor  # a meta tensor with the output's shape and dtype


def torch_nn_layer(name: str) -> type[nn.Module] | None:
    """``torch.nn.<name>`` if it is a module class, else None."""
    found = getattr(nn, name, None)
    return found if inspect.isclass(found) and issubclass(found, nn.Module) else None


def all_torch_nn_layers() -> list[str]:
    return sorted(name for name in dir(nn) if not name.startswith("_") and torch_nn_layer(name) is not None)


def closest_layer_names(name: str, limit: int = 3) -> list[str]:
    """The torch.nn names closest to ``name`` (case-insensitive), for 'did you mean' messages."""
    names = all_torch_nn_layers()
    by_lower = {candidate.lower(): candidate for candidate in names}
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=limit, cutoff=0.5)
    return [by_lower[match] for match in matches]


def _constructor_signature(cls: type) -> inspect.Signature:
    if issubclass(cls, nn.RNNBase) and cls is not nn.RNNBase:
        # LSTM/GRU/RNN take (*args, **kwargs) and supply RNNBase's `mode` themselves
        base = inspect.signature(nn.RNNBase)
        parameters = [parameter for name, parameter in base.parameters.items() if name != "mode"]
        if issubclass(cls, nn.RNN):
            parameters.append(inspect.Parameter("nonlinearity", inspect.Parameter.KEYWORD_ONLY, default="tanh"))
        return base.replace(parameters=parameters)
    return inspect.signature(cls)


def _constructor_parameters(cls: type) -> tuple[dict[str, inspect.Parameter], bool]:
    try:
        signature = _constructor_signature(cls)
    except (TypeError, ValueError):
        return {}, True
    accepts_any = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in signature.parameters.values())
    named = {name: parameter for name, parameter in signature.parameters.items()
             if parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}
    return named, accepts_any


def _forward_arity(module_class: type[nn.Module]) -> int:
    """How many required positional inputs forward has (self-attention takes x three times)."""
    try:
        parameters = list(inspect.signature(module_class.forward).parameters.values())[1:]
    except (TypeError, ValueError):
        return 1
    required = [parameter for parameter in parameters
                if parameter.default is inspect.Parameter.empty
                and parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    return max(1, len(required))


def shape_text(shape: torch.Size | list[int] | tuple[int, ...]) -> str:
    """``(N, 16, 32, 32)``: the shape with the batch dimension written as N."""
    sizes = list(shape)
    return "(" + ", ".join(["N", *(str(size) for size in sizes[1:])]) + ")"


def complete_arguments(cls: type, node: LayerNode, sample: torch.Tensor) -> tuple[dict[str, Any], dict[str, int | bool]]:
    """The constructor arguments for ``node``: given ones checked, missing dimensions inferred."""
    parameters, accepts_any = _constructor_parameters(cls)
    given = dict(node.params)
    if not accepts_any:
        unknown = [name for name in given if name not in parameters]
        if unknown:
            hints = [f"{name!r} (did you mean {', '.join(repr(m) for m in difflib.get_close_matches(name, list(parameters), n=2))}?)"
                     if difflib.get_close_matches(name, list(parameters), n=1) else repr(name) for name in unknown]
            raise BlueprintError(f"model_config.{node.where}.params: {node.type} has no argument {', '.join(hints)}; "
                                 f"its arguments are {', '.join(name for name in parameters if name not in ('device', 'dtype'))}")
    inferred: dict[str, int | bool] = {}
    for name, (_, read) in INFERABLE_ARGUMENTS.items():
        if name in parameters and name not in given:
            if name in {"in_channels", "num_features", "num_channels", "sequence_length"} and sample.dim() < 2:
                continue
            inferred[name] = int(read(sample.shape))
    if "batch_first" in parameters and "batch_first" not in given:
        inferred["batch_first"] = True  # blueprint tensors are always batch-first
    arguments = {**given, **inferred}
    missing = [name for name, parameter in parameters.items()
               if parameter.default is inspect.Parameter.empty and name not in arguments]
    if missing:
        raise BlueprintError(
            f"model_config.{node.where}: {node.type} needs {', '.join(missing)} in params; "
            f"{'they' if len(missing) > 1 else 'it'} cannot be inferred from its input {shape_text(sample.shape)}"
        )
    ordered = {name: arguments[name] for name in parameters if name in arguments}
    ordered.update({name: value for name, value in arguments.items() if name not in ordered})
    return ordered, inferred


def _run(module: nn.Module, sample: torch.Tensor, n_inputs: int) -> Any:
    with torch.no_grad():
        return module(*([sample] * n_inputs))


def _real_sample(sample: torch.Tensor) -> torch.Tensor:
    return torch.zeros(sample.shape, dtype=sample.dtype)


def to_meta(tensor: torch.Tensor) -> torch.Tensor:
    return tensor if tensor.is_meta else torch.empty(tensor.shape, dtype=tensor.dtype, device="meta")


def _run_on_meta(cls: type[nn.Module], kwargs: dict[str, Any], sample: torch.Tensor,
                 n_inputs: int) -> tuple[nn.Module, Any] | None:
    """(module, output) computed on the meta device, or None when that fails (then it runs for real)."""
    try:
        with torch.device("meta"):
            module = cls(**kwargs).eval()
        return module, _run(module, to_meta(sample), n_inputs)
    except Exception:  # noqa: BLE001 - meta is an optimisation; any failure is retried for real
        return None


def _run_for_real(cls: type[nn.Module], kwargs: dict[str, Any], sample: torch.Tensor, n_inputs: int,
                  described: str, user_code: bool) -> tuple[nn.Module, Any]:
    """(module, output) built and run on the CPU; failures name the layer and its input shape."""
    try:
        module = cls(**kwargs).eval()
    except Exception as exc:
        message = f"{described} could not be created with {kwargs}: {type(exc).__name__}: {exc}"
        if user_code:
            raise UserCodeError(message, traceback_tail(exc)) from exc
        raise BlueprintError(message) from exc
    try:
        return module, _run(module, _real_sample(sample), n_inputs)
    except Exception as exc:
        message = (f"{described} failed on an input of shape {shape_text(sample.shape)} "
                   f"({sample.dtype}): {type(exc).__name__}: {exc}")
        if user_code:
            raise UserCodeError(message, traceback_tail(exc)) from exc
        raise BlueprintError(message) from exc


def _refuse_oversized(cls: type[nn.Module], kwargs: dict[str, Any], described: str) -> None:
    """Count the layer's parameters on the meta device before it is built for real (and allocated)."""
    try:
        with torch.device("meta"):
            count = count_parameters(cls(**kwargs))
    except Exception:  # noqa: BLE001 - not buildable on meta: the real build below reports the layer's error
        return
    problem = parameters_problem(count)
    if problem:
        raise BlueprintError(f"{described}: {problem}")


def build_layer(cls: type[nn.Module], node: LayerNode, sample: torch.Tensor, *, user_code: bool) -> BuiltLayer:
    """Create ``cls`` for ``node`` at ``sample``'s shape and run it once."""
    kwargs, inferred = complete_arguments(cls, node, sample)
    n_inputs = _forward_arity(cls)
    described = f"model_config.{node.where} ({node.type})"
    # recurrent layers decompose into one op per time step on meta, slower than real zeros
    output = None if issubclass(cls, nn.RNNBase) else _run_on_meta(cls, kwargs, sample, n_inputs)
    if output is None:
        _refuse_oversized(cls, kwargs, described)
        module, output = _run_for_real(cls, kwargs, sample, n_inputs, described, user_code)
    else:
        module, output = output
    output_index = node.output_index
    if isinstance(output, tuple | list):
        if output_index is None:
            output_index = 0
            inferred["output_index"] = 0
        if not -len(output) <= output_index < len(output):
            raise BlueprintError(f"model_config.{node.where}.output_index {output_index} is out of range: "
                                 f"{node.type} returns {len(output)} values")
        output = output[output_index]
    elif output_index is not None:
        raise BlueprintError(f"model_config.{node.where}.output_index: {node.type} returns a single tensor, "
                             "not a tuple; remove output_index")
    if not isinstance(output, torch.Tensor):
        raise BlueprintError(f"{described} returned {type(output).__name__}, not a tensor")
    return BuiltLayer(module, kwargs, inferred, n_inputs, output_index, to_meta(output))


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _projection_stride(size_in: int, size_out: int) -> int | None:
    for stride in range(1, size_in + 1):
        if (size_in - 1) // stride + 1 == size_out:
            return stride
    return None


def residual_projection(x: torch.Tensor, body: torch.Tensor, where: str, body_has_conv: bool
                        ) -> tuple[str, dict[str, int | bool | tuple[int, ...]]] | None:
    """The 1x1 projection that maps the stream input ``x`` to the body output's shape.

    Returns ``(torch.nn class name, constructor kwargs)``, or None when the shapes already match.
    """
    if x.shape == body.shape:
        return None
    mismatch = (f"model_config.{where}: the Residual body turns {shape_text(x.shape)} into "
                f"{shape_text(body.shape)}; no 1x1 projection maps one onto the other")
    if x.dim() != body.dim():
        raise BlueprintError(mismatch)
    rank = x.dim()
    if rank == 2 or (rank == 3 and not body_has_conv and x.shape[1] == body.shape[1]):
        return "Linear", {"in_features": x.shape[-1], "out_features": body.shape[-1], "bias": False}
    if rank in (3, 4, 5):
        strides = [_projection_stride(size_in, size_out) for size_in, size_out in zip(x.shape[2:], body.shape[2:], strict=True)]
        if any(stride is None for stride in strides):
            raise BlueprintError(mismatch)
        stride: Any = strides[0] if len(set(strides)) == 1 else tuple(strides)
        kwargs: dict[str, int | bool | tuple[int, ...]] = {"in_channels": x.shape[1], "out_channels": body.shape[1],
                                                         "kernel_size": 1, "bias": False}
        if stride != 1:
            kwargs["stride"] = stride
        return f"Conv{rank - 2}d", kwargs
    raise BlueprintError(mismatch)
