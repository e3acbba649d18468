"""The builtin backend of pytorch_model_assembler: blueprint -> idiomatic PyTorch source.

:func:`compile_blueprint` walks the blueprint tree once, building every layer with
:mod:`~torchscout.tools.modeling.shape_inference` (so each inferred argument and each shape comment is
a measured fact) while it writes the ``__init__`` and ``forward`` lines. Streams are inlined
into ``forward`` the way a person writes them::

    h1 = self.conv2d_2(x)  # (N, 32, 16, 16)
    h1 = self.relu_2(h1)  # (N, 32, 16, 16)
    x = h1 + self.residual_1_projection(x)  # (N, 32, 16, 16)

It runs inside the sandbox (it executes custom block code); the job function is
:func:`compile_blueprint_job`.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchscout.tools.loading import load_class
from torchscout.tools.modeling import blueprint_helpers
from torchscout.tools.modeling.blueprint import (
    Blueprint,
    BlueprintError,
    LayerNode,
    Node,
    ParallelNode,
    StreamNode,
    iter_layers,
    parse_blueprint,
)
from torchscout.tools.modeling.dtypes import torch_dtype
from torchscout.tools.modeling.shape_inference import (
    BuiltLayer,
    build_layer,
    count_parameters,
    residual_projection,
    shape_text,
    torch_nn_layer,
)
from torchscout.tools.modeling.types import (
    BlockNeeded,
    BlockRequest,
    BlueprintSpec,
    CompiledModel,
    InferredArguments,
)
from torchscout.tools.workspace import relative_to_workspace, resolve

# names the generated file itself defines or imports
RESERVED_NAMES = {"torch", "nn", "Path", "importlib", "load_block", "PROJECT_ROOT", "annotations"}
CONV_TYPES = re.compile(r"^(Conv|ConvTranspose|LazyConv)\dd$")


class MissingBlock(Exception):
    """The blueprint names a layer type nothing can build; an LLM may write it."""

    def __init__(self, node: LayerNode, sample: torch.Tensor) -> None:
        super().__init__(node.type)
        self.request: BlockRequest = {"type": node.type, "where": node.where, "params": node.params,
                        "input_shape": list(sample.shape), "input_dtype": str(sample.dtype).removeprefix("torch.")}


def snake_case(name: str) -> str:
    name = name.replace("ReLU", "Relu").replace("SiLU", "Silu")
    name = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _literal(value: Any) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(_literal(item) for item in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


@dataclass
class _Compiler:
    blueprint: Blueprint
    init_lines: list[str] = field(default_factory=list)
    forward_lines: list[str] = field(default_factory=list)
    inferred: InferredArguments = field(default_factory=dict)
    custom_blocks: dict[str, str] = field(default_factory=dict)  # class name -> workspace-relative path
    helpers: set[str] = field(default_factory=set)
    total_params: int = 0
    _attributes: set[str] = field(default_factory=set)
    _type_counts: dict[str, int] = field(default_factory=dict)
    _variable_counts: dict[str, int] = field(default_factory=dict)

    # -- names -----------------------------------------------------------------------------
    def attribute(self, layer_type: str, requested: str | None, where: str) -> str:
        if requested:
            if hasattr(nn.Module, requested) or requested.startswith("_"):
                raise BlueprintError(f"model_config.{where}.name {requested!r} would shadow an nn.Module "
                                     "attribute; pick another name")
            if requested in self._attributes:
                raise BlueprintError(f"model_config.{where}.name {requested!r} is used twice")
            self._attributes.add(requested)
            return requested
        base = snake_case(layer_type)
        while True:
            self._type_counts[base] = self._type_counts.get(base, 0) + 1
            candidate = f"{base}_{self._type_counts[base]}"
            if candidate not in self._attributes:
                self._attributes.add(candidate)
                return candidate

    def variable(self, prefix: str) -> str:
        self._variable_counts[prefix] = self._variable_counts.get(prefix, 0) + 1
        return f"{prefix}{self._variable_counts[prefix]}"

    # -- layers ----------------------------------------------------------------------------
    def layer_class(self, node: LayerNode, sample: torch.Tensor) -> tuple[type[nn.Module], str, bool]:
        """(class, how the generated file names it, whether it is user code)."""
        if node.module_path:
            path = resolve(node.module_path, must_exist=True, kind=f"module_path of model_config.{node.where}")
            cls = load_class(path, node.type, base=nn.Module)
            relative = relative_to_workspace(path)
            if self.custom_blocks.setdefault(node.type, relative) != relative:
                raise BlueprintError(f"model_config.{node.where}: two different files define blocks named "
                                     f"{node.type}; rename one of the classes")
            return cls, node.type, True
        if node.is_helper:
            self.helpers.add(node.type)
            return blueprint_helpers.HELPERS[node.type], node.type, False
        cls = torch_nn_layer(node.type)
        if cls is None:
            raise MissingBlock(node, sample)
        return cls, f"nn.{node.type}", False

    def emit_layer(self, node: LayerNode, sample: torch.Tensor, source: str, target: str) -> torch.Tensor:
        cls, constructor, user_code = self.layer_class(node, sample)
        if node.is_helper and node.type in blueprint_helpers.REDUCTIONS:
            node = LayerNode(node.where, node.type, {"dim": 1, **node.params}, None, None, node.name)
        if source != target and node.params.get("inplace") is True:
            # the first layer of a residual body or a parallel branch reads a tensor that the
            # shortcut or another branch still needs: modifying it in place would corrupt it
            node = LayerNode(node.where, node.type, {**node.params, "inplace": False}, node.module_path,
                             node.output_index, node.name)
            self.inferred[f"{node.where}.inplace"] = False
        built: BuiltLayer = build_layer(cls, node, sample, user_code=user_code)
        for name, value in built.inferred.items():
            self.inferred[f"{node.where}.{name}"] = value
        self.total_params += count_parameters(built.module)
        attribute = self.attribute(node.type, node.name, node.where)
        arguments = ", ".join(f"{name}={_literal(value)}" for name, value in built.kwargs.items())
        self.init_lines.append(f"self.{attribute} = {constructor}({arguments})")
        inputs = ", ".join([source] * built.n_inputs)
        index = "" if built.output_index is None else f"[{built.output_index}]"
        self.forward_lines.append(f"{target} = self.{attribute}({inputs}){index}  # {shape_text(built.output.shape)}")
        return built.output

    # -- streams ---------------------------------------------------------------------------
    def emit_sequence(self, nodes: list[Node], sample: torch.Tensor, source: str, target: str) -> torch.Tensor:
        for node in nodes:
            sample = self.emit_node(node, sample, source, target)
            source = target
        return sample

    def emit_node(self, node: Node, sample: torch.Tensor, source: str, target: str) -> torch.Tensor:
        if isinstance(node, LayerNode):
            return self.emit_layer(node, sample, source, target)
        if isinstance(node, ParallelNode):
            return self.emit_parallel(node, sample, source, target)
        if node.kind == "Residual":
            return self.emit_residual(node, sample, source, target)
        self.forward_lines.append(f"# Sequential{f' {node.name}' if node.name else ''} ({node.where})")
        return self.emit_sequence(node.layers, sample, source, target)

    def emit_residual(self, node: StreamNode, sample: torch.Tensor, source: str, target: str) -> torch.Tensor:
        self.forward_lines.append(f"# Residual{f' {node.name}' if node.name else ''} ({node.where}): body + shortcut")
        body = self.variable("h")
        body_sample = self.emit_sequence(node.layers, sample, source, body)
        has_conv = any(CONV_TYPES.match(layer.type) for layer in iter_layers(node.layers))
        projection = residual_projection(sample, body_sample, node.where, has_conv)
        if projection is None:
            self.forward_lines.append(f"{target} = {body} + {source}  # {shape_text(body_sample.shape)}")
            return body_sample
        layer_type, kwargs = projection
        module = getattr(nn, layer_type)(**kwargs)
        self.total_params += count_parameters(module)
        attribute = self.attribute(f"{node.name or 'residual'}_projection", None, node.where)
        arguments = ", ".join(f"{name}={_literal(value)}" for name, value in kwargs.items())
        self.init_lines.append(f"self.{attribute} = nn.{layer_type}({arguments})  # shortcut projection")
        self.forward_lines.append(f"{target} = {body} + self.{attribute}({source})  # {shape_text(body_sample.shape)}")
        self.inferred[f"{node.where}.projection"] = f"nn.{layer_type}({arguments})"
        return body_sample

    def emit_parallel(self, node: ParallelNode, sample: torch.Tensor, source: str, target: str) -> torch.Tensor:
        self.forward_lines.append(f"# Parallel{f' {node.name}' if node.name else ''} ({node.where}): "
                                  f"{len(node.branches)} branches, merged by {node.merge}")
        names, samples = [], []
        for branch in node.branches:
            if not branch:  # an empty branch is the identity
                names.append(source)
                samples.append(sample)
                continue
            name = self.variable("b")
            samples.append(self.emit_sequence(branch, sample, source, name))
            names.append(name)
        try:
            if node.merge == "concat":
                merged = torch.cat(samples, dim=node.dim)
                expression = f"torch.cat([{', '.join(names)}], dim={node.dim})"
            else:
                merged = samples[0]
                for other in samples[1:]:
                    merged = merged + other if node.merge == "add" else merged * other
                expression = (" + " if node.merge == "add" else " * ").join(names)
        except (RuntimeError, IndexError) as exc:
            shapes = ", ".join(shape_text(item.shape) for item in samples)
            raise BlueprintError(f"model_config.{node.where}: the branches' outputs {shapes} cannot be merged "
                                 f"by {node.merge} along dim {node.dim}: {exc}") from exc
        self.forward_lines.append(f"{target} = {expression}  # {shape_text(merged.shape)}")
        return merged


def _docstring_safe(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _loader_source(custom_blocks: dict[str, str], depth: int) -> str:
    lines = [
        "# Custom blocks are imported from files of this project by paths relative to the project",
        "# root; a path that leads outside the project is refused.",
        f"PROJECT_ROOT = Path(__file__).resolve().parents[{depth}]",
        "",
        "",
        "def load_block(relative_path: str, class_name: str) -> type[nn.Module]:",
        '    """Import ``class_name`` from the project file ``relative_path``."""',
        "    path = (PROJECT_ROOT / relative_path).resolve()",
        "    if not path.is_relative_to(PROJECT_ROOT):",
        '        raise ImportError(f"{relative_path} resolves outside the project root {PROJECT_ROOT}")',
        '    spec = importlib.util.spec_from_file_location(f"block_{path.stem}", path)',
        "    if spec is None or spec.loader is None:",
        '        raise ImportError(f"cannot import {relative_path}")',
        "    module = importlib.util.module_from_spec(spec)",
        "    spec.loader.exec_module(module)",
        "    return getattr(module, class_name)",
        "",
        "",
    ]
    lines += [f"{name} = load_block({path!r}, {name!r})" for name, path in sorted(custom_blocks.items())]
    return "\n".join(lines)


def render_source(compiler: _Compiler, output_shape: torch.Size, output_relative_path: str) -> str:
    """The complete generated file."""
    blueprint = compiler.blueprint
    name = blueprint.model_name
    input_text = shape_text([0, *blueprint.input_shape])
    config_text = _docstring_safe(json.dumps(blueprint.source, indent=4, default=str))
    config_text = "\n".join(f"    {line}" for line in config_text.splitlines())
    imports = ["import torch", "from torch import nn"]
    if compiler.custom_blocks:
        imports = ["import importlib.util", "from pathlib import Path", "", *imports]
    parts = [
        f'"""{name}: assembled by torchscout\'s pytorch_model_assembler (builtin compiler).\n\n'
        f"Input {input_text} {blueprint.input_dtype} -> output {shape_text(output_shape)}; "
        f"{compiler.total_params:,} parameters.\n\nSource config:\n\n{config_text}\n"
        '"""',
        "from __future__ import annotations\n\n" + "\n".join(imports),
    ]
    if compiler.custom_blocks:
        depth = len(output_relative_path.split("/")) - 1
        parts.append(_loader_source(compiler.custom_blocks, depth))
    for helper in sorted(compiler.helpers):
        parts.append(inspect.getsource(blueprint_helpers.HELPERS[helper]).rstrip())
    init_body = "\n".join(f"        {line}" for line in compiler.init_lines)
    forward_body = "\n".join(f"        {line}" for line in compiler.forward_lines)
    parts.append(
        f"class {name}(nn.Module):\n"
        f'    """Input {input_text} ({blueprint.input_dtype}) -> output {shape_text(output_shape)}."""\n\n'
        "    def __init__(self) -> None:\n"
        "        super().__init__()\n"
        f"{init_body}\n\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        f"        # x: {input_text}\n"
        f"{forward_body}\n"
        "        return x"
    )
    batch_shape = ", ".join(str(size) for size in [2, *blueprint.input_shape])
    if blueprint.input_dtype == "int64":
        dummy = f"torch.zeros({batch_shape}, dtype=torch.long)  # token ids"
    else:
        dummy = f"torch.randn({batch_shape})"
    parts.append(
        'if __name__ == "__main__":\n'
        f"    model = {name}().eval()\n"
        f"    x = {dummy}\n"
        "    with torch.no_grad():\n"
        "        y = model(x)\n"
        "    n_params = sum(p.numel() for p in model.parameters())\n"
        f'    print(f"{name}: {{tuple(x.shape)}} -> {{tuple(y.shape)}}, {{n_params:,}} parameters")'
    )
    return "\n\n\n".join(parts) + "\n"


