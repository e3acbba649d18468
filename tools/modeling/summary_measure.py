"""Measure a model: parameters, FLOPs, per-layer output shapes and memory (runs in the sandbox).

:func:`measure_model` is the sandbox job behind pytorch_model_summary. It loads the model's class
or factory function (a workspace file or an installed module, see
:class:`~torchscout.tools.loading.ModelSource`), builds it, and runs one forward pass under
``torch.utils.flop_counter.FlopCounterMode`` with a pre- and post-hook on every module, so
each row of ``layer_details`` is one module *call*, in call order (as torchinfo lists them):
its output shape, its parameters, and the FLOPs spent inside it.

The model is built without weights (:mod:`~torchscout.tools.modeling.meta_build`: every parameter
and buffer on the ``meta`` device) and run on meta: no weight initialisation, no arithmetic, only
shapes -- FLOP counts are identical (they depend on shapes only) and a constructor that computes
with small tensors (RegNet's widths) still builds in a fraction of a second. Models whose forward
pass needs real values (data-dependent control flow, ``.item()``) are built and measured again on
the CPU for real, after a size check; ``measured_on`` says which ("meta" or "cpu").
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from torchscout.tools.errors import ToolError
from torchscout.tools.limits import physical_memory_bytes
from torchscout.tools.loading import ModelKwargs, ModelSource, build_model, load_model_builder
from torchscout.tools.modeling.dtypes import torch_dtype
from torchscout.tools.modeling.meta_build import build_without_weights, quick_meta_batch_norm
from torchscout.tools.modeling.types import LayerCall, ModelMeasurement


def _first_tensor(value: Any) -> torch.Tensor | None:
    """The tensor torchinfo would report for an output: itself, or the first one inside."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, tuple | list):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _make_input(input_size: list[int], dtype: torch.dtype, device: str) -> torch.Tensor:
    if dtype.is_floating_point:
        return torch.randn(input_size, dtype=dtype, device=device) if device != "meta" else \
            torch.empty(input_size, dtype=dtype, device="meta")
    # token ids: zeros are valid indices for every embedding
    return torch.zeros(input_size, dtype=dtype, device=device)


class _CallRecorder:
    """Forward hooks that turn one forward pass into per-call rows."""

    def __init__(self, model: nn.Module, counter: FlopCounterMode) -> None:
        self.counter = counter
        self.rows: list[LayerCall] = []
        self._stack: list[tuple[int, int]] = []  # (row index, FLOPs total when the call began)
        self._seen: set[int] = set()
        self._handles = []
        names: dict[int, str] = {}
        for name, module in model.named_modules():
            names.setdefault(id(module), name)
        for module in {id(module): module for module in model.modules()}.values():
            name = names[id(module)]
            self._handles.append(module.register_forward_pre_hook(self._pre_hook(module, name)))
            self._handles.append(module.register_forward_hook(self._post_hook(), always_call=True))

    def _pre_hook(self, module: nn.Module, name: str):
        own = sum(parameter.numel() for parameter in module.parameters(recurse=False))
        total = sum(parameter.numel() for parameter in module.parameters())
        trainable = sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)

        def hook(_module: nn.Module, _inputs: Any) -> None:
            repeat = id(module) in self._seen
            self._seen.add(id(module))
            self.rows.append({
                "name": name or type(module).__name__,
                "type": type(module).__name__,
                "depth": len(self._stack),
                "output_shape": None,
                "params": total,
                "own_params": own,
                "trainable_params": trainable,
                "flops": 0,
                "is_leaf": not any(True for _ in module.children()),
                "repeat": repeat,
                "output_bytes": 0,
            })
            self._stack.append((len(self.rows) - 1, self.counter.get_total_flops()))

        return hook

    def _post_hook(self):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if not self._stack:
                return
            index, flops_before = self._stack.pop()
            row = self.rows[index]
            row["flops"] = int(self.counter.get_total_flops() - flops_before)
            tensor = _first_tensor(output)
            if tensor is not None:
                row["output_shape"] = list(tensor.shape)
                row["output_bytes"] = tensor.numel() * tensor.element_size()

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _run(model: nn.Module, sample: torch.Tensor) -> tuple[list[LayerCall], int, Any]:
    counter = FlopCounterMode(display=False)
    recorder = _CallRecorder(model, counter)
    try:
        with counter, torch.no_grad():
            output = model(sample)
    finally:
        recorder.remove()
    return recorder.rows, int(counter.get_total_flops()), output


def _shape_only_run(builder: Callable[..., Any], kwargs: ModelKwargs, input_size: list[int],
                    dtype: torch.dtype) -> tuple[Any, list[LayerCall], int, Any]:
    """Build without weights, then one forward pass on the meta device; (model, rows, FLOPs, output).
    The model is returned even when its forward pass fails (as ``(model, None, 0, error)``), so the
    caller knows its size before it decides on a real build."""
    model, _ = build_without_weights(builder, kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"the builder returned a {type(model).__name__}")
    model.eval()
    try:
        # factory calls without a device (torch.arange(n) in forward) make meta tensors too
        with torch.device("meta"), quick_meta_batch_norm():
            rows, flops, output = _run(model, _make_input(input_size, dtype, "meta"))
    except Exception as exc:  # noqa: BLE001 - the forward pass needs real values; the caller decides
        return model, None, 0, exc
    return model, rows, flops, output


