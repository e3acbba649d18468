"""`planner: llm` inside the research graph: a run, then a replay from a checkpoint with no new model calls."""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from tests.planner_helpers import CONV_LAYERS, MLP_LAYERS, WIDER_CONV, answer_json, planned
from torchscout.graphs.driver import checkpoint_history, replay, research, run_state
from torchscout.settings import configure

DRAFT = answer_json(planned(CONV_LAYERS, "One conv block is a sound baseline for 8x8 digits."),
                    planned(MLP_LAYERS, "An MLP on the 64 pixels, for contrast."))
IMPROVE = answer_json(
    planned(WIDER_CONV, "Double the width of the best conv net.", parent="r1c0"),
    planned(CONV_LAYERS, "The best design with a smaller step.", parent="r1c0",
            training={"optimizer": "Adam", "lr": 0.001}))


class ResearchChatModel(GenericFakeChatModel):
    """Answers planner prompts with planner JSON and anything else (summary analysis) with prose."""

    planner_calls: int = 0
    other_calls: int = 0

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        system = str(messages[0].content) if messages else ""
        if "research planner" in system:
            self.planner_calls += 1
            text = DRAFT if "DRAFT" in str(messages[-1].content) else IMPROVE
        else:
            self.other_calls += 1
            text = "Small and well shaped for 8x8 inputs; most parameters sit in the linear head."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


TASK = {"name": "digits-llm", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10,
        "metric": "accuracy", "planner": "llm",
        "budget": {"max_rounds": 2, "candidates_per_round": 2, "screen_steps": 10, "quick_epochs": 1,
                   "full_epochs": 0, "optimizer_trials": 0, "confirm_seeds": 1, "patience_rounds": 2,
                   "max_minutes": 5}}


def test_llm_planner_drives_the_graph_and_a_replay_costs_no_model_call():
    model = ResearchChatModel(messages=iter([]))
    configure(llm=model)

    outcome = research(TASK, name="llm-run")

    assert outcome["status"] == "finished"
    state = run_state("llm-run")
    planners = {candidate["planner"] for candidate in state["candidates"].values()}
    assert planners == {"llm"}
    assert model.planner_calls == 2  # one draft, one improve
    calls_before = (model.planner_calls, model.other_calls)

    history = checkpoint_history("llm-run")
    second_propose = [row for row in history if "propose" in row["next"]][-1]
    replayed = replay("llm-run", second_propose["checkpoint_id"])

    assert replayed["status"] == "finished"
    assert len(checkpoint_history("llm-run")) > len(history)  # the fork re-ran round 2 onwards
    assert (model.planner_calls, model.other_calls) == calls_before
