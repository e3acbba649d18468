"""A run started by an older torchscout still resumes.

``fixtures/legacy_run.tar.gz`` is a workspace written by the version before the layers change
(commit 6b6275a): ``torchscout run`` on a small digits task, killed with SIGKILL in round 2 while
r2c1's screen was in flight. It holds the run folder and ``.torchscout/graph.sqlite`` exactly as
that version left them. Whatever moves inside the package, state written then must load, and
``torchscout resume`` must finish the run without repeating the evaluations it had completed.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from tests.research_helpers import events, run_cli
from torchscout.agent.records import evaluations_of
from torchscout.agent.selection import tie_tolerance
from torchscout.graphs.driver import run_state

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_run.tar.gz"
RUN = "legacy"
FINISHED_BEFORE = {"r1c0/screen", "r1c0/quick", "r2c0/screen"}


@pytest.fixture
def legacy_workspace(workspace: Path) -> Path:
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(workspace, filter="data")
    return workspace


def test_the_fixture_is_a_run_killed_mid_search(legacy_workspace):
    evaluated = {item["key"] for item in events(legacy_workspace, RUN) if item["event"] == "evaluated"}
    assert evaluated == FINISHED_BEFORE
    listed = run_cli(legacy_workspace, "runs")
    assert listed.returncode == 0, listed.stderr
    assert "legacy" in listed.stdout and "stopped before" in listed.stdout


def test_a_run_from_before_the_layers_change_resumes_to_a_report(legacy_workspace):
    resumed = run_cli(legacy_workspace, "resume", RUN, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"run {RUN}: finished" in resumed.stdout

    counts = Counter(item["key"] for item in events(legacy_workspace, RUN) if item["event"] == "evaluated")
    for key in FINISHED_BEFORE:
        assert counts[key] == 1, f"{key} was evaluated again after the resume"
    assert counts["r2c1/screen"] == 1  # the evaluation in flight at the kill ran once, after the resume

    report = (legacy_workspace / "runs" / RUN / "report.md").read_text()
    assert "r1c0" in report
    _old_evaluations_were_ranked_with_the_new_ones(run_state(RUN))
    trace = run_cli(legacy_workspace, "trace", RUN, "--json")
    assert trace.returncode == 0, trace.stderr
    assert json.loads(trace.stdout), "the trace of the resumed run is empty"


def _old_evaluations_were_ranked_with_the_new_ones(state: dict) -> None:
    """That version wrote "ok" for an evaluation with a metric (today: "completed"). The checkpoint
    keeps its words, and the resumed run still counted r1c0's results when it chose the best."""
    assert state["evaluations"]["r1c0/quick"]["status"] == "ok"
    evaluations = evaluations_of(state)
    assert evaluations["r1c0/quick"]["status"] == "completed"
    assert {item["status"] for item in evaluations.values()} <= {"completed", "diverged", "failed", "skipped"}
    quick = [item["metric"] for item in evaluations.values() if item["kind"] == "quick" and item["metric"] is not None]
    assert state["evaluations"]["r1c0/quick"]["metric"] in quick
    # the best is the top quick result over both rounds, or a smaller model tied with it
    assert state["best_metric"] >= max(quick) - tie_tolerance(max(quick), True) - 1e-12
    searched = {entry["search_key"] for entry in state["final"]["candidates"]}
    assert searched & {"r1c0/quick", *(key for key in evaluations if key.startswith("r1c0/opt/"))}
