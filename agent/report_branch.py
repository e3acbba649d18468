"""The report's section for a fork (``torchscout replay``): what it forked from and what changed."""

from __future__ import annotations

import json

from torchscout.agent.records import ResearchState


def branch_section(state: ResearchState) -> list[str]:
    """Lines saying which checkpoint this run forked from, where its parent's files are, and what it
    changed; none for a run that is not a fork."""
    branch = state.get("branch")
    if not branch:
        return []
    step = branch.get("parent_step")
    changes = branch.get("changes") or {}
    changed = ", ".join(f"`{key}` = `{json.dumps(value)[:80]}`" for key, value in sorted(changes.items()))
    return ["## Branch", "",
            f"This is branch `{branch.get('branch_id')}`, forked from checkpoint `{branch.get('parent_checkpoint_id')}`"
            + (f" (step {step})" if step is not None else "") + f" of run `{state['run_name']}`, and re-run from "
            "there.",
            f"- The parent's files and report: `{branch.get('parent_run_dir')}/` (untouched by this branch).",
            f"- This branch's files: `{branch.get('run_dir')}/` (its evaluations, full training, project, report).",
            f"- Changed at the fork: {changed}." if changed else
            "- Changed at the fork: nothing but the folder; every difference below comes from running the "
            "steps after the fork again.",
            f"- Compare with `torchscout history {state['run_name']}` (both branches).", ""]