def compile_blueprint(config: BlueprintSpec, output_path: str) -> CompiledModel | BlockNeeded:
    """Compile ``config``; returns the source and what was inferred, or a block request.

    Result: ``{"code", "output_shape", "total_params", "inferred", "custom_blocks"}``, or
    ``{"missing_block": {...}}`` when a layer type is neither torch.nn, a helper nor a custom block.
    """
    blueprint = parse_blueprint(config)
    compiler = _Compiler(blueprint)
    sample = torch.empty([2, *blueprint.input_shape], dtype=torch_dtype(blueprint.input_dtype), device="meta")
    try:
        output = compiler.emit_sequence(blueprint.layers, sample, "x", "x")
    except MissingBlock as missing:
        return {"missing_block": missing.request}
    taken = {*compiler.custom_blocks, *compiler.helpers, *RESERVED_NAMES}
    if blueprint.model_name in taken:
        raise BlueprintError(f"model_config.model_name {blueprint.model_name!r} is already a name in the "
                             "generated file (a custom block, a helper or an import); choose another")
    clashes = set(compiler.custom_blocks) & (compiler.helpers | RESERVED_NAMES)
    if clashes:
        raise BlueprintError(f"custom block name(s) {sorted(clashes)} clash with names the generated file "
                             "defines; rename the class(es)")
    code = render_source(compiler, output.shape, relative_to_workspace(resolve(output_path)))
    return {
        "code": code,
        "output_shape": list(output.shape[1:]),
        "total_params": compiler.total_params,
        "inferred": compiler.inferred,
        "custom_blocks": compiler.custom_blocks,
    }
