"""Forks of a run: ``torchscout replay NAME --checkpoint ID`` starts a branch that re-runs for real.

A fork is a new branch of the run's checkpoint thread (LangGraph's fork: a checkpoint whose parent
is the one it started from), with a folder of its own, ``runs/<name>/branches/<branch_id>/``: its
evaluations, full training, scaffolded project, events, report and W&B runs go there, so the
parent's report, checkpoints and training files are never written. Files the parent wrote before
the fork point (assembled candidate scripts) are only read. The fork's first checkpoint records
:class:`~torchscout.agent.records.BranchRecord` in the state (``branch``): what it forked from and
what it changed, for ``history`` and the fork's report.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from langgraph.types import StateSnapshot

from torchscout.agent.records import BranchRecord, CandidateRecord, ResearchState
from torchscout.tools.errors import ToolError
from torchscout.tools.scaffold.project import create_pytorch_project_scaffold
from torchscout.tools.workspace import resolve

MAIN_BRANCH = "main"
BRANCHES_FOLDER = "branches"


def branch_of(values: ResearchState | None) -> str:
    """The branch a checkpoint belongs to: the fork's id, or ``main`` for the original run."""
    return ((values or {}).get("branch") or {}).get("branch_id") or MAIN_BRANCH


def producing_node(snapshot: StateSnapshot, parent: StateSnapshot | None) -> str | None:
    """The node(s) whose step wrote ``snapshot``: recorded in the state (``step_node``) by every node;
    for checkpoints written before that field existed, the tasks its parent checkpoint ran."""
    if (snapshot.metadata or {}).get("source") == "input":
        return None
    recorded = (snapshot.values or {}).get("step_node")
    if recorded and (snapshot.metadata or {}).get("source") in {"loop", "update"}:
        return str(recorded)
    names = sorted({task.name for task in (parent.tasks if parent is not None else ())})
    return ",".join(names) or None


def new_branch_id() -> str:
    return f"b{uuid.uuid4().hex[:8]}"


def fork_updates(snapshot: StateSnapshot, checkpoint_id: str, branch_id: str,
                 changes: ResearchState | None) -> ResearchState:
    """The state updates that start branch ``branch_id`` at ``snapshot``: its own folders, the
    candidates not yet assembled re-pointed there, the branch record, and the caller's ``changes``."""
    values: ResearchState = snapshot.values or {}
    if not values.get("run_dir"):
        raise ToolError(f"checkpoint {checkpoint_id} is before the run's setup: start a new run with "
                        "`torchscout run` instead of forking it")
    parent_dir = values["run_dir"]
    run_dir = f"runs/{values['run_name']}/{BRANCHES_FOLDER}/{branch_id}"
    folder = resolve(run_dir, kind="branch folder")
    folder.mkdir(parents=True, exist_ok=False)
    create_pytorch_project_scaffold("project", base_dir=run_dir)
    moved: dict[str, CandidateRecord] = {
        candidate_id: CandidateRecord(script=f"{run_dir}/candidates/{candidate_id}/model.py")
        for candidate_id, candidate in (values.get("candidates") or {}).items()
        if candidate.get("status") == "proposed"}  # not assembled yet: the fork writes their scripts
    branch = BranchRecord(branch_id=branch_id, parent_checkpoint_id=checkpoint_id,
                          parent_step=(snapshot.metadata or {}).get("step"), parent_run_dir=parent_dir,
                          run_dir=run_dir, changes=dict(changes or {}),
                          created=datetime.now(UTC).isoformat(timespec="milliseconds"))
    update = ResearchState(**(changes or {}))
    update.update(run_dir=run_dir, project_dir=f"{run_dir}/project", branch=branch, step_node="replay",
                  report_path=None)
    if moved:
        update["candidates"] = moved
    return update

