"""The model blueprint (``model_config``) of pytorch_model_assembler, parsed and checked.

The format is the PRD's, extended with streams, helper ops and token-id input::

    {
      "model_name": "SimpleCNN",
      "input_shape": [3, 32, 32],            # without the batch dimension
      "input_dtype": "float32",              # or "int64" for token ids (default float32)
      "layers": [
        {"type": "Conv2d", "params": {"out_channels": 16, "kernel_size": 3, "padding": 1}},
        {"type": "Residual", "layers": [...]},                                   # body(x) + x
        {"type": "Parallel", "branches": [[...], [...]], "merge": "concat", "dim": 1},
        {"type": "Sequential", "layers": [...]},
        {"type": "LSTM", "params": {"hidden_size": 64}, "output_index": 0},      # tuple outputs
        {"type": "Mean", "params": {"dim": 1}},                                  # also Max, Last
        {"type": "Transpose", "params": {"dim0": 1, "dim1": 2}},                 # (N, C, L) -> (N, L, C)
        {"type": "PositionalEmbedding"},                                         # learned, sizes inferred
        {"type": "MyBlock", "module_path": "src/blocks.py", "params": {"dim": 64}},
        {"type": "Linear", "params": {"out_features": 10}, "name": "head"},      # optional attribute name
      ]
    }

Parsing is pure (no torch): it checks the structure and names the offending location
(``layers[3].branches[1][0].params``) in every error.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any, cast

from torchscout.tools.errors import ToolError
from torchscout.tools.modeling.blueprint_limits import size_argument_problem, structure_problem
from torchscout.tools.modeling.dtypes import DTYPES, MODEL_INPUT_DTYPES
from torchscout.tools.modeling.types import BlueprintSpec

STREAM_TYPES = {"Sequential", "Residual", "Parallel"}
# helper ops (tools/modeling/blueprint_helpers.py) and the params each takes
HELPER_PARAMS: dict[str, set[str]] = {
    "Mean": {"dim", "keepdim"}, "Max": {"dim", "keepdim"}, "Last": {"dim"},
    "Transpose": {"dim0", "dim1"}, "PositionalEmbedding": {"sequence_length", "d_model"},
}
HELPER_TYPES = set(HELPER_PARAMS)
MERGE_MODES = {"concat", "add", "mul"}
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BlueprintError(ToolError):
    """The model_config is malformed; the message names the location and the fix."""


@dataclass
class LayerNode:
    """One module: a torch.nn layer, a custom block, or a helper op (Mean/Max/Last/Transpose/PositionalEmbedding)."""

    where: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    module_path: str | None = None
    output_index: int | None = None
    name: str | None = None

    @property
    def is_helper(self) -> bool:
        return self.type in HELPER_TYPES and self.module_path is None


@dataclass
class StreamNode:
    """Sequential (layers in order) or Residual (layers, plus the stream's input)."""

    where: str
    kind: str
    layers: list[Node]
    name: str | None = None


@dataclass
class ParallelNode:
    """Branches fed the same input, merged by concat/add/mul along ``dim``."""

    where: str
    branches: list[list[Node]]
    merge: str
    dim: int
    name: str | None = None


Node = LayerNode | StreamNode | ParallelNode


@dataclass
class Blueprint:
    model_name: str
    input_shape: list[int]
    input_dtype: str
    layers: list[Node]
    source: BlueprintSpec


def _fail(where: str, message: str) -> BlueprintError:
    return BlueprintError(f"model_config.{where}: {message}")


def _check_name(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
        raise _fail(where, f"name {value!r} must be a Python identifier (it becomes the attribute name)")
    return value


def _parse_layers(items: Any, where: str) -> list[Node]:
    if not isinstance(items, list):
        raise _fail(where, f"must be a list of layer dicts, got {type(items).__name__}")
    return [_parse_node(item, f"{where}[{index}]") for index, item in enumerate(items)]


def _parse_node(item: Any, where: str) -> Node:
    if not isinstance(item, dict):
        raise _fail(where, f"each layer must be a dict with a 'type', got {item!r}")
    layer_type = item.get("type")
    if not isinstance(layer_type, str) or not layer_type.strip():
        raise _fail(where, "every layer needs a 'type' (a torch.nn class name, a stream, or a custom block)")
    name = _check_name(item.get("name"), f"{where}.name")
    if layer_type in STREAM_TYPES and not item.get("module_path"):
        return _parse_stream(item, layer_type, where, name)
    params = item.get("params") or {}
    if not isinstance(params, dict):
        raise _fail(f"{where}.params", f"must be a dict of constructor arguments, got {params!r}")
    params = dict(params)
    output_index = item.get("output_index", params.pop("output_index", None))
    if output_index is not None and (not isinstance(output_index, int) or isinstance(output_index, bool)):
        raise _fail(f"{where}.output_index", f"must be an integer, got {output_index!r}")
    module_path = item.get("module_path")
    if module_path is not None and (not isinstance(module_path, str) or not module_path.strip()):
        raise _fail(f"{where}.module_path", "must be a workspace path to a .py file")
    if module_path and not layer_type.isidentifier():
        raise _fail(f"{where}.type", f"{layer_type!r} must be the class name defined in {module_path}")
    unknown_keys = set(item) - {"type", "params", "module_path", "output_index", "name"}
    if unknown_keys:
        raise _fail(where, f"unknown key(s) {sorted(unknown_keys)}; a layer takes type, params, module_path, "
                           "output_index and name")
    size_problem = None if module_path else size_argument_problem(params, where)
    if size_problem:
        raise BlueprintError(size_problem)
    node = LayerNode(where, layer_type, params, module_path, output_index, name)
    if node.is_helper:
        allowed = HELPER_PARAMS[layer_type]
        extra = set(params) - allowed
        if extra:
            raise _fail(f"{where}.params", f"{layer_type} takes only {', '.join(sorted(allowed))}, got {sorted(extra)}")
    return node


def _parse_stream(item: dict[str, Any], kind: str, where: str, name: str | None) -> Node:
    if kind == "Parallel":
        unknown_keys = set(item) - {"type", "branches", "merge", "dim", "name"}
        if unknown_keys:
            raise _fail(where, f"unknown key(s) {sorted(unknown_keys)}; Parallel takes branches, merge, dim, name")
        branches = item.get("branches")
        if not isinstance(branches, list) or len(branches) < 2:
            raise _fail(f"{where}.branches", "Parallel needs a list of at least two branches (each a list of layers)")
        merge = item.get("merge", "concat")
        if merge not in MERGE_MODES:
            raise _fail(f"{where}.merge", f"must be one of {sorted(MERGE_MODES)}, got {merge!r}")
        dim = item.get("dim", 1)
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise _fail(f"{where}.dim", f"must be an integer (a tensor dimension, batch included), got {dim!r}")
        parsed = [_parse_layers(branch, f"{where}.branches[{index}]") for index, branch in enumerate(branches)]
        return ParallelNode(where, parsed, merge, dim, name)
    unknown_keys = set(item) - {"type", "layers", "name"}
    if unknown_keys:
        raise _fail(where, f"unknown key(s) {sorted(unknown_keys)}; {kind} takes layers and name")
    if not isinstance(item.get("layers"), list):
        raise _fail(f"{where}.layers", f"{kind} needs 'layers': a list of layer dicts, e.g. "
                                       f'{{"type": "{kind}", "layers": [{{"type": "ReLU"}}]}}')
    layers = _parse_layers(item["layers"], f"{where}.layers")
    if not layers:
        raise _fail(f"{where}.layers", f"{kind} needs at least one layer")
    return StreamNode(where, kind, layers, name)


def parse_blueprint(config: Any) -> Blueprint:
    """Check ``config`` and return its tree; raises BlueprintError naming the problem's location."""
    if not isinstance(config, dict):
        raise BlueprintError(f"model_config must be a dict, got {type(config).__name__}")
    problem = structure_problem(config)  # before anything below recurses into it
    if problem:
        raise BlueprintError(problem)
    unknown = set(config) - {"model_name", "input_shape", "input_dtype", "layers", "description"}
    if unknown:
        raise BlueprintError(f"model_config: unknown key(s) {sorted(unknown)}; expected model_name, "
                             "input_shape, input_dtype (optional), layers")
    model_name = config.get("model_name")
    if not isinstance(model_name, str) or not MODEL_NAME_PATTERN.match(model_name) or keyword.iskeyword(model_name):
        raise BlueprintError(f"model_config.model_name must be a Python class name such as 'SimpleCNN', "
                             f"got {model_name!r}")
    shape = config.get("input_shape")
    if (not isinstance(shape, list | tuple) or not shape
            or not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in shape)):
        raise BlueprintError(f"model_config.input_shape must be a non-empty list of positive integers without "
                             f"the batch dimension, e.g. [3, 32, 32]; got {shape!r}")
    dtype = config.get("input_dtype", "float32")
    # float32 features or int64 token ids: the generated model's parameters are float32
    if DTYPES.get(dtype) not in MODEL_INPUT_DTYPES:
        raise BlueprintError(f"model_config.input_dtype must be one of {list(MODEL_INPUT_DTYPES)}, "
                             f"got {dtype!r}")
    layers = _parse_layers(config.get("layers"), "layers")
    if not layers:
        raise BlueprintError("model_config.layers is empty; list at least one layer")
    return Blueprint(model_name, list(shape), DTYPES[dtype], layers, cast(BlueprintSpec, config))  # checked


def iter_layers(nodes: list[Node]):
    """Every LayerNode in ``nodes``, depth first."""
    for node in nodes:
        if isinstance(node, LayerNode):
            yield node
        elif isinstance(node, StreamNode):
            yield from iter_layers(node.layers)
        else:
            for branch in node.branches:
                yield from iter_layers(branch)
