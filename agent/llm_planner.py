"""The LLM planner (``planner: llm``): the configured chat model proposes each round's candidates.

It satisfies the same :class:`~torchscout.agent.proposal.Planner` protocol as the builtin
planner and returns the same :class:`~torchscout.agent.proposal.Proposal`. Modes as AIDE has
them, chosen from the history:

- ``draft``: nothing has been evaluated successfully yet: diverse new designs (errors of
  earlier failures are shown so they are not repeated);
- ``debug``: the latest round has failed candidates: fix them (their blueprint and the tail
  of the error are in the prompt), and fill the remaining slots by improving the best;
- ``improve``: change the best designs where the leaderboard, curves and analyses say it pays.

The model sees the context as compact text (:mod:`torchscout.agent.planner_context`) and
answers in a small JSON format described by example (:mod:`torchscout.agent.planner_answers`),
through structured output or parse-and-re-ask (:mod:`torchscout.agent.llm_answers`); each
candidate is checked against the task before it is used. An answer still unusable after
``max_attempts`` -- or a model that cannot be reached, or a run whose LLM budget or time share is
spent -- makes the *builtin* planner propose that round. That is never silent: a notice
("round 2: LLM plan unusable (reason); builtin planner proposes") goes to the console, and the
proposal says so (``planner == FALLBACK_PLANNER_NAME``, notes starting with the reason), so the
report can show which rounds the LLM planned.

Every model call goes through the response cache, so replaying a round with unchanged
inputs costs no call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from torchscout.agent.builtin_planner import BuiltinPlanner
from torchscout.agent.llm_answers import StructuredAsker, UnusableAnswerError
from torchscout.agent.planner_answers import (
    OptimizerAnswer,
    PlannerAnswer,
    candidates_from_answer,
    trials_from_answer,
)
from torchscout.agent.planner_context import (
    blueprint_json,
    error_tail,
    failed_candidates,
    render_context,
    training_text,
)
from torchscout.agent.planners import register_planner
from torchscout.agent.proposal import CandidateOutcome, Planner, PlanningContext, Proposal, ProposalMode
from torchscout.prompts.loader import load_prompt
from torchscout.tools.codegen.llm import get_chat_model
from torchscout.tools.codegen.llm_usage import notify
from torchscout.tools.errors import ToolError

logger = logging.getLogger(__name__)

PLANNER_NAME = "llm"
FALLBACK_PLANNER_NAME = "builtin (llm fallback)"
PURPOSE = "planner"
LLM_NOT_CONFIGURED = (
    "planner 'llm' needs a chat model, but none is configured (TORCHSCOUT_LLM is 'builtin'). "
    "Set TORCHSCOUT_LLM to an init_chat_model spec, e.g. `export TORCHSCOUT_LLM=openai:gpt-4.1-mini` "
    "(with OPENAI_API_KEY) or `export TORCHSCOUT_LLM=ollama:qwen2.5-coder`; for a local OpenAI-compatible "
    "server also set OPENAI_BASE_URL. From Python: torchscout.configure(llm=...). Or use `planner: builtin`."
)


def choose_mode(context: PlanningContext) -> ProposalMode:
    """AIDE's choice: draft until something works, debug the last round's failures, else improve."""
    if context.best is None:
        return "draft"
    if _failures_to_debug(context):
        return "debug"
    return "improve"


def _failures_to_debug(context: PlanningContext) -> list[CandidateOutcome]:
    """Failed candidates of the previous round that carry an error to learn from."""
    previous = context.round - 1
    return [item for item in failed_candidates(context)
            if item.round == previous and item.error and item.status != "rejected"]


@dataclass
class RoundRecord:
    """How one planning call went (kept on the planner for evals and logs)."""

    round: int
    mode: str
    attempts: int
    fell_back: bool
    reason: str = ""


@register_planner(PLANNER_NAME, description="the configured chat model drafts, improves and debugs "
                                             "candidates (AIDE-style); the builtin planner fills in when it fails")
class LLMPlanner:
    """Proposes candidates with the configured chat model; see the module docstring."""

    name = PLANNER_NAME

    def __init__(self, model: BaseChatModel | None = None, *, max_attempts: int = 3,
                 fallback: Planner | None = None) -> None:
        chat_model = model if model is not None else get_chat_model()
        if chat_model is None:
            raise ToolError(LLM_NOT_CONFIGURED)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.model = chat_model
        self.max_attempts = max_attempts
        self.fallback = fallback if fallback is not None else BuiltinPlanner()
        self._asker = StructuredAsker(chat_model, purpose=PURPOSE)
        self.rounds: list[RoundRecord] = []

    # -- the Planner protocol --------------------------------------------------------------------

    def propose(self, context: PlanningContext) -> Proposal:
        mode = choose_mode(context)
        prompt = load_prompt(f"planner_{mode}")
        messages = prompt.render(**self._variables(context, mode))
        try:
            answer = self._asker.ask(messages, PlannerAnswer, prompt_version=prompt.version,
                                     check=lambda value: candidates_from_answer(value, context),
                                     max_attempts=self.max_attempts)
        except ToolError as exc:  # UnusableAnswerError, or the model could not be reached
            return self._fall_back(context, mode, exc, lambda: self.fallback.propose(context))
        candidates = candidates_from_answer(answer.value, context)
        self.rounds.append(RoundRecord(context.round, mode, answer.attempts, fell_back=False))
        notes = answer.value.notes.strip() or f"LLM {mode} round."
        if answer.attempts > 1:
            notes += f" (usable after {answer.attempts} attempts)"
        return Proposal(mode=mode, candidates=candidates, notes=notes, planner=self.name)

    def propose_optimizers(self, context: PlanningContext, count: int) -> Proposal:
        best = context.best
        if best is None or count <= 0:
            return Proposal(mode="optimizer", notes="No evaluated candidate to tune.", planner=self.name)
        prompt = load_prompt("planner_optimizers")
        messages = prompt.render(
            context=render_context(context), count=count, best_id=best.id,
            best_training=training_text(best.training))
        try:
            answer = self._asker.ask(messages, OptimizerAnswer, prompt_version=prompt.version,
                                     check=lambda value: trials_from_answer(value, count),
                                     max_attempts=self.max_attempts)
        except ToolError as exc:
            return self._fall_back(context, "optimizer", exc,
                                   lambda: self.fallback.propose_optimizers(context, count))
        trials = trials_from_answer(answer.value, count)
        self.rounds.append(RoundRecord(context.round, "optimizer", answer.attempts, fell_back=False))
        notes = answer.value.notes.strip() or f"{len(trials)} optimizer settings on {best.id}."
        return Proposal(mode="optimizer", optimizer_trials=trials, notes=notes, planner=self.name)

    # -- helpers -------------------------------------------------------------------------------

    def _variables(self, context: PlanningContext, mode: ProposalMode) -> dict[str, object]:
        variables: dict[str, object] = {
            "context": render_context(context),
            "count": context.num_candidates,
            "round": context.round,
        }
        best = context.best
        if mode in ("improve", "debug") and best is not None:
            variables.update(best_id=best.id, best_layers=blueprint_json(best),
                             best_training=training_text(best.training))
        if mode == "debug":
            failures = _failures_to_debug(context)[: max(1, context.num_candidates // 2)]
            variables["failures"] = "\n\n".join(
                f"{item.id} ({item.status}), training {training_text(item.training)}\nlayers: "
                f"{blueprint_json(item)}\nerror (tail):\n{error_tail(item.error)}" for item in failures)
            variables["fix_count"] = len(failures)
        return variables

    def _fall_back(self, context: PlanningContext, mode: str, error: ToolError, propose) -> Proposal:
        reason = str(error)
        attempts = len(error.problems) if isinstance(error, UnusableAnswerError) else 0
        what = "optimizer plan" if mode == "optimizer" else "plan"
        notify(f"round {context.round}: LLM {what} unusable ({reason}); builtin planner proposes")
        self.rounds.append(RoundRecord(context.round, mode, attempts, fell_back=True, reason=reason))
        proposal = propose()
        notes = (f"LLM planner fallback: the model's {mode} answer was unusable ({reason}); "
                 f"the builtin planner proposed this round. {proposal.notes}")
        return proposal.model_copy(update={"planner": FALLBACK_PLANNER_NAME, "notes": notes})
