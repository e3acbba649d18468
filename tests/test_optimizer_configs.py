"""generate_config and build_optimizer: param groups on real models, validation, use by name."""

from __future__ import annotations

import pytest
import torch

from tests.optimizer_helpers import TwoPartNet, groups_by_name
from torchscout.tools.errors import ToolError
from torchscout.tools.optim.configurator import build_optimizer, pytorch_optimizer_configurator
from torchscout.tools.optim.configurator import pytorch_optimizer_configurator_tool as configurator_tool
from torchscout.tools.optim.groups import UnmatchedParamGroupWarning, plan_param_groups
from torchscout.tools.optim.specs import torch_optimizer_classes

TUNED_ADAMW = {
    "type": "AdamW",
    "default_params": {"lr": 0.0005, "weight_decay": 0.01, "betas": [0.9, 0.95]},
    "param_groups": [
        {"name_regex": r"^backbone\.", "lr": 0.0001},
        {"name_regex": r"^head\.", "lr": 0.005, "weight_decay": 0.001},
    ],
}


def test_generate_config_returns_and_registers_the_normalised_config() -> None:
    result = pytorch_optimizer_configurator("generate_config", "tuned_adamw", {**TUNED_ADAMW, "type": "adamw"})
    assert result["status"] == "success" and result["config_name"] == "tuned_adamw"
    assert result["type"] == "AdamW" and result["source"] == "torch.optim"
    assert result["default_params"] == TUNED_ADAMW["default_params"]
    assert result["param_groups"] == TUNED_ADAMW["param_groups"]
    assert result["no_decay_bias_norm"] is False and result["replaced"] is False

    again = pytorch_optimizer_configurator("generate_config", "tuned_adamw", {"type": "SGD"})
    assert again["replaced"] is True and "replaced" in again["message"]


def test_param_groups_land_with_the_right_settings_on_a_real_model() -> None:
    pytorch_optimizer_configurator("generate_config", "tuned_adamw", TUNED_ADAMW)
    model = TwoPartNet()
    optimizer = build_optimizer(model, "tuned_adamw")

    assert isinstance(optimizer, torch.optim.AdamW)
    groups = groups_by_name(optimizer)
    assert set(groups) == {"group0", "group1"}  # every trainable parameter matched a regex
    assert groups["group0"]["param_names"] == ["backbone.0.weight", "backbone.0.bias",
                                               "backbone.2.weight", "backbone.2.bias"]
    assert (groups["group0"]["lr"], groups["group0"]["weight_decay"]) == (0.0001, 0.01)
    assert (groups["group1"]["lr"], groups["group1"]["weight_decay"]) == (0.005, 0.001)
    assert groups["group1"]["betas"] == (0.9, 0.95)
    # the frozen parameter is left out; nothing is in two groups
    optimized = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert len(optimized) == len(set(optimized)) == sum(1 for p in model.parameters() if p.requires_grad)


def test_first_matching_regex_wins_and_unmatched_parameters_use_the_defaults() -> None:
    model = TwoPartNet()
    optimizer = build_optimizer(model, {
        "type": "SGD", "params": {"lr": 0.1, "momentum": 0.9},
        "param_groups": [{"name_regex": r"weight", "lr": 0.01, "name": "weights"},
                         {"name_regex": r"backbone", "lr": 0.5}],
    })
    groups = groups_by_name(optimizer)
    assert all(name.endswith("weight") for name in groups["weights"]["param_names"])
    assert "backbone.0.weight" in groups["weights"]["param_names"]  # first match, not the backbone group
    assert groups["group1"]["param_names"] == ["backbone.0.bias", "backbone.2.bias"]
    assert groups["default"]["param_names"] == ["head.norm.bias", "head.out.bias"]
    assert groups["default"]["lr"] == 0.1 and groups["default"]["momentum"] == 0.9
    assert groups["weights"]["momentum"] == 0.9  # defaults flow into groups that do not override them


def test_no_decay_bias_norm_puts_biases_and_norm_weights_in_a_decay_free_group() -> None:
    pytorch_optimizer_configurator("generate_config", "nanogpt_style", {
        "type": "AdamW", "default_params": {"lr": 0.001, "weight_decay": 0.1},
        "param_groups": [{"name_regex": r"^head\.", "lr": 0.01}], "no_decay_bias_norm": True,
    })
    optimizer = build_optimizer(TwoPartNet(), "nanogpt_style")
    groups = groups_by_name(optimizer)
    assert groups["group0"]["param_names"] == ["head.out.weight"]
    assert (groups["group0"]["lr"], groups["group0"]["weight_decay"]) == (0.01, 0.1)
    assert groups["group0/no_decay"]["param_names"] == ["head.norm.weight", "head.norm.bias", "head.out.bias"]
    assert (groups["group0/no_decay"]["lr"], groups["group0/no_decay"]["weight_decay"]) == (0.01, 0.0)
    assert groups["default"]["param_names"] == ["backbone.0.weight", "backbone.2.weight"]
    assert groups["default"]["weight_decay"] == 0.1
    assert groups["default/no_decay"]["param_names"] == ["backbone.0.bias", "backbone.2.bias"]
    assert groups["default/no_decay"]["weight_decay"] == 0.0


