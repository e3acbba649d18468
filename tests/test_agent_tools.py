"""The real tool objects inside a real LangChain agent, driven by a scripted fake chat model."""

import json

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage

from torchscout.tools import ALL_TOOLS, TOOLS_BY_NAME

PRD_TOOL_NAMES = [
    "read_file", "write_file", "append_to_file", "bash_run", "python_run", "list_directory", "create_directory",
    "pytorch_model_assembler", "pytorch_model_summary", "pytorch_quick_evaluator", "pytorch_full_trainer",
    "pytorch_optimizer_configurator", "pytorch_tokenizer_manager", "pip_install_pytorch_package",
    "create_pytorch_project_scaffold",
]


class ScriptedToolCallingModel(GenericFakeChatModel):
    """GenericFakeChatModel has no bind_tools; the scripted replies already name the tools."""

    def bind_tools(self, tools, **kwargs):
        return self


def _call(name: str, args: dict, call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


def test_all_fifteen_tools_are_listed_with_the_prd_names_and_described_arguments():
    assert [tool.name for tool in ALL_TOOLS] == PRD_TOOL_NAMES
    for tool in ALL_TOOLS:
        assert tool.description.strip()
        for name, field in tool.args_schema.model_fields.items():
            assert field.description, f"{tool.name}.{name} has no description"


def test_an_agent_writes_then_reads_a_file_through_the_real_tools(workspace):
    model = ScriptedToolCallingModel(messages=iter([
        _call("write_file", {"file_path": "notes/plan.md", "content": "try a wider CNN\n"}, "call-1"),
        _call("read_file", {"file_path": "notes/plan.md"}, "call-2"),
        AIMessage(content="The plan says: try a wider CNN."),
    ]))
    agent = create_agent(model, tools=[TOOLS_BY_NAME["write_file"], TOOLS_BY_NAME["read_file"]])
    result = agent.invoke({"messages": [{"role": "user", "content": "write the plan, then read it back"}]})

    assert (workspace / "notes/plan.md").read_text() == "try a wider CNN\n"
    tool_messages = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [m.name for m in tool_messages] == ["write_file", "read_file"]
    written, read = (json.loads(message.content) for message in tool_messages)
    assert written["status"] == "success" and written["file_path"] == "notes/plan.md"
    assert read["content"] == "try a wider CNN\n" and read["status"] == "success"
    assert result["messages"][-1].content == "The plan says: try a wider CNN."


def test_a_refused_path_reaches_the_agent_as_an_error_message_not_a_crash(workspace):
    model = ScriptedToolCallingModel(messages=iter([
        _call("read_file", {"file_path": "../../etc/passwd"}, "call-1"),
        _call("write_file", {"file_path": "x.txt"}, "call-2"),  # missing content
        AIMessage(content="I cannot read outside the workspace."),
    ]))
    agent = create_agent(model, tools=[TOOLS_BY_NAME["read_file"], TOOLS_BY_NAME["write_file"]])
    result = agent.invoke({"messages": [{"role": "user", "content": "read /etc/passwd"}]})
    tool_messages = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert tool_messages[0].content.startswith("Error:") and "outside the workspace" in tool_messages[0].content
    assert tool_messages[1].content.startswith("Error: invalid arguments") and "content" in tool_messages[1].content
    assert not (workspace / "x.txt").exists()
