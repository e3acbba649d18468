"""LangChain's own standard tool suites (langchain-tests) over all 15 tools, so the LangChain contract can't regress.

``ToolsUnitTests`` checks the tool object (name, input schema, the example matching it);
``ToolsIntegrationTests`` invokes each tool for real, sync and async, with and without a ToolCall,
in a workspace holding what the example needs. Every answer is also checked against torchscout's
own answer contract (tests/test_answer_contract.py).
"""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import ToolCall
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from tests.test_answer_contract import assert_contract
from tests.test_assembler import SIMPLE_CNN
from tests.tokenizer_helpers import write_prose
from tests.training_helpers import write_models
from torchscout.tools import TOOL_NAMES, get_tool

DIGITS = {"dataset": "digits", "num_classes": 10, "batch_size": 64, "device": "cpu", "max_steps": 2,
          "sanity": "off", "epochs": 1}

EXAMPLES = {
    "read_file": {"file_path": "notes.txt"},
    "write_file": {"file_path": "out/new.txt", "content": "hello\n"},
    "append_to_file": {"file_path": "notes.txt", "content": "more\n"},
    "bash_run": {"command": "echo hello; ls"},
    "python_run": {"script_path": "hello.py", "args": ["--name", "x"]},
    "list_directory": {"path": ".", "recursive": True},
    "create_directory": {"path": "experiments/a/b"},
    "pytorch_model_assembler": {"model_config": SIMPLE_CNN, "output_script_path": "src/models/cnn.py"},
    "pytorch_model_summary": {"model_script_path": "models.py", "model_class_name": "SmallCNN",
                              "input_size": [2, 1, 8, 8]},
    "pytorch_quick_evaluator": {"model_script_path": "models.py", "model_class_name": "SmallCNN",
                                "eval_config": DIGITS},
    "pytorch_full_trainer": {"model_script_path": "models.py", "model_class_name": "SmallCNN",
                             "trainer_config": DIGITS, "experiment_name": "standard"},
    "pytorch_optimizer_configurator": {"action": "generate_config", "config_name": "tuned_adamw",
                                       "optimizer_details": {"type": "AdamW",
                                                             "default_params": {"lr": 0.0005}}},
    "pytorch_tokenizer_manager": {"action": "train", "tokenizer_name": "prose",
                                  "config": {"type": "BPE", "vocab_size": 260, "data_files": ["corpus/*.txt"]}},
    "pip_install_pytorch_package": {"package_name": "torchvision", "dry_run": True},
    "create_pytorch_project_scaffold": {"project_name": "demo"},
}


@pytest.fixture(autouse=True)
def prepared_workspace(workspace):
    """What the examples read: a text file, a script, a model file, a small corpus."""
    (workspace / "notes.txt").write_text("first line\n")
    (workspace / "hello.py").write_text("import sys\nprint('hello', sys.argv[1:])\n")
    write_models(workspace)
    write_prose(workspace / "corpus/prose.txt", lines=200)
    return workspace


class _ToolUnderTest:
    tool_name: str

    @property
    def tool_constructor(self):
        return get_tool(self.tool_name)

    @property
    def tool_invoke_params_example(self) -> dict:
        return EXAMPLES[self.tool_name]


class _IntegrationWithContract(_ToolUnderTest, ToolsIntegrationTests):
    def test_the_tool_message_keeps_torchscouts_answer_contract(self, tool) -> None:
        message = tool.invoke(ToolCall(name=tool.name, args=self.tool_invoke_params_example, id="1", type="tool_call"))
        assert message.status == "success", message.content
        assert_contract(json.loads(message.content), tool.name)


def _class_name(tool_name: str, suffix: str) -> str:
    return "Test" + "".join(part.title() for part in tool_name.split("_")) + suffix


# Five real training runs each (~10-20 s apiece on 2 cores): in the slow set. The default suite still calls
# both once through tests/test_answer_contract.py, and runs their unit suites.
SLOW_INTEGRATION = {"pytorch_quick_evaluator", "pytorch_full_trainer"}

for _name in TOOL_NAMES:
    globals()[_class_name(_name, "Unit")] = type(_class_name(_name, "Unit"), (_ToolUnderTest, ToolsUnitTests),
                                                 {"tool_name": _name})
    globals()[_class_name(_name, "Integration")] = type(
        _class_name(_name, "Integration"), (_IntegrationWithContract,),
        {"tool_name": _name, "pytestmark": [pytest.mark.slow] if _name in SLOW_INTEGRATION else []})


def test_every_tool_has_an_example():
    assert set(EXAMPLES) == set(TOOL_NAMES)
