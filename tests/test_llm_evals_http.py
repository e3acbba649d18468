"""The LLM evals' per-purpose accounting against a real OpenAI-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.openai_server import Behaviour

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from evals.llm_evals import (  # noqa: E402
    custom_optimizer_eval,
    novel_blocks_eval,
    render_purpose_table,
    tokenizer_advice_eval,
)
from torchscout.settings import get_settings  # noqa: E402
from torchscout.tools.codegen.llm_usage import UsageScope, usage_by_purpose, usage_scope  # noqa: E402

SQUEEZE_EXCITE = '''```python
import torch
from torch import nn


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.gate(x.mean(dim=(2, 3)))
        return x * weights[:, :, None, None]
```'''


def _answer(body: dict) -> Behaviour:
    request = body["messages"][-1]["content"]
    if "Write the block `SqueezeExcite`" in request:
        return Behaviour(text=SQUEEZE_EXCITE)
    if "tokenizer" in body["messages"][0]["content"]:
        return Behaviour(text='{"type": "BPE", "vocab_size": 300, "reasons": ["84 distinct words"]}')
    return Behaviour(text="I am not sure how to write that.")


def test_each_purpose_reports_its_success_calls_tokens_and_seconds(llm_server):
    server = llm_server(respond=_answer, idle_s=5, timeout_s=20)
    scope = UsageScope()

    with usage_scope(scope):
        blocks = novel_blocks_eval(scope)
        optimizers = custom_optimizer_eval(scope)
        tokenizers = tokenizer_advice_eval(scope)

    assert blocks["pass_rate"] == 0.25 and optimizers["pass_rate"] == 0.0
    # a reply repeated after the changed request stops the loop: 3 calls per hopeless file, 1 for the good one
    assert blocks["calls"] == 1 + 3 * 3 and optimizers["calls"] == 3 * 3
    assert [outcome["chooser"] for outcome in tokenizers["outcomes"]][0] == "llm"
    usage = usage_by_purpose([record.as_json() for record in scope.records])
    assert sum(entry["requests"] for entry in usage.values()) == len(server.requests)
    assert all(entry["prompt_tokens"] > 0 and entry["seconds"] > 0 for entry in usage.values())
    table = "\n".join(render_purpose_table({"by_purpose": usage, "success": {
        "assembler-block": blocks["pass_rate"], "custom_optimizer": optimizers["pass_rate"],
        "tokenizer_advice": tokenizers["pass_rate"]}}))
    assert "| assembler-block | 25% | 10 | 10 | 10 |" in table
    assert "| custom_optimizer | 0% | 9 | 9 | 9 |" in table
    assert not list((get_settings().workspace / "evals_llm" / "optimizers").glob("*.py"))  # nothing failed reached disk
