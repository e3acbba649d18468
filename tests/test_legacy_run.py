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
    trace = run_cli(legacy_workspace, "trace", RUN, "--json")
    assert trace.returncode == 0, trace.stderr
    assert json.loads(trace.stdout), "the trace of the resumed run is empty"
