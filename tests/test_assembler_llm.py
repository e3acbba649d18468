"""pytorch_model_assembler with an LLM configured: unknown block types are written by the model."""

from __future__ import annotations

import pytest
import torch

from tests.llm_helpers import python_block, scripted
from torchscout.settings import configure
from torchscout.tools.codegen.pipeline import CodeGenerationError
from torchscout.tools.loading import load_class
from torchscout.tools.modeling.assembler import pytorch_model_assembler
from torchscout.tools.modeling.blueprint import BlueprintError

CONFIG = {
    "model_name": "GatedMLP",
    "input_shape": [16, 64],
    "layers": [
        {"type": "LayerNorm"},
        {"type": "SwiGLU", "params": {"dim": 64, "hidden_dim": 128}},
        {"type": "Mean", "params": {"dim": 1}},
        {"type": "Linear", "params": {"out_features": 4}},
    ],
}

SWIGLU = '''
import torch
from torch import nn
import torch.nn.functional as F


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))
'''

# a realistic first attempt: the projection back to `dim` is missing, so shapes do not line up
SWIGLU_WRONG_SHAPES = SWIGLU.replace("self.w2(F.silu(self.w1(x)) * self.w3(x))", "F.silu(self.w1(x)) * self.w3(x.T)")


def test_the_llm_writes_a_missing_block_and_repairs_it(workspace):
    model = scripted(python_block(SWIGLU_WRONG_SHAPES), python_block(SWIGLU))
    configure(llm=model)
    result = pytorch_model_assembler(CONFIG, "src/models/gated_mlp.py")
    assert result["backend"] == "builtin+llm:CountingChatModel"
    assert result["generated_blocks"] == ["src/models/gated_mlp_swi_glu.py"]
    assert result["custom_blocks"] == {"SwiGLU": "src/models/gated_mlp_swi_glu.py"}
    assert result["output_shape"] == [4]
    assert len(model.requests) == 2
    first_request = model.requests[0][-1].content
    assert "Write the block `SwiGLU`" in first_request and "[2, 16, 64]" in first_request
    assert "failed at the validate stage" in model.requests[1][-1].content
    block_source = (workspace / "src/models/gated_mlp_swi_glu.py").read_text()
    assert block_source.startswith("# Written by torchscout's pytorch_model_assembler for SwiGLU")
    assert "class SwiGLU(nn.Module):" in block_source
    net = load_class("src/models/gated_mlp.py", "GatedMLP", base=torch.nn.Module)().eval()
    assert net(torch.randn(3, 16, 64)).shape == (3, 4)
    assert result["total_params"] == sum(p.numel() for p in net.parameters())


def test_a_model_that_never_gets_it_right_leaves_no_files(workspace):
    configure(llm=scripted(*[python_block(SWIGLU_WRONG_SHAPES)] * 4))
    with pytest.raises(CodeGenerationError) as caught:
        pytorch_model_assembler(CONFIG, "src/models/gated_mlp.py")
    assert caught.value.stage == "validate"
    # the same wrong file twice raises the temperature; a third time stops the loop early
    assert "after 3 attempt(s)" in str(caught.value)
    assert "repeated the same failing answer 3 times; stopped early" in str(caught.value)
    assert "RuntimeError" in str(caught.value)
    assert not (workspace / "src").exists()


def test_a_repeated_assembly_replays_from_the_cache(workspace):
    configure(llm=scripted(python_block(SWIGLU)))
    first = pytorch_model_assembler(CONFIG, "src/models/gated_mlp.py")
    replay = scripted()  # no answers at all: a single call would fail
    configure(llm=replay)
    second = pytorch_model_assembler(CONFIG, "src/models/gated_mlp.py")
    assert replay.requests == []
    assert second["total_params"] == first["total_params"]


def test_a_file_of_the_user_is_never_overwritten_by_a_generated_block(workspace):
    (workspace / "src/models").mkdir(parents=True)
    mine = workspace / "src/models/gated_mlp_swi_glu.py"
    mine.write_text("# my own notes\n")
    silent = scripted()
    configure(llm=silent)
    with pytest.raises(BlueprintError, match="exists and was not written by the assembler"):
        pytorch_model_assembler(CONFIG, "src/models/gated_mlp.py")
    assert mine.read_text() == "# my own notes\n"
    assert silent.requests == []


def test_known_layers_never_reach_the_llm(workspace):
    silent = scripted()
    configure(llm=silent)
    result = pytorch_model_assembler(
        {"model_name": "Tiny", "input_shape": [8], "layers": [{"type": "Linear", "params": {"out_features": 2}}]},
        "tiny.py",
    )
    assert result["backend"] == "builtin"
    assert silent.requests == []
