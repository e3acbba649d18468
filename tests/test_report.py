"""report.md from a run's state: leaderboard, Pareto plot, curves, decisions, failures, confidence."""

from __future__ import annotations

from torchscout.agent import selection
from torchscout.agent.report import leaderboard_rows, pareto_front, write_report
from torchscout.agent.task import load_task


def _state() -> dict:
    task = load_task({"name": "digits", "goal": "Small accurate digits model", "dataset": "digits",
                      "input_shape": [1, 8, 8], "num_classes": 10, "budget": {"confirm_seeds": 3}}).model_dump()
    adam = {"optimizer": "AdamW", "lr": 0.003, "weight_decay": 0.01}
    candidates = {
        "r1c0": {"id": "r1c0", "round": 1, "status": "evaluated", "metric": 0.95, "screen_metric": 0.80,
                 "params": 12000, "flops": 400000, "rationale": "baseline", "training": adam},
        "r1c1": {"id": "r1c1", "round": 1, "status": "evaluated", "metric": 0.97, "screen_metric": 0.85,
                 "params": 90000, "flops": 2000000, "rationale": "wider", "training": adam},
        "r1c2": {"id": "r1c2", "round": 1, "status": "screened", "screen_metric": 0.5, "params": 5000,
                 "flops": 100000, "rationale": "tiny", "training": adam},
        "r1c3": {"id": "r1c3", "round": 1, "status": "failed", "error": "unknown layer type 'Conv9d'",
                 "rationale": "broken", "training": adam},
        "r1c4": {"id": "r1c4", "round": 1, "status": "rejected", "params": 9_000_000,
                 "error": "9,000,000 parameters exceed max_params 500,000", "rationale": "huge", "training": adam},
    }
    evaluations = {
        "r1c0/quick": {"key": "r1c0/quick", "kind": "quick", "candidate_id": "r1c0", "metric": 0.95,
                       "status": "completed", "duration_s": 2.0, "seed": 0, "training": adam},
        "r1c1/quick": {"key": "r1c1/quick", "kind": "quick", "candidate_id": "r1c1", "metric": 0.97,
                       "status": "completed", "duration_s": 3.0, "seed": 0, "training": adam},
    }
    for offset, (a, b) in enumerate([(0.970, 0.950), (0.972, 0.948), (0.968, 0.951)]):
        for cid, value in (("r1c1", a), ("r1c0", b)):
            key = f"{cid}/confirm/AdamW@0.003/s{1000 + offset}"
            evaluations[key] = {"key": key, "kind": "confirm", "candidate_id": cid, "metric": value,
                                "status": "completed", "seed": 1000 + offset, "training": adam}
    first = selection.seed_statistics([0.970, 0.972, 0.968])
    second = selection.seed_statistics([0.950, 0.948, 0.951])
    difference, margin, significant = selection.gap_beats_noise(first, second)
    return {
        "task": task, "run_name": "demo", "run_dir": "runs/demo", "round": 1, "elapsed_s": 42.0,
        "stop_reason": "max_rounds 1 done", "candidates": candidates, "evaluations": evaluations,
        "decisions": [{"node": "propose", "text": "Round 1 (draft): baseline plus random designs."},
                      {"node": "select", "text": "Winner r1c1"}],
        "failures": [{"candidate_id": "r1c3", "stage": "assemble", "error": "unknown layer type 'Conv9d'",
                      "traceback": "Traceback...\nBlueprintError: unknown layer type 'Conv9d'"}],
        "final": {"winner": {"label": "r1c1:AdamW@0.003", "candidate_id": "r1c1", "training": adam,
                             "stats": first},
                  "runner_up": {"label": "r1c0:AdamW@0.003", "candidate_id": "r1c0", "training": adam,
                                "stats": second},
                  "difference": difference, "margin": margin, "significant": significant},
        "full_training": {"status": "completed", "best_metric": {"name": "accuracy", "value": 0.98, "epoch": 3},
                          "final_eval": {"accuracy": 0.98}, "duration_s": 5.0,
                          "best_checkpoint_path": "runs/demo/full_training/best/checkpoints/best.pt",
                          "history": [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.8, "accuracy": 0.9},
                                      {"epoch": 2, "train_loss": 0.5, "val_loss": 0.4, "accuracy": 0.96},
                                      {"epoch": 3, "train_loss": 0.3, "val_loss": 0.3, "accuracy": 0.98}]},
    }


def test_leaderboard_ranks_quick_then_screen_then_failures():
    rows = leaderboard_rows(_state())
    assert [row["candidate"] for row in rows] == ["r1c1", "r1c0", "r1c2", "r1c3", "r1c4"]
    assert rows[0]["seconds"] == 3.0 and rows[2]["budget"] == "screen"


