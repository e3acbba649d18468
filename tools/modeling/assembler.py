"""pytorch_model_assembler: a model blueprint in, a validated PyTorch file out.

The builtin compiler (:mod:`~torchscout.tools.modeling.blueprint_compiler`) turns the blueprint into
readable code, inferring every dimension argument by propagating a tensor of ``input_shape``
through the layers. The generated file then goes through the shared code-generation
pipeline (:mod:`~torchscout.tools.codegen.pipeline`): safety check, import + instantiate + forward of a
dummy batch in the sandbox (the output shape must match the inferred one), atomic write.

A layer type that is neither in ``torch.nn``, a helper (Mean/Max/Last), a stream, nor a custom
block with ``module_path`` is an error naming the closest ``torch.nn`` names -- unless an LLM
is configured: then the LLM writes that block (prompt ``prompts/model_block.yaml``, validated
at the exact input shape the blueprint gives it, repaired up to three times) into
``<output stem>_<block>.py`` next to the model, and the builtin compiler imports it like any
custom block.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from torchscout.tools.codegen.llm import get_chat_model, model_identity
from torchscout.tools.codegen.pipeline import generate_code, missing_folders, remove_empty_folders
from torchscout.tools.errors import ToolError, UserCodeError, WorkspaceError
from torchscout.tools.limits import parameters_problem
from torchscout.tools.modeling.blueprint import Blueprint, BlueprintError, iter_layers, parse_blueprint
from torchscout.tools.modeling.blueprint_compiler import compile_blueprint, snake_case
from torchscout.tools.modeling.model_validation import validate_block, validate_model
from torchscout.tools.modeling.shape_inference import closest_layer_names, torch_nn_layer
from torchscout.tools.modeling.types import (
    AssemblerAnswer,
    BlockNeeded,
    BlockRequest,
    BlueprintSpec,
    CompiledModel,
    LayerSpec,
)
from torchscout.tools.sandbox.runner import run_in_sandbox
from torchscout.tools.toolkit import make_tool
from torchscout.tools.workspace import atomic_write_bytes, relative_to_workspace, resolve

COMPILE_TIMEOUT_S = 120.0
VALIDATE_TIMEOUT_S = 120.0
MAX_GENERATED_BLOCKS = 8
BLOCK_HEADER = "# Written by torchscout's pytorch_model_assembler"
MODEL_HEADER = "assembled by torchscout's pytorch_model_assembler"  # in the first line of every model file

# errors raised in the sandbox child that are the caller's to fix, re-raised as the same type here
_CALLER_ERRORS: dict[str, type[ToolError]] = {"BlueprintError": BlueprintError, "WorkspaceError": WorkspaceError,
                                              "ToolError": ToolError}


class PytorchModelAssemblerArgs(BaseModel):
    """The tool's arguments. pydantic reserves the attribute name ``model_config``, so the field is
    ``blueprint`` with the alias ``model_config``; the tool publishes the by-alias JSON schema."""

    model_config = ConfigDict(populate_by_name=True, title="pytorch_model_assembler")

    blueprint: dict[str, Any] = Field(
        alias="model_config",
        description='The blueprint: {"model_name": "SimpleCNN", "input_shape": [3, 32, 32] (no batch dim), '
        '"input_dtype": "float32" | "int64" (token ids), "layers": [{"type": "Conv2d", "params": {...}}, ...]}. '
        "A layer is any torch.nn class by name (dimension arguments such as in_channels/in_features/"
        "num_features/input_size/embed_dim may be omitted: they are inferred), a custom block "
        '{"type": "MyBlock", "module_path": "src/blocks.py", "params": {...}}, a stream '
        '{"type": "Sequential" | "Residual", "layers": [...]} or {"type": "Parallel", "branches": [[...], [...]], '
        '"merge": "concat" | "add" | "mul", "dim": 1}, or a helper {"type": "Mean" | "Max" | "Last", '
        '"params": {"dim": 1}}. Layers returning tuples (LSTM, GRU, MultiheadAttention) take "output_index".'
    )
    output_script_path: str = Field(description="Workspace path of the .py file to write, e.g. src/models/cnn.py.")


def _location_of(config: BlueprintSpec, where: str) -> LayerSpec:
    """The layer dict at a location such as ``layers[3].branches[1][0]``."""
    current: Any = config
    for key, index in re.findall(r"([A-Za-z_]+)|\[(\d+)\]", where):
        current = current[key] if key else current[int(index)]
    return current


def _compile(config: BlueprintSpec, target: Path) -> CompiledModel | BlockNeeded:
    result = run_in_sandbox(compile_blueprint, {"config": config, "output_path": str(target)},
                            timeout_s=COMPILE_TIMEOUT_S, threads=1)
    if result.ok:
        return result.value
    if result.error_type in _CALLER_ERRORS:
        raise _CALLER_ERRORS[result.error_type](result.error or "")
    if result.error_type == "UserCodeError":
        raise UserCodeError(f"a custom block failed while the blueprint was compiled: {result.error}")
    raise result.to_error("compiling the blueprint")


def _check_layer_types(blueprint_layers: list, llm_available: bool) -> None:
    """Fail fast (before any child process) on paths outside the workspace and unknown types."""
    for node in iter_layers(blueprint_layers):
        if node.module_path:
            path = resolve(node.module_path, must_exist=True, kind=f"module_path of model_config.{node.where}")
            if path.suffix != ".py" or not path.is_file():
                raise BlueprintError(f"model_config.{node.where}.module_path {node.module_path!r} is not a .py file")
        elif not node.is_helper and torch_nn_layer(node.type) is None and not llm_available:
            close = closest_layer_names(node.type)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise BlueprintError(
                f"model_config.{node.where}.type: {node.type!r} is not a torch.nn layer, a stream (Sequential, "
                f"Residual, Parallel) or a helper (Mean, Max, Last); {hint}For your own block give "
                "'module_path' (a .py file in the workspace defining that class), or configure an LLM "
                "(TORCHSCOUT_LLM) to have it written."
            )


def _write_missing_block(request: BlockRequest, config: BlueprintSpec, target: Path,
                         written: dict[Path, bytes | None]) -> Path:
    """Have the configured LLM write the block ``request`` names; return the file it went to.

    ``written`` gets the file and what it held before (None when it is new), so a failure later in
    the assembly puts back an earlier assembly's block instead of deleting it.
    """
    block_path = target.with_name(f"{target.stem}_{snake_case(request['type'])}.py")
    if block_path.exists() and not block_path.read_text(encoding="utf-8", errors="replace").startswith(BLOCK_HEADER):
        raise BlueprintError(
            f"model_config.{request['where']}: the LLM would write {request['type']} to "
            f"{relative_to_workspace(block_path)}, which exists and was not written by the assembler; "
            "give the layer a module_path to use that file, or move it away"
        )
    # recorded before the write: if generation fails the file is unchanged, and restoring it is a no-op
    written.setdefault(block_path, block_path.read_bytes() if block_path.exists() else None)
    generated = generate_code(
        header=f"{BLOCK_HEADER} for {request['type']} (LLM backend); re-assembly may rewrite this file.\n",
        prompt="model_block",
        variables={
            "class_name": request["type"],
            "params": json.dumps(request["params"]),
            "input_shape": json.dumps(request["input_shape"]),
            "input_dtype": request["input_dtype"],
            "where": request["where"],
            "blueprint": json.dumps(config),
        },
        output_path=block_path,
        validate=validate_block,
        validate_kwargs={"class_name": request["type"], "params": request["params"],
                         "input_shape": request["input_shape"], "input_dtype": request["input_dtype"]},
        backend="llm",
        purpose="assembler-block",
        timeout_s=VALIDATE_TIMEOUT_S,
        required_class=request["type"],
    )
    return generated.path


def _compile_writing_missing_blocks(config: BlueprintSpec, target: Path,
                                    written: dict[Path, bytes | None]) -> CompiledModel:
    """Compile; while a layer type is missing, have the LLM write it and point the config at it."""
    compiled = _compile(config, target)
    while "missing_block" in compiled:
        if len(written) >= MAX_GENERATED_BLOCKS:
            raise BlueprintError(f"the blueprint needs more than {MAX_GENERATED_BLOCKS} LLM-written blocks")
        request = compiled["missing_block"]
        block_path = _write_missing_block(request, config, target, written)
        # every layer of this type now comes from the written file
        for node in iter_layers(parse_blueprint(config).layers):
            if node.type == request["type"] and not node.module_path:
                _location_of(config, node.where)["module_path"] = relative_to_workspace(block_path)
        compiled = _compile(config, target)
    return compiled


def _check_model_target(target: Path, output_script_path: str) -> None:
    """Overwrite only a model file the assembler wrote (its first line says so), never another file."""
    if not target.exists():
        return
    if target.is_file():
        with target.open(encoding="utf-8", errors="replace") as handle:
            if MODEL_HEADER in handle.readline():
                return
    raise ToolError(f"output_script_path {output_script_path!r} exists and was not written by "
                    "pytorch_model_assembler; choose a new path (nothing was changed)")


def _undo_block_writes(written: dict[Path, bytes | None]) -> None:
    """After a failed assembly: remove the block files it created, put back the ones it rewrote."""
    for path, previous in written.items():
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write_bytes(path, previous)


def _write_validated_model(blueprint: Blueprint, compiled: CompiledModel, target: Path) -> None:
    """Send the compiled source through the shared pipeline: safety, sandbox validation, atomic write."""
    code = compiled["code"]
    generate_code(
        prompt="model_block",  # unused by the builtin backend; named for the record
        variables={},
        output_path=target,
        validate=validate_model,
        validate_kwargs={"model_name": blueprint.model_name, "input_shape": blueprint.input_shape,
                         "input_dtype": blueprint.input_dtype, "expected_output_shape": compiled["output_shape"]},
        builtin=lambda: code,
        backend="builtin",
        # the generated path-safe loader of custom blocks needs these two
        allowed_modules={"importlib", "pathlib"} if compiled["custom_blocks"] else (),
        timeout_s=VALIDATE_TIMEOUT_S,
    )


def pytorch_model_assembler(model_config: BlueprintSpec, output_script_path: str) -> AssemblerAnswer:
    """Build a PyTorch nn.Module file from a declarative blueprint, validated before it is written.

    Layers are torch.nn classes by name (dimension arguments inferred from the input shape when
    omitted), custom blocks via module_path, Sequential/Residual/Parallel streams (nested freely)
    and Mean/Max/Last helpers. The file holds one class named model_name, every layer in
    __init__ with explicit arguments, a forward with a shape comment per line, and a __main__
    smoke test. Returns status, output_script_path, model_name, backend, output_shape,
    total_params and inferred (every argument the compiler filled in, by config location).
    """
    blueprint = parse_blueprint(model_config)
    target = resolve(output_script_path, kind="output_script_path")
    if target.suffix != ".py":
        raise ToolError(f"output_script_path {output_script_path!r} must end in .py")
    _check_model_target(target, output_script_path)
    chat_model = get_chat_model()
    _check_layer_types(blueprint.layers, llm_available=chat_model is not None)

    config = copy.deepcopy(model_config)
    written: dict[Path, bytes | None] = {}  # block files the LLM wrote -> what they held before
    new_folders = missing_folders(target.parent)
    try:
        compiled = _compile_writing_missing_blocks(config, target, written)
        too_large = parameters_problem(compiled["total_params"])  # counted on the meta device
        if too_large:
            raise BlueprintError(f"model_config: {too_large}")
        _write_validated_model(blueprint, compiled, target)
    except BaseException:
        _undo_block_writes(written)
        remove_empty_folders(new_folders)
        raise
    generated_blocks = list(written)
    backend = "builtin" if not generated_blocks else f"builtin+llm:{model_identity(chat_model)}"
    result: AssemblerAnswer = {
        "status": "success",
        "output_script_path": relative_to_workspace(target),
        "model_name": blueprint.model_name,
        "backend": backend,
        "input_shape": blueprint.input_shape,
        "input_dtype": blueprint.input_dtype,
        "output_shape": compiled["output_shape"],
        "total_params": compiled["total_params"],
        "inferred": compiled["inferred"],
        "custom_blocks": compiled["custom_blocks"],
    }
    if generated_blocks:
        result["generated_blocks"] = [relative_to_workspace(path) for path in generated_blocks]
    return result


def _assembler_tool_entry(blueprint: BlueprintSpec, output_script_path: str) -> AssemblerAnswer:
    return pytorch_model_assembler(blueprint, output_script_path)


_assembler_tool_entry.__doc__ = pytorch_model_assembler.__doc__
pytorch_model_assembler_tool = make_tool(_assembler_tool_entry, PytorchModelAssemblerArgs,
                                         name="pytorch_model_assembler")
