"""The markdown scoreboard of one eval run (``evals/results/scoreboard.md``)."""

from __future__ import annotations

from typing import Any

from evals.llm_evals import render_purpose_table
from evals.research_evals import AHEAD_RULE, CLASSICAL


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _tool_section(tools: dict[str, Any]) -> list[str]:
    lines = ["## Tool evals", ""]
    assembler = tools.get("assembler") or {}
    if assembler:
        lines += [f"**Assembler** (builtin backend, {assembler['blueprints']} blueprints): pass "
                  f"{_percent(assembler['pass_rate'])}, exact {_percent(assembler['exact_rate'])}.", ""]
        failures = assembler.get("failures") or []
        lines += [f"- `{failure['name']}`: {failure.get('error', 'not exact')}" for failure in failures]
        lines += [""] if failures else []
    summary = tools.get("summary") or {}
    if "skipped" in summary:
        lines += [f"**Summary vs torchinfo**: skipped ({summary['skipped']}).", ""]
    elif summary:
        lines += [f"**Summary vs torchinfo** ({summary['models']} models): parameter counts agree on "
                  f"{_percent(summary['params_agreement'])}; FLOPs / (2 x torchinfo mult-adds) median "
                  f"{_number(summary['flops_ratio_median'], 3)}, within 10% on {_percent(summary['flops_within_10pct'])}.",
                  ""]
    tokenizer = tools.get("tokenizer") or {}
    if tokenizer.get("rows"):
        rows = [[row["type"], _number(row.get("vocab_size")), _percent(row.get("round_trip_rate")),
                 _percent(row.get("exact_rate")), _percent(row.get("unk_rate")),
                 _number(row.get("tokens_per_sentence"), 1), row.get("error", "")] for row in tokenizer["rows"]]
        lines += ["**Tokenizer round trips** (held-out sentences, decoded == original after case/space "
                  "normalisation):", ""]
        lines += _table(["type", "vocab", "round trip", "exact", "unk", "tokens/sentence", "error"], rows) + [""]
    return lines


def _score(method: dict[str, Any] | None) -> Any:
    return None if not method else method.get("mean", method.get("best_metric"))


def _best_classical(methods: dict[str, Any], maximize: bool) -> tuple[str | None, dict[str, Any] | None]:
    scored = {name: method for name, method in methods.items()
              if name.startswith(f"{CLASSICAL}:") and _score(method) is not None}
    if not scored:
        return None, None
    name = (max if maximize else min)(scored, key=lambda item: _score(scored[item]))
    return name, scored[name]


def _verdict_word(verdicts: dict[str, Any], name: str | None) -> str:
    verdict = (verdicts.get(name) or {}).get("verdict", "-") if name else "-"
    return verdict.split(" (")[0]


def _leaders_table(research: dict[str, Any]) -> list[str]:
    """One row per task: who leads, each method's score, and the builtin planner's verdicts."""
    rows = []
    for key, result in research.items():
        if "skipped" in result:
            rows.append([key, "-", "-", "skipped", "-", "-", "-", "-", "-", "-"])
            continue
        methods, maximize = result["methods"], result["mode"] == "max"
        classical_name, classical = _best_classical(methods, maximize)
        versus_all = result.get("versus") or {}
        rows.append([key, result["metric"], f"{result['budget_s']:.0f}", f"**{result.get('leader') or 'none'}**",
                     _number(_score(methods.get("builtin"))), _number(_score(methods.get("fixed"))),
                     _number(_score(methods.get("random"))),
                     f"{_number(_score(classical))} ({classical_name.split(':', 1)[1]})" if classical_name else "-",
                     _verdict_word(versus_all, "random"), _verdict_word(versus_all, classical_name)])
    return ["### Who leads, per task", "",
            *_table(["task", "metric", "budget s", "leader", "builtin", "fixed", "random", "best classical",
                     "builtin vs random", "builtin vs classical"], rows), ""]


