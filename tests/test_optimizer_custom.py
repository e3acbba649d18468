"""register_custom_optimizer with a scripted chat model (and from a source file), then use by name."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import torchscout
from tests.optimizer_helpers import (
    BROKEN_LION_SOURCE,
    DIVERGING_LION_SOURCE,
    LION_SOURCE,
    TwoPartNet,
    scripted_model,
)
from torchscout.tools import registry
from torchscout.tools.codegen.pipeline import CodeGenerationError
from torchscout.tools.errors import ToolError, UserCodeError
from torchscout.tools.optim.configurator import build_optimizer, pytorch_optimizer_configurator

LION_DETAILS = {
    "description": "Lion (EvoLved Sign Momentum): the update is the sign of an interpolation between the "
                   "momentum and the gradient; decoupled weight decay.",
    "base_optimizer": "AdamW",
    "additional_params": {"betas": [0.9, 0.99], "weight_decay": 0.0},
}


def register_lion(**overrides) -> dict:
    arguments = {"action": "register_custom_optimizer", "config_name": "Lion", "optimizer_details": LION_DETAILS,
                 "output_script_path": "src/optimizers/lion.py", **overrides}
    return pytorch_optimizer_configurator(**arguments)


def test_a_correct_lion_is_validated_written_and_registered(workspace: Path) -> None:
    torchscout.configure(llm=scripted_model(LION_SOURCE))
    result = register_lion()

    assert result["status"] == "success" and result["class_name"] == "Lion"
    assert result["output_script_path"] == "src/optimizers/lion.py"
    assert result["attempts"] == 1 and result["backend"].startswith("llm:")
    validation = result["validation"]
    assert validation["state_dict_round_trip"] and validation["zero_grad"] and validation["skips_params_without_grad"]
    passed = validation["descent"][-1]
    assert passed["final_loss"] < 0.9 * passed["initial_loss"]
    assert (workspace / "src/optimizers/lion.py").read_text() == LION_SOURCE
    assert registry.get("custom_optimizer", "Lion")["data"]["script_path"] == "src/optimizers/lion.py"

    optimizer = build_optimizer(TwoPartNet(), {"type": "Lion", "params": {"lr": 0.001}})
    assert type(optimizer).__name__ == "Lion" and optimizer.defaults["lr"] == 0.001


def test_a_diverging_optimizer_is_rejected_and_nothing_is_registered(workspace: Path) -> None:
    torchscout.configure(llm=scripted_model(*[DIVERGING_LION_SOURCE] * 4))
    with pytest.raises(CodeGenerationError) as error:
        register_lion()
    assert error.value.stage == "validate"
    assert "did not cut the loss by 10%" in str(error.value)
    # the same diverging file again is a repeat: one changed request, then the loop stops early
    assert [attempt.repeated for attempt in error.value.attempts] == [False, True, True]
    assert registry.names() == []
    assert not (workspace / "src").exists()


def test_broken_code_is_repaired_with_the_error_fed_back(workspace: Path) -> None:
    model = scripted_model(BROKEN_LION_SOURCE, LION_SOURCE)
    torchscout.configure(llm=model)
    result = register_lion()
    assert result["attempts"] == 2
    assert (workspace / "src/optimizers/lion.py").read_text() == LION_SOURCE
    assert registry.find("custom_optimizer", "Lion") is not None
    # the repair request (recorded in the real response cache) showed the model its error
    with sqlite3.connect(workspace / ".torchscout" / "llm_cache.sqlite") as connection:
        requests = [row[0] for row in connection.execute("SELECT request FROM responses ORDER BY created_at")]
    assert len(requests) == 2
    assert "zeros_lik" in requests[1] and "AttributeError" in requests[1] and "validate" in requests[1]


def test_without_an_llm_the_action_says_how_to_configure_one() -> None:
    with pytest.raises(ToolError, match="TORCHSCOUT_LLM is 'builtin'.*source_path"):
        register_lion()
    assert registry.names() == []


def test_an_existing_file_is_validated_and_registered_via_source_path(workspace: Path) -> None:
    (workspace / "my_lion.py").write_text(LION_SOURCE)
    result = register_lion(optimizer_details={"additional_params": {"betas": [0.9, 0.99]}},
                           source_path="my_lion.py", output_script_path=None)
    assert result["backend"] == "source_path" and result["output_script_path"] == "my_lion.py"
    assert result["validation"]["state_dict_round_trip"] is True


def test_a_diverging_source_file_is_refused(workspace: Path) -> None:
    (workspace / "bad_lion.py").write_text(DIVERGING_LION_SOURCE)
    with pytest.raises(UserCodeError, match="nothing was registered.*did not cut the loss"):
        register_lion(source_path="bad_lion.py")
    assert registry.names() == []


def test_an_unsafe_source_file_is_refused_before_it_runs(workspace: Path) -> None:
    (workspace / "sneaky.py").write_text("import os\n" + LION_SOURCE)
    with pytest.raises(ToolError, match="importing 'os' is not allowed"):
        register_lion(source_path="sneaky.py")


@pytest.mark.parametrize(("config_name", "details", "message"), [
    ("not a name", LION_DETAILS, "must be a Python class name"),
    ("Adam", LION_DETAILS, "is a torch.optim optimizer"),
    ("Lion", {"description": " "}, "needs optimizer_details.description"),
    ("Lion", {**LION_DETAILS, "extra": 1}, r"unknown key\(s\) \['extra'\]"),
    ("Lion", {**LION_DETAILS, "additional_params": [0.9]}, "additional_params must be a mapping"),
])
def test_bad_requests_are_refused_before_any_generation(config_name: str, details: dict, message: str) -> None:
    torchscout.configure(llm=scripted_model())  # would raise if asked: nothing is scripted
    with pytest.raises(ToolError, match=message):
        register_lion(config_name=config_name, optimizer_details=details)


SECOND_PROCESS = textwrap.dedent("""
    import json, torch
    from tests.optimizer_helpers import TwoPartNet
    import torchscout
    model = TwoPartNet()
    adamw = torchscout.build_optimizer(model, "tuned_adamw")
    lion = torchscout.build_optimizer(model, "lion_config")
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(4, 6)).square().mean().backward()
    lion.step()
    print(json.dumps({
        "adamw_groups": {g["group_name"]: [g["lr"], g["weight_decay"]] for g in adamw.param_groups},
        "lion": [type(lion).__name__, lion.defaults["lr"]],
        "lion_moved": any(not torch.equal(a, b) for a, b in zip(before, model.parameters())),
    }))
