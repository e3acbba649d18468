"""An agent assembles a model and then summarises it, through the real tool objects."""

from __future__ import annotations

import json

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage

from tests.test_assembler import SIMPLE_CNN
from torchscout.tools import TOOLS_BY_NAME

BLUEPRINT = SIMPLE_CNN  # the PRD's example, shared with test_assembler.py


class ScriptedToolCallingModel(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):
        return self


def call(name, args, call_id):
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


def test_an_agent_assembles_then_summarises_a_model(workspace):
    model = ScriptedToolCallingModel(messages=iter([
        call("pytorch_model_assembler", {"model_config": {**BLUEPRINT, "layers": [{"type": "Conv2D"}]},
                                         "output_script_path": "src/models/cnn.py"}, "call-1"),
        call("pytorch_model_assembler", {"model_config": BLUEPRINT, "output_script_path": "src/models/cnn.py"},
             "call-2"),
        call("pytorch_model_summary", {"model_script_path": "src/models/cnn.py", "model_class_name": "SimpleCNN",
                                       "input_size": [1, 3, 32, 32]}, "call-3"),
        AIMessage(content="SimpleCNN has 41,418 parameters; the Linear head dominates."),
    ]))
    tools = [TOOLS_BY_NAME["pytorch_model_assembler"], TOOLS_BY_NAME["pytorch_model_summary"]]
    result = create_agent(model, tools=tools).invoke({"messages": [{"role": "user", "content": "build a CNN"}]})
    replies = [message for message in result["messages"] if isinstance(message, ToolMessage)]
    assert [reply.name for reply in replies] == ["pytorch_model_assembler"] * 2 + ["pytorch_model_summary"]
    assert replies[0].content.startswith("Error: model_config.layers[0].type: 'Conv2D' is not a torch.nn layer")
    assembled = json.loads(replies[1].content)
    assert assembled["status"] == "success" and assembled["total_params"] == 41_418
    summary = json.loads(replies[2].content)
    assert summary["total_params"] == 41_418
    assert summary["macs"] == 16 * 27 * 32 * 32 + 4096 * 10
    assert (workspace / "src/models/cnn.py").is_file()