def _research_section(research: dict[str, Any]) -> list[str]:
    lines = ["## Research evals (same total budget per method)", "",
             "*best metric*: the final model's best validation value within the budget; *mean ± std*: its final "
             "training repeated with more seeds (ranks the methods). The search baselines get the wall-clock time "
             "the builtin planner used; the classical baselines (`classical:*`) are the scikit-learn models the "
             "research run fitted in seconds, read from its result.json. " + AHEAD_RULE, ""]
    lines += _leaders_table(research)
    for key, result in research.items():
        if "skipped" in result:
            lines += [f"### {key}", "", f"Skipped: {result['skipped']}", ""]
            continue
        seeds = len(result.get("replica_seeds") or []) + 1
        builtin = result["methods"].get("builtin") or {}
        stopped = (f" (builtin search stopped by {builtin['stopped_by']} after {builtin.get('rounds')} round(s))"
                   if builtin.get("stopped_by") else "")
        lines += [f"### {key}: {result['metric']} ({result['mode']}), budget {result['budget_s']:.0f}s, "
                  f"leader: **{result.get('leader') or 'none'}**{stopped}", ""]
        rows = []
        for name, method in result["methods"].items():
            spread = (f"{method['mean']:.4f} ± {method['std']:.4f}" if method.get("mean") is not None else "-")
            rows.append([name, _number(method.get("best_metric")), spread, _number(method.get("params")),
                         _number(method.get("wall_s"), 1), _number(method.get("evaluations")),
                         _number(method.get("final_epochs")), str(method.get("design") or method.get("error") or "")])
        lines += _table(["method", "best metric", f"mean ± std ({seeds} seeds)", "params", "wall s", "evaluations",
                         "final epochs", "design"], rows) + [""]
        lines += _versus_lines(result.get("versus") or {})
    return lines


def _versus_lines(verdicts: dict[str, Any]) -> list[str]:
    """One line per baseline: the builtin planner's verdict and the numbers that decide it."""
    lines = []
    for name, item in verdicts.items():
        if "difference" not in item:
            lines.append(f"- builtin vs {name}: {item['verdict']}")
            continue
        lines.append(f"- builtin vs {name}: **{item['verdict']}**: mean difference {item['difference']:+.4f} "
                     f"(noise margin ±{item['margin']:.4f}); params {_number(item['params'])} vs "
                     f"{_number(item['other_params'])}")
    return lines + ([""] if lines else [])


def _llm_section(llm: dict[str, Any]) -> list[str]:
    lines = ["## LLM evals", ""]
    if "skipped" in llm:
        return lines + [f"Skipped: {llm['skipped']}", ""]
    lines.append(f"Model: `{llm.get('model')}`")
    lines.append("")
    for name in ("novel_blocks", "custom_optimizers"):
        part = llm.get(name) or {}
        if part:
            lines.append(f"- **{name.replace('_', ' ')}**: pass {_percent(part.get('pass_rate'))} of "
                         f"{part.get('cases')}, model calls per case {_number(part.get('calls_per_case'), 1)}, "
                         f"repair rounds {_number(part.get('repair_rounds'))}, tokens/call "
                         f"{_number(part.get('tokens_per_call'), 0)}, latency/call {_number(part.get('latency_s_per_call'), 2)}s")
    planner = llm.get("planner") or {}
    if planner.get("methods"):
        lines += ["", f"**LLM planner vs builtin** on {planner.get('task')}:", ""]
        rows = [[name, _number(method.get("best_metric")), _number(method.get("params")),
                 _number(method.get("wall_s"), 1), _number(method.get("evaluations"))]
                for name, method in planner["methods"].items()]
        lines += _table(["planner", "best metric", "params", "wall s", "evaluations"], rows)
    lines += render_purpose_table(llm)  # per purpose: success, calls, tokens, seconds
    return lines + [""]


def render_scoreboard(results: dict[str, Any]) -> str:
    machine = results.get("machine") or {}
    lines = [f"# torchscout eval scoreboard: suite `{results['suite']}`", "",
             f"{results['started_at']} on {machine.get('cpus')} CPU core(s), {machine.get('device')}, "
             f"torch {machine.get('torch')}; seed {results['seed']}; {results['duration_s']:.0f}s in all. "
             f"Raw numbers: `{results.get('results_file', '')}`.", ""]
    if results.get("tool_evals"):
        lines += _tool_section(results["tool_evals"])
    if results.get("research_evals"):
        lines += _research_section(results["research_evals"])
    if results.get("llm_evals"):
        lines += _llm_section(results["llm_evals"])
    return "\n".join(lines).rstrip() + "\n"
