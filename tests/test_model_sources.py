"""Any model source for the summary and the training tools: a workspace class, a workspace factory
function, an installed module's class or function by import spec."""

from __future__ import annotations

import pytest
import torch
import torchvision
import yaml

from tests.training_helpers import one_thread  # noqa: F401 - fixture
from torchscout.tools.errors import ToolError, UserCodeError
from torchscout.tools.loading import ModelSource, build_model, load_model_builder, parse_model_source
from torchscout.tools.modeling import summary_measure
from torchscout.tools.modeling.meta_build import build_without_weights
from torchscout.tools.modeling.summary import pytorch_model_summary
from torchscout.tools.training.evaluation import pytorch_full_trainer, pytorch_quick_evaluator

FACTORIES = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))

    def forward(self, x):
        return self.body(x)


def make_net(width: int = 8) -> nn.Module:
    return Net(width)


def make_mlp(hidden: int = 16) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def not_a_model() -> int:
    return 3


class WidthsFromTensors(nn.Module):
    """Computes its layer widths with tensors in the constructor (as torchvision's RegNets do)."""

    def __init__(self) -> None:
        super().__init__()
        widths = (torch.arange(3) * 4 + 8).tolist()
        self.register_buffer("scale", torch.linspace(0.5, 1.5, widths[-1]))
        self.shift = torch.ones(widths[-1])  # a plain attribute, not a buffer
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip([4, *widths[:-1]], widths))

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x * self.scale + self.shift


class WrongNorm(nn.Module):
    """A BatchNorm for 16 channels after a conv giving 8: the summary must report it, not measure it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.norm = nn.BatchNorm2d(16)

    def forward(self, x):
        return self.norm(self.conv(x))


class LargeAndDataDependent(nn.Module):
    """Its forward pass reads a value, so it can only be measured by a real build."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(1000, 1000)

    def forward(self, x):
        return self.fc(x) if x.sum().item() == x.sum().item() else x
