"""The builtin planner: a deterministic search over the modality's space, driven by Optuna's ask/tell.

- Round 1 (``draft``): a well-known baseline plus diverse random designs (Optuna's seeded
  ``RandomSampler``), no two alike.
- Later rounds (``improve``): most candidates are mutations of the best so far (one or two
  axes stepped to a neighbouring choice: deeper, wider, another kernel, normalisation,
  dropout, a residual or parallel stream, learning rate, optimizer); one is asked of a TPE
  sampler that has been *told* every past result, so the search also explores where the
  history says it pays.
- "The best" is the smallest model among the results tied with the top one (within the search
  noise, :func:`torchscout.agent.selection.tie_tolerance`), and every improve round includes
  *shrink* mutations of it (narrower, shallower, pooled head, plain stream, smaller vocabulary):
  one (in rounds with room for two or more mutations), half the mutations once the metric is
  saturated (several designs tie at the top, or the top is within noise of a perfect score). A smaller model that is as good is
  the better model, and a saturated metric can only be improved on size.

The Optuna study is rebuilt from the history on every call (``add_trial``), so the planner
keeps no state of its own: a resumed or replayed run proposes exactly what it proposed before.
"""

from __future__ import annotations

import logging
import random

import optuna

from torchscout.agent import search_space
from torchscout.agent.planners import register_planner
from torchscout.agent.proposal import (
    CandidateOutcome,
    CandidateSpec,
    OptimizerTrialSpec,
    PlanningContext,
    Proposal,
    TrainingSettings,
)
from torchscout.agent.search_space import Blueprint, Space
from torchscout.agent.selection import prefer_smaller_among_ties, tie_tolerance
from torchscout.agent.task import Task

optuna.logging.set_verbosity(optuna.logging.WARNING)
logger = logging.getLogger(__name__)

_MAX_DRAWS = 50  # attempts to find a design not tried yet before accepting a duplicate


def _axes(context: PlanningContext) -> Space:
    axes = dict(search_space.space_for(context.task.modality))
    if context.vocab_sizes:
        axes["vocab_size"] = sorted(context.vocab_sizes)
    return axes


def _distributions(axes: Space) -> dict[str, optuna.distributions.BaseDistribution]:
    return {name: optuna.distributions.CategoricalDistribution(choices) for name, choices in axes.items()}


def training_of(blueprint: Blueprint, task: Task) -> TrainingSettings:
    """The training settings of a point in the space: its optimizer, learning rate, weight decay (a
    searched axis for flat inputs, else 0.01 for AdamW) and augmentation."""
    optimizer = blueprint["optimizer"]
    momentum = 0.9 if optimizer == "SGD" else None
    # SGD needs a larger step than the adaptive methods to move at all in a short budget
    lr = blueprint["lr"] * (10 if optimizer == "SGD" else 1)
    decay = blueprint.get("weight_decay", 0.01 if optimizer == "AdamW" else 0.0)
    return TrainingSettings(optimizer=optimizer, lr=min(lr, 1.0), weight_decay=decay, momentum=momentum,
                            augment=search_space.augmentation(blueprint, task))


def _ranked(context: PlanningContext) -> list[CandidateOutcome]:
    """Evaluated candidates best first; among results tied with the top one the smallest leads."""
    return prefer_smaller_among_ties(context.history, lambda item: item.metric, lambda item: item.params,
                                     context.task.maximize)


def _saturated(context: PlanningContext, ranked: list[CandidateOutcome]) -> bool:
    """Whether the metric no longer separates the best designs: several tie at the top, or the top is
    within noise of a perfect rate (accuracy 1.0)."""
    top = max(item.metric for item in ranked) if context.task.maximize else min(item.metric for item in ranked)
    tolerance = tie_tolerance(top, context.task.maximize)
    tied = [item for item in ranked if abs(item.metric - top) <= tolerance + 1e-12]
    near_perfect = context.task.maximize and 0.0 <= top <= 1.0 and 1.0 - top <= tolerance
    return len(tied) > 1 or near_perfect


