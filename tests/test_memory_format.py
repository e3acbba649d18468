"""Training in channels_last: on by default for image convolutions, never where a model cannot run in it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.training_helpers import one_thread  # noqa: F401 - fixture
from torchscout.tools.errors import ToolError
from torchscout.tools.training.evaluation import pytorch_quick_evaluator
from torchscout.tools.training.memory_format import apply_memory_format

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = '''
import torch
from torch import nn


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class ViewNet(ConvNet):
    """The same network, flattened with .view as older code does: impossible on a channels_last output."""

    def forward(self, x):
        features = self.features(x)
        return self.head(features.view(features.size(0), -1))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
'''

DIGITS = {"dataset": "digits", "num_classes": 10, "batch_size": 32, "epochs": 2, "optimizer": "Adam",
          "learning_rate": 0.002, "metrics": ["accuracy"], "device": "cpu", "seed": 3}


@pytest.fixture
def models(workspace):
    (workspace / "nets.py").write_text(MODELS)
    return "nets.py"


def test_a_conv_net_on_images_trains_in_channels_last_with_the_same_results_up_to_rounding(models):
    fast = pytorch_quick_evaluator(models, "ConvNet", DIGITS)
    plain = pytorch_quick_evaluator(models, "ConvNet", {**DIGITS, "channels_last": False})
    assert fast["status"] == plain["status"] == "completed"
    assert fast["memory_format"] == "channels_last" and plain["memory_format"] == "contiguous"
    # the same sums in another order: equal to float rounding after two epochs, not merely similar
    assert fast["train_loss"] == pytest.approx(plain["train_loss"], rel=1e-3)
    assert fast["val_loss"] == pytest.approx(plain["val_loss"], rel=1e-2)
    assert abs(fast["metrics"]["accuracy"] - plain["metrics"]["accuracy"]) <= 0.01
    again = pytorch_quick_evaluator(models, "ConvNet", DIGITS)
    # and as reproducible as the default format: the same seed gives the same numbers
    assert [record["train_loss"] for record in again["history"]] == [record["train_loss"] for record in fast["history"]]
    assert again["metrics"] == fast["metrics"]


def test_a_model_that_cannot_run_in_channels_last_trains_in_the_default_format(models):
    result = pytorch_quick_evaluator(models, "ViewNet", DIGITS)
    assert result["status"] == "completed", result.get("error")
    assert result["memory_format"] == "contiguous"
    reference = pytorch_quick_evaluator(models, "ViewNet", {**DIGITS, "channels_last": False})
    assert result["train_loss"] == reference["train_loss"] and result["metrics"] == reference["metrics"]


def test_insisting_on_channels_last_names_what_to_change(models):
    # a caller's setting that cannot work: an error that says what to change, like any bad config value
    with pytest.raises(ToolError, match=r"channels_last: true.*view size is not compatible.*\.reshape"):
        pytorch_quick_evaluator(models, "ViewNet", {**DIGITS, "channels_last": True})
    with pytest.raises(ToolError, match="needs image batches"):
        pytorch_quick_evaluator(models, "Mlp", {**DIGITS, "dataset": "breast_cancer", "num_classes": 2, "channels_last": True})


def test_models_without_2d_convolutions_keep_the_default_format(models):
    result = pytorch_quick_evaluator(models, "Mlp", DIGITS)
    assert result["status"] == "completed" and result["memory_format"] == "contiguous"


def test_the_probe_leaves_weights_buffers_mode_and_random_state_as_they_were():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    sample = torch.randn(8, 3, 8, 8)
    rng = torch.get_rng_state()
    chosen = apply_memory_format(model, sample, None, torch.device("cpu"))
    assert chosen == "channels_last" and model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model.training and torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    with pytest.raises(ToolError, match="image batches"):
        apply_memory_format(nn.Linear(4, 2), torch.randn(8, 4), True, torch.device("cpu"))