def test_pareto_front_keeps_only_undominated_points():
    points = [(12000, 0.95), (90000, 0.97), (5000, 0.5), (100000, 0.96)]
    assert pareto_front(points) == [0, 1, 2]
    assert pareto_front([(1, 0.3), (2, 0.2)], maximize=False) == [0, 1]
    assert pareto_front([(1, 0.2), (2, 0.3)], maximize=False) == [0]


def test_report_has_every_section_and_its_plots(workspace):
    path = write_report(_state())
    assert path == "runs/demo/report.md"
    text = (workspace / path).read_text()
    for heading in ("# Research report: demo", "**Goal:** Small accurate digits model", "## Result",
                    "## Leaderboard", "## Accuracy vs parameters", "## Best model: training curves",
                    "## Seed confirmation", "## Decisions", "## Failures", "## Reproducibility"):
        assert heading in text, heading
    assert "larger than the seed noise" in text and "NOT larger" not in text
    assert "0.9700 ± 0.0020" in text
    assert "`r1c3` at **assemble**: unknown layer type 'Conv9d'" in text
    assert "`r1c4` rejected at **inspect**" in text
    for image in ("pareto.png", "curves.png"):
        assert (workspace / "runs/demo" / image).read_bytes()[:4] == b"\x89PNG"


def test_a_run_without_a_winner_still_gets_a_report(workspace):
    state = _state()
    state.update(final={}, full_training={}, evaluations={},
                 candidates={"r1c3": state["candidates"]["r1c3"]})
    text = (workspace / write_report(state)).read_text()
    assert "there is no winner" in text
    assert not (workspace / "runs/demo/pareto.png").exists()


def test_seed_statistics_and_noise_test():
    tied = selection.gap_beats_noise(selection.seed_statistics([0.9, 0.95, 0.85]),
                                     selection.seed_statistics([0.91, 0.86, 0.93]))
    assert tied[2] is False
    single = selection.gap_beats_noise(selection.seed_statistics([0.9]), selection.seed_statistics([0.8]))
    assert single[2] is False


def test_time_use_splits_the_wall_time_into_training_evaluation_and_orchestration(workspace):
    from torchscout.agent.run_result import build_result
    from torchscout.agent.time_use import joined_seconds

    state = _state()
    # two evaluations that overlapped for one second (parallel workers): the wall time counts it once
    state["evaluations"]["r1c0/quick"]["timings"] = {"data_s": 0.5, "train_steps_s": 1.0, "validation_s": 0.25,
                                                    "total_s": 2.0, "wall_s": 2.25, "started_at": 1000.0}
    state["evaluations"]["r1c1/quick"]["timings"] = {"data_s": 0.5, "train_steps_s": 2.0, "validation_s": 0.25,
                                                    "total_s": 3.0, "wall_s": 3.25, "started_at": 1001.25}
    state["full_training"]["timings"] = {"train_steps_s": 4.0, "validation_s": 0.5, "results_s": 0.5}
    state["node_seconds"] = {"evaluate": 6.0, "full_train": 6.0, "assemble": 3.0, "propose": 1.0, "analyze": 2.0}
    use = build_result(state)["time_use"]
    assert use["wall_s"] == 42.0
    assert use["training_s"] == 1.25 + 2.25 + 4.5 and use["training_fraction"] == round(8.0 / 42.0, 4)
    assert use["in_evaluations_s"] == 4.5 + 6.0 and use["evaluation_fraction"] == round(10.5 / 42.0, 4)
    assert use["orchestration_s"] == 42.0 - 10.5
    assert list(use["nodes_s"]) == ["evaluate", "full_train", "assemble", "analyze", "propose"]  # biggest first
    assert use["evaluation_phases_s"] == {"data_s": 1.0, "train_steps_s": 3.0, "validation_s": 0.5, "wall_s": 5.5}
    assert joined_seconds([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0), (5.5, 5.75)]) == 4.0
    text = (workspace / write_report(state)).read_text()
    assert "## Time use" in text
    assert "Wall time 42.0 s: 25% in evaluations and full training (10.5 s), of which 19% of the wall time" in text
    assert "Other steps: assemble 3.0 s, analyze 2.0 s, propose 1.0 s." in text


def test_node_seconds_add_up_across_updates():
    from torchscout.agent.records import add_seconds

    assert add_seconds(None, {"evaluate": 0.5}) == {"evaluate": 0.5}
    assert add_seconds({"evaluate": 0.5, "propose": 1.0}, {"evaluate": 0.25}) == {"evaluate": 0.75, "propose": 1.0}
