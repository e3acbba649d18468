"""The torchscout console script: `tools` and `tool NAME --args JSON`, in a real subprocess."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLI = shutil.which("torchscout", path=str(Path(sys.executable).parent)) or "torchscout"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TORCHSCOUT_WORKSPACE": str(cwd)}
    return subprocess.run([CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_tools_lists_all_fifteen_with_a_line_each(workspace):
    result = run_cli("tools", cwd=workspace)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 15
    assert lines[0].startswith("read_file") and lines[-1].startswith("create_pytorch_project_scaffold")


def test_tool_calls_a_tool_and_prints_json(workspace):
    (workspace / "a.txt").write_text("hello")
    result = run_cli("tool", "list_directory", "--args", '{"path": "."}', cwd=workspace)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["entries"] == ["a.txt"] and listing["status"] == "success"
    result = run_cli("tool", "read_file", "--args", '{"file_path": "a.txt"}', cwd=workspace)
    assert json.loads(result.stdout)["content"] == "hello"


@pytest.mark.parametrize(("args", "code", "needle"), [
    (["tool", "read_file", "--args", '{"file_path": "../x"}'], 1, "outside the workspace"),
    (["tool", "no_such_tool"], 2, "unknown tool"),
    (["tool", "read_file", "--args", "{not json"], 2, "not valid JSON"),
])
def test_errors_exit_non_zero_with_a_message(workspace, args, code, needle):
    result = run_cli(*args, cwd=workspace)
    assert result.returncode == code
    assert needle in result.stdout + result.stderr


def test_schema_prints_the_argument_schema(workspace):
    result = run_cli("tool", "bash_run", "--schema", cwd=workspace)
    schema = json.loads(result.stdout)
    assert set(schema["properties"]) == {"command", "timeout_s"}
