"""Optimizer specs: resolve an optimizer type, check its settings, normalise a config.

A spec names an optimizer type -- any ``torch.optim`` optimizer (``"AdamW"``; case is
forgiven) or a custom optimizer registered with ``register_custom_optimizer`` -- plus its
default settings and optional param groups. Settings are checked against the optimizer's
constructor signature, so a typo such as ``weight_decy`` fails before training starts, and
by constructing the optimizer on a dummy parameter, so a value torch rejects (``lr=-1``)
fails too. The normalised form, stored in the registry and accepted by ``build_optimizer``::

    {"type": "AdamW", "source": "torch.optim" | "custom",
     "default_params": {...}, "param_groups": [{"name_regex": ..., ...}], "no_decay_bias_norm": bool}
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import torch
from torch.optim import Optimizer

from torchscout.tools import registry
from torchscout.tools.errors import ToolError, UserCodeError, traceback_tail
from torchscout.tools.loading import load_class
from torchscout.tools.optim.groups import compile_group_regexes, group_settings
from torchscout.tools.optim.types import OptimizerConfig
from torchscout.tools.registry import RegistryEntry

SPEC_KEYS = ("type", "default_params", "params", "param_groups", "no_decay_bias_norm")
TORCH_SOURCE = "torch.optim"
CUSTOM_SOURCE = "custom"


def torch_optimizer_classes() -> dict[str, type[Optimizer]]:
    """Every optimizer class ``torch.optim`` exports, by name."""
    return {
        name: value for name, value in vars(torch.optim).items()
        if inspect.isclass(value) and issubclass(value, Optimizer) and value is not Optimizer
    }


def resolve_optimizer_class(type_name: str) -> tuple[str, str, type[Optimizer]]:
    """``(canonical name, source, class)`` for a torch.optim name or a registered custom optimizer."""
    if not isinstance(type_name, str) or not type_name.strip():
        raise ToolError("the optimizer 'type' must be a non-empty string such as 'AdamW'")
    builtin = torch_optimizer_classes()
    if type_name in builtin:
        return type_name, TORCH_SOURCE, builtin[type_name]
    entry = registry.find("custom_optimizer", type_name)
    if entry is not None:
        return type_name, CUSTOM_SOURCE, load_custom_optimizer_class(entry)
    by_lower = {name.lower(): name for name in builtin}
    if type_name.lower() in by_lower:
        canonical = by_lower[type_name.lower()]
        return canonical, TORCH_SOURCE, builtin[canonical]
    raise ToolError(unknown_type_message(type_name))


def unknown_type_message(type_name: str) -> str:
    builtin = sorted(torch_optimizer_classes())
    custom = registry.names("custom_optimizer")
    close = difflib.get_close_matches(type_name, builtin + custom, n=3, cutoff=0.5)
    message = f"unknown optimizer type {type_name!r}"
    if close:
        message += f"; did you mean {', '.join(repr(name) for name in close)}?"
    message += f" torch.optim optimizers: {', '.join(builtin)}."
    message += (f" Registered custom optimizers: {', '.join(custom)}." if custom else
                " No custom optimizer is registered (register one with action='register_custom_optimizer').")
    return message


def load_custom_optimizer_class(entry: RegistryEntry) -> type[Optimizer]:
    """Import a registered custom optimizer's class from its workspace script."""
    data = entry["data"]
    return load_class(data["script_path"], data["class_name"], base=Optimizer)


def constructor_parameters(optimizer_class: type[Optimizer]) -> tuple[dict[str, inspect.Parameter], bool]:
    """The settings ``optimizer_class(params, ...)`` accepts, and whether it takes ``**kwargs``."""
    signature = inspect.signature(optimizer_class.__init__)
    accepted = {}
    takes_any = False
    for index, (name, parameter) in enumerate(signature.parameters.items()):
        if index == 0 or name == "params":  # self, then the parameters to optimize
            continue
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            takes_any = True
        elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL:
            accepted[name] = parameter
    return accepted, takes_any


def check_setting_names(optimizer_class: type[Optimizer], type_name: str, settings: dict[str, Any],
                        where: str) -> None:
    """Raise a ToolError naming ``where`` for a setting the constructor does not accept."""
    if not isinstance(settings, dict):
        raise ToolError(f"{where} must be a mapping of {type_name} settings such as {{'lr': 0.001}}, "
                        f"got {settings!r}")
    accepted, takes_any = constructor_parameters(optimizer_class)
    if takes_any:
        return
    for key in settings:
        if key not in accepted:
            close = difflib.get_close_matches(key, list(accepted), n=2, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(name) for name in close)}?" if close else "."
            raise ToolError(f"{where}: {type_name} has no setting {key!r}{hint} "
                            f"{type_name} accepts: {', '.join(accepted)}")


def missing_required_settings(optimizer_class: type[Optimizer], settings: dict[str, Any]) -> list[str]:
    accepted, _ = constructor_parameters(optimizer_class)
    return [name for name, parameter in accepted.items()
            if parameter.default is inspect.Parameter.empty and name not in settings]


