"""register_custom_optimizer: an LLM-written (or hand-written) optimizer class, validated, registered.

The code goes through the one code-generation pipeline (:mod:`torchscout.tools.codegen.pipeline`:
prompt ``prompts/custom_optimizer.yaml`` -> chat model -> ast -> safety check -> sandbox ->
repair loop -> atomic write) with :func:`torchscout.tools.optim.validation.probe_optimizer`
as the sandboxed validation. A file the agent already has (``source_path``) gets the same
safety check and probe instead of the model. Only a class that passed is registered; the
registry entry records where it lives and what the probe measured, so ``build_optimizer``,
the trainers and other processes can use it by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from torchscout.tools import registry
from torchscout.tools.codegen.llm import get_chat_model
from torchscout.tools.codegen.pipeline import generate_code
from torchscout.tools.codegen.safety import UnsafeCodeError, check_code_safety
from torchscout.tools.errors import ToolError
from torchscout.tools.optim.types import CustomOptimizerAnswer, CustomOptimizerRequest, ProbeReport
from torchscout.tools.optim.validation import PROBE_STEPS, probe_optimizer
from torchscout.tools.sandbox.runner import run_in_sandbox
from torchscout.tools.workspace import atomic_write_text, relative_to_workspace, resolve

DETAIL_KEYS = ("description", "base_optimizer", "additional_params")
DEFAULT_FOLDER = "optimizers"
PROBE_TIMEOUT_S = 120.0
PROMPT_NAME = "custom_optimizer"


def register_custom_optimizer(
    config_name: str,
    optimizer_details: dict[str, Any] | None,
    output_script_path: str | None = None,
    source_path: str | None = None,
) -> CustomOptimizerAnswer:
    """Write (or take from ``source_path``), validate and register optimizer class ``config_name``."""
    _check_class_name(config_name)
    registry.check_name("custom_optimizer", config_name)
    details = _check_details(optimizer_details, needs_description=source_path is None)
    additional_params = details.get("additional_params") or {}

    if source_path is not None:
        script, report, backend, attempts = _from_source(config_name, source_path, output_script_path,
                                                         additional_params)
    else:
        script, report, backend, attempts = _from_llm(config_name, details, output_script_path, additional_params)

    registration = registry.register("custom_optimizer", config_name, {
        "script_path": relative_to_workspace(script),
        "class_name": config_name,
        "description": details.get("description", ""),
        "base_optimizer": details.get("base_optimizer"),
        "additional_params": additional_params,
        "backend": backend,
        "validation": report,
    })
    return {
        "status": "success",
        "config_name": config_name,
        "output_script_path": relative_to_workspace(script),
        "class_name": config_name,
        "validation": report,
        "backend": backend,
        "attempts": attempts,
        "replaced": registration["replaced"],
        "message": registration["message"],
    }


def _check_class_name(config_name: str) -> None:
    from torchscout.tools.optim.specs import torch_optimizer_classes  # avoids an import cycle

    if not isinstance(config_name, str) or not config_name.isidentifier():
        raise ToolError(f"config_name {config_name!r} must be a Python class name such as 'Lion' "
                        "(it names the generated class)")
    if config_name in torch_optimizer_classes():
        raise ToolError(f"config_name {config_name!r} is a torch.optim optimizer; pick another class name")
    if registry.find("optimizer_config", config_name) is not None:
        raise ToolError(f"{config_name!r} is already registered as an optimizer config; pick another name "
                        "so the two cannot be confused")


def _check_details(optimizer_details: dict[str, Any] | None, needs_description: bool) -> CustomOptimizerRequest:
    details = dict(optimizer_details or {})
    unknown = sorted(set(details) - set(DETAIL_KEYS))
    if unknown:
        raise ToolError(f"optimizer_details has unknown key(s) {unknown}; register_custom_optimizer takes "
                        f"{', '.join(DETAIL_KEYS)}")
    if needs_description and not str(details.get("description") or "").strip():
        raise ToolError("register_custom_optimizer needs optimizer_details.description saying what the "
                        "optimizer does (or source_path to a .py file that already defines the class)")
    additional = details.get("additional_params")
    if additional is not None and not isinstance(additional, dict):
        raise ToolError("optimizer_details.additional_params must be a mapping of constructor settings, "
                        "e.g. {'betas': [0.9, 0.99], 'weight_decay': 0.0}")
    try:
        json.dumps(additional)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"optimizer_details.additional_params must be JSON values: {exc}") from exc
    return cast(CustomOptimizerRequest, details)  # its keys and additional_params are checked above


def _from_llm(config_name: str, details: CustomOptimizerRequest, output_script_path: str | None,
              additional_params: dict[str, Any]) -> tuple[Path, ProbeReport, str, int]:
    if get_chat_model() is None:
        raise ToolError(
            "register_custom_optimizer needs an LLM to write new optimizer code, and TORCHSCOUT_LLM is "
            "'builtin' (which cannot invent algorithms). Set TORCHSCOUT_LLM to an init_chat_model spec such "
            "as 'openai:gpt-4.1-mini' (or call torchscout.configure(llm=...)), or write the class yourself "
            "and pass its file as source_path to validate and register it."
        )
    target = resolve(output_script_path or f"{DEFAULT_FOLDER}/{config_name}.py", kind="output_script_path")
    check_script_target(target, config_name)
    generated = generate_code(
        prompt=PROMPT_NAME,
        variables={
            "class_name": config_name,
            "description": details["description"].strip(),
            "base_optimizer": details.get("base_optimizer") or "none given",
            "additional_params": json.dumps(additional_params, sort_keys=True),
            "probe_steps": PROBE_STEPS,
        },
        output_path=target,
        validate=probe_optimizer,
        validate_kwargs={"class_name": config_name, "additional_params": additional_params},
        backend="llm",
        purpose=PROMPT_NAME,
        timeout_s=PROBE_TIMEOUT_S,
        required_class=config_name,
    )
    return generated.path, generated.report, generated.backend, len(generated.attempts)


def check_script_target(target: Path, config_name: str) -> None:
    """A file this tool (re)writes must be new, or the file of ``config_name`` itself.

    Writing another registered optimizer's file would remove its class (both share one path), and
    writing any other existing file would destroy it; both are refused before anything is written.
    """
    if not target.exists():
        return
    holders = sorted(entry["name"] for entry in registry.list_entries("custom_optimizer")
                     if _script_of(entry) == target)
    others = [name for name in holders if name != config_name]
    shown = relative_to_workspace(target)
    if others:
        raise ToolError(f"output_script_path {shown} holds the registered custom optimizer(s) {', '.join(others)}; "
                        f"writing {config_name} there would remove them. Give {config_name} its own file "
                        f"(default {DEFAULT_FOLDER}/{config_name}.py); nothing was written")
    if not holders:
        raise ToolError(f"output_script_path {shown} already exists and is not a custom optimizer file torchscout "
                        "wrote; choose a new path (or pass the file as source_path to register a class it "
                        "defines); nothing was written")


def _script_of(entry: registry.RegistryEntry) -> Path | None:
    script = entry["data"].get("script_path")
    return resolve(script, kind="registered script") if isinstance(script, str) and script else None


def _from_source(config_name: str, source_path: str, output_script_path: str | None,
                 additional_params: dict[str, Any]) -> tuple[Path, ProbeReport, str, int]:
    source = resolve(source_path, must_exist=True, kind="source_path")
    if not source.is_file() or source.suffix != ".py":
        raise ToolError(f"source_path {source_path!r} must be a .py file defining class {config_name}")
    code = source.read_text(encoding="utf-8")
    try:
        check_code_safety(code)
    except SyntaxError as exc:
        raise ToolError(f"source_path {source_path!r} has a SyntaxError at line {exc.lineno}: {exc.msg}") from exc
    except UnsafeCodeError as exc:
        raise ToolError(f"source_path {source_path!r}: {exc}") from exc
    result = run_in_sandbox(probe_optimizer, {"code_path": str(source), "class_name": config_name,
                                              "additional_params": additional_params}, timeout_s=PROBE_TIMEOUT_S)
    if not result.ok:
        raise result.to_error(f"validating {config_name} from {source_path} (nothing was registered)")
    target = source
    if output_script_path is not None:
        target = resolve(output_script_path, kind="output_script_path")
        if target.suffix != ".py":
            raise ToolError(f"output_script_path {output_script_path!r} must end in .py")
        if target != source:
            check_script_target(target, config_name)
            atomic_write_text(target, code)
    return target, result.value, "source_path", 1
