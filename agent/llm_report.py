"""The report's LLM section: what the LLM did in a run, what it cost, and where the builtin ways stood in.

Rendered from the state (``llm_usage``, which ``analyze`` sums from the run's LLM ledger, and the
candidates' planners), so ``torchscout report NAME`` shows the same facts as the run did::

    ## LLM

    Rounds the LLM planned: 1, 3. The builtin planner stood in for round 2: the model's draft
    answer was unusable (...).

    | purpose | calls | whole replies | requests | cache hits | prompt tokens | completion tokens | seconds |
"""

from __future__ import annotations

import re

from torchscout.agent.records import ResearchState

_FALLBACK_REASON = re.compile(r"LLM planner fallback: (.*?); the builtin planner proposed")


def _rounds(state: ResearchState) -> dict[int, str]:
    planners: dict[int, str] = {}
    for candidate in (state.get("candidates") or {}).values():
        if isinstance(candidate.get("round"), int):
            planners[candidate["round"]] = str(candidate.get("planner") or "builtin")
    return dict(sorted(planners.items()))


def _fallback_reasons(state: ResearchState) -> dict[int, str]:
    reasons = {}
    for entry in state.get("decisions") or []:
        found = _FALLBACK_REASON.search(entry.get("text", ""))
        if entry.get("node") == "propose" and found and isinstance(entry.get("round"), int):
            reasons[entry["round"]] = found.group(1)
    return reasons


def _planning_lines(state: ResearchState) -> list[str]:
    rounds = _rounds(state)
    by_llm = [str(number) for number, planner in rounds.items() if planner == "llm"]
    fallback = [number for number, planner in rounds.items() if "fallback" in planner]
    lines = [f"Rounds the LLM planned: {', '.join(by_llm) or 'none'}."]
    reasons = _fallback_reasons(state)
    for number in fallback:
        lines.append(f"The builtin planner stood in for round {number}: {reasons.get(number, 'the LLM plan was unusable')}.")
    return [" ".join(lines), ""]


def llm_section(state: ResearchState) -> list[str]:
    """Markdown lines of the LLM section; none for a run that made no LLM call and had no LLM planner."""
    usage = state.get("llm_usage") or {}
    planner_llm = (state.get("task") or {}).get("planner") == "llm"
    if not usage and not planner_llm:
        return []
    lines = ["## LLM", ""]
    if planner_llm:
        lines += _planning_lines(state)
    if not usage:
        return [*lines, "No LLM call was made.", ""]
    priced = any(entry.get("cost_usd") is not None for entry in usage.values())
    header = "| purpose | calls | whole replies | requests | cache hits | prompt tokens | completion tokens | seconds |"
    lines += [header + (" cost (USD) |" if priced else ""),
              "|" + " --- |" * (8 + priced)]
    for purpose, entry in sorted(usage.items()):
        row = (f"| {purpose} | {entry['calls']} | {entry['ok']} | {entry['requests']} | {entry['cache_hits']} | "
               f"{entry['prompt_tokens']:,} | {entry['completion_tokens']:,} | {entry['seconds']:.1f} |")
        lines.append(row + (f" {entry['cost_usd'] or 0:.4f} |" if priced else ""))
    total_seconds = sum(entry["seconds"] for entry in usage.values())
    lines += ["", f"LLM time counts against the time budget: {total_seconds:.0f} s of "
                  f"{state.get('elapsed_s', 0.0):.0f} s used. Every call is in `{state['run_dir']}/llm_calls.jsonl`.", ""]
    return lines
