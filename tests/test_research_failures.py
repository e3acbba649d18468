"""The research loop survives bad candidates and enforces its own time budget."""

from __future__ import annotations

import pytest

from tests.research_helpers import digits_task, events
from torchscout.agent import planners
from torchscout.agent.proposal import CandidateSpec, PlanningContext, Proposal, TrainingSettings
from torchscout.agent.task import TaskError
from torchscout.graphs.driver import research, run_state

GOOD_LAYERS = [
    {"type": "Conv2d", "params": {"out_channels": 16, "kernel_size": 3, "padding": 1}},
    {"type": "BatchNorm2d"}, {"type": "ReLU"}, {"type": "MaxPool2d", "params": {"kernel_size": 2}},
    {"type": "Flatten"}, {"type": "Linear", "params": {"out_features": 10}},
]


class FaultyPlanner:
    """Proposes what a careless researcher might: a layer that does not exist, a learning rate that
    makes training diverge, and one sound model."""

    name = "faulty"

    def propose(self, context: PlanningContext) -> Proposal:
        def config(name, layers):
            return {"model_name": name, "input_shape": [1, 8, 8], "layers": layers}

        return Proposal(mode="draft", planner=self.name, notes="three ideas, two of them bad", candidates=[
            CandidateSpec(model_config=config("Typo", [{"type": "Conv9d", "params": {"out_channels": 8}},
                                                       *GOOD_LAYERS[-2:]]),
                          rationale="A convolution type that does not exist."),
            CandidateSpec(model_config=config("Explodes", [*GOOD_LAYERS[:1], *GOOD_LAYERS[2:]]),
                          training=TrainingSettings(optimizer="SGD", lr=10.0, momentum=0.9),
                          rationale="The same net trained with a learning rate of 10."),
            CandidateSpec(model_config=config("Sound", GOOD_LAYERS), rationale="A small sound conv net."),
        ])

    def propose_optimizers(self, context: PlanningContext, count: int) -> Proposal:
        return Proposal(mode="optimizer", planner=self.name)


@pytest.fixture
def faulty_planner():
    planners.register_planner("faulty", description="test planner")(FaultyPlanner)
    yield
    planners.PLANNERS.remove("faulty")


def test_candidates_that_fail_to_assemble_or_diverge_do_not_stop_the_run(workspace, faulty_planner):
    task = digits_task("faulty", max_rounds=1, candidates_per_round=3, screen_steps=20, quick_epochs=1,
                       full_epochs=0, optimizer_trials=0, confirm_seeds=1)
    task["planner"] = "faulty"
    outcome = research(task)
    assert outcome["status"] == "finished"
    state = run_state("faulty")
    by_class = {candidate["class_name"]: candidate for candidate in state["candidates"].values()}
    assert by_class["Typo"]["status"] == "failed" and "Conv9d" in by_class["Typo"]["error"]
    assert by_class["Explodes"]["status"] == "diverged"
    assert by_class["Sound"]["status"] == "evaluated"
    assert outcome["best"]["candidate_id"] == by_class["Sound"]["id"]
    stages = {(failure["candidate_id"], failure["stage"]) for failure in state["failures"]}
    assert (by_class["Typo"]["id"], "assemble") in stages and (by_class["Explodes"]["id"], "screen") in stages
    report = (workspace / outcome["report_path"]).read_text()
    assert "Conv9d" in report and "## Failures" in report
    assert "full_epochs is 0" in report


def test_a_tiny_time_budget_ends_the_run_cleanly_with_what_it_has(workspace):
    task = digits_task("hurry", max_minutes=0.05, full_epochs=3)  # 3 seconds for everything
    outcome = research(task)
    assert outcome["status"] == "finished" and outcome["report_path"]
    state = run_state("hurry")
    assert state["elapsed_s"] < 60
    assert all(item["status"] in {"completed", "skipped"} for item in state["evaluations"].values())
    assert "time budget" in (state["stop_reason"] or "") or state["final"].get("full_train", "").startswith("skipped")
    recorded = [item["event"] for item in events(workspace, "hurry")]
    assert recorded[-1] == "report"
    assert "Research report: hurry" in (workspace / outcome["report_path"]).read_text()


def test_a_bad_task_is_refused_before_anything_runs(workspace):
    with pytest.raises(TaskError, match="budget.candidates_per_round"):
        research({**digits_task("bad"), "budget": {"candidates_per_round": 0}})
    with pytest.raises(TaskError, match="invalid run name"):
        research(digits_task("ok"), name="../../etc")
    assert not (workspace / "runs").exists()


def test_a_run_name_cannot_be_reused(workspace):
    task = digits_task("once", max_minutes=0.01, full_epochs=0)
    research(task)
    with pytest.raises(Exception, match="already exists"):
        research(task)


def test_an_llm_planner_without_a_configured_llm_is_refused_before_the_run_starts(workspace):
    from torchscout.tools.errors import ToolError

    task = {"name": "needs_llm", "goal": "g", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10,
            "metric": "accuracy", "mode": "max", "planner": "llm"}
    with pytest.raises(ToolError, match="TORCHSCOUT_LLM"):
        research(task)
    assert not (workspace / "runs" / "needs_llm").exists()
