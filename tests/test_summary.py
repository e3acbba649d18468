"""pytorch_model_summary: measured parameters, FLOPs and per-layer shapes, checked against torchvision and torchinfo."""

from __future__ import annotations

import pytest
import torchvision
from torchinfo import summary as torchinfo_summary

from tests.llm_helpers import scripted
from torchscout.settings import configure
from torchscout.tools import pytorch_model_summary as summary_tool
from torchscout.tools.errors import ToolError, UserCodeError
from torchscout.tools.modeling.summary import pytorch_model_summary

TORCHVISION_MODELS = '''
from torchvision.models import VisionTransformer
from torchvision.models.resnet import BasicBlock, ResNet


class ResNet18(ResNet):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)


class SmallViT(VisionTransformer):
    def __init__(self) -> None:
        super().__init__(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                         mlp_dim=64, num_classes=10)
'''

SMALL_MODELS = '''
import torch
from torch import nn


class TiedLM(nn.Module):
    """Token ids -> logits, with the output projection tied to the embedding."""

    def __init__(self, vocab: int = 50, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mix = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids):
        return self.head(torch.relu(self.mix(self.embed(ids))))


class FlatCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(8 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(self.flatten(torch.relu(self.conv(x))))


class DataDependent(nn.Module):
    """Branches on a tensor value, which the meta device cannot do: measured on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        if x.abs().sum().item() >= 0:
            return self.fc(x)
        return x[:, :2]


class Recurrent(nn.Module):
    """An LSTM classifier; with ``check_values`` it reads a tensor value, forcing a real CPU run."""

    def __init__(self, check_values: bool = False) -> None:
        super().__init__()
        self.check_values = check_values
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        if self.check_values and x.isnan().any().item():
            raise ValueError("NaN input")
        return self.fc(self.lstm(x)[0][:, -1])


class Frozen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)
        for parameter in self.backbone.parameters():
            parameter.requires_grad = False

    def forward(self, x):
        return self.head(self.backbone(x))


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        raise ValueError("Broken.forward always fails")
'''


@pytest.fixture
def scripts(workspace):
    (workspace / "models").mkdir()
    (workspace / "models/vision.py").write_text(TORCHVISION_MODELS)
    (workspace / "models/small.py").write_text(SMALL_MODELS)
    return workspace


def torchinfo_rows(model, input_size):
    stats = torchinfo_summary(model, input_size=input_size, verbose=0, depth=20)
    return [(layer.class_name, list(layer.output_size)) for layer in stats.summary_list], stats


def test_resnet18_matches_torchvision_and_torchinfo(scripts):
    result = pytorch_model_summary("models/vision.py", "ResNet18", (1, 3, 224, 224), detail="full")
    assert result["total_params"] == 11_689_512
    assert result["trainable_params"] == 11_689_512
    assert result["macs"] == pytest.approx(1.82e9, rel=0.01)
    assert result["flops"] == pytest.approx(3.63e9, rel=0.01)
    assert result["output_shape"] == [1, 1000]
    assert result["param_memory_bytes"] == 11_689_512 * 4
    reference, stats = torchinfo_rows(torchvision.models.resnet18(weights=None), (1, 3, 224, 224))
    ours = [(row["type"] if row["depth"] else "ResNet", row["output_shape"]) for row in result["layer_details"]]
    assert ours == reference
    assert result["macs"] == pytest.approx(stats.total_mult_adds, rel=0.01)
    first_conv = result["layer_details"][1]
    assert first_conv == {**first_conv, "name": "conv1", "type": "Conv2d", "depth": 1, "params": 9408,
                          "output_shape": [1, 64, 112, 112], "flops": 236_027_904}
    assert "├─Conv2d: 1-1" in result["summary_str"]
    assert "Total params: 11,689,512" in result["summary_str"]


def test_a_small_vit_matches_torchinfo_layer_by_layer(scripts):
    result = pytorch_model_summary("models/vision.py", "SmallViT", [2, 3, 32, 32], detail="full")
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                               hidden_dim=32, mlp_dim=64, num_classes=10)
    reference, stats = torchinfo_rows(vit, (2, 3, 32, 32))
    ours = [(row["type"] if row["depth"] else "VisionTransformer", row["output_shape"])
            for row in result["layer_details"]]
    assert ours == reference
    assert result["total_params"] == stats.total_params == sum(p.numel() for p in vit.parameters())
    # attention FLOPs are counted too (torchinfo's mult-adds miss them): ours must be at least as high
    assert result["macs"] >= stats.total_mult_adds


