"""The answer contract (tools/answers.py), enforced by make_tool: every tool answers a JSON object with a
status and a message, at most ~4,000 characters, the rest in a workspace file; errors point at the user's code."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import BaseModel

from tests.test_assembler import SIMPLE_CNN
from tests.tokenizer_helpers import write_prose
from tests.training_helpers import write_models
from torchscout.tools import TOOL_NAMES, TOOLS_BY_NAME
from torchscout.tools.answers import MAX_ANSWER_CHARS
from torchscout.tools.errors import traceback_tail, user_location, what_to_change
from torchscout.tools.toolkit import make_tool

DIGITS = {"dataset": "digits", "num_classes": 10, "batch_size": 64, "device": "cpu", "max_steps": 3,
          "sanity": "off", "metrics": ["accuracy"]}


def _nulls(value, where="answer"):
    """Paths of every None inside ``value`` (an agent would see `null`)."""
    if value is None:
        return [where]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _nulls(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _nulls(item, f"{where}[{index}]")]
    return []


def assert_contract(answer, tool_name):
    assert isinstance(answer, dict), f"{tool_name} answered {answer!r}"
    text = json.dumps(answer, ensure_ascii=False)
    assert len(text) <= MAX_ANSWER_CHARS, f"{tool_name}: {len(text)} characters"
    assert list(answer)[:2] == ["status", "message"], tool_name
    assert isinstance(answer["status"], str) and answer["status"], tool_name
    assert isinstance(answer["message"], str) and len(answer["message"]) > 10, tool_name
    assert not _nulls(answer), f"{tool_name}: {_nulls(answer)}"


class _NoArgs(BaseModel):
    pass


def _tool(function):
    return make_tool(function, _NoArgs, name=function.__name__)


def test_answers_that_break_the_contract_become_errors_that_say_it_is_a_bug():
    def returns_none() -> None:
        """Answers nothing."""

    def returns_list() -> list:
        """Answers a bare list."""
        return ["a", "b"]

    def without_status() -> dict:
        """Answers without a status."""
        return {"value": 1}

    for function, shown in [(returns_none, "NoneType"), (returns_list, "list"), (without_status, "without a status")]:
        message = _tool(function).invoke({})
        assert message.startswith("Error:") and shown in message and "bug in torchscout" in message


def test_an_answer_is_plain_json_without_nulls_and_gets_a_message():
    def measured() -> dict:
        """Answers numbers."""
        return {"status": "success", "loss": math.nan, "best": None, "nested": {"gone": None, "kept": 1.5}}

    answer = _tool(measured).invoke({})
    assert answer == {"status": "success", "message": "measured: success.", "loss": "nan", "nested": {"kept": 1.5}}


def test_a_large_answer_is_cut_to_fit_and_the_whole_of_it_is_written_to_a_workspace_file(workspace):
    def history() -> dict:
        """Answers a long history."""
        return {"status": "completed", "message": "Trained.", "epochs": 500,
                "history": [{"epoch": index, "loss": 1 / (index + 1)} for index in range(500)],
                "log": "step line\n" * 2000, "table": {f"layer{index}": [index] * 20 for index in range(300)}}

    answer = _tool(history).invoke({})
    assert_contract(answer, "history")
    assert answer["epochs"] == 500 and answer["history"][0] == {"epoch": 0, "loss": 1.0}
    assert "more of 500 items in details_path" in answer["history"][-1]
    assert answer["message"].startswith("Trained. The answer (") and answer["details_path"] in answer["message"]
    full = json.loads((workspace / answer["details_path"]).read_text())
    assert len(full["history"]) == 500 and len(full["table"]) == 300 and full["log"] == "step line\n" * 2000
    assert answer["details_path"].startswith(".torchscout/answers/history-")


def test_error_messages_name_workspace_files_relative_and_say_what_to_change(workspace):
    (workspace / "net.py").write_text("import torch\n\n\ndef run():\n    layer = torch.nn.Linear(784, 10)\n"
                                      "    return layer(torch.ones(2, 3136))\n")

    def fails() -> dict:
        """Runs the user's code."""
        import importlib.util

        spec = importlib.util.spec_from_file_location("net_under_test", workspace / "net.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.run()

    message = _tool(fails).invoke({})
    assert message.startswith("Error: fails failed in net.py:6 with RuntimeError: mat1 and mat2 shapes cannot be "
                              "multiplied (2x3136 and 784x10)")
    assert 'File "net.py", line 6, in run' in message and "return layer(torch.ones(2, 3136))" in message
    assert "a Linear layer expects 784 input features but received 3136" in message
    assert str(workspace) not in message and "this is a bug" not in message


def test_the_traceback_tail_keeps_the_users_frames_and_the_failing_library_call(workspace):
    (workspace / "models").mkdir()
    (workspace / "models/net.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.head = nn.Linear(784, 10)\n\n    def forward(self, x):\n"
        "        return self.head(x.flatten(1))\n\n\ndef build_and_run():\n    return Net()(torch.ones(2, 1, 56, 56))\n")
    import importlib.util

    spec = importlib.util.spec_from_file_location("net_for_tail", workspace / "models/net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.build_and_run()
    except RuntimeError as exc:
        try:
            raise ValueError("the model failed") from exc
        except ValueError as outer:
            tail = traceback_tail(outer, max_lines=20)
            location = user_location(outer)
    lines = tail.splitlines()
    assert 'File "models/net.py", line 15, in build_and_run' in tail
    assert 'File "models/net.py", line 11, in forward' in tail and "return self.head(x.flatten(1))" in tail
    assert 'File "torch/nn/modules/linear.py"' in tail  # the failing library call, and only that one
    assert sum(line.strip().startswith("File ") for line in lines) == 3 and "library frames left out" in lines[0]
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3136 and 784x10)" in tail
    assert lines[-1] == "(reported as ValueError: the model failed)"
    assert str(workspace) not in tail
    assert location == "models/net.py:11" and user_location(tail) == "models/net.py:11"


@pytest.mark.parametrize(("error", "needle"), [
    ("Given groups=1, weight of size [8, 3, 3, 3], expected input[2, 1, 28, 28] to have 3 channels, but got 1 "
     "channels instead", "a convolution expects 3 input channels but received input of shape [2, 1, 28, 28] with 1"),
    ("Expected input batch_size (4) to match target batch_size (8).", "returned 4 rows for 8 targets"),
    ("running_mean should contain 8 elements not 16", "set its num_features to 8"),
    ("shape '[5]' is invalid for input of size 6", "x.flatten(1)"),
])
def test_known_pytorch_shape_errors_say_expected_and_actual(error, needle):
    assert needle in what_to_change(error)
    assert what_to_change("KeyError: 'weights'") is None


@pytest.fixture
def every_tool_call(workspace):
    """One valid call of each of the 15 tools, in an order that makes each work (real tools, no LLM)."""
    models = write_models(workspace)
    write_prose(workspace / "corpus/prose.txt", lines=300)
    (workspace / "hello.py").write_text("import sys\nprint('hello', sys.argv[1:])\n")
    (workspace / "big").mkdir()
    for index in range(600):
        (workspace / f"big/file_{index:04d}.txt").touch()
    return [
        ("create_pytorch_project_scaffold", {"project_name": "proj"}),
        ("write_file", {"file_path": "notes/plan.md", "content": "try a wider CNN\n" * 400}),
        ("append_to_file", {"file_path": "notes/plan.md", "content": "and a deeper one\n"}),
        ("read_file", {"file_path": "notes/plan.md"}),
        ("create_directory", {"path": "experiments/a"}),
        ("list_directory", {"path": "big"}),
        ("bash_run", {"command": "seq 1 5000"}),
        ("python_run", {"script_path": "hello.py", "args": ["--name", "x"]}),
        ("pytorch_model_assembler", {"model_config": SIMPLE_CNN, "output_script_path": "src/models/cnn.py"}),
        ("pytorch_model_summary", {"model_script_path": "src/models/cnn.py", "model_class_name": "SimpleCNN",
                                   "input_size": [1, 3, 32, 32]}),
        ("pytorch_optimizer_configurator", {"action": "generate_config", "config_name": "tuned",
                                            "optimizer_details": {"type": "AdamW",
                                                                  "default_params": {"lr": 0.001}}}),
        ("pytorch_quick_evaluator", {"model_script_path": models, "model_class_name": "DropoutMLP",
                                     "eval_config": {**DIGITS, "epochs": 4, "max_steps": None,
                                                     "batch_size": 512}}),
        ("pytorch_full_trainer", {"model_script_path": models, "model_class_name": "DropoutMLP",
                                  "trainer_config": {**DIGITS, "epochs": 1, "optimizer": "tuned"},
                                  "experiment_name": "contract"}),
        ("pytorch_tokenizer_manager", {"action": "train", "tokenizer_name": "prose",
                                       "config": {"type": "BPE", "vocab_size": 300,
                                                  "data_files": ["corpus/prose.txt"]}}),
        ("pytorch_tokenizer_manager", {"action": "apply", "tokenizer_name": "prose",
                                       "text_input": ["a long text " * 50] * 20}),
        ("pip_install_pytorch_package", {"package_name": "torchvision", "dry_run": True}),
    ]


def test_every_tool_answers_by_the_contract(every_tool_call, workspace):
    called = set()
    for name, arguments in every_tool_call:
        answer = TOOLS_BY_NAME[name].invoke(arguments)
        assert not isinstance(answer, str), f"{name}: {answer}"
        assert_contract(answer, name)
        assert answer["status"] in {"success", "completed", "dry_run"}, (name, answer)
        details = answer.get("details_path") or answer.get("log_path")
        if details:
            assert (workspace / details).is_file(), (name, details)
        called.add(name)
        if name == "pytorch_quick_evaluator":  # four epochs: the last three in the answer, all in the file
            assert answer["history_epochs"] == 4 and [record["epoch"] for record in answer["history"]] == [2, 3, 4]
            assert len(json.loads((workspace / answer["details_path"]).read_text())["history"]) == 4
            assert answer["message"].startswith("Completed 4 epoch(s): train_loss")
    assert called == set(TOOL_NAMES)
