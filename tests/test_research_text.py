"""A text task through the research loop: generated data, trained tokenizers, token-id models."""

from __future__ import annotations

import runpy
from pathlib import Path

from torchscout.agent.task import load_task
from torchscout.graphs.driver import research, run_state

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_text_task_trains_tokenizers_and_searches_token_models(workspace):
    generator = runpy.run_path(str(EXAMPLES / "make_text_synthetic.py"))
    generator["generate"](workspace / "data" / "text_synthetic.csv", rows=800, seed=0)
    task = load_task(EXAMPLES / "text_synthetic.yaml").model_dump()
    task["tokenizer"]["vocab_sizes"] = [120, 300]
    task["budget"].update(max_rounds=1, candidates_per_round=2, screen_steps=40, quick_epochs=3, full_epochs=0,
                          optimizer_trials=0, confirm_seeds=1, max_minutes=10)
    outcome = research(task, name="text")
    assert outcome["status"] == "finished"
    state = run_state("text")

    tokenizers = state["tokenizers"]
    assert sorted(entry["requested"] for entry in tokenizers.values()) == [120, 300]
    for entry in tokenizers.values():
        assert (workspace / entry["path"] / "tokenizer.json").is_file()
    assert (workspace / "runs/text/tokenizers/corpus.txt").read_text().count("\n") == 800

    candidates = list(state["candidates"].values())
    assert {candidate["vocab_size"] for candidate in candidates} <= {int(size) for size in tokenizers}
    embedding = candidates[0]["model_config"]["layers"][0]
    assert embedding["type"] == "Embedding" and embedding["params"]["num_embeddings"] == candidates[0]["vocab_size"]
    assert state["candidates"][outcome["best"]["candidate_id"]]["status"] == "evaluated"
    assert outcome["best"]["stats"]["mean"] > 0.5  # four topics: chance is 0.25
