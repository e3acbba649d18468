"""What a planner sees and what it returns: one contract for the builtin search and the LLM planner.

A planner gets a :class:`PlanningContext` (the task, the round, every candidate so far with its
outcome) and returns a :class:`Proposal`: new candidates (a model blueprint in the assembler's
``model_config`` format, training settings, a rationale each) or optimizer settings to try on
the best architecture. Everything here is plain pydantic data so it can be stored in the graph
state, written to the run folder and produced by an LLM as structured output.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from torchscout.agent.records import Status
from torchscout.agent.selection import prefer_smaller_among_ties
from torchscout.agent.task import Task
from torchscout.agent.training_configs import AugmentSpec, TrainingRecord

ProposalMode = Literal["draft", "improve", "debug", "optimizer"]


class TrainingSettings(BaseModel):
    """How one candidate is trained: optimizer name, learning rate and weight decay."""

    model_config = ConfigDict(extra="forbid")

    optimizer: str = Field(default="AdamW", description="torch.optim class name (Adam, AdamW, SGD, ...) "
                                                        "or a registered optimizer config name.")
    lr: float = Field(default=1e-3, gt=0, le=10, description="Learning rate.")
    weight_decay: float = Field(default=0.0, ge=0, le=1, description="Weight decay.")
    momentum: float | None = Field(default=None, ge=0, lt=1, description="SGD momentum (SGD only).")
    param_groups: list[dict[str, Any]] = Field(
        default_factory=list, description="Optional per-parameter-group overrides: {name_regex, lr, weight_decay}.")
    augment: AugmentSpec | None = Field(
        default=None, description="Training-batch augmentation for images or signals: {random_crop: pixels or "
                                  "time steps, horizontal_flip: images only}; none by default.")

    def optimizer_params(self) -> dict[str, float | bool]:
        params: dict[str, float | bool] = {"lr": self.lr, "weight_decay": self.weight_decay}
        if self.momentum is not None:
            params["momentum"] = self.momentum
            if self.optimizer == "SGD":
                params["nesterov"] = self.momentum > 0
        return params


class CandidateSpec(BaseModel):
    """One proposed architecture with its training settings and the reason for trying it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model_config_: dict[str, Any] = Field(
        alias="model_config",
        description="The assembler blueprint: {model_name, input_shape, input_dtype, layers: [...]}.")
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    rationale: str = Field(description="Why this candidate is worth an evaluation, in one or two sentences.")
    parent: str | None = Field(default=None, description="Id of the candidate this one mutates, if any.")
    blueprint: dict[str, Any] = Field(
        default_factory=dict,
        description="The search-space coordinates the candidate came from (builtin planner); free-form otherwise.")
    vocab_size: int | None = Field(default=None, description="Text tasks: the tokenizer vocabulary it uses.")


class OptimizerTrialSpec(BaseModel):
    """One optimizer setting to try on the best architecture."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short unique name for the config, e.g. 'sgd_nesterov'.")
    training: TrainingSettings
    rationale: str


class Proposal(BaseModel):
    """A planner's answer for one round."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mode: ProposalMode = Field(description="draft new ideas, improve the best, debug a failure, or optimizer.")
    candidates: list[CandidateSpec] = Field(default_factory=list)
    optimizer_trials: list[OptimizerTrialSpec] = Field(default_factory=list)
    notes: str = Field(default="", description="The planner's reasoning for the round as a whole.")
    planner: str = Field(default="builtin", description="Which planner produced it (for the report).")


class CandidateOutcome(BaseModel):
    """A past candidate as a planner sees it: what it was and how it did."""

    id: str
    round: int
    status: Status
    blueprint: dict[str, Any] = Field(default_factory=dict)
    model_config_: dict[str, Any] = Field(default_factory=dict, alias="model_config")
    training: TrainingRecord | None = None
    vocab_size: int | None = None
    metric: float | None = None
    params: int | None = None
    flops: int | None = None
    error: str | None = None
    duration_s: float | None = None

    model_config = ConfigDict(populate_by_name=True)


class PlanningContext(BaseModel):
    """Everything a planner may use to propose the next round."""

    task: Task
    round: int = Field(description="1-based index of the round being planned.")
    num_candidates: int
    history: list[CandidateOutcome] = Field(default_factory=list)
    vocab_sizes: list[int] = Field(default_factory=list, description="Tokenizers trained for a text task.")

    def ranked(self) -> list[CandidateOutcome]:
        """Evaluated candidates, best first, ranked as the graph ranks them: results tied with the
        top one (within the noise tolerance) put the smaller model first."""
        return prefer_smaller_among_ties(self.history, lambda item: item.metric, lambda item: item.params,
                                         self.task.maximize)

    @property
    def best(self) -> CandidateOutcome | None:
        ranked = self.ranked()
        return ranked[0] if ranked else None


class Planner(Protocol):
    """The seam between the graph and whoever proposes experiments."""

    name: str

    def propose(self, context: PlanningContext) -> Proposal:
        """New candidates for round ``context.round``."""
        ...

    def propose_optimizers(self, context: PlanningContext, count: int) -> Proposal:
        """Up to ``count`` optimizer settings for the best architecture (mode 'optimizer')."""
        ...