""")


def test_registered_configs_and_custom_optimizers_are_usable_by_name_from_a_second_process(
        workspace: Path) -> None:
    torchscout.configure(llm=scripted_model(LION_SOURCE))
    register_lion()
    pytorch_optimizer_configurator("generate_config", "tuned_adamw", {
        "type": "AdamW", "default_params": {"lr": 0.0005, "weight_decay": 0.01},
        "param_groups": [{"name_regex": r"^backbone\.", "lr": 0.0001}],
    })
    pytorch_optimizer_configurator("generate_config", "lion_config", {
        "type": "Lion", "default_params": {"lr": 0.0003, "weight_decay": 0.1}, "no_decay_bias_norm": True,
    })
    repo = str(Path(__file__).resolve().parents[1])
    environment = {**os.environ, "PYTHONPATH": repo}
    completed = subprocess.run([sys.executable, "-c", SECOND_PROCESS], cwd=workspace, capture_output=True,
                               text=True, timeout=120, env=environment)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {
        "adamw_groups": {"group0": [0.0001, 0.01], "default": [0.0005, 0.01]},
        "lion": ["Lion", 0.0003],
        "lion_moved": True,
    }


DIGITS_NET = textwrap.dedent("""
    from torch import nn


    class DigitsNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.LayerNorm(32), nn.ReLU())
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            return self.head(self.body(x))
""")


def test_the_full_trainer_uses_a_registered_custom_optimizer_config_by_name(workspace: Path) -> None:
    from torchscout.tools.training.evaluation import pytorch_full_trainer

    (workspace / "lion.py").write_text(LION_SOURCE)
    (workspace / "net.py").write_text(DIGITS_NET)
    register_lion(optimizer_details={"additional_params": {"betas": [0.9, 0.99]}}, source_path="lion.py",
                  output_script_path=None)
    pytorch_optimizer_configurator("generate_config", "lion_config", {
        "type": "Lion", "default_params": {"lr": 0.003, "weight_decay": 0.01},
        "param_groups": [{"name_regex": r"^head\.", "lr": 0.001}], "no_decay_bias_norm": True,
    })
    result = pytorch_full_trainer("net.py", "DigitsNet", {
        "dataset": "digits", "num_classes": 10, "batch_size": 64, "epochs": 2, "optimizer": "lion_config",
        "metrics": ["accuracy"], "device": "cpu", "wandb": {"mode": "disabled"},
    }, experiment_name="lion_run")

    assert result["status"] == "completed", result.get("error")
    assert result["final_eval"]["accuracy"] > 0.5
    checkpoint = torch.load(workspace / result["experiment_dir"] / "checkpoints" / "last.pt", weights_only=False)
    groups = [(g["group_name"], g["lr"], g["weight_decay"]) for g in checkpoint["optimizer"]["param_groups"]]
    assert groups == [("group0", 0.001, 0.01), ("group0/no_decay", 0.001, 0.0),
                      ("default", 0.003, 0.01), ("default/no_decay", 0.003, 0.0)]
    assert set(checkpoint["optimizer"]["state"][0]) == {"exp_avg"}  # Lion's state, not AdamW's


def test_the_probe_accepts_every_well_behaved_torch_optimizer(workspace: Path) -> None:
    from torchscout.tools.optim.validation import probe_optimizer

    for name in ("SGD", "Adam", "RMSprop", "Adadelta"):
        script = workspace / f"opt_{name.lower()}.py"
        script.write_text(f"from torch.optim import {name}\n")
        report = probe_optimizer(str(script), name, {})
        assert report["zero_grad"] is True, name