'''


@pytest.fixture
def factories(workspace):
    (workspace / "models").mkdir()
    (workspace / "models/factories.py").write_text(FACTORIES)
    return "models/factories.py"


def test_the_two_arguments_name_one_source():
    assert parse_model_source("torchvision.models:resnet18", None) == ModelSource("import", "torchvision.models",
                                                                                   "resnet18")
    assert parse_model_source("torchvision.models:resnet18", "resnet18").name == "resnet18"
    assert parse_model_source("torchvision.models", "resnet18") == ModelSource("import", "torchvision.models",
                                                                               "resnet18")
    assert parse_model_source("src/models/net.py", "Net") == ModelSource("file", "src/models/net.py", "Net")
    assert parse_model_source("net.py", "make_net").kind == "file"
    with pytest.raises(ToolError, match="names 'resnet18' but model_class_name is 'vgg11'"):
        parse_model_source("torchvision.models:resnet18", "vgg11")
    with pytest.raises(ToolError, match="model_class_name must name a class or factory function"):
        parse_model_source("src/net.py", None)
    with pytest.raises(ToolError, match="must look like 'package.module:name'"):
        parse_model_source("src/net.py:Net", None)


def test_builders_load_from_files_and_modules(factories):
    net = build_model(load_model_builder(ModelSource("file", factories, "make_net"), torch.nn.Module),
                      {"width": 4}, torch.nn.Module, "make_net")
    assert sum(p.numel() for p in net.parameters()) == 64 * 4 + 4 + 4 * 10 + 10
    resnet = load_model_builder(parse_model_source("torchvision.models:resnet18", None), torch.nn.Module)
    assert resnet is torchvision.models.resnet18
    with pytest.raises(ToolError, match=r"not_a_model\(\*\*\{\}\) returned 'int', not an instance of Module"):
        build_model(load_model_builder(ModelSource("file", factories, "not_a_model"), torch.nn.Module), {},
                    torch.nn.Module, "not_a_model")
    with pytest.raises(ToolError, match="no installed module 'no_such_package.models'.*no_such_package/models.py"):
        load_model_builder(parse_model_source("no_such_package.models:Net", None), torch.nn.Module)
    with pytest.raises(ToolError, match="torchvision.models defines no class or function named 'resnet_19'"):
        load_model_builder(parse_model_source("torchvision.models:resnet_19", None), torch.nn.Module)


def test_a_constructor_computing_with_tensors_builds_without_weights(factories):
    builder = load_model_builder(ModelSource("file", factories, "WidthsFromTensors"), torch.nn.Module)
    model, how = build_without_weights(builder, {})
    assert how == "meta-parameters"  # the whole-meta build cannot turn a meta tensor into a list
    assert {tensor.device.type for tensor in [*model.parameters(), *model.buffers()]} == {"meta"}
    assert [layer.out_features for layer in model.layers] == [8, 12, 16] and model.shift.device.type == "meta"

    def tied_model():
        model = torch.nn.Sequential(torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5, bias=False))
        model[1].weight = model[0].weight
        torch.arange(2).tolist()  # forces the parameters-on-meta way
        return model

    built, how = build_without_weights(tied_model, {})
    assert how == "meta-parameters" and built[1].weight is built[0].weight


def test_summary_by_import_spec_and_by_factory_function(factories):
    resnet = pytorch_model_summary("torchvision.models:resnet18", None, [1, 3, 224, 224])
    assert (resnet["total_params"], resnet["macs"]) == (11_689_512, 1_814_073_344)
    assert resnet["model"] == "torchvision.models:resnet18" and resnet["measured_on"] == "meta"
    by_module = pytorch_model_summary("torchvision.models", "resnet18", [1, 3, 224, 224],
                                      model_kwargs={"num_classes": 10})
    assert by_module["total_params"] == 11_689_512 - 513 * 990
    factory = pytorch_model_summary(factories, "make_net", [2, 1, 8, 8], model_kwargs={"width": 4})
    direct = pytorch_model_summary(factories, "Net", [2, 1, 8, 8], model_kwargs={"width": 4})
    assert factory["total_params"] == direct["total_params"] == 64 * 4 + 4 + 4 * 10 + 10
    assert factory["flops"] == direct["flops"] == 2 * 2 * (64 * 4 + 4 * 10)
    assert factory["model"] == "models/factories.py:make_net"
    regnet_like = pytorch_model_summary(factories, "WidthsFromTensors", [3, 4])
    assert regnet_like["measured_on"] == "meta" and regnet_like["output_shape"] == [3, 16]


def test_summary_errors_for_sources(factories):
    with pytest.raises(ToolError, match="returned 'int'"):
        pytorch_model_summary(factories, "not_a_model", [1, 4])
    with pytest.raises(ToolError, match="no installed module 'nowhere'"):
        pytorch_model_summary("nowhere:Net", None, [1, 4])
    with pytest.raises(UserCodeError, match=r"running_mean should contain 8 elements not 16"):
        pytorch_model_summary(factories, "WrongNorm", [1, 3, 8, 8])
    with pytest.raises(UserCodeError, match=r"resnet18\(\*\*\{'depth': 3\}\) failed with TypeError"):
        pytorch_model_summary("torchvision.models:resnet18", None, [1, 3, 32, 32], model_kwargs={"depth": 3})


def test_a_real_build_is_refused_when_the_weights_are_too_large(factories, monkeypatch):
    machine_memory = summary_measure.physical_memory_bytes
    monkeypatch.setattr(summary_measure, "physical_memory_bytes", lambda: 1_000_000)
    source = {"kind": "file", "location": factories, "name": "LargeAndDataDependent"}
    with pytest.raises(ToolError, match=r"cannot be measured on the meta device .* too large to build for real"):
        summary_measure.measure_model(source, [1, 1000])
    monkeypatch.setattr(summary_measure, "physical_memory_bytes", machine_memory)
    measured = summary_measure.measure_model(source, [1, 1000])
    assert measured["measured_on"] == "cpu" and measured["total_params"] == 1_001_000
    assert torch.backends.mkldnn.enabled  # switched off for the measurement only (later tests train here)


@pytest.mark.usefixtures("one_thread")
def test_the_training_tools_take_any_source(factories, workspace):
    quick = {"dataset": "digits", "num_classes": 10, "batch_size": 64, "epochs": 1, "device": "cpu",
             "metrics": ["accuracy"], "max_steps": 3}
    from_factory = pytorch_quick_evaluator(factories, "make_mlp", {**quick, "model_params": {"hidden": 8}})
    assert from_factory["status"] == "completed", from_factory.get("error")
    linear = {"dataset": "dummy", "input_shape": [16], "num_classes": 3, "batch_size": 16, "epochs": 1,
              "device": "cpu", "metrics": ["accuracy"], "max_steps": 2,
              "model_params": {"in_features": 16, "out_features": 3}}
    from_module = pytorch_quick_evaluator("torch.nn:Linear", None, linear)
    assert from_module["status"] == "completed", from_module.get("error")
    trained = pytorch_full_trainer("torch.nn:Linear", None, {**linear, "wandb": {"mode": "disabled"}},
                                   experiment_name="linear")
    assert trained["status"] == "completed", trained.get("error")
    folder = workspace / "full_experiments/linear"
    description = yaml.safe_load((folder / "config.yaml").read_text())
    assert (description["model_script_path"], description["model_class_name"]) == ("torch.nn", "Linear")
    assert not list(folder.glob("*.py"))  # nothing to copy: the model is the installed torch.nn.Linear
    with pytest.raises(ToolError, match="not_a_model.* returned 'int', not an instance of Module"):
        pytorch_quick_evaluator(factories, "not_a_model", quick)


def test_the_fork_server_imports_torchvision_only_for_models_that_use_it(factories, workspace):
    from torchscout.tools.modeling.summary import WARM_MEASUREMENT, _warm_for

    (workspace / "zoo.py").write_text("from torchvision.models import resnet18\n")
    assert _warm_for(parse_model_source("torchvision.models:resnet18", None)) == [WARM_MEASUREMENT]
    assert _warm_for(parse_model_source("zoo.py", "resnet18")) == [WARM_MEASUREMENT]
    assert _warm_for(parse_model_source("torch.nn:Linear", None)) == []
    assert _warm_for(parse_model_source(factories, "Net")) == []
