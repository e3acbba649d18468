"""Approval gates: pause a research run before an action a person wants to OK first.

A task's ``approve`` list (``approve: [full_train, pip_install]`` in the file, or ``torchscout run
... --approve full_train,pip_install``) names the gated actions. A node about to do a gated
action calls :func:`ask` *before* any side effect: the first time, LangGraph's ``interrupt()``
stops the run with a request (what will run, what it will cost) and the run is checkpointed as
waiting; ``torchscout resume NAME --approve yes|no`` sends the answer with
``Command(resume=...)``, the node runs again from its start, and ``ask`` returns the answer.
The answer is recorded in the state (``approvals``) and the decision log, so the report, history
and a replay show who decided what.

The gate is generic: a future node that installs packages calls
``ask(state, "pip_install", summary, details, key="pip_install:timm")`` the same way.
"""

from __future__ import annotations

import time

from langgraph.types import StateSnapshot, interrupt

from torchscout.agent.approvals import GATED_ACTIONS, YES, Answer, GatedAction, parse_answer
from torchscout.agent.records import ApprovalRecord, ApprovalRequest, DecisionRecord, GateDetails
from torchscout.graphs.state import ResearchState


def is_gated(state: ResearchState, action: GatedAction) -> bool:
    """Whether the run's task asks for approval before ``action``.

    Only the task's ``approve`` list is read, so any graph whose state holds a task can use the gate.
    """
    if action not in GATED_ACTIONS:
        raise ValueError(f"unknown gated action {action!r}; known: {', '.join(GATED_ACTIONS)}")
    return action in ((state.get("task") or {}).get("approve") or [])


def resume_command(run_name: str) -> str:
    return f"torchscout resume {run_name} --approve yes|no"


def answer_ways(run_name: str) -> str:
    """Both ways to answer a request: the CLI, and a LangGraph server client (Studio, langgraph_sdk)."""
    return (f"{resume_command(run_name)} (CLI, same workspace), or on a LangGraph server resume the run's "
            f"thread with Command(resume=\"yes\") or Command(resume=\"no\")")


def recorded_answer(state: ResearchState, key: str) -> Answer | None:
    """The answer already given for gate ``key`` in this run, if any."""
    return ((state.get("approvals") or {}).get(key) or {}).get("answer")


def ask(state: ResearchState, action: GatedAction, summary: str, details: GateDetails,
        key: str | None = None) -> tuple[bool, ResearchState]:
    """Ask for approval of ``action`` (call before any side effect); returns (approved, state update).

    Not gated: ``(True, {})`` at once. Gated and unanswered: the graph stops here (``interrupt``)
    and this node runs again from its start when the answer arrives. The update records the answer
    under ``approvals[key]`` (``key`` defaults to the action; give one per package, say, when a
    node may ask several times) and adds a decision for the report.
    """
    if not is_gated(state, action):
        return True, {}
    key = key or action
    earlier = recorded_answer(state, key)
    if earlier is not None:
        return earlier == YES, {}
    request = ApprovalRequest(action=action, key=key, run=state["run_name"], summary=summary, details=details,
                              question=f"Approve {GATED_ACTIONS[action]}?",
                              answer_with=answer_ways(state["run_name"]))
    answer = parse_answer(interrupt(request), "the resume value")
    approved = answer == YES
    text = (f"{action} approved by the user: {summary}" if approved else
            f"{action} skipped: the user answered no at the approval gate ({summary})")
    now = round(time.time(), 3)
    update = ResearchState(
        approvals={key: ApprovalRecord(action=action, answer=answer, summary=summary, details=details, time=now)},
        decisions=[DecisionRecord(node=f"approve_{action}", text=text, time=now)])
    return approved, update


def pending_requests(snapshot: StateSnapshot) -> list[ApprovalRequest]:
    """The approval requests a checkpointed run is waiting on (empty when it is not waiting)."""
    return [item.value for item in snapshot.interrupts or ()
            if isinstance(item.value, dict) and item.value.get("action") in GATED_ACTIONS]


def format_request(request: ApprovalRequest) -> list[str]:
    """Readable lines for a pending approval request (the CLI prints them)."""
    lines = [f"approval needed: {request['question']}", f"  {request['summary']}"]
    for name, value in (request.get("details") or {}).items():
        if value is not None and not isinstance(value, dict | list):
            lines.append(f"  {name}: {value:,}" if isinstance(value, int) and not isinstance(value, bool)
                         else f"  {name}: {value}")
    return lines
