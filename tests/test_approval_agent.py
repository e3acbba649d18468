"""Agent mode's approval gate: with --approve pip_install, a package install waits for a person's yes or no.

A scripted tool-calling model asks for a real ``pip_install_pytorch_package`` call. The package
is one that is already installed and pip runs with ``PIP_NO_INDEX``, so the approved install
really runs pip ("Requirement already satisfied") without any network.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from typer.testing import CliRunner

from tests.planner_helpers import scripted
from torchscout.agent.agent_runner import WAITING, run_agent, split_approve, thread_gates
from torchscout.agent.react_agent import approval_middleware, build_agent
from torchscout.settings import configure
from torchscout.tools.errors import ToolError

PIP_TOOL = "pip_install_pytorch_package"


def _install_call(call_id: str = "pip-1", **extra) -> AIMessage:
    return AIMessage(content="I need PyYAML for the config files.",
                     tool_calls=[{"name": PIP_TOOL, "id": call_id,
                                  "args": {"package_name": "pyyaml", "cuda_version": "cpu", **extra}}])


@pytest.fixture(autouse=True)
def offline_pip(monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip may only look at what is installed


def _tool_messages(result_messages) -> list[ToolMessage]:
    return [message for message in result_messages if isinstance(message, ToolMessage)]


def _messages(thread: str) -> list:
    from torchscout.agent.react_agent import open_agent_checkpointer, thread_config

    saver = open_agent_checkpointer()
    try:
        agent = build_agent(scripted(tool_calling=True), saver, approve=thread_gates(thread))
        return agent.get_state(thread_config(thread)).values["messages"]
    finally:
        saver.conn.close()


def test_the_install_waits_for_approval_and_runs_after_yes():
    model = scripted(_install_call(), AIMessage(content="PyYAML is available now."), tool_calling=True)

    waiting = run_agent("Set up the project's config loading.", thread_id="deps", llm=model, approve=["pip_install"])

    assert waiting["status"] == WAITING and model.calls == 1
    [request] = waiting["approval"]
    assert request["name"] == PIP_TOOL and request["args"]["package_name"] == "pyyaml"
    assert "-m pip install" in request["description"] and "pyyaml" in request["description"]
    assert not _tool_messages(_messages("deps"))  # nothing was executed before the answer
    assert thread_gates("deps") == ["pip_install"]

    again = run_agent(None, thread_id="deps", llm=model)  # no answer: still waiting, nothing runs
    assert again["status"] == WAITING and model.calls == 1

    done = run_agent(None, thread_id="deps", llm=model, approve="yes")

    assert done["status"] == "finished" and done["answer"] == "PyYAML is available now."
    [installed] = _tool_messages(_messages("deps"))
    assert installed.name == PIP_TOOL and installed.status != "error"
    assert "Requirement already satisfied" in installed.content and "-m pip install" in installed.content


def test_no_rejects_the_install_and_the_model_reads_why():
    model = scripted(_install_call(), AIMessage(content="Understood, I will use the json module instead."),
                     tool_calling=True)

    run_agent("Set up config loading.", thread_id="deny", llm=model, approve="pip_install")
    done = run_agent(None, thread_id="deny", llm=model, approve="no")

    assert done["status"] == "finished" and done["tool_errors"] == 1
    [rejected] = _tool_messages(_messages("deny"))
    assert rejected.status == "error" and "rejected" in rejected.content and "not executed" in rejected.content
    assert "Requirement already satisfied" not in rejected.content and "$ " not in rejected.content  # no pip run
    assert any(isinstance(message, ToolMessage) and message.status == "error" for message in model.seen[-1])


def test_a_dry_run_and_ungated_threads_do_not_wait():
    dry = scripted(_install_call(dry_run=True), AIMessage(content="That is the command."), tool_calling=True)
    result = run_agent("Show the install command.", thread_id="dry", llm=dry, approve=["pip_install"])
    assert result["status"] == "finished" and json.loads(_tool_messages(_messages("dry"))[0].content)["status"] == "dry_run"

    with pytest.raises(ToolError, match="not waiting for an approval"):
        run_agent(None, thread_id="dry", llm=dry, approve="yes")
    with pytest.raises(ToolError, match="--approve takes yes|no"):
        split_approve("pip-install")
    assert split_approve("pip_install,full_train") == (["pip_install", "full_train"], None)
    assert split_approve("No") == ([], "no")
    gates = approval_middleware(["pip_install", "full_train"]).interrupt_on
    assert set(gates) == {PIP_TOOL, "pytorch_full_trainer"}
    assert approval_middleware([]) is None


def test_the_agent_command_prints_the_request_and_continues_with_approve_yes():
    from torchscout.app import app

    configure(llm=scripted(_install_call(), AIMessage(content="Installed."), tool_calling=True))
    runner = CliRunner()

    first = runner.invoke(app, ["agent", "Install PyYAML.", "--thread", "cli", "--approve", "pip_install"])

    assert first.exit_code == 0, first.output
    assert f"approval needed: {PIP_TOOL}" in first.output
    assert "waiting for approval: torchscout agent --thread cli --approve yes|no" in first.output

    second = runner.invoke(app, ["agent", "--thread", "cli", "--approve", "yes"])

    assert second.exit_code == 0, second.output
    assert f"<- {PIP_TOOL}" in second.output and "Installed." in second.output