def _real_run(builder: Callable[..., Any], kwargs: ModelKwargs, label: str, input_size: list[int],
              dtype: torch.dtype) -> tuple[nn.Module, list[LayerCall], int, Any]:
    model = build_model(builder, kwargs, nn.Module, label)
    model.eval()
    # oneDNN's fused RNN kernels are invisible to FlopCounterMode (an LSTM would count 0 FLOPs);
    # the native kernels decompose into counted matmuls. Restored after, for callers in-process.
    with torch.backends.mkldnn.flags(enabled=False):
        rows, flops, output = _run(model, _make_input(input_size, dtype, "cpu"))
    return model, rows, flops, output


def _check_real_build_fits(model: nn.Module, label: str, reason: BaseException) -> None:
    """A model measured for real is built for real: refuse one whose weights take over a quarter of the RAM."""
    _, weight_bytes = _unique_bytes([*model.parameters(), *model.buffers()])
    limit = physical_memory_bytes() // 4
    if weight_bytes > limit:
        raise ToolError(f"{label} cannot be measured on the meta device ({type(reason).__name__}: {reason}) and its "
                        f"weights ({weight_bytes / 2**30:.1f} GiB) are too large to build for real here (limit "
                        f"{limit / 2**30:.1f} GiB); make its forward pass shape-only (no .item()/.tolist() on "
                        "activations) or measure a smaller configuration")


def _measure(builder: Callable[..., Any], kwargs: ModelKwargs, label: str, input_size: list[int],
             dtype: torch.dtype) -> tuple[nn.Module, list[LayerCall], int, Any, str]:
    """Shape-only when the model allows it, otherwise a real build and forward on the CPU."""
    try:
        model, rows, flops, output = _shape_only_run(builder, kwargs, input_size, dtype)
    except Exception:  # noqa: BLE001 - the constructor needs real values: the real build reports real errors
        return (*_real_run(builder, kwargs, label, input_size, dtype), "cpu")
    if rows is not None:
        return model, rows, flops, output, "meta"
    _check_real_build_fits(model, label, output)
    del model
    return (*_real_run(builder, kwargs, label, input_size, dtype), "cpu")


def _unique_bytes(tensors) -> tuple[int, int]:
    unique = {id(tensor): tensor for tensor in tensors}.values()
    return sum(t.numel() for t in unique), sum(t.numel() * t.element_size() for t in unique)


def prime_measurement() -> None:
    """Called in the sandbox's fork server (trusted code only): import torchvision's models once when
    installed, so that summaries of them (import specs, workspace files importing them) start warm."""
    with contextlib.suppress(ImportError):
        import torchvision.models  # noqa: F401


def _source_file(builder: Callable[..., Any]) -> str | None:
    """The file that defines the model's class or function (the LLM's analysis reads it)."""
    try:
        return inspect.getsourcefile(builder)
    except TypeError:  # a builtin or a C extension's callable has no Python source
        return None


def measure_model(source: dict[str, str], input_size: list[int], input_dtype: str = "float32",
                  model_kwargs: ModelKwargs | None = None) -> ModelMeasurement:
    """Load the model ``source`` names (a :class:`ModelSource` as a dict), build it with ``model_kwargs``,
    measure one forward pass."""
    model_source = ModelSource(**source)
    builder = load_model_builder(model_source, nn.Module)
    dtype = torch_dtype(input_dtype)
    model, rows, flops, output, measured_on = _measure(builder, model_kwargs or {}, model_source.name,
                                                       input_size, dtype)
    total_params, param_bytes = _unique_bytes(model.parameters())
    trainable = sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())
    _, buffer_bytes = _unique_bytes(model.buffers())
    output_tensor = _first_tensor(output)
    leaf_rows = [row for row in rows if row["is_leaf"]]
    for row in rows:
        row["flops_share"] = round(row["flops"] / flops, 6) if flops else 0.0
    return {
        "total_params": total_params,
        "trainable_params": trainable,
        "non_trainable_params": total_params - trainable,
        "flops": flops,
        "macs": flops // 2,
        "param_memory_bytes": param_bytes,
        "buffer_memory_bytes": buffer_bytes,
        "activation_memory_bytes": sum(row["output_bytes"] for row in leaf_rows),
        "input_memory_bytes": int(torch.Size(input_size).numel() * torch.empty((), dtype=dtype).element_size()),
        "output_shape": None if output_tensor is None else list(output_tensor.shape),
        "layer_details": rows,
        "measured_on": measured_on,
        "source_file": _source_file(builder),
    }
