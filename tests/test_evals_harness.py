"""The evals harness: results file and scoreboard, the tokenizer round-trip eval, the leader choice."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from evals import run as eval_run  # noqa: E402
from evals.research_evals import AHEAD_RULE, leader, versus  # noqa: E402
from evals.scoreboard import render_scoreboard  # noqa: E402
from evals.tool_evals import tokenizer_eval  # noqa: E402


def test_llm_suite_without_a_model_writes_a_results_file_and_a_scoreboard_that_say_skipped(tmp_path):
    out = tmp_path / "results"

    assert eval_run.main(["--suite", "llm", "--out", str(out), "--workspace", str(tmp_path / "ws")]) == 0

    [results_file] = out.glob("*.json")
    results = json.loads(results_file.read_text())
    assert results["suite"] == "llm" and "TORCHSCOUT_LLM" in results["llm_evals"]["skipped"]
    assert results["machine"]["cpus"] >= 1
    board = (out / "scoreboard.md").read_text()
    assert board.startswith("# torchscout eval scoreboard: suite `llm`")
    assert "Skipped: no LLM configured" in board and results_file.name in board


def test_scoreboard_renders_every_section_as_tables():
    method = {"best_metric": 0.9712, "params": 23_456, "wall_s": 140.2, "evaluations": 17, "final_epochs": 12,
              "design": "r2c1:AdamW lr=0.003", "mean": 0.97, "std": 0.0031}
    results = {
        "suite": "quick", "seed": 0, "started_at": "2026-11-25T20:00:00", "duration_s": 700.0,
        "machine": {"cpus": 2, "device": "no GPU", "torch": "2.x"}, "results_file": "x.json",
        "tool_evals": {
            "assembler": {"blueprints": 20, "pass_rate": 0.95, "exact_rate": 0.9,
                          "failures": [{"name": "lstm_last", "error": "BlueprintError: input_size"}]},
            "summary": {"skipped": "not available"},
            "tokenizer": {"rows": [{"type": "BPE", "vocab_size": 400, "round_trip_rate": 1.0, "exact_rate": 1.0,
                                    "unk_rate": 0.0, "tokens_per_sentence": 13.8}]},
        },
        "research_evals": {
            "digits": {"budget_s": 140.0, "metric": "accuracy", "mode": "max", "leader": "builtin",
                       "replica_seeds": [1, 2],
                       "methods": {"builtin": method, "fixed": {**method, "best_metric": 0.95},
                                   "random": {"best_metric": None, "error": "no design trained"}}},
            "cifar10": {"skipped": "no CIFAR-10 data"},
        },
        "llm_evals": {"skipped": "no LLM configured"},
    }

    board = render_scoreboard(results)

    assert "pass 95.0%, exact 90.0%" in board and "`lstm_last`: BlueprintError" in board
    assert "| BPE | 400 | 100.0% | 100.0% | 0.0% | 13.8 |  |" in board
    assert "### digits: accuracy (max), budget 140s, leader: **builtin**" in board
    assert "| method | best metric | mean ± std (3 seeds) | params |" in board
    assert "| builtin | 0.9712 | 0.9700 ± 0.0031 | 23,456 | 140.2 | 17 | 12 | r2c1:AdamW lr=0.003 |" in board
    assert "| random | - | - | - | - | - | - | no design trained |" in board
    assert "Skipped: no CIFAR-10 data" in board


def test_leader_ranks_on_the_seed_mean_breaks_ties_by_parameters_and_reports_real_ties():
    methods = {"builtin": {"best_metric": 0.97}, "fixed": {"best_metric": 0.95}, "random": {"best_metric": None}}
    assert leader(methods, maximize=True) == "builtin"
    assert leader(methods, maximize=False) == "fixed"
    assert leader({"random": {"best_metric": None}}, maximize=True) is None
    # the mean over seeds outranks a lucky single run
    assert leader({"builtin": {"best_metric": 0.99, "mean": 0.96}, "fixed": {"best_metric": 0.98, "mean": 0.97}},
                  maximize=True) == "fixed"
    tied = {"builtin": {"mean": 0.99, "params": 9_000}, "fixed": {"mean": 0.99, "params": 19_000}}
    assert leader(tied, maximize=True) == "builtin"
    tied["builtin"]["params"] = 19_000
    assert leader(tied, maximize=True) == "tie: builtin, fixed"
    # a gap smaller than the seed noise is a tie, then the smaller model leads
    noisy = {"builtin": {"mean": 0.9963, "std": 0.0032, "seed_metrics": [1, 1, 1], "params": 9_000},
             "fixed": {"mean": 0.9981, "std": 0.0032, "seed_metrics": [1, 1, 1], "params": 19_562}}
    assert leader(noisy, maximize=True) == "builtin"
    noisy["builtin"]["std"] = noisy["fixed"]["std"] = 0.0001
    assert leader(noisy, maximize=True) == "fixed"


def test_versus_states_each_verdict_with_its_numbers_and_the_scoreboard_prints_them():
    methods = {"builtin": {"mean": 0.9963, "std": 0.0032, "seed_metrics": [1, 1, 1], "params": 5_210},
               "fixed": {"mean": 0.9981, "std": 0.0032, "seed_metrics": [1, 1, 1], "params": 19_562},
               "random": {"mean": 0.9700, "std": 0.0010, "seed_metrics": [1, 1, 1], "params": 2_000},
               "broken": {"best_metric": None}}
    verdicts = versus(methods, maximize=True)
    assert verdicts["fixed"]["verdict"] == "ahead (tie within the noise, fewer parameters)"
    assert round(verdicts["fixed"]["difference"], 4) == -0.0018 and round(verdicts["fixed"]["margin"], 4) == 0.0052
    assert verdicts["random"]["verdict"] == "ahead (better beyond the noise)"
    assert verdicts["broken"]["verdict"].startswith("no comparison")
    methods["builtin"]["params"] = 50_000
    assert versus(methods, maximize=True)["fixed"]["verdict"] == "behind (tie within the noise, more parameters)"
    methods["builtin"]["mean"] = 0.9800
    assert versus(methods, maximize=True)["fixed"]["verdict"] == "behind (worse beyond the noise)"

    results = {"suite": "quick", "seed": 0, "started_at": "t", "duration_s": 1.0, "machine": {},
               "research_evals": {"digits": {"budget_s": 60.0, "metric": "accuracy", "mode": "max",
                                             "leader": "fixed", "replica_seeds": [1, 2], "methods": methods,
                                             "versus": versus(methods, maximize=True)}}}
    board = render_scoreboard(results)
    assert AHEAD_RULE in board
    assert ("- builtin vs fixed: **behind (worse beyond the noise)**: mean difference -0.0181 "
            "(noise margin ±0.0052); params 50,000 vs 19,562") in board


def test_tokenizer_round_trips_are_measured_on_held_out_sentences():
    rows = {row["type"]: row for row in tokenizer_eval(seed=1)["rows"]}

    assert set(rows) == {"BPE", "WordPiece", "Unigram", "CharLevel"}
    assert rows["BPE"]["round_trip_rate"] == 1.0 and rows["BPE"]["exact_rate"] == 1.0
    assert all(0.0 <= row["unk_rate"] <= 1.0 and row["sentences"] == 200 for row in rows.values())
