"""The shapes of optimizer specs and of ``pytorch_optimizer_configurator``'s answers.

Optimizer *settings* (``lr``, ``betas``, ``weight_decay``, and whatever a custom optimizer's
constructor takes) stay free-form mappings: their keys are the constructor's parameters.
"""

from typing import Any, Literal, TypedDict


class OptimizerConfig(TypedDict):
    """An optimizer spec in its normal form: what ``generate_config`` registers and ``build_optimizer`` builds."""

    type: str  # a torch.optim class name or a registered custom optimizer
    source: str  # "torch.optim" or "custom"
    default_params: dict[str, Any]  # constructor settings for every parameter without a group
    param_groups: list[dict[str, Any]]  # {"name_regex", "name" (optional), settings}: see optim.groups
    no_decay_bias_norm: bool


class ParamGroupSummary(TypedDict):
    group_name: str
    settings: dict[str, Any]  # the group's settings that override the optimizer's defaults
    num_tensors: int
    num_elements: int


class CustomOptimizerRequest(TypedDict, total=False):
    """``optimizer_details`` of ``register_custom_optimizer``, checked."""

    description: str  # what the algorithm does (the LLM's brief)
    base_optimizer: str | None  # a hint such as "Adam"
    additional_params: dict[str, Any]  # constructor settings the probe constructs it with


class DescentAttempt(TypedDict):
    lr: float | str  # "default": the optimizer's own learning rate
    initial_loss: float | str  # a string for NaN or infinity (strict JSON has neither)
    final_loss: float | str
    finite: bool


class ProbeReport(TypedDict):
    """What :func:`~torchscout.tools.optim.validation.probe_optimizer` measured on a class that passed."""

    imports: bool
    constructs: bool
    steps: int
    descent: list[DescentAttempt]  # one per learning rate tried, the last one passed
    probe_settings: dict[str, Any]  # the constructor settings the checks used
    state_dict_round_trip: bool
    zero_grad: bool
    skips_params_without_grad: bool


class OptimizerConfigAnswer(OptimizerConfig):
    """``action='generate_config'``: the registered config in its normal form."""

    status: Literal["success"]
    config_name: str
    replaced: bool  # an earlier config of that name was replaced
    message: str


class CustomOptimizerAnswer(TypedDict):
    """``action='register_custom_optimizer'``: where the class is and what its checks measured."""

    status: Literal["success"]
    config_name: str
    output_script_path: str  # workspace-relative
    class_name: str
    validation: ProbeReport
    backend: str  # "llm:<model>" or "source_path"
    attempts: int  # candidates written, repairs included
    replaced: bool
    message: str
