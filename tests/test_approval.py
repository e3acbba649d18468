"""Approval gates in the research graph: a run pauses before full training until a person says yes or no.

Real graph, real SQLite checkpointer, digits with the smallest budget that still reaches the
full training (one candidate, one round, one epoch).
"""

from __future__ import annotations

from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from typer.testing import CliRunner

from tests.research_helpers import digits_task, events, write_task
from torchscout.agent.task import TaskError, load_task
from torchscout.graphs import approval, routing
from torchscout.graphs.driver import checkpoint_history, list_runs, report_text, research, resume
from torchscout.tools.errors import ToolError

TINY = {"max_rounds": 1, "candidates_per_round": 1, "screen_steps": 5, "quick_epochs": 1, "full_epochs": 1,
        "optimizer_trials": 0, "confirm_seeds": 1, "max_minutes": 5}


@pytest.fixture(autouse=True)
def no_wandb(monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_WANDB_MODE", "disabled")  # W&B logging is not what these tests are about


def tiny_task(name: str, **fields: Any) -> dict[str, Any]:
    return {**digits_task(name, **TINY), **fields}


def test_no_skips_full_training_and_the_report_says_so(workspace):
    waiting = research(tiny_task("gate-no"), approve=["full_train"])

    assert waiting["status"] == "waiting_for_approval" and waiting["report_path"] is None
    request = waiting["approval"]
    assert request["action"] == "full_train"
    assert request["answer_with"].startswith("torchscout resume gate-no --approve yes|no")
    assert 'Command(resume="yes")' in request["answer_with"]
    details = request["details"]
    assert details["epochs"] == 1 and details["params"] > 0 and details["flops_per_sample"] > 0
    assert details["measured_samples_per_s"] > 0 and details["estimated_wall_s"] > 0
    assert details["samples_per_epoch"] > 1000  # digits' training split, as the quick evaluations measured it
    assert "1 epoch" in request["summary"] and "samples/s measured" in request["summary"]
    run_dir = workspace / "runs" / "gate-no"
    assert not (run_dir / "full_training").exists()  # nothing of the gated step happened before the answer
    assert list_runs()[0]["status"].startswith("waiting for approval (full_train)")

    logged = len(events(workspace, "gate-no"))
    assert resume("gate-no")["status"] == "waiting_for_approval"  # no answer: it says so again, runs nothing
    assert len(events(workspace, "gate-no")) == logged
    with pytest.raises(ToolError, match="--approve must be 'yes'"):
        resume("gate-no", approve="maybe")

    done = resume("gate-no", approve="no")

    assert done["status"] == "finished" and done["full_training"] == {}
    assert done["approvals"]["full_train"]["answer"] == "no"
    assert not (run_dir / "full_training").exists()
    report = report_text("gate-no")
    assert "**Full training:** skipped by the user at the approval gate" in report
    assert "**Approval gate `full_train`:** skipped by the user" in report
    assert any(row["node"] == "approve_full_train" for row in checkpoint_history("gate-no"))
    with pytest.raises(ToolError, match="not waiting for an approval"):
        resume("gate-no", approve="yes")


def test_the_task_file_gate_pauses_the_cli_and_yes_runs_full_training(workspace):
    from torchscout.app import app

    task_path = write_task(workspace, tiny_task("gate-yes", approve=["full_train"]))
    runner = CliRunner()

    paused = runner.invoke(app, ["run", str(task_path)])

    assert paused.exit_code == 0, paused.output
    lines = paused.output.strip().splitlines()
    assert lines[-1] == "waiting for approval: torchscout resume gate-yes --approve yes|no"
    assert "run gate-yes: waiting_for_approval" in paused.output
    assert "approval needed: Approve the final full training" in paused.output
    assert "  epochs: 1" in paused.output and "  estimated_wall_s: " in paused.output
    assert not (workspace / "runs" / "gate-yes" / "full_training").exists()

    resumed = runner.invoke(app, ["resume", "gate-yes", "--approve", "yes"])

    assert resumed.exit_code == 0, resumed.output
    assert "run gate-yes: finished" in resumed.output and "full training: best val_accuracy" in resumed.output
    assert "full_train: approved" in resumed.output
    assert (workspace / "runs" / "gate-yes" / "full_training" / "best" / "checkpoints" / "best.pt").is_file()
    report = (workspace / "runs" / "gate-yes" / "report.md").read_text()
    assert "**Full training:** best val_accuracy" in report
    assert "**Approval gate `full_train`:** approved by the user" in report


def test_a_run_without_approve_never_pauses(workspace):
    outcome = research(tiny_task("open"))

    assert outcome["status"] == "finished" and outcome["approval"] is None and outcome["approvals"] == {}
    assert outcome["full_training"]["status"] == "completed"
    assert all("approve_full_train" not in row["next"] for row in checkpoint_history("open"))


def test_the_approve_field_is_validated_and_named_in_errors(workspace):
    task = load_task(tiny_task("t", approve="full_train, pip_install,full_train"))
    assert task.approve == ["full_train", "pip_install"]
    assert load_task(tiny_task("t")).approve == []
    assert load_task(task, approve=[]).approve == []  # the command line replaces the file's list

    with pytest.raises(TaskError, match=r"approve: unknown action 'full_training'.*full_train, pip_install"):
        load_task(tiny_task("t", approve=["full_training"]))
    from torchscout.app import app

    path = write_task(workspace, tiny_task("t"))
    result = CliRunner().invoke(app, ["run", str(path), "--approve", "deploy"])
    assert result.exit_code == 1 and "approve: unknown action 'deploy'" in result.output


def test_routing_visits_the_gate_only_when_full_train_is_gated():
    state = {"task": {"approve": ["full_train"]}, "final": {"full_train": "run"}, "approvals": {}}
    assert routing.after_select(state) == "approve_full_train"
    assert routing.after_select({**state, "task": {"approve": ["pip_install"]}}) == "full_train"
    assert routing.after_select({**state, "final": {"full_train": "skipped: full_epochs is 0"}}) == "analyze"
    assert routing.after_full_train_gate({**state, "approvals": {"full_train": {"answer": "yes"}}}) == "full_train"
    assert routing.after_full_train_gate({**state, "approvals": {"full_train": {"answer": "no"}}}) == "analyze"


class _InstallState(TypedDict, total=False):
    task: dict[str, Any]
    run_name: str
    approvals: dict[str, Any]
    decisions: list[dict[str, Any]]
    installed: list[str]


def test_the_gate_is_generic_a_package_install_node_uses_it_the_same_way():
    installs: list[str] = []

    def install(state: dict[str, Any]) -> dict[str, Any]:
        approved, update = approval.ask(state, "pip_install", "pip install timm", {"package": "timm"},
                                        key="pip_install:timm")
        if approved:
            installs.append("timm")  # the side effect happens only after the answer
        return {**update, "installed": list(installs)}

    builder = StateGraph(_InstallState)
    builder.add_node("install", install)
    builder.add_edge(START, "install")
    builder.add_edge("install", END)
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "x"}}

    graph.invoke({"task": {"approve": ["pip_install"]}, "run_name": "x"}, config)
    [request] = approval.pending_requests(graph.get_state(config))
    assert request["key"] == "pip_install:timm" and installs == []

    final = graph.invoke(Command(resume="yes"), config)
    assert installs == ["timm"] and final["approvals"]["pip_install:timm"]["answer"] == "yes"
    assert graph.invoke({"task": {"approve": []}, "run_name": "y"}, {"configurable": {"thread_id": "y"}})[
        "installed"] == ["timm", "timm"]  # not gated: runs at once
    assert approval.parse_answer("Y") == "yes" and approval.parse_answer(False) == "no"
