"""pytorch_model_assembler with the builtin compiler: blueprints in, validated idiomatic PyTorch out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torchscout.tools import pytorch_model_assembler as assembler_tool
from torchscout.tools.errors import UserCodeError, WorkspaceError
from torchscout.tools.loading import load_class
from torchscout.tools.modeling.assembler import pytorch_model_assembler
from torchscout.tools.modeling.blueprint import BlueprintError
from torchscout.tools.modeling.blueprint_compiler import compile_blueprint
from torchscout.tools.modeling.shape_inference import all_torch_nn_layers

SIMPLE_CNN = {  # the PRD's example, verbatim
    "model_name": "SimpleCNN",
    "input_shape": [3, 32, 32],
    "layers": [
        {"type": "Conv2d", "params": {"in_channels": 3, "out_channels": 16, "kernel_size": 3, "padding": 1}},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "params": {"kernel_size": 2}},
        {"type": "Flatten"},
        {"type": "Linear", "params": {"out_features": 10}},
    ],
}

BLOCKS_SOURCE = '''
import torch
from torch import nn


class CustomAttentionBlock(nn.Module):
    """Self-attention over the spatial positions of a feature map."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        attended, _ = self.attention(tokens, tokens, tokens)
        return attended.transpose(1, 2).reshape(n, c, h, w) + x


class Exploding(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x):
        raise RuntimeError(f"Exploding block refuses inputs of width {x.shape[-1]}")
