"""Agent mode: a scripted tool-calling model drives the real tools through the LangChain agent."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import StructuredTool
from typer.testing import CliRunner

from tests.planner_helpers import scripted
from torchscout.agent.agent_runner import run_agent
from torchscout.agent.react_agent import AGENT_NOT_CONFIGURED, build_agent, thread_config
from torchscout.settings import configure
from torchscout.tools.errors import ToolError

CHANNEL_GATE = '''import torch
from torch import nn


class ChannelGate(nn.Module):
    """Squeeze-and-excitation style gate: rescales each channel by a learned weight."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x):
        weights = torch.sigmoid(self.fc(x.mean(dim=(2, 3))))
        return x * weights[:, :, None, None]
'''

BLUEPRINT = {
    "model_name": "DigitNet",
    "input_shape": [1, 8, 8],
    "layers": [
        {"type": "Conv2d", "params": {"out_channels": 16, "kernel_size": 3, "padding": 1}},
        {"type": "ReLU"},
        {"type": "ChannelGate", "module_path": "src/blocks.py", "params": {"channels": 16}},
        {"type": "MaxPool2d", "params": {"kernel_size": 2}},
        {"type": "Flatten"},
        {"type": "Linear", "params": {"out_features": 10}},
    ],
}
EVAL_CONFIG = {"dataset": "digits", "num_classes": 10, "batch_size": 64, "epochs": 1, "optimizer": "Adam",
               "learning_rate": 0.01, "loss_function": "CrossEntropyLoss", "metrics": ["accuracy"],
               "device": "cpu", "seed": 0}


def call(name: str, call_id: str, **args) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


def tool_messages(messages) -> dict[str, ToolMessage]:
    return {message.name: message for message in messages if isinstance(message, ToolMessage)}


def test_agent_drives_write_file_assembler_summary_and_quick_evaluator(workspace):
    model = scripted(
        AIMessage(content="I will write a channel gate block, then build and test a small conv net.",
                  tool_calls=[{"name": "write_file", "id": "1",
                               "args": {"file_path": "src/blocks.py", "content": CHANNEL_GATE}}]),
        call("pytorch_model_assembler", "2", model_config=BLUEPRINT, output_script_path="src/models/digit_net.py"),
        call("pytorch_model_summary", "3", model_script_path="src/models/digit_net.py",
             model_class_name="DigitNet", input_size=[1, 1, 8, 8]),
        call("pytorch_quick_evaluator", "4", model_script_path="src/models/digit_net.py",
             model_class_name="DigitNet", eval_config=EVAL_CONFIG),
        AIMessage(content="DigitNet with a channel gate reached the accuracy shown after one epoch."),
        tool_calling=True)
    agent = build_agent(model, max_model_calls=10)

    result = agent.invoke({"messages": [("user", "Build and quickly test a digits classifier.")]},
                          thread_config("digits-agent"))

    assert model.calls == 5
    assert (workspace / "src" / "blocks.py").read_text() == CHANNEL_GATE
    assert (workspace / "src" / "models" / "digit_net.py").is_file()
    answers = tool_messages(result["messages"])
    assert set(answers) == {"write_file", "pytorch_model_assembler", "pytorch_model_summary",
                            "pytorch_quick_evaluator"}
    for name, message in answers.items():
        assert message.status != "error" and not str(message.content).startswith("Error:"), (name, message.content)
    assert "total_params" in str(answers["pytorch_model_summary"].content)
    assert "accuracy" in str(answers["pytorch_quick_evaluator"].content)
    # the model's last turn was given the evaluator's result
    assert any(isinstance(message, ToolMessage) and message.name == "pytorch_quick_evaluator"
               for message in model.seen[-1])
    assert result["messages"][-1].content.startswith("DigitNet with a channel gate")
    # every step is in the workspace's agent checkpoint database, under the thread id
    assert (workspace / ".torchscout" / "agent.sqlite").is_file()
    assert len(agent.get_state(thread_config("digits-agent")).values["messages"]) == len(result["messages"])


def test_a_tool_error_reaches_the_model_as_a_message():
    def flaky_probe(path: str) -> str:
        """Probe a path (raises, as a buggy third-party tool would)."""
        raise RuntimeError(f"probe crashed on {path}")

    probe = StructuredTool.from_function(flaky_probe)
    model = scripted(call("read_file", "1", file_path="does/not/exist.txt"),
                     call("flaky_probe", "2", path="data"),
                     AIMessage(content="Both calls failed; nothing to read yet."), tool_calling=True)
    from torchscout.tools import ALL_TOOLS

    agent = build_agent(model, checkpointer=False, tools=[*ALL_TOOLS, probe])
    result = agent.invoke({"messages": [("user", "Read the notes.")]})

    errors = tool_messages(result["messages"])
    assert str(errors["read_file"].content).startswith("Error:") and "does/not/exist.txt" in errors["read_file"].content
    assert errors["flaky_probe"].status == "error"
    assert errors["flaky_probe"].content.startswith("Error: flaky_probe raised RuntimeError: probe crashed on data")
    second_turn, third_turn = model.seen[1], model.seen[2]
    assert any(isinstance(message, ToolMessage) and message.content.startswith("Error:") for message in second_turn)
    assert any(isinstance(message, ToolMessage) and message.status == "error" for message in third_turn)


def test_the_call_limit_ends_a_run_that_would_go_on_forever(workspace):
    for index in range(10):
        (workspace / f"folder{index}").mkdir()
    model = scripted(*[call("list_directory", str(index), path=f"folder{index}") for index in range(10)],
                     tool_calling=True)
    agent = build_agent(model, checkpointer=False, max_model_calls=3)

    result = agent.invoke({"messages": [("user", "Look around.")]}, {"recursion_limit": 50})

    assert model.calls == 3
    assert "limit" in result["messages"][-1].content.lower()


def test_the_same_call_three_times_in_a_row_ends_the_run_and_the_command_exits_non_zero():
    configure(llm=scripted(*[call("list_directory", str(index), path=".") for index in range(10)],
                           tool_calling=True))
    from torchscout.app import app

    result = CliRunner().invoke(app, ["agent", "Look around.", "--thread", "loop"])

    assert result.exit_code == 1, result.output
    assert result.output.count("<- list_directory") == 2  # the third identical call is not run
    assert 'stopped: the agent made the same call list_directory {"path": "."} 3 times in a row' in result.output


def test_a_thread_continues_with_its_history_from_the_checkpoint():
    model = scripted(AIMessage(content="Noted: the target is 95% accuracy."),
                     AIMessage(content="You asked for 95% accuracy."), tool_calling=True)

    first = run_agent("The target is 95% accuracy.", thread_id="t1", llm=model)
    second = run_agent("What was the target?", thread_id="t1", llm=model)

    assert first["answer"] == "Noted: the target is 95% accuracy."
    assert second["answer"] == "You asked for 95% accuracy." and second["model_calls"] == 2
    assert any("The target is 95% accuracy." in str(message.content) for message in model.seen[-1])


def test_without_a_configured_llm_agent_mode_says_how_to_configure_one(workspace):
    from torchscout.app import app

    with pytest.raises(ToolError, match="TORCHSCOUT_LLM"):
        build_agent()
    result = CliRunner().invoke(app, ["agent", "Find a good digits model"])

    assert result.exit_code == 2
    assert "export TORCHSCOUT_LLM=openai:gpt-4.1-mini" in result.output
    assert AGENT_NOT_CONFIGURED.splitlines()[0] in result.output
    assert not (workspace / ".torchscout" / "agent.sqlite").exists()


def test_the_agent_command_streams_its_steps_and_prints_the_answer():
    configure(llm=scripted(call("list_directory", "1", path="."),
                           AIMessage(content="The workspace is empty."), tool_calling=True))
    from torchscout.app import app

    result = CliRunner().invoke(app, ["agent", "What is in the workspace?", "--thread", "look", "--max-calls", "5"])

    assert result.exit_code == 0, result.output
    assert "-> list_directory" in result.output and "<- list_directory" in result.output
    assert "The workspace is empty." in result.output
    assert "continue with --thread look" in result.output
    assert json.loads(json.dumps(result.output))  # plain text, no control characters that break JSON


def test_the_first_prompt_is_measured_and_far_smaller_than_the_tool_docstrings():
    from torchscout.agent.agent_tools import agent_tools, first_prompt_size, select_tools
    from torchscout.agent.react_agent import system_prompt
    from torchscout.tools import ALL_TOOLS

    original = first_prompt_size(ALL_TOOLS, system_prompt())
    short = first_prompt_size(agent_tools(select_tools("all")), system_prompt())
    core = first_prompt_size(agent_tools(select_tools("core")), system_prompt())

    assert original["estimated_tokens"] > 5_000  # what the issue measured: ~5,900 tokens
    # (the model-source and summary-detail arguments added about 150 tokens)
    assert short["estimated_tokens"] < 4_000 and core["estimated_tokens"] < 2_500
    assert set(short["tool_characters"]) == set(original["tool_characters"])  # the PRD's names, all 15
