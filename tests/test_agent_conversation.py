"""A stock ``langchain.agents.create_agent`` with all 15 tools, driven by a scripted model through a realistic
session: scaffold, blueprint, assemble, summarise ResNet-50, quick-evaluate, a wrong input shape, a path
outside the workspace. What the agent receives must be usable: no tool message over 4,000 characters, no
`null`, every error says what to change and, for errors in the model's code, names the user's file and line."""

from __future__ import annotations

import json

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage

from tests.planner_helpers import scripted
from tests.test_assembler import SIMPLE_CNN
from torchscout.tools import ALL_TOOLS

RESNET50 = '''from torchvision.models.resnet import Bottleneck, ResNet


class ResNet50(ResNet):
    """torchvision's ResNet-50, built here so the summary measures a workspace file."""

    def __init__(self, num_classes=1000):
        super().__init__(Bottleneck, [3, 4, 6, 3], num_classes=num_classes)
'''

WRONG_MLP = '''import torch
from torch import nn


class DigitsMLP(nn.Module):
    """Written for 28x28 MNIST; the digits dataset is 8x8."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.hidden = nn.Linear(784, 64)
        self.out = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x.flatten(1))))
'''

DIGITS = {"dataset": "digits", "num_classes": 10, "batch_size": 64, "device": "cpu", "epochs": 4, "max_steps": 8}


def _call(name: str, args: dict, call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


SESSION = [
    ("create_pytorch_project_scaffold", {"project_name": "digits_lab"}),
    ("write_file", {"file_path": "digits_lab/blueprints/cnn.json", "content": json.dumps(SIMPLE_CNN, indent=2)}),
    ("read_file", {"file_path": "digits_lab/blueprints/cnn.json"}),
    ("pytorch_model_assembler", {"model_config": SIMPLE_CNN, "output_script_path": "digits_lab/src/models/cnn.py"}),
    ("pytorch_model_summary", {"model_script_path": "digits_lab/src/models/cnn.py", "model_class_name": "SimpleCNN",
                               "input_size": [1, 3, 32, 32]}),
    ("write_file", {"file_path": "digits_lab/src/models/resnet.py", "content": RESNET50}),
    ("pytorch_model_summary", {"model_script_path": "digits_lab/src/models/resnet.py", "model_class_name": "ResNet50",
                               "input_size": [1, 3, 224, 224]}),
    ("pytorch_model_summary", {"model_script_path": "torchvision.models:resnet18", "input_size": [1, 3, 224, 224]}),
    ("list_directory", {"path": "digits_lab", "recursive": True}),
    ("write_file", {"file_path": "digits_lab/src/models/mlp.py", "content": WRONG_MLP}),
    ("pytorch_quick_evaluator", {"model_script_path": "digits_lab/src/models/mlp.py", "model_class_name": "DigitsMLP",
                                 "eval_config": DIGITS}),
    ("pytorch_model_summary", {"model_script_path": "digits_lab/src/models/mlp.py", "model_class_name": "DigitsMLP",
                               "input_size": [2, 1, 8, 8]}),
    ("pytorch_model_summary", {"model_script_path": "digits_lab/src/models/mlp.py", "model_class_name": "DigitMLP",
                               "input_size": [2, 1, 8, 8]}),
    ("bash_run", {"command": "sed -i 's/784/64/' digits_lab/src/models/mlp.py"}),
    ("pytorch_quick_evaluator", {"model_script_path": "digits_lab/src/models/mlp.py", "model_class_name": "DigitsMLP",
                                 "eval_config": DIGITS}),
    ("read_file", {"file_path": "../../etc/passwd"}),
    ("write_file", {"file_path": "OUTSIDE", "content": "x"}),  # an absolute path next to the workspace
]


def test_an_agent_session_gets_compact_answers_and_errors_that_point_at_the_users_code(workspace):
    outside = workspace.parent / "outside.txt"
    replies = [_call(name, {key: str(outside) if value == "OUTSIDE" else value for key, value in args.items()},
                     f"call-{index}") for index, (name, args) in enumerate(SESSION)]
    model = scripted(*replies, AIMessage(content="The MLP trains on digits now."), tool_calling=True)
    result = create_agent(model, tools=ALL_TOOLS).invoke({"messages": [{"role": "user", "content": "Build me a "
                                                                                     "digits model."}]})
    messages = [message for message in result["messages"] if isinstance(message, ToolMessage)]
    assert [message.name for message in messages] == [name for name, _ in SESSION]

    for message in messages:
        assert isinstance(message.content, str) and len(message.content) <= 4000, (message.name, len(message.content))
        assert "null" not in message.content and message.content.strip() not in ("", "[]"), message.content
        if message.content.startswith("Error:"):
            continue
        answer = json.loads(message.content)
        assert isinstance(answer, dict) and answer["status"] and answer["message"], message.content
        assert str(workspace) not in message.content

    answers = [json.loads(m.content) if not m.content.startswith("Error:") else m.content for m in messages]
    scaffold, _, blueprint, assembled, small, _, resnet, installed, listing, _, wrong, wrong_summary, no_class, _, \
        fixed, outside_read, outside_write = answers
    assert scaffold["project_dir"] == "digits_lab" and json.loads(blueprint["content"]) == SIMPLE_CNN
    assert assembled["total_params"] == small["total_params"] == 41_418
    assert resnet["total_params"] == 25_557_032 and resnet["output_shape"] == [1, 1000]
    # an installed model by import spec: no wrapper file; torchvision's published 11,689,512 parameters
    assert installed["total_params"] == 11_689_512 and installed["output_shape"] == [1, 1000]
    assert "src/models/resnet.py" in listing["entries"] and listing["count"] == len(listing["entries"])
    details = workspace / resnet["details_path"] if "details_path" in resnet else None
    assert details is None or details.is_file()

    # a model written for another input: the user's file and line, and what to change
    assert wrong["status"] == "failed"
    assert "at digits_lab/src/models/mlp.py:14" in wrong["message"]
    assert "a Linear layer expects 784 input features but received 64" in wrong["message"]
    assert 'File "digits_lab/src/models/mlp.py", line 14, in forward' in wrong["traceback"]
    assert wrong_summary.startswith("Error:") and 'File "digits_lab/src/models/mlp.py", line 14' in wrong_summary
    assert "set its in_features to 64" in wrong_summary
    assert no_class.startswith("Error:") and "named 'DigitMLP'" in no_class and "DigitsMLP" in no_class

    assert fixed["status"] == "completed", fixed
    assert fixed["message"].startswith("Completed") and len(fixed["history"]) <= 3
    assert (workspace / fixed["details_path"]).is_file() if "details_path" in fixed else True

    for refused in (outside_read, outside_write):
        assert refused.startswith("Error:") and "use a path inside the workspace" in refused
    assert not outside.exists()
