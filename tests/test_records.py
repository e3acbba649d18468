"""The research state's records: one status vocabulary, enforced where records are written, and
older threads' words read as today's."""

from __future__ import annotations

from typing import get_args

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from pydantic import ValidationError

from torchscout.agent.proposal import CandidateOutcome
from torchscout.agent.records import (
    EVALUATION_STATUSES,
    STATUSES,
    ResearchState,
    evaluations_of,
    merge_candidates,
    merge_evaluations,
)
from torchscout.agent.report import render_report
from torchscout.agent.task import load_task
from torchscout.graphs.common import ranked_evaluations
from torchscout.graphs.state import initial_state
from torchscout.tools.training.status import TrainingStatus

ADAM = {"optimizer": "Adam", "lr": 0.001, "weight_decay": 0.0, "momentum": None, "param_groups": []}


def _evaluation(key: str, status: str, metric: float | None) -> dict:
    candidate_id, kind = key.split("/")[0], key.split("/")[1]
    return {"key": key, "kind": kind, "candidate_id": candidate_id, "seed": 0, "training": ADAM, "epochs": 2,
            "max_steps": None, "metric": metric, "status": status, "duration_s": 1.0, "history": []}


def _state() -> ResearchState:
    task = load_task({"name": "t", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10}).model_dump()
    return initial_state(task, "t")


def test_the_vocabulary_is_the_training_tools_words_plus_the_graphs_own():
    assert set(get_args(TrainingStatus)) == {"completed", "diverged", "failed"}
    assert set(get_args(TrainingStatus)) < EVALUATION_STATUSES < STATUSES
    assert STATUSES - EVALUATION_STATUSES == {"proposed", "assembled", "inspected", "rejected", "screened",
                                              "evaluated"}


@pytest.mark.parametrize("word", ["success", "error", "ok", "assemble_failed", "timeout"])
def test_the_candidate_reducer_refuses_a_status_outside_the_vocabulary(word):
    with pytest.raises(ValueError, match=rf"candidate r1c0: status '{word}' is not one of"):
        merge_candidates({"r1c0": {"id": "r1c0", "status": "proposed"}}, {"r1c0": {"status": word}})


@pytest.mark.parametrize("word", ["success", "error", "evaluated", "timeout"])
def test_the_evaluation_reducer_refuses_a_status_outside_its_words(word):
    with pytest.raises(ValueError, match=rf"evaluation r1c0/quick: status '{word}' is not one of"):
        merge_evaluations({}, {"r1c0/quick": _evaluation("r1c0/quick", word, 0.9)})


def test_a_write_left_pending_by_an_older_version_is_stored_in_todays_words():
    merged = merge_evaluations({}, {"r1c0/screen": _evaluation("r1c0/screen", "ok", 0.7)})
    assert merged["r1c0/screen"]["status"] == "completed" and merged["r1c0/screen"]["metric"] == 0.7


def test_a_node_writing_an_unknown_status_stops_the_research_graph():
    def bad_node(state: ResearchState) -> ResearchState:
        return {"candidates": {"r1c0": {"id": "r1c0", "round": 1, "status": "assemble_failed"}}}

    def good_node(state: ResearchState) -> ResearchState:
        return {"candidates": {"r1c0": {"id": "r1c0", "round": 1, "status": "failed", "stage": "assemble"}}}

    for node, fails in ((bad_node, True), (good_node, False)):
        builder = StateGraph(ResearchState)
        builder.add_node("write", node)
        builder.add_edge(START, "write")
        builder.add_edge("write", END)
        graph = builder.compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": node.__name__}}
        if fails:
            with pytest.raises(ValueError, match="status 'assemble_failed'"):
                graph.invoke(_state(), config)
        else:
            assert graph.invoke(_state(), config)["candidates"]["r1c0"]["status"] == "failed"


def test_old_ok_evaluations_are_read_as_completed_and_ranked_with_new_ones():
    state = _state()
    state["evaluations"] = {"r1c0/quick": _evaluation("r1c0/quick", "ok", 0.95),
                            "r2c0/quick": _evaluation("r2c0/quick", "completed", 0.90),
                            "r2c1/quick": _evaluation("r2c1/quick", "diverged", None)}
    assert [item["key"] for item in ranked_evaluations(state, {"quick"})] == ["r1c0/quick", "r2c0/quick"]
    assert evaluations_of(state)["r1c0/quick"]["status"] == "completed"
    assert state["evaluations"]["r1c0/quick"]["status"] == "ok"  # reading does not rewrite the checkpoint

    state["evaluations"]["r1c0/confirm/Adam@0.001/s1000"] = {
        **_evaluation("r1c0/confirm", "ok", 0.94), "key": "r1c0/confirm/Adam@0.001/s1000"}
    report = render_report(state, None, None)
    assert "| `r1c0/confirm/Adam@0.001/s1000` | 0 | 0.9400 | completed |" in report


def test_a_stored_word_outside_the_vocabulary_is_named_when_read():
    state = _state()
    state["evaluations"] = {"r1c0/quick": _evaluation("r1c0/quick", "success", 0.9)}
    with pytest.raises(ValueError, match="evaluation r1c0/quick: status 'success'"):
        ranked_evaluations(state, {"quick"})


def test_planners_see_only_the_vocabulary():
    assert CandidateOutcome(id="r1c0", round=1, status="rejected").status == "rejected"
    with pytest.raises(ValidationError, match="status"):
        CandidateOutcome(id="r1c0", round=1, status="error")


def test_a_state_of_records_is_plain_checkpoint_data():
    state = _state()
    state["candidates"] = {"r1c0": {"id": "r1c0", "round": 1, "status": "evaluated", "training": ADAM,
                                    "params": 1000, "metric": 0.9}}
    state["evaluations"] = {"r1c0/quick": _evaluation("r1c0/quick", "completed", 0.9)}
    state["final"] = {"candidates": [], "winner": None, "full_train": "skipped: no winner"}
    serde = JsonPlusSerializer()
    kind, blob = serde.dumps_typed(state)
    assert kind == "msgpack"
    assert serde.loads_typed((kind, blob)) == state