def test_tied_weights_count_once_and_token_ids_work(scripts):
    result = pytorch_model_summary("models/small.py", "TiedLM", [2, 7], input_dtype="int64",
                                   model_kwargs={"vocab": 100, "dim": 8}, detail="full")
    assert result["total_params"] == 100 * 8 + (8 * 8 + 8)
    assert result["output_shape"] == [2, 7, 100]
    head = next(row for row in result["layer_details"] if row["name"] == "head")
    assert head["flops"] == 2 * 2 * 7 * 8 * 100


def test_the_builtin_analysis_names_a_dominant_linear_after_flatten(scripts):
    result = pytorch_model_summary("models/small.py", "FlatCNN", [1, 3, 32, 32])
    assert result["analysis_backend"] == "builtin"
    assert "fc (Linear) holds 99.7% of the 82,154 parameters" in result["analysis"]
    assert "spatial bottleneck" in result["analysis"]
    assert "FLOPs" in result["analysis"]


def test_a_model_needing_real_values_is_measured_on_the_cpu(scripts):
    result = pytorch_model_summary("models/small.py", "DataDependent", [3, 4])
    assert result["measured_on"] == "cpu"
    assert result["total_params"] == 10
    assert result["flops"] == 2 * 3 * 4 * 2


@pytest.mark.parametrize(("check_values", "device"), [(False, "meta"), (True, "cpu")])
def test_recurrent_flops_are_counted_on_both_paths(scripts, check_values, device):
    result = pytorch_model_summary("models/small.py", "Recurrent", [2, 10, 8],
                                   model_kwargs={"check_values": check_values}, detail="full")
    assert result["measured_on"] == device
    lstm = next(row for row in result["layer_details"] if row["type"] == "LSTM")
    assert lstm["flops"] == 2 * 2 * 10 * (8 * 64 + 16 * 64)  # input and hidden matmuls, 4 gates
    assert lstm["output_shape"] == [2, 10, 16]


def test_frozen_parameters_are_reported(scripts):
    result = pytorch_model_summary("models/small.py", "Frozen", [1, 4])
    assert (result["total_params"], result["trainable_params"], result["non_trainable_params"]) == (30, 10, 20)
    assert "20 parameters are frozen" in result["analysis"]


def test_an_llm_writes_the_analysis_from_the_measured_table(scripts):
    paragraph = "The fc layer dominates: flatten feeds 8,192 features into it."
    model = scripted(paragraph)
    configure(llm=model)
    result = pytorch_model_summary("models/small.py", "FlatCNN", [1, 3, 32, 32])
    assert result["analysis"] == paragraph
    assert result["analysis_backend"] == "llm:CountingChatModel"
    request = model.requests[0][-1].content
    assert "fc | Linear | [1, 10] | 81,930" in request and "class FlatCNN" in request
    assert result["total_params"] == 224 + 81_930  # numbers never come from the model


def test_errors_name_the_problem(scripts):
    with pytest.raises(UserCodeError, match="Broken.forward always fails"):
        pytorch_model_summary("models/small.py", "Broken", [1, 4])
    with pytest.raises(ToolError, match="defines no class or function named 'Missing'.*TiedLM"):
        pytorch_model_summary("models/small.py", "Missing", [1, 4])
    with pytest.raises(ToolError, match="input_size must be a list of positive integers"):
        pytorch_model_summary("models/small.py", "FlatCNN", [1, 0])
    with pytest.raises(ToolError, match="outside the workspace"):
        pytorch_model_summary("../small.py", "FlatCNN", [1, 4])