def as_constructor_values(optimizer_class: type[Optimizer], settings: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to tuples where the constructor's default is a tuple (``betas``)."""
    accepted, _ = constructor_parameters(optimizer_class)
    converted = {}
    for key, value in settings.items():
        default = accepted[key].default if key in accepted else None
        converted[key] = tuple(value) if isinstance(value, list) and isinstance(default, tuple) else value
    return converted


def construct_optimizer(optimizer_class: type[Optimizer], source: str, type_name: str,
                        groups: list[dict[str, Any]], defaults: dict[str, Any]) -> Optimizer:
    """``optimizer_class(groups, **defaults)`` with constructor errors turned into ToolErrors."""
    groups = [{**group, **as_constructor_values(optimizer_class, group_settings_of(group))} for group in groups]
    try:
        return optimizer_class(groups, **as_constructor_values(optimizer_class, defaults))
    except (ValueError, TypeError) as exc:
        if source == TORCH_SOURCE:
            raise ToolError(f"torch.optim.{type_name} rejected the settings: {exc}") from exc
        raise UserCodeError(f"custom optimizer {type_name} rejected the settings: {exc}",
                            traceback_tail(exc)) from exc
    except Exception as exc:
        if source == TORCH_SOURCE:
            raise
        raise UserCodeError(f"constructing custom optimizer {type_name} failed with {type(exc).__name__}: {exc}",
                            traceback_tail(exc)) from exc


def group_settings_of(group: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in group.items() if key not in ("params", "param_names", "group_name")}


def normalise_optimizer_config(details: dict[str, Any], where: str = "optimizer_details") -> OptimizerConfig:
    """Check a spec dict fully (type, setting names, regexes, values) and return its normal form.

    A ``type`` naming a registered optimizer config starts from that config: ``default_params``
    given here override its defaults, and ``param_groups``/``no_decay_bias_norm`` replace its own.
    """
    if not isinstance(details, dict):
        raise ToolError(f"{where} must be a mapping like {{'type': 'AdamW', 'default_params': {{'lr': 0.001}}}}")
    unknown = sorted(set(details) - set(SPEC_KEYS))
    if unknown:
        raise ToolError(f"{where} has unknown key(s) {unknown}; allowed keys: {', '.join(SPEC_KEYS)}")
    if "params" in details and "default_params" in details:
        raise ToolError(f"{where} gives both 'params' and 'default_params'; they mean the same, give one")
    if "type" not in details:
        raise ToolError(f"{where} needs a 'type': a torch.optim optimizer such as 'AdamW', "
                        "or a registered custom optimizer")
    details = _expand_registered_config(details)
    type_name, source, optimizer_class = resolve_optimizer_class(details["type"])
    defaults = details.get("default_params", details.get("params")) or {}
    if not isinstance(details.get("param_groups") or [], list):
        raise ToolError(f"{where}.param_groups must be a list of mappings with a 'name_regex'")
    param_groups = list(details.get("param_groups") or [])
    no_decay = details.get("no_decay_bias_norm", False)
    if not isinstance(no_decay, bool):
        raise ToolError(f"{where}.no_decay_bias_norm must be true or false, got {no_decay!r}")

    check_setting_names(optimizer_class, type_name, defaults, f"{where}.default_params")
    compile_group_regexes(param_groups)
    for index, group in enumerate(param_groups):
        check_setting_names(optimizer_class, type_name, group_settings(group), f"{where}.param_groups[{index}]")
    accepted, takes_any = constructor_parameters(optimizer_class)
    if no_decay and "weight_decay" not in accepted and not takes_any:
        raise ToolError(f"{where}.no_decay_bias_norm needs an optimizer with a 'weight_decay' setting; "
                        f"{type_name} has none")
    missing = missing_required_settings(optimizer_class, defaults)
    if missing:
        raise ToolError(f"{where}.default_params must give {', '.join(missing)}: {type_name} has no default for it")
    _try_values(optimizer_class, source, type_name, defaults, param_groups)
    return {"type": type_name, "source": source, "default_params": dict(defaults),
            "param_groups": [dict(group) for group in param_groups], "no_decay_bias_norm": no_decay}


def _expand_registered_config(details: dict[str, Any]) -> dict[str, Any]:
    base_entry = registry.find("optimizer_config", details["type"]) if isinstance(details["type"], str) else None
    if base_entry is None or details["type"] in torch_optimizer_classes():
        return details
    base = base_entry["data"]
    overrides = details.get("default_params", details.get("params")) or {}
    return {
        "type": base["type"],
        "default_params": {**base["default_params"], **overrides},
        "param_groups": details.get("param_groups", base["param_groups"]),
        "no_decay_bias_norm": details.get("no_decay_bias_norm", base["no_decay_bias_norm"]),
    }


def _try_values(optimizer_class: type[Optimizer], source: str, type_name: str,
                defaults: dict[str, Any], param_groups: list[dict[str, Any]]) -> None:
    """Construct the optimizer on dummy parameters so torch checks every value now."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))]}]
    groups += [{"params": [torch.nn.Parameter(torch.zeros(2))], **group_settings(group)} for group in param_groups]
    construct_optimizer(optimizer_class, source, type_name, groups, defaults)
