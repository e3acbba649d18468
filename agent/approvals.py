"""The words of approval gates: which actions can wait for a person, and how a person answers.

A research task (``approve: [full_train]``) and an agent thread (``--approve pip_install``) name
the actions to gate with :func:`parse_actions`; a person answers a waiting run or thread with
yes or no, read by :func:`parse_answer`. The graph's gate itself is ``graphs/approval.py``; the
agent's is LangChain's human-in-the-loop middleware (``react_agent.py``).
"""

from __future__ import annotations

from typing import Any, Literal, cast

from torchscout.tools.errors import ToolError

GatedAction = Literal["full_train", "pip_install"]
Answer = Literal["yes", "no"]

# Actions a run can be told to pause before (`approve: [...]` / `--approve`), with what each gates.
GATED_ACTIONS: dict[GatedAction, str] = {
    "full_train": "the final full training of the winner (the longest step of a run)",
    "pip_install": "installing a Python package into the environment",
}

YES: Answer = "yes"
NO: Answer = "no"
_ANSWERS: dict[str, Answer] = {"yes": YES, "y": YES, "approve": YES, "approved": YES, "true": YES, "ok": YES,
                               "no": NO, "n": NO, "reject": NO, "rejected": NO, "false": NO, "skip": NO}


def is_answer(value: Any) -> bool:
    """Whether ``value`` reads as a yes/no answer (rather than, say, an action name)."""
    return isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in _ANSWERS)


def parse_answer(value: Any, argument: str = "approve") -> Answer:
    """``yes`` or ``no`` from a person's answer (yes/y/approve/true, no/n/reject/skip/false)."""
    if isinstance(value, bool):
        return YES if value else NO
    if not is_answer(value):
        raise ToolError(f"{argument} must be 'yes' (go ahead) or 'no' (skip that step), not {value!r}")
    return _ANSWERS[value.strip().lower()]


def parse_actions(value: Any) -> list[GatedAction]:
    """Gated action names from a list or a comma-separated string, deduplicated in order.

    Raises ValueError naming an unknown action and the known ones.
    """
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"give a list of actions such as [full_train, pip_install], not {value!r}")
    actions: list[GatedAction] = []
    for item in items:
        name = str(item).strip()
        if not name:
            continue
        if name not in GATED_ACTIONS:
            raise ValueError(f"unknown action {name!r}; actions that can wait for approval: "
                             f"{', '.join(GATED_ACTIONS)}")
        action = cast(GatedAction, name)
        if action not in actions:
            actions.append(action)
    return actions
