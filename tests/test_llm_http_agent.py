"""`torchscout agent` against a real OpenAI-compatible HTTP server on 127.0.0.1 (real langchain-openai client)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.openai_server import Behaviour
from torchscout.agent.agent_tools import CORE_TOOLS
from torchscout.app import app

TEXT_CALL = 'I will look first.\n```json\n{"name": "list_directory", "arguments": {"path": "."}}\n```'


def _agent(*arguments: str):
    return CliRunner().invoke(app, ["agent", *arguments])


def test_a_tool_call_written_as_text_is_parsed_run_and_reported(llm_server, workspace):
    (workspace / "notes.txt").write_text("hello", encoding="utf-8")
    server = llm_server(Behaviour(text=TEXT_CALL), Behaviour(text="The workspace holds notes.txt."),
                        idle_s=5, timeout_s=20)

    result = _agent("What is in the workspace?", "--thread", "text-call")

    assert result.exit_code == 0, result.output
    assert len(server.requests) == 2
    assert "note: the model wrote its tool call as text; parsed and run as list_directory" in result.output
    assert "<- list_directory:" in result.output and '"notes.txt"]' in result.output
    assert "The workspace holds notes.txt." in result.output and "1 tool calls" in result.output
    assert "2 model calls (" in result.output and "completion tokens" in result.output  # what the run cost
    # the tool's answer went back to the model as a tool message
    second = server.requests[1]["body"]["messages"]
    assert [message["role"] for message in second][-2:] == ["assistant", "tool"]
    assert "notes.txt" in second[-1]["content"]


def test_a_call_to_an_unknown_tool_written_as_text_gets_the_tool_list(llm_server):
    unknown = '{"name": "search_web", "arguments": {"query": "digits"}}'
    server = llm_server(Behaviour(text=unknown), Behaviour(text="I will work offline."), idle_s=5, timeout_s=20)

    result = _agent("Find a digits model.", "--thread", "unknown-tool")

    assert result.exit_code == 0, result.output
    assert "note: the model wrote a call to search_web as text; no such tool" in result.output
    hint = server.requests[1]["body"]["messages"][-1]["content"]
    assert "There is no tool named search_web" in hint and "pytorch_model_assembler" in hint


def test_a_model_that_repeats_one_call_is_stopped_and_the_command_exits_non_zero(llm_server):
    looping = Behaviour(tool_calls=[{"name": "list_directory", "arguments": {"path": "."}}])
    server = llm_server(default=looping, idle_s=5, timeout_s=20)

    result = _agent("Look around.", "--thread", "loop", "--max-calls", "10")

    assert result.exit_code == 1, result.output
    assert len(server.requests) == 3
    assert result.output.count("<- list_directory") == 2
    assert 'stopped: the agent made the same call list_directory {"path": "."} 3 times in a row' in result.output


def test_the_call_limit_exits_non_zero(llm_server, workspace):
    for index in range(5):
        (workspace / f"d{index}").mkdir()
    server = llm_server(*[Behaviour(tool_calls=[{"name": "list_directory", "arguments": {"path": f"d{index}"}}])
                          for index in range(5)], idle_s=5, timeout_s=20)

    result = _agent("Look around.", "--thread", "limit", "--max-calls", "2")

    assert result.exit_code == 1, result.output
    assert len(server.requests) == 2
    assert "stopped: Model call limits exceeded: run limit (2/2) (raise it with --max-calls)" in result.output


def test_the_first_prompt_is_small_and_a_tool_subset_makes_it_smaller(llm_server):
    server = llm_server(Behaviour(text="Done."), Behaviour(text="Done."), idle_s=5, timeout_s=20)

    assert _agent("Say done.", "--thread", "all").exit_code == 0
    assert _agent("Say done.", "--thread", "core", "--tools", "core").exit_code == 0

    full, core = (request["body"] for request in server.requests)
    full_chars = len(json.dumps(full["tools"])) + len(full["messages"][0]["content"])
    core_chars = len(json.dumps(core["tools"])) + len(core["messages"][0]["content"])
    assert len(full["tools"]) == 15 and [tool["function"]["name"] for tool in core["tools"]] == list(CORE_TOOLS)
    # the PRD's tool and argument names are kept
    assembler = next(tool["function"] for tool in full["tools"] if tool["function"]["name"] == "pytorch_model_assembler")
    assert set(assembler["parameters"]["properties"]) == {"model_config", "output_script_path"}
    # about 23,000 characters (~5,800 tokens) before the short descriptions; the model-source and
    # summary-detail arguments (any model: a script, a factory, an import spec) added about 600
    assert full_chars < 16_000 and core_chars < 10_000
    assert full["max_completion_tokens"] == 2048  # the agent's reply cap


def test_a_bad_tools_option_is_a_clear_error():
    result = _agent("Say done.", "--tools", "read_file,write_fil")

    assert result.exit_code == 2
    assert "write_fil" in result.output and "write_file" in result.output


def test_a_reply_cut_at_the_token_cap_is_asked_again_shorter(llm_server, monkeypatch):
    monkeypatch.setenv("TORCHSCOUT_LLM_MAX_TOKENS", "agent=20")
    server = llm_server(Behaviour(text="Let me explain everything in great detail " * 10), Behaviour(text="Done."),
                        idle_s=5, timeout_s=20)

    result = _agent("Say done.", "--thread", "cut")

    assert result.exit_code == 0, result.output
    assert len(server.requests) == 2 and server.requests[0]["body"]["max_completion_tokens"] == 20
    assert "note: the reply was cut at the token cap (20" in result.output
    assert "cut off at the 20-token limit" in server.requests[1]["body"]["messages"][-1]["content"]
    assert result.output.splitlines()[-2] == "Done."
