"""The research graph as a LangGraph server app: `langgraph dev` serves it from langgraph.json as is.

The fast tests load ``app.py`` the way the server does (by file path, into a module namespace) and
run ``setup`` from the minimal input. The slow test starts a real ``langgraph dev`` on 127.0.0.1
(no browser, no reload, analytics off, the network guard installed in the server's interpreter),
runs the graph through ``langgraph_sdk`` with ``{"task", "run_name"}``, answers its approval request
with ``Command(resume=...)``, reads the thread's history, and then finds the same run with the CLI's
commands (one workspace, one checkpoint database).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import jsonschema
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from tests.research_helpers import digits_task, write_task
from torchscout.graphs.state import initial_state
from torchscout.graphs.trace import SCHEMA_FILE
from torchscout.tools.errors import ToolError

ROOT = Path(__file__).resolve().parent.parent
TINY = {"max_rounds": 1, "candidates_per_round": 1, "screen_steps": 5, "quick_epochs": 1, "full_epochs": 1,
        "optimizer_trials": 0, "confirm_seeds": 1, "max_minutes": 5}


def _load_like_the_server() -> ModuleType:
    """``./app.py:graph`` as langgraph-api loads it: the file, executed into a fresh module namespace."""
    config = json.loads((ROOT / "langgraph.json").read_text())
    path, _, attribute = config["graphs"]["research"].partition(":")
    spec = importlib.util.spec_from_file_location("langgraph_user_app", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert attribute in vars(module), f"{attribute!r} is not a name in {path}'s namespace"
    return module


def test_the_server_finds_the_graph_and_its_schemas_in_the_module_namespace():
    module = _load_like_the_server()
    graph = vars(module)["graph"]
    schema = graph.get_input_jsonschema()
    assert schema["required"] == ["task", "run_name"] and set(schema["properties"]) == {"task", "run_name"}
    assert {option["type"] for option in schema["properties"]["task"]["anyOf"]} == {"object", "string"}
    assert graph.get_context_jsonschema()["properties"] == {}  # no internal clock fields to fill in
    output = graph.get_output_jsonschema()["properties"]
    assert {"run_name", "run_dir", "final", "full_training", "report_path"} <= set(output)
    checkpointer = json.loads((ROOT / "langgraph.json").read_text())["checkpointer"]
    assert checkpointer["path"].endswith(":checkpointer") and callable(vars(module)["checkpointer"])


def test_setup_builds_the_whole_state_from_the_minimal_input(workspace):
    graph = _load_like_the_server().build_graph(checkpointer=InMemorySaver())
    task_file = write_task(workspace, digits_task("mini", **TINY))
    config = {"configurable": {"thread_id": "a-server-thread"}}

    graph.invoke({"task": str(task_file), "run_name": "mini-1"}, config, interrupt_after=["setup"])

    state = graph.get_state(config).values
    expected = initial_state(state["task"], "mini-1")
    assert set(expected) <= set(state) and state["run_dir"] == "runs/mini-1" and state["task"]["name"] == "mini"
    assert state["project_dir"] == "runs/mini-1/project" and (workspace / "runs/mini-1/task.yaml").is_file()
    claim = json.loads((workspace / "runs/mini-1/thread.json").read_text())
    assert claim == {"run_name": "mini-1", "thread_id": "a-server-thread"}
    other = {"configurable": {"thread_id": "another-thread"}}
    with pytest.raises(ToolError, match="already exists in this workspace") as refused:
        graph.invoke({"task": str(task_file), "run_name": "mini-1"}, other, interrupt_after=["setup"])
    assert isinstance(refused.value, ValueError)  # so a LangGraph server shows its message to the client
    # a second input on a thread that already ran is refused, not mixed into the first run's records
    graph.update_state(config, {"report_path": "runs/mini-1/report.md"})
    with pytest.raises(ToolError, match="this thread already holds a run"):
        graph.invoke({"task": str(task_file), "run_name": "mini-2"}, config)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(workspace: Path, folder: Path, port: int) -> subprocess.Popen:
    """``langgraph dev`` on 127.0.0.1 with the network guard loaded into its interpreter.

    It runs in a copy of the project's langgraph.json and app.py (byte for byte): the server keeps its
    own thread list in ``.langgraph_api/`` in its working folder, which must not land in the repository.
    """
    for name in ("langgraph.json", "app.py"):
        shutil.copyfile(ROOT / name, folder / name)
    guard = folder / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(f"import sys\nsys.path.insert(0, {str(ROOT.parent)!r})\n"
                                            "from tests import network_guard\nnetwork_guard.install()\n")
    env = {**os.environ, "TORCHSCOUT_WORKSPACE": str(workspace), "TORCHSCOUT_WANDB_MODE": "disabled",
           "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false",
           "PYTHONPATH": os.pathsep.join([str(guard), str(ROOT.parent)])}
    env.pop("LANGSMITH_API_KEY", None)
    command = [str(Path(sys.executable).with_name("langgraph")), "dev", "--config", "langgraph.json",
               "--host", "127.0.0.1", "--port", str(port), "--no-browser", "--no-reload"]
    log = (folder / "server.log").open("w")
    return subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_until_up(server: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise AssertionError("langgraph dev did not start:\n" + log.read_text()[-3000:])


async def _run_through_the_sdk(url: str, task: dict) -> dict:
    from langgraph_sdk import get_client

    client = get_client(url=url)
    assistants = await client.assistants.search(graph_id="research")
    assert [item["graph_id"] for item in assistants] == ["research"]
    thread = await client.threads.create()
    waiting = await client.runs.wait(thread["thread_id"], "research", input={"task": task, "run_name": "srv-1"})
    request = waiting["__interrupt__"][0]["value"]
    finished = await client.runs.wait(thread["thread_id"], "research", command={"resume": "yes"})
    history = await client.threads.get_history(thread["thread_id"], limit=200)
    second = await client.threads.create()
    reused = await client.runs.wait(second["thread_id"], "research", input={"task": task, "run_name": "srv-1"},
                                    raise_error=False)
    # a run the CLI will answer: the server leaves it waiting at the gate
    third = await client.threads.create()
    gated = await client.runs.wait(third["thread_id"], "research", input={"task": task, "run_name": "srv-2"})
    return {"thread_id": thread["thread_id"], "request": request, "finished": finished, "history": history,
            "reused": reused, "gated": gated, "gated_thread": third["thread_id"]}


async def _thread_values(url: str, thread_id: str) -> dict:
    from langgraph_sdk import get_client

    return (await get_client(url=url).threads.get_state(thread_id))["values"]


@pytest.mark.slow
def test_langgraph_dev_runs_the_graph_and_the_cli_sees_the_run(workspace, tmp_path):
    from torchscout.graphs.driver import (
        checkpoint_history,
        checkpoint_trace,
        list_runs,
        report_text,
        research,
        resume,
    )

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start_server(workspace, tmp_path, port)
    try:
        _wait_until_up(server, url, tmp_path / "server.log")
        task = {**digits_task("srv", **TINY), "approve": ["full_train"]}
        answers = asyncio.run(_run_through_the_sdk(url, task))
        assert answers["gated"]["__interrupt__"][0]["value"]["run"] == "srv-2"
        answered = resume("srv-2", approve="yes")  # the CLI's resume, on the server's thread
        assert answered["status"] == "finished" and answered["full_training"]["status"] == "completed"
        seen_by_server = asyncio.run(_thread_values(url, answers["gated_thread"]))
        assert seen_by_server["phase"] == "done" and seen_by_server["report_path"] == "runs/srv-2/report.md"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
        server.wait(timeout=60)
    log = (tmp_path / "server.log").read_text()
    assert "NetworkAccessInTest" not in log

    request = answers["request"]
    assert request["action"] == "full_train" and 'Command(resume="yes")' in request["answer_with"]
    assert "torchscout resume srv-1 --approve" in request["answer_with"]
    finished = answers["finished"]
    assert finished["phase"] == "done" and finished["full_training"]["status"] == "completed"
    assert finished["report_path"] == "runs/srv-1/report.md"
    steps = [item["metadata"].get("step") for item in answers["history"]]
    assert len(steps) >= 15 and answers["history"][0]["values"]["phase"] == "done"
    assert "already exists in this workspace" in json.dumps(answers["reused"])

    # one world: the CLI's commands see the server's run by its name
    rows = {row["name"]: row for row in list_runs()}
    assert rows["srv-1"]["status"] == "finished" and rows["srv-1"]["evaluations"] >= 2
    history = checkpoint_history("srv-1")
    assert len(history) == len(steps) and history[-1]["node"] == "analyze"
    assert report_text("srv-1").startswith("# Research report: srv-1")
    trace = json.loads(json.dumps(checkpoint_trace("srv-1")))  # the server's checkpoint metadata too
    jsonschema.validate(trace, json.loads(SCHEMA_FILE.read_text()))
    assert trace["thread_id"] == answers["thread_id"] and len(trace["steps"]) == len(steps)
    with pytest.raises(ToolError, match="--name"):
        research(digits_task("srv", **TINY), name="srv-1")