def test_a_regex_matching_nothing_is_warned_about() -> None:
    model = TwoPartNet()
    spec = {"type": "Adam", "param_groups": [{"name_regex": r"^classifier\.", "lr": 0.5}]}
    with pytest.warns(UnmatchedParamGroupWarning, match=r"'\^classifier\\\\.' matched no trainable parameter"):
        optimizer = build_optimizer(model, spec)
    assert [group["group_name"] for group in optimizer.param_groups] == ["default"]
    with pytest.warns(UnmatchedParamGroupWarning):
        plan = plan_param_groups(model, spec["param_groups"])
    assert plan.unmatched_regexes == [r"^classifier\."] and plan.frozen_parameters == 1
    assert plan.summary()[0]["num_elements"] == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_the_built_optimizer_trains() -> None:
    torch.manual_seed(0)
    model = TwoPartNet()
    optimizer = build_optimizer(model, {"type": "AdamW", "params": {"lr": 0.01}, "no_decay_bias_norm": True})
    inputs, targets = torch.randn(32, 6), torch.randint(0, 3, (32,))
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("optimizer_name", sorted(set(torch_optimizer_classes()) - {"LBFGS", "SparseAdam", "Muon"}))
def test_every_torch_optimizer_builds_from_its_name(optimizer_name: str) -> None:
    optimizer = build_optimizer(TwoPartNet(), optimizer_name)
    assert type(optimizer).__name__ == optimizer_name


@pytest.mark.parametrize(("details", "message"), [
    ({"type": "Adamm"}, "unknown optimizer type 'Adamm'; did you mean 'Adam'"),
    ({"type": "AdamW", "default_params": {"weight_decy": 0.1}}, "AdamW has no setting 'weight_decy'; did you mean 'weight_decay'"),
    ({"type": "SGD", "param_groups": [{"name_regex": "x", "momentun": 0.9}]}, r"param_groups\[0\]: SGD has no setting 'momentun'"),
    ({"type": "AdamW", "default_params": {"lr": -1.0}}, "torch.optim.AdamW rejected the settings: Invalid learning rate"),
    ({"type": "SGD", "param_groups": [{"name_regex": "(unclosed"}]}, "is not a valid regular expression"),
    ({"type": "SGD", "param_groups": [{"lr": 0.1}]}, r"param_groups\[0\] needs a non-empty 'name_regex'"),
    ({"type": "Rprop", "no_decay_bias_norm": True}, "needs an optimizer with a 'weight_decay' setting"),
    ({"default_params": {"lr": 0.1}}, "needs a 'type'"),
    ({"type": "SGD", "lr": 0.1}, r"unknown key\(s\) \['lr'\]"),
    ({"type": "SGD", "param_groups": {"name_regex": "x"}}, "param_groups must be a list"),
    ({"type": "SGD", "param_groups": ["head"]}, r"param_groups\[0\] must be a mapping like"),
    ({"type": "SGD", "default_params": [0.1]}, "default_params must be a mapping of SGD settings"),
])
def test_generate_config_rejects_bad_details_with_actionable_errors(details: dict, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        pytorch_optimizer_configurator("generate_config", "bad", details)
    assert build_optimizer_names() == []


def build_optimizer_names() -> list[str]:
    from torchscout.tools import registry

    return registry.names("optimizer_config")


def test_unknown_spec_name_lists_registered_configs() -> None:
    pytorch_optimizer_configurator("generate_config", "tuned_adamw", TUNED_ADAMW)
    with pytest.raises(ToolError, match="did you mean 'tuned_adamw'.*Registered: tuned_adamw"):
        build_optimizer(TwoPartNet(), "tuned_adamv")


def test_a_spec_can_start_from_a_registered_config() -> None:
    pytorch_optimizer_configurator("generate_config", "tuned_adamw", TUNED_ADAMW)
    optimizer = build_optimizer(TwoPartNet(), {"type": "tuned_adamw", "params": {"lr": 0.002}})
    groups = groups_by_name(optimizer)
    assert optimizer.defaults["lr"] == 0.002 and optimizer.defaults["weight_decay"] == 0.01
    assert groups["group0"]["lr"] == 0.0001  # the config's groups still apply


def test_the_tool_object_returns_errors_as_text() -> None:
    text = configurator_tool.invoke({"action": "generate_config", "config_name": "x",
                                     "optimizer_details": {"type": "Adamm"}})
    assert text.startswith("Error: unknown optimizer type 'Adamm'")
    text = configurator_tool.invoke({"action": "tune", "config_name": "x"})
    assert text.startswith("Error: invalid arguments")
    result = configurator_tool.invoke({"action": "generate_config", "config_name": "fast_sgd",
                                       "optimizer_details": {"type": "SGD", "default_params": {"lr": 0.1}}})
    assert result["default_params"] == {"lr": 0.1}
