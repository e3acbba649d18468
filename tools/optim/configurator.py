"""pytorch_optimizer_configurator and ``build_optimizer``, the one way torchscout makes optimizers.

``build_optimizer(model, spec)`` is what the trainers call (also ``torchscout.build_optimizer``).
The tool registers optimizer configs (``generate_config``) and LLM-written or hand-written
optimizer classes (``register_custom_optimizer``, see :mod:`torchscout.tools.optim.custom`)
in the workspace registry, so a later tool call, the trainer or another process uses them by name.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, Field
from torch import nn
from torch.optim import Optimizer

from torchscout.tools import registry
from torchscout.tools.errors import ToolError
from torchscout.tools.optim.custom import register_custom_optimizer
from torchscout.tools.optim.groups import plan_param_groups
from torchscout.tools.optim.specs import (
    construct_optimizer,
    normalise_optimizer_config,
    resolve_optimizer_class,
    torch_optimizer_classes,
)
from torchscout.tools.optim.types import CustomOptimizerAnswer, OptimizerConfig, OptimizerConfigAnswer
from torchscout.tools.toolkit import make_tool

OptimizerSpec = str | dict[str, Any]


def build_optimizer(model: nn.Module, spec: OptimizerSpec) -> Optimizer:
    """Make the optimizer ``spec`` describes for ``model``'s trainable parameters.

    ``spec`` is one of:
    - the name of a config registered with ``generate_config`` (``"tuned_adamw"``),
    - the name of a registered custom optimizer, or a torch.optim name (``"AdamW"``), with its
      default settings,
    - a dict ``{"type", "params" (or "default_params"), "param_groups", "no_decay_bias_norm"}``
      whose ``type`` is any of the above (a registered config's defaults are then overridden
      by ``params``).

    Param groups follow :mod:`torchscout.tools.optim.groups`: first matching ``name_regex``
    wins, unmatched parameters use the defaults, a regex matching nothing is warned about.
    Each ``optimizer.param_groups`` entry carries ``group_name`` and ``param_names``.
    """
    if not isinstance(model, nn.Module):
        raise ToolError(f"build_optimizer needs a torch.nn.Module, got {type(model).__name__}")
    config = resolve_spec(spec)
    type_name, source, optimizer_class = resolve_optimizer_class(config["type"])
    plan = plan_param_groups(model, config["param_groups"], config["no_decay_bias_norm"])
    return construct_optimizer(optimizer_class, source, type_name, plan.groups, config["default_params"])


def resolve_spec(spec: OptimizerSpec) -> OptimizerConfig:
    """The normalised config (see :mod:`torchscout.tools.optim.specs`) for any accepted spec."""
    if isinstance(spec, dict):
        return normalise_optimizer_config(spec, where="optimizer spec")
    if not isinstance(spec, str) or not spec.strip():
        raise ToolError(f"an optimizer spec is a registered name, a torch.optim name or a dict, got {spec!r}")
    entry = registry.find("optimizer_config", spec)
    if entry is not None:
        return cast(OptimizerConfig, entry["data"])  # registered by generate_config, normalised
    if registry.find("custom_optimizer", spec) is not None or spec.lower() in _lower_torch_names():
        return normalise_optimizer_config({"type": spec}, where="optimizer spec")
    raise ToolError(
        registry.unknown_name_message(("optimizer_config", "custom_optimizer"), spec)
        + f" It is not a torch.optim optimizer either ({', '.join(sorted(torch_optimizer_classes()))})."
    )


def _lower_torch_names() -> set[str]:
    return {name.lower() for name in torch_optimizer_classes()}


def generate_config(config_name: str, optimizer_details: dict[str, Any] | None) -> OptimizerConfigAnswer:
    """Validate ``optimizer_details``, register it as ``config_name`` and return its normal form."""
    if not optimizer_details:
        raise ToolError("generate_config needs optimizer_details, e.g. {'type': 'AdamW', "
                        "'default_params': {'lr': 0.0005, 'weight_decay': 0.01}, "
                        "'param_groups': [{'name_regex': '^classifier\\\\.', 'lr': 0.005}]}")
    if config_name in torch_optimizer_classes():
        raise ToolError(f"config_name {config_name!r} is a torch.optim optimizer name; "
                        "pick a name of your own such as 'tuned_adamw'")
    if registry.find("custom_optimizer", config_name) is not None:
        raise ToolError(f"{config_name!r} is already registered as a custom optimizer class; give the config "
                        f"another name (its type may be {config_name!r})")
    config = normalise_optimizer_config(optimizer_details)
    registration = registry.register("optimizer_config", config_name, config)
    return {"status": "success", "config_name": config_name, **config,
            "replaced": registration["replaced"], "message": registration["message"]}


class OptimizerConfiguratorArgs(BaseModel):
    action: Literal["generate_config", "register_custom_optimizer"] = Field(
        description="'generate_config': validate and register an optimizer config (type, default_params, "
        "param_groups). 'register_custom_optimizer': have the internal LLM write a torch.optim.Optimizer "
        "subclass from a description (or register an existing file via source_path), validate it, register it."
    )
    config_name: str = Field(
        description="Name to register under. For register_custom_optimizer it is also the class name "
        "(a Python identifier such as 'Lion')."
    )
    optimizer_details: dict[str, Any] | None = Field(
        default=None,
        description="generate_config: {'type': 'AdamW' (any torch.optim optimizer or a registered custom one), "
        "'default_params': {'lr': 0.0005, 'weight_decay': 0.01}, 'param_groups': [{'name_regex': '^backbone\\\\.', "
        "'lr': 0.0001}], 'no_decay_bias_norm': true}. register_custom_optimizer: {'description': 'what the "
        "algorithm does', 'base_optimizer': 'Adam' (optional hint), 'additional_params': {'beta': 0.9}}.",
    )
    output_script_path: str | None = Field(
        default=None,
        description="register_custom_optimizer: workspace path for the optimizer's .py file "
        "(default optimizers/<config_name>.py).",
    )
    source_path: str | None = Field(
        default=None,
        description="register_custom_optimizer only: a workspace .py file that already defines the class "
        "config_name; it is validated and registered instead of asking the LLM.",
    )


def pytorch_optimizer_configurator(
    action: str,
    config_name: str,
    optimizer_details: dict[str, Any] | None = None,
    output_script_path: str | None = None,
    source_path: str | None = None,
) -> OptimizerConfigAnswer | CustomOptimizerAnswer:
    """Configure optimizers and custom optimizer classes, registered by name for the trainers.

    action='generate_config': optimizer_details = {"type", "default_params", "param_groups",
    "no_decay_bias_norm"}. `type` is any torch.optim optimizer (Adam, AdamW, SGD, ...) or a
    registered custom optimizer; every setting is checked against its constructor. Param
    groups: a parameter joins the FIRST group whose name_regex matches its full name (re.search
    on model.named_parameters() names, e.g. 'layer1.0.conv.weight'); parameters no regex
    matches form the default group with default_params; a group's keys override the defaults;
    no parameter is in two groups; a regex that matches nothing is reported when the optimizer
    is built. no_decay_bias_norm=true moves biases and norm weights into weight-decay-free
    groups. Returns the normalised config; use config_name as the trainer's optimizer.

    action='register_custom_optimizer': optimizer_details = {"description", "base_optimizer",
    "additional_params"}; the internal LLM writes class `config_name` (a torch.optim.Optimizer
    subclass) to output_script_path, it is checked in a sandbox (constructs with
    additional_params, 50 steps of least squares reduce the loss, state_dict round trip,
    zero_grad, params without grad skipped) with up to 3 repairs, then registered. Needs a
    configured LLM; or pass source_path to register an existing file after the same checks.
    Returns {"status", "config_name", "output_script_path", "class_name", "validation"}.
    """
    if action == "generate_config":
        if source_path or output_script_path:
            raise ToolError("output_script_path and source_path are for register_custom_optimizer; "
                            "generate_config only takes config_name and optimizer_details")
        return generate_config(config_name, optimizer_details)
    if action == "register_custom_optimizer":
        return register_custom_optimizer(config_name, optimizer_details, output_script_path, source_path)
    raise ToolError(f"unknown action {action!r}; use 'generate_config' or 'register_custom_optimizer'")


pytorch_optimizer_configurator_tool = make_tool(pytorch_optimizer_configurator, OptimizerConfiguratorArgs)
