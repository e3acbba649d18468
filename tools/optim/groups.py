"""Parameter groups: which parameters of a model get which optimizer settings.

The rules (also in the configurator's tool description):

- A trainable parameter joins the FIRST group whose ``name_regex`` matches its full name
  (``re.search`` on the names from ``model.named_parameters()``); a parameter is never in two
  groups. A group's keys override the optimizer's defaults for its parameters.
- Parameters no regex matches form the ``default`` group, which uses the defaults.
- A regex that matched nothing is reported (a warning and ``ParamGroupPlan.unmatched_regexes``):
  usually a typo in a layer name.
- With ``no_decay_bias_norm``, biases, normalisation-layer weights and other 1-d parameters
  are moved out of each group into a sibling group with ``weight_decay=0`` (the nanoGPT /
  timm convention: decaying them hurts and buys nothing).
- Frozen parameters (``requires_grad=False``) are left out, as nanoGPT does.

Every group carries ``group_name`` (``"default"``, ``"group0"``/the group's ``name``, with a
``"/no_decay"`` suffix for the split-off part) and its parameters' names (``param_names``, the
torch convention), so a trainer can log which settings landed where.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from torchscout.tools.errors import ToolError
from torchscout.tools.optim.types import ParamGroupSummary

logger = logging.getLogger(__name__)

# Keys of a param-group spec that are not optimizer settings.
GROUP_META_KEYS = ("name_regex", "name")
DEFAULT_GROUP_NAME = "default"
NO_DECAY_SUFFIX = "/no_decay"


class UnmatchedParamGroupWarning(UserWarning):
    """A param group's ``name_regex`` matched no parameter of the model."""


@dataclass
class ParamGroupPlan:
    """The groups to hand to an optimizer constructor, and what was learnt making them."""

    groups: list[dict[str, Any]] = field(default_factory=list)
    unmatched_regexes: list[str] = field(default_factory=list)
    frozen_parameters: int = 0

    def summary(self) -> list[ParamGroupSummary]:
        """Per group: name, settings overriding the defaults, tensor and element counts (JSON-able)."""
        rows: list[ParamGroupSummary] = []
        for group in self.groups:
            settings = {key: value for key, value in group.items()
                        if key not in ("params", "param_names", "group_name")}
            rows.append({
                "group_name": group["group_name"],
                "settings": settings,
                "num_tensors": len(group["params"]),
                "num_elements": sum(param.numel() for param in group["params"]),
            })
        return rows


def compile_group_regexes(param_groups: list[dict[str, Any]]) -> list[re.Pattern[str]]:
    """Compile every group's ``name_regex``; a bad one raises a ToolError naming its index."""
    patterns = []
    for index, group in enumerate(param_groups):
        if not isinstance(group, dict):
            raise ToolError(f"param_groups[{index}] must be a mapping like "
                            f"{{'name_regex': '^backbone\\\\.', 'lr': 1e-4}}, got {group!r}")
        regex = group.get("name_regex")
        if not isinstance(regex, str) or not regex:
            raise ToolError(f"param_groups[{index}] needs a non-empty 'name_regex' string "
                            "(matched with re.search against parameter names such as 'layer1.0.weight')")
        try:
            patterns.append(re.compile(regex))
        except re.error as exc:
            raise ToolError(f"param_groups[{index}].name_regex {regex!r} is not a valid regular expression: "
                            f"{exc}") from exc
    return patterns


def group_settings(group: dict[str, Any]) -> dict[str, Any]:
    """The optimizer settings of a param-group spec (everything but its regex and label)."""
    return {key: value for key, value in group.items() if key not in GROUP_META_KEYS}


def no_decay_parameter_names(model: nn.Module) -> set[str]:
    """Names of biases, normalisation weights and other 1-d parameters (never weight-decayed)."""
    names = set()
    for module_name, module in model.named_modules():
        is_norm = _is_norm_layer(module)
        for param_name, param in module.named_parameters(recurse=False):
            full_name = f"{module_name}.{param_name}" if module_name else param_name
            if is_norm or param_name.endswith("bias") or param.ndim <= 1:
                names.add(full_name)
    return names


def _is_norm_layer(module: nn.Module) -> bool:
    norm_types = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.RMSNorm)
    # A hand-written RMSNorm/ScaleNorm is a norm too, whatever it subclasses.
    return isinstance(module, norm_types) or "norm" in type(module).__name__.lower()


def plan_param_groups(
    model: nn.Module,
    param_groups: list[dict[str, Any]] | None = None,
    no_decay_bias_norm: bool = False,
) -> ParamGroupPlan:
    """Split ``model``'s trainable parameters into optimizer param groups (rules in the module doc)."""
    specs = list(param_groups or [])
    patterns = compile_group_regexes(specs)
    members: list[list[tuple[str, nn.Parameter]]] = [[] for _ in specs]
    default_members: list[tuple[str, nn.Parameter]] = []
    plan = ParamGroupPlan()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            plan.frozen_parameters += 1
            continue
        index = next((i for i, pattern in enumerate(patterns) if pattern.search(name)), None)
        (default_members if index is None else members[index]).append((name, param))

    no_decay = no_decay_parameter_names(model) if no_decay_bias_norm else set()
    for index, (spec, named) in enumerate(zip(specs, members, strict=True)):
        if not named:
            plan.unmatched_regexes.append(spec["name_regex"])
            continue
        label = str(spec.get("name") or f"group{index}")
        _add_group(plan, label, named, group_settings(spec), no_decay)
    if default_members:
        _add_group(plan, DEFAULT_GROUP_NAME, default_members, {}, no_decay)
    if not plan.groups:
        raise ToolError(f"the model ({type(model).__name__}) has no trainable parameters to optimize")
    for regex in plan.unmatched_regexes:
        message = (f"param group name_regex {regex!r} matched no trainable parameter of "
                   f"{type(model).__name__}; its settings are unused (check the names from model.named_parameters())")
        logger.warning(message)
        warnings.warn(message, UnmatchedParamGroupWarning, stacklevel=3)
    return plan


def _add_group(plan: ParamGroupPlan, label: str, named: list[tuple[str, nn.Parameter]],
               settings: dict[str, Any], no_decay: set[str]) -> None:
    decayed = [(name, param) for name, param in named if name not in no_decay]
    exempt = [(name, param) for name, param in named if name in no_decay]
    if decayed:
        plan.groups.append(_group(label, decayed, settings))
    if exempt:
        plan.groups.append(_group(label + NO_DECAY_SUFFIX, exempt, {**settings, "weight_decay": 0.0}))


def _group(label: str, named: list[tuple[str, nn.Parameter]], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "params": [param for _, param in named],
        "param_names": [name for name, _ in named],
        "group_name": label,
        **settings,
    }