'''


def build(config, path="src/models/model.py"):
    result = pytorch_model_assembler(config, path)
    model = load_class(path, config["model_name"], base=torch.nn.Module)()
    return result, model.eval()


def forward(model, *shape, dtype=torch.float32):
    with torch.no_grad():
        sample = torch.zeros(shape, dtype=dtype) if dtype == torch.long else torch.randn(shape)
        return model(sample)


def n_params(model):
    return sum(parameter.numel() for parameter in model.parameters())


def test_the_prd_simple_cnn(workspace):
    result, model = build(SIMPLE_CNN, "src/models/assembled_simple_cnn.py")
    assert result == {
        "status": "success",
        "output_script_path": "src/models/assembled_simple_cnn.py",
        "model_name": "SimpleCNN",
        "backend": "builtin",
        "input_shape": [3, 32, 32],
        "input_dtype": "float32",
        "output_shape": [10],
        "total_params": 41_418,
        "inferred": {"layers[4].in_features": 4096},
        "custom_blocks": {},
    }
    assert n_params(model) == 41_418
    assert forward(model, 4, 3, 32, 32).shape == (4, 10)
    source = (workspace / "src/models/assembled_simple_cnn.py").read_text()
    assert "self.linear_1 = nn.Linear(in_features=4096, out_features=10)" in source
    assert "x = self.max_pool2d_1(x)  # (N, 16, 16, 16)" in source
    assert '"model_name": "SimpleCNN"' in source  # the source config is in the docstring
    assert "torchscout" not in source.replace("torchscout's pytorch_model_assembler", "")
    # the __main__ smoke test runs without torchscout, from any working directory
    run = subprocess.run([sys.executable, str(workspace / "src/models/assembled_simple_cnn.py")],
                         capture_output=True, text=True, cwd="/", timeout=120)
    assert run.returncode == 0, run.stderr
    assert "SimpleCNN: (2, 3, 32, 32) -> (2, 10), 41,418 parameters" in run.stdout


def test_conv_batchnorm_and_linear_dimensions_are_inferred():
    config = {
        "model_name": "InferredCNN",
        "input_shape": [3, 16, 16],
        "layers": [
            {"type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3}},
            {"type": "BatchNorm2d"},
            {"type": "ReLU", "params": {"inplace": True}},
            {"type": "Conv2d", "params": {"out_channels": 16, "kernel_size": 3, "stride": 2}},
            {"type": "GroupNorm", "params": {"num_groups": 4}},
            {"type": "AdaptiveAvgPool2d", "params": {"output_size": [1, 1]}},
            {"type": "Flatten"},
            {"type": "Linear", "params": {"out_features": 10}},
        ],
    }
    result, model = build(config)
    assert result["inferred"] == {
        "layers[0].in_channels": 3,
        "layers[1].num_features": 8,
        "layers[3].in_channels": 8,
        "layers[4].num_channels": 16,
        "layers[7].in_features": 16,
    }
    assert result["total_params"] == n_params(model)
    assert forward(model, 2, 3, 16, 16).shape == (2, 10)


def test_token_ids_through_embedding_lstm_layernorm(workspace):
    config = {
        "model_name": "TextLSTM",
        "input_shape": [12],
        "input_dtype": "int64",
        "layers": [
            {"type": "Embedding", "params": {"num_embeddings": 100, "embedding_dim": 32}},
            {"type": "LSTM", "params": {"hidden_size": 64}, "output_index": 0},
            {"type": "LayerNorm"},
            {"type": "Last", "params": {"dim": 1}},
            {"type": "Linear", "params": {"out_features": 5}},
        ],
    }
    result, model = build(config)
    assert result["input_dtype"] == "int64"
    assert result["output_shape"] == [5]
    assert result["inferred"] == {
        "layers[1].input_size": 32,
        "layers[1].batch_first": True,
        "layers[2].normalized_shape": 64,
        "layers[4].in_features": 64,
    }
    assert forward(model, 3, 12, dtype=torch.long).shape == (3, 5)
    source = (workspace / "src/models/model.py").read_text()
    assert "x = self.lstm_1(x)[0]  # (N, 12, 64)" in source
    assert "class Last(nn.Module):" in source


def test_self_attention_gets_its_input_three_times_and_mean_pools():
    config = {
        "model_name": "TinyTransformer",
        "input_shape": [10, 32],
        "layers": [
            {"type": "MultiheadAttention", "params": {"num_heads": 4}, "output_index": 0},
            {"type": "TransformerEncoderLayer", "params": {"nhead": 4, "dim_feedforward": 64}},
            {"type": "Mean", "params": {"dim": 1}},
            {"type": "Linear", "params": {"out_features": 3}},
        ],
    }
    result, model = build(config)
    assert result["inferred"]["layers[0].embed_dim"] == 32
    assert result["inferred"]["layers[1].d_model"] == 32
    assert forward(model, 2, 10, 32).shape == (2, 3)


def test_residual_and_parallel_streams_nested_two_deep(workspace):
    config = {
        "model_name": "Nested",
        "input_shape": [8, 16, 16],
        "layers": [
            {"type": "Residual", "name": "stage", "layers": [
                {"type": "Conv2d", "params": {"out_channels": 16, "kernel_size": 3, "stride": 2, "padding": 1}},
                {"type": "Parallel", "merge": "concat", "dim": 1, "branches": [
                    [{"type": "Residual", "layers": [{"type": "Conv2d", "params": {"out_channels": 16, "kernel_size": 1}},
                                                     {"type": "ReLU"}]}],
                    [{"type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3, "padding": 1}}],
                    [],
                ]},
            ]},
            {"type": "Parallel", "merge": "add", "branches": [
                [{"type": "Sequential", "layers": [{"type": "Conv2d", "params": {"out_channels": 40, "kernel_size": 1}}]}],
                [{"type": "Identity"}],
            ]},
            {"type": "Parallel", "merge": "mul", "branches": [[{"type": "Sigmoid"}], [{"type": "Tanh"}]]},
            {"type": "AdaptiveAvgPool2d", "params": {"output_size": 1}},
            {"type": "Flatten"},
            {"type": "Linear", "params": {"out_features": 4}},
        ],
    }
    result, model = build(config)
    # 16 + 8 + 16 channels after the concat; the outer residual needs a strided 1x1 projection
    assert result["inferred"]["layers[0].projection"] == (
        "nn.Conv2d(in_channels=8, out_channels=40, kernel_size=1, bias=False, stride=2)")
    assert result["output_shape"] == [4]
    assert result["total_params"] == n_params(model)
    assert forward(model, 2, 8, 16, 16).shape == (2, 4)
    source = (workspace / "src/models/model.py").read_text()
    assert "torch.cat([b1, b2, h1], dim=1)" in source
    assert "self.stage_projection_1 = nn.Conv2d(" in source


def test_an_inplace_activation_never_overwrites_a_tensor_the_shortcut_needs():
    config = {"model_name": "PreActivation", "input_shape": [4, 8, 8], "layers": [
        {"type": "Residual", "layers": [{"type": "ReLU", "params": {"inplace": True}},
                                        {"type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 3, "padding": 1}}]},
        {"type": "ReLU", "params": {"inplace": True}},
    ]}
    result, model = build(config)
    assert result["inferred"]["layers[0].layers[0].inplace"] is False
    assert "layers[1].inplace" not in result["inferred"]
    sample = torch.randn(2, 4, 8, 8)
    body = model.conv2d_1(torch.relu(sample))
    with torch.no_grad():
        assert torch.allclose(model(sample.clone()), torch.relu(body + sample), atol=1e-6)


def test_a_custom_block_from_module_path_is_loaded_by_the_generated_file(workspace):
    (workspace / "src/models").mkdir(parents=True)
    (workspace / "src/models/custom_blocks.py").write_text(BLOCKS_SOURCE)
    config = {
        "model_name": "AttentionCNN",
        "input_shape": [3, 32, 32],
        "layers": [
            {"type": "Conv2d", "params": {"in_channels": 3, "out_channels": 64, "kernel_size": 3, "stride": 2, "padding": 1}},
            {"type": "ReLU", "params": {"inplace": True}},
            {"type": "MaxPool2d", "params": {"kernel_size": 2, "stride": 2}},
            {"type": "CustomAttentionBlock", "module_path": "src/models/custom_blocks.py", "params": {"dim": 64, "heads": 8}},
            {"type": "AdaptiveAvgPool2d", "params": {"output_size": [1, 1]}},
            {"type": "Flatten"},
            {"type": "Linear", "params": {"out_features": 10}},
        ],
    }
    result, model = build(config, "experiments/nets/attention_cnn.py")
    assert result["custom_blocks"] == {"CustomAttentionBlock": "src/models/custom_blocks.py"}
    assert forward(model, 2, 3, 32, 32).shape == (2, 10)
    source = (workspace / "experiments/nets/attention_cnn.py").read_text()
    assert "PROJECT_ROOT = Path(__file__).resolve().parents[2]" in source
    assert "CustomAttentionBlock = load_block('src/models/custom_blocks.py', 'CustomAttentionBlock')" in source
    run = subprocess.run([sys.executable, str(workspace / "experiments/nets/attention_cnn.py")],
                         capture_output=True, text=True, cwd="/", timeout=120)
    assert run.returncode == 0, run.stderr


def test_an_unknown_type_names_the_closest_torch_nn_layers(workspace):
    config = {**SIMPLE_CNN, "layers": [{"type": "Conv2D", "params": {"out_channels": 4, "kernel_size": 3}}]}
    with pytest.raises(BlueprintError, match=r"layers\[0\].type: 'Conv2D' is not a torch.nn layer.*did you mean Conv2d"):
        pytorch_model_assembler(config, "model.py")
    assert not (workspace / "model.py").exists()


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"type": "Linear", "params": {"out_feature": 10}}, r"Linear has no argument 'out_feature' \(did you mean 'out_features'"),
        ({"type": "Conv2d", "params": {"kernel_size": 3}}, "Conv2d needs out_channels in params"),
        ({"type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 64}}, r"failed on an input of shape \(N, 3, 32, 32\)"),
        ({"type": "Linear", "params": {"out_features": "ten"}}, "could not be created"),
        ({"type": "ReLU", "output_index": 0}, "returns a single tensor"),
        ({"type": "Residual", "layers": []}, "Residual needs at least one layer"),
        ({"type": "Parallel", "branches": [[{"type": "Flatten"}], [{"type": "Identity"}]]}, "cannot be merged by concat"),
    ],
)
def test_bad_layers_are_reported_with_their_location(workspace, layer, message):
    config = {"model_name": "Broken", "input_shape": [3, 32, 32], "layers": [{"type": "ReLU"}, layer]}
    with pytest.raises(BlueprintError, match=message):
        pytorch_model_assembler(config, "broken.py")
    assert not (workspace / "broken.py").exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model_name": "9lives", "input_shape": [3], "layers": [{"type": "ReLU"}]}, "model_name must be a Python class name"),
        ({"model_name": "M", "input_shape": [0, 3], "layers": [{"type": "ReLU"}]}, "input_shape must be a non-empty list of positive"),
        ({"model_name": "M", "input_shape": [3], "layers": []}, "layers is empty"),
        ({"model_name": "M", "input_shape": [3], "input_dtype": "int8", "layers": [{"type": "ReLU"}]}, "input_dtype must be one of"),
        ({"model_name": "M", "input_shape": [3], "layers": [{"params": {}}]}, r"layers\[0\]: every layer needs a 'type'"),
        ({"model_name": "Mean", "input_shape": [3, 4], "layers": [{"type": "Mean"}]}, "already a name in the generated file"),
        ({"model_name": "M", "input_shape": [3], "layers": [{"type": "ReLU", "name": "forward"}]}, "would shadow"),
    ],
)
def test_malformed_blueprints_are_refused(config, message):
    with pytest.raises(BlueprintError, match=message):
        pytorch_model_assembler(config, "m.py")


def test_a_module_path_outside_the_workspace_is_refused(workspace, tmp_path):
    outside = tmp_path / "evil_blocks.py"
    outside.write_text(BLOCKS_SOURCE)
    config = {"model_name": "M", "input_shape": [4, 8, 8],
              "layers": [{"type": "CustomAttentionBlock", "module_path": str(outside), "params": {"dim": 4, "heads": 1}}]}
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        pytorch_model_assembler(config, "m.py")
    config["layers"][0]["module_path"] = "../evil_blocks.py"
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        pytorch_model_assembler(config, "m.py")


def test_a_custom_block_whose_forward_raises_is_reported(workspace):
    (workspace / "blocks.py").write_text(BLOCKS_SOURCE)
    config = {"model_name": "M", "input_shape": [4, 8],
              "layers": [{"type": "Exploding", "module_path": "blocks.py", "params": {"dim": 8}}]}
    with pytest.raises(UserCodeError, match="Exploding block refuses inputs of width 8"):
        pytorch_model_assembler(config, "m.py")
    assert not (workspace / "m.py").exists()


def test_the_tool_object_takes_the_prd_argument_names(workspace):
    from langchain_core.utils.function_calling import convert_to_openai_tool

    schema = convert_to_openai_tool(assembler_tool)["function"]["parameters"]
    assert schema["required"] == ["model_config", "output_script_path"]
    result = assembler_tool.invoke({"model_config": SIMPLE_CNN, "output_script_path": "cnn.py"})
    assert result["total_params"] == 41_418
    error = assembler_tool.invoke({"model_config": {**SIMPLE_CNN, "input_shape": "3x32x32"},
                                   "output_script_path": "cnn2.py"})
    assert error.startswith("Error: model_config.input_shape must be")
    missing = assembler_tool.invoke({"model_config": SIMPLE_CNN})
    assert missing.startswith("Error: ") and "output_script_path" in missing


CORPUS = json.loads((Path(__file__).resolve().parent.parent / "evals/assembler_corpus.json").read_text())


@pytest.mark.parametrize("config", CORPUS, ids=[config["model_name"] for config in CORPUS])
def test_every_benchmark_blueprint_assembles_and_runs(config):
    result, model = build(config, f"corpus/{config['model_name']}.py")
    dtype = torch.long if config.get("input_dtype") == "int64" else torch.float32
    output = forward(model, 2, *config["input_shape"], dtype=dtype)
    assert list(output.shape[1:]) == result["output_shape"]
    assert result["total_params"] == n_params(model)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("layer_type", all_torch_nn_layers())
def test_every_torch_nn_layer_by_name_builds_or_explains_what_it_needs(workspace, layer_type):
    """Each torch.nn class, given no params, either compiles or fails with a located, actionable message."""
    config = {"model_name": "Probe", "input_shape": [4, 8, 8], "layers": [{"type": layer_type}]}
    try:
        result = compile_blueprint(config, str(workspace / "probe.py"))
    except BlueprintError as error:
        assert str(error).startswith("model_config.layers[0]")
        assert layer_type in str(error)
    else:
        assert f"nn.{layer_type}(" in result["code"]