def test_the_tool_object_accepts_the_prd_call(scripts):
    result = summary_tool.invoke({"model_script_path": "models/small.py", "model_class_name": "FlatCNN",
                                  "input_size": [1, 3, 32, 32]})
    assert result["total_params"] == 224 + 81_930
    assert set(result) >= {"summary_str", "total_params", "trainable_params", "flops", "layer_details"}
    error = summary_tool.invoke({"model_script_path": "models/small.py", "model_class_name": "Broken",
                                 "input_size": [1, 4]})
    assert error.startswith("Error: ") and "Broken.forward always fails" in error


def test_the_default_answer_is_brief_and_the_full_table_is_in_the_workspace(workspace):
    import json

    answer = summary_tool.invoke({"model_script_path": "torchvision.models:resnet50", "input_size": [1, 3, 224, 224]})
    assert len(json.dumps(answer)) <= 4_000
    assert answer["status"] == "success" and answer["detail"] == "brief"
    assert (answer["total_params"], answer["macs"]) == (25_557_032, 4_089_184_256)
    assert {row["depth"] for row in answer["layer_details"]} == {0, 1}
    assert [row["name"] for row in answer["layer_details"]][-2:] == ["avgpool", "fc"]
    assert answer["table_path"] in answer["message"] and "Largest 5 layers by FLOPs" in answer["summary_str"]
    full = pytorch_model_summary("torchvision.models:resnet50", None, [1, 3, 224, 224], detail="full")
    every_row = json.loads((workspace / answer["layers_path"]).read_text())
    assert every_row == full["layer_details"] and len(every_row) == 183  # one per module call, as torchinfo
    table = (workspace / answer["table_path"]).read_text()
    assert "Total params: 25,557,032" in table and "│    │    └─Conv2d: 3-1" in table
    assert len(table.splitlines()) > 183 and "table_path" not in full
    deeper = pytorch_model_summary("torchvision.models:resnet50", None, [1, 3, 224, 224], detail=2)
    assert {row["depth"] for row in deeper["layer_details"]} == {0, 1, 2}
    assert "└─Bottleneck: 2-1" in deeper["summary_str"] and len(json.dumps(deeper)) <= 16_000
    # the longest answer before (EfficientNet-V2-L, 399K characters): the rows down to depth 2, within the limit
    largest = summary_tool.invoke({"model_script_path": "torchvision.models:efficientnet_v2_l",
                                   "input_size": [1, 3, 224, 224]})
    assert len(json.dumps(largest)) <= 4_000 and largest["total_params"] == 118_515_272
    assert max(row["depth"] for row in largest["layer_details"]) == 2
    error = summary_tool.invoke({"model_script_path": "torchvision.models:resnet50", "input_size": [1, 3, 224, 224],
                                 "detail": "everything"})
    assert error.startswith("Error: ") and "detail" in error


@pytest.mark.slow
def test_published_parameters_and_macs_of_a_few_torchvision_models(workspace):
    """The numbers torchvision publishes with its weights, measured shape-only (RegNet included)."""
    for name in ("regnet_y_400mf", "regnet_x_3_2gf", "vit_b_16", "efficientnet_b0", "convnext_tiny", "swin_t"):
        weights = torchvision.models.get_model_weights(name).IMAGENET1K_V1
        crop = weights.transforms().crop_size[0]
        answer = pytorch_model_summary(f"torchvision.models:{name}", None, [1, 3, crop, crop])
        assert answer["measured_on"] == "meta"
        assert answer["total_params"] == weights.meta["num_params"], name
        assert round(answer["macs"] / 1e9, 3) == weights.meta["_ops"], name


def test_three_hundred_top_level_layers_still_fit(workspace):
    import json

    (workspace / "wide.py").write_text("from torch import nn\n\n\ndef wide(count=300):\n"
                                       "    return nn.Sequential(*[nn.Linear(4, 4) for _ in range(count)])\n")
    answer = summary_tool.invoke({"model_script_path": "wide.py", "model_class_name": "wide", "input_size": [2, 4]})
    assert len(json.dumps(answer)) <= 4_000 and answer["total_params"] == 300 * 20
    shown = len(answer["layer_details"])
    assert 10 < shown < 301 and answer["layer_details_shown"] == f"{shown} of 301 rows down to depth 1"
    assert f"{shown} of 301 rows" in answer["message"]
    assert len((workspace / answer["table_path"]).read_text().splitlines()) > 301