def _size(item: CandidateOutcome) -> str:
    return "? params" if item.params is None else f"{item.params:,} params"


@register_planner("builtin", description="seeded search: a baseline, diverse samples, then mutations of the "
                                            "best and Optuna TPE suggestions (offline, deterministic)")
class BuiltinPlanner:
    """Deterministic (given the task's seed) search; see the module docstring."""

    name = "builtin"

    def propose(self, context: PlanningContext) -> Proposal:
        axes = _axes(context)
        seen = {search_space.signature(self._normalized(item.blueprint, context))
                for item in context.history if item.blueprint}
        rng = random.Random(f"{context.task.seed}-{context.round}")
        ranked = _ranked(context)
        best = ranked[0] if ranked else None
        if best is None or not best.blueprint:
            picks = self._draft(context, axes, seen, rng)
            mode, notes = "draft", "First round: a known-good baseline plus diverse random designs."
        else:
            picks = self._improve(context, axes, seen, rng, ranked)
            mode = "improve"
            notes = (f"Round {context.round}: mutations of the best so far ({best.id}, "
                     f"{context.task.metric}={best.metric:.4f}, {_size(best)}; the smallest of the results "
                     f"tied with the top one), including smaller variants of it, plus one TPE suggestion "
                     f"informed by {len(context.history)} past candidates.")
        candidates = [self._spec(context, index, blueprint, rationale, parent)
                      for index, (blueprint, rationale, parent) in enumerate(picks)]
        return Proposal(mode=mode, candidates=candidates, notes=notes, planner=self.name)

    def propose_optimizers(self, context: PlanningContext, count: int) -> Proposal:
        ranked = _ranked(context)
        best = ranked[0] if ranked else None
        if best is None or count <= 0:
            return Proposal(mode="optimizer", notes="No evaluated candidate to tune.", planner=self.name)
        base = TrainingSettings.model_validate(best.training) if best.training else TrainingSettings()
        ideas = [
            OptimizerTrialSpec(name="adamw_half_lr", training=base.model_copy(update={
                "optimizer": "AdamW", "lr": base.lr / 2, "weight_decay": 0.05, "momentum": None}),
                rationale="A smaller step with stronger decoupled weight decay often generalises better "
                          "once the architecture is fixed."),
            OptimizerTrialSpec(name="adamw_double_lr", training=base.model_copy(update={
                "optimizer": "AdamW", "lr": min(base.lr * 2, 0.05), "weight_decay": 0.01, "momentum": None}),
                rationale="A larger step tests whether the short budget is under-training the model."),
            OptimizerTrialSpec(name="sgd_nesterov", training=TrainingSettings(
                optimizer="SGD", lr=min(base.lr * 10, 0.2), momentum=0.9, weight_decay=5e-4, augment=base.augment),
                rationale="SGD with Nesterov momentum is the classic strong baseline for conv nets."),
            OptimizerTrialSpec(name="adam_no_bias_decay", training=base.model_copy(update={
                "optimizer": "Adam", "momentum": None, "weight_decay": 0.0,
                "param_groups": [{"name_regex": r"bias", "weight_decay": 0.0}]}),
                rationale="Plain Adam without decay on biases isolates the effect of weight decay."),
        ]
        chosen = ideas[:count]
        return Proposal(mode="optimizer", optimizer_trials=chosen, planner=self.name,
                        notes=f"{len(chosen)} optimizer settings on the best architecture {best.id}.")

    # -- rounds -------------------------------------------------------------------------------

    def _draft(self, context: PlanningContext, axes: Space, seen: set[str],
               rng: random.Random) -> list[tuple[Blueprint, str, str | None]]:
        picks: list[tuple[Blueprint, str, str | None]] = []
        baseline = dict(search_space.BASELINES[context.task.modality])
        if "vocab_size" in axes:
            baseline["vocab_size"] = axes["vocab_size"][len(axes["vocab_size"]) // 2]
        self._accept(context, baseline, seen, picks, "The baseline design for this input type: a sound "
                     "reference point the search has to beat.", None)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=context.task.seed))
        while len(picks) < context.num_candidates:
            blueprint = self._draw(study, axes, seen, context)
            described = self._describe(self._normalized(blueprint, context))
            self._accept(context, blueprint, seen, picks, "A random design from the search space, "
                         f"for diversity in the first round: {described}", None)
        return picks

    def _improve(self, context: PlanningContext, axes: Space, seen: set[str],
                 rng: random.Random, ranked: list[CandidateOutcome]) -> list[tuple[Blueprint, str, str | None]]:
        picks: list[tuple[Blueprint, str, str | None]] = []
        best = ranked[0]
        explore = 1 if context.num_candidates >= 3 else 0
        mutations = context.num_candidates - explore
        if mutations < 2:
            shrinks = 0  # too few slots: keep the usual mutations, which can also grow the model
        else:
            shrinks = mutations // 2 if _saturated(context, ranked) else 1
        for child, changes in self._shrinks(best.blueprint, axes, rng, context):
            if len(picks) >= shrinks:
                break
            if search_space.signature(child) in seen:
                continue
            self._accept(context, child, seen, picks, f"Smaller variant of {best.id} ({context.task.metric}="
                         f"{best.metric:.4f}, {_size(best)}): {changes}; as good and smaller would be better.",
                         best.id)
        parents = [best] * 2 + ranked[1:2]  # the best gets most of the mutations, the runner-up some
        attempt = 0
        while len(picks) < context.num_candidates - explore and attempt < _MAX_DRAWS:
            parent = parents[attempt % len(parents)]
            attempt += 1
            child, changes = self._mutate(parent.blueprint, axes, rng, context)
            if search_space.signature(child) in seen:
                continue
            self._accept(context, child, seen, picks, f"Mutation of {parent.id} ({context.task.metric}="
                         f"{parent.metric:.4f}): {changes}.", parent.id)
        study = self._told_study(context, axes)
        while len(picks) < context.num_candidates:
            blueprint = self._draw(study, axes, seen, context)
            self._accept(context, blueprint, seen, picks, "Suggested by TPE from every result so far: "
                         + self._describe(self._normalized(blueprint, context)), None)
        return picks

    # -- helpers ------------------------------------------------------------------------------

    def _normalized(self, blueprint: Blueprint, context: PlanningContext) -> Blueprint:
        return search_space.normalize(blueprint, context.task.modality)

    def _accept(self, context: PlanningContext, blueprint: Blueprint, seen: set[str],
                picks: list, rationale: str, parent: str | None) -> None:
        normalized = self._normalized(blueprint, context)
        seen.add(search_space.signature(normalized))
        picks.append((normalized, rationale, parent))

    def _draw(self, study: optuna.Study, axes: Space, seen: set[str],
              context: PlanningContext) -> Blueprint:
        distributions = _distributions(axes)
        blueprint: Blueprint = {}
        for _ in range(_MAX_DRAWS):
            trial = study.ask(distributions)
            blueprint = dict(trial.params)
            # tell the sampler this draw was not used, so the next ask moves on
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            if search_space.signature(self._normalized(blueprint, context)) not in seen:
                break
        return blueprint

    def _told_study(self, context: PlanningContext, axes: Space) -> optuna.Study:
        direction = "maximize" if context.task.maximize else "minimize"
        sampler = optuna.samplers.TPESampler(seed=context.task.seed * 1000 + context.round, n_startup_trials=5)
        study = optuna.create_study(direction=direction, sampler=sampler)
        distributions = _distributions(axes)
        for item in context.history:
            # the axes its design uses (an encoder leaves others unused); TPE models each axis from the
            # trials that have it, so a conditional space is told exactly what was tried
            params = {name: item.blueprint[name] for name in axes
                      if name in item.blueprint and item.blueprint[name] in axes[name]}
            if not self._in_space(item.blueprint, params, context):
                continue  # an LLM-proposed design outside the space: nothing to tell the sampler
            failed = item.metric is None
            study.add_trial(optuna.trial.create_trial(
                params=params, distributions={name: distributions[name] for name in params},
                value=None if failed else item.metric,
                state=optuna.trial.TrialState.FAIL if failed else optuna.trial.TrialState.COMPLETE))
        return study

    def _in_space(self, blueprint: Blueprint, params: Blueprint, context: PlanningContext) -> bool:
        """Whether every axis the design uses has a choice of the space (an LLM's design may have none)."""
        if not params or ("encoder" in search_space.space_for(context.task.modality) and "encoder" not in params):
            return False
        used = self._normalized(blueprint, context)
        return all(name in params for name in used if name in search_space.space_for(context.task.modality))

    def _mutate(self, blueprint: Blueprint, axes: Space, rng: random.Random,
                context: PlanningContext) -> tuple[Blueprint, str]:
        child = {**search_space.BASELINES[context.task.modality], **blueprint}
        names = [name for name in axes if name in self._normalized(child, context) or name == "encoder"]
        changes = []
        for name in rng.sample(names, k=min(len(names), rng.choice([1, 1, 2]))):
            choices = axes[name]
            index = choices.index(child[name]) if child.get(name) in choices else 0
            step = rng.choice([-1, 1])
            new_index = min(max(index + step, 0), len(choices) - 1)
            if new_index == index:
                new_index = index - step if 0 <= index - step < len(choices) else index
            changes.append(f"{name} {child.get(name)} -> {choices[new_index]}")
            child[name] = choices[new_index]
        # fill axes a changed design now uses (e.g. an encoder switch) from the parent or the space
        for name, choices in axes.items():
            child.setdefault(name, choices[0])
        return self._normalized(child, context), "; ".join(changes) or "no change"

    def _shrinks(self, blueprint: Blueprint, axes: Space, rng: random.Random,
                 context: PlanningContext) -> list[tuple[Blueprint, str]]:
        """Smaller variants of ``blueprint``: one size axis stepped down each (in a seeded order), then
        pairs of axes; every variant has fewer parameters than the blueprint."""
        parent = {**search_space.BASELINES[context.task.modality], **blueprint}
        used = self._normalized(parent, context)
        options = [name for name in search_space.SHRINKS if name in axes and name in used
                   and search_space.smaller_choice(name, parent[name], axes[name]) is not None]
        rng.shuffle(options)
        groups = [[name] for name in options] + [[first, second] for index, first in enumerate(options)
                                                 for second in options[index + 1:]]
        variants = []
        for group in groups:
            child = dict(parent)
            changes = []
            for name in group:
                child[name] = search_space.smaller_choice(name, parent[name], axes[name])
                changes.append(f"{name} {parent[name]} -> {child[name]}")
            variants.append((self._normalized(child, context), "; ".join(changes)))
        return variants

    @staticmethod
    def _describe(blueprint: Blueprint) -> str:
        return ", ".join(f"{key}={value}" for key, value in blueprint.items())

    def _spec(self, context: PlanningContext, index: int, blueprint: Blueprint, rationale: str,
              parent: str | None) -> CandidateSpec:
        model_name = f"R{context.round}C{index}"
        vocab = blueprint.get("vocab_size")
        model_config = search_space.compile_blueprint(blueprint, context.task, model_name, vocab_size=vocab)
        return CandidateSpec(model_config=model_config, training=training_of(blueprint, context.task),
                             rationale=rationale,
                             parent=parent, blueprint=blueprint, vocab_size=vocab)
