"""The red-team corpus under pytest: every case refused or handled, nothing lost, no traceback, no hang.

``python evals/redteam.py`` runs the same cases and prints the counts per category.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.redteam.harness import load_cases, run_case

CASES = load_cases()
MIN_CASES = 40


def _param(key: str):
    return pytest.param(key, id=key, marks=[pytest.mark.slow] if CASES[key].slow else [])


@pytest.mark.parametrize("key", [_param(key) for key in sorted(CASES)])
def test_the_hostile_case_gets_nowhere(key: str, tmp_path: Path) -> None:
    verdict = run_case(CASES[key], tmp_path / "arena")
    details = "\n".join(answer[:600] for answer in verdict.answers)
    assert not verdict.data_lost, f"data lost: {verdict.data_lost}"
    assert not verdict.traceback, f"a traceback reached the user:\n{details}\n{verdict.problem or ''}"
    assert not verdict.timed_out, f"it hung: {verdict.problem}"
    assert verdict.problem is None, f"{verdict.problem}\n{details}"
    assert verdict.outcome in {"refused", "handled"}


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= MIN_CASES, f"{len(CASES)} red-team cases; the corpus needs at least {MIN_CASES}"
