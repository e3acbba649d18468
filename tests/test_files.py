"""The five file tools, through the real StructuredTool objects and the plain functions."""

import json
import os

import pytest

from torchscout.tools import (
    append_to_file,
    create_directory,
    list_directory,
    read_file,
    write_file,
)
from torchscout.tools import files as plain
from torchscout.tools.errors import WorkspaceError


def test_write_then_read_round_trips_and_creates_parent_folders(workspace):
    written = write_file.invoke({"file_path": "src/models/net.py", "content": "x = 1\n"})
    assert written == {"status": "success", "message": "Wrote 6 characters to src/models/net.py (6 bytes).",
                       "file_path": "src/models/net.py", "chars_written": 6, "size_bytes": 6}
    assert (workspace / "src/models/net.py").read_text() == "x = 1\n"
    assert read_file.invoke({"file_path": "src/models/net.py"})["content"] == "x = 1\n"
    assert plain.read_file("src/models/net.py") == "x = 1\n" and plain.write_file("b.py", "") is None


def test_write_replaces_content_atomically_and_leaves_no_temp_files(workspace):
    write_file.invoke({"file_path": "a.txt", "content": "old content that is longer"})
    write_file.invoke({"file_path": "a.txt", "content": "new"})
    assert (workspace / "a.txt").read_text() == "new"
    assert sorted(os.listdir(workspace)) == ["a.txt"]


def test_failed_write_keeps_the_old_file(workspace, monkeypatch):
    (workspace / "keep.txt").write_text("precious")

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", explode)
    with pytest.raises(OSError, match="disk full"):
        plain.write_file("keep.txt", "half")
    assert (workspace / "keep.txt").read_text() == "precious"
    assert sorted(os.listdir(workspace)) == ["keep.txt"]


def test_append_creates_then_extends(workspace):
    append_to_file.invoke({"file_path": "logs/run.log", "content": "one\n"})
    answer = append_to_file.invoke({"file_path": "logs/run.log", "content": "two\n"})
    assert (workspace / "logs/run.log").read_text() == "one\ntwo\n"
    assert answer["status"] == "success" and answer["size_bytes"] == 8 and answer["file_path"] == "logs/run.log"


def test_list_directory_sorted_marks_folders_and_skips_git(workspace):
    for name in ["b.py", "a/x.txt", "a/deep/y.txt", ".git/HEAD"]:
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text("")
    assert list_directory.invoke({})["entries"] == ["a/", "b.py"]
    assert list_directory.invoke({"path": ".", "recursive": True})["entries"] == [
        "a/", "a/deep/", "a/deep/y.txt", "a/x.txt", "b.py"]
    assert list_directory.invoke({"path": "a"})["entries"] == ["deep/", "x.txt"]
    assert plain.list_directory("a") == ["deep/", "x.txt"]
    (workspace / "empty").mkdir()
    empty = list_directory.invoke({"path": "empty"})
    assert empty["entries"] == [] and empty["count"] == 0 and "empty" in empty["message"]


def test_list_directory_caps_long_listings_with_a_note(workspace):
    folder = workspace / "many"
    folder.mkdir()
    for index in range(2005):
        (folder / f"f{index:05d}").touch()
    listing = plain.list_directory("many")
    assert len(listing) == 2001
    assert listing[0] == "f00000"
    assert "5 more entries not shown" in listing[-1]
    # the agent sees the first entries and the path of a file with the whole (capped) listing
    answer = list_directory.invoke({"path": "many"})
    assert answer["count"] == 2005 and answer["entries"][0] == "f00000" and len(json.dumps(answer)) <= 4000
    full = (workspace / answer["details_path"]).read_text().splitlines()
    assert full[:2000] == listing[:2000] and "5 more entries not shown" in full[-1]


def test_create_directory_is_mkdir_p_and_idempotent(workspace):
    assert create_directory.invoke({"path": "experiments/run/1"})["path"] == "experiments/run/1"
    assert create_directory.invoke({"path": "experiments/run/1"})["status"] == "success"
    assert (workspace / "experiments/run/1").is_dir()


@pytest.mark.parametrize("escape", ["../outside.txt", "a/../../outside.txt", "/etc/passwd"])
def test_paths_outside_the_workspace_are_refused(escape, workspace):
    message = write_file.invoke({"file_path": escape, "content": "x"})
    assert message.startswith("Error:") and "outside the workspace" in message
    assert read_file.invoke({"file_path": escape}).startswith("Error:")
    assert not (workspace.parent / "outside.txt").exists()
    with pytest.raises(WorkspaceError):
        plain.read_file(escape)


def test_a_symlink_pointing_out_of_the_workspace_is_refused(workspace, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    (workspace / "link.txt").symlink_to(secret)
    (workspace / "linkdir").symlink_to(tmp_path)
    assert "outside the workspace" in read_file.invoke({"file_path": "link.txt"})
    assert "outside the workspace" in write_file.invoke({"file_path": "linkdir/new.txt", "content": "x"})
    assert secret.read_text() == "do not read"
    assert not (tmp_path / "new.txt").exists()


def test_a_symlink_inside_the_workspace_is_fine(workspace):
    (workspace / "real.txt").write_text("inside")
    (workspace / "alias.txt").symlink_to(workspace / "real.txt")
    assert read_file.invoke({"file_path": "alias.txt"})["content"] == "inside"


def test_bad_arguments_become_agent_readable_errors():
    assert read_file.invoke({}).startswith("Error: invalid arguments")
    assert "file_path" in read_file.invoke({"file_path": 42})
    assert read_file.invoke({"file_path": "missing.txt"}).startswith("Error:")
    assert "is a directory" in read_file.invoke({"file_path": "."})
    assert read_file.invoke({"file_path": ""}).startswith("Error:")


def test_binary_files_are_refused_with_a_reason(workspace):
    (workspace / "blob.bin").write_bytes(b"\xff\xfe\x00\x81")
    assert "not UTF-8" in read_file.invoke({"file_path": "blob.bin"})


def test_read_file_pages_a_long_file_in_windows_that_end_at_line_breaks(workspace):
    text = "".join(f'line {index}: "quoted" text\n' for index in range(400))
    (workspace / "long.py").write_text(text)
    pages, offset = [], 0
    while True:
        answer = read_file.invoke({"file_path": "long.py", "offset": offset})
        assert len(json.dumps(answer, ensure_ascii=False)) <= 4000 and answer["total_chars"] == len(text)
        pages.append(answer["content"])
        if "next_offset" not in answer:
            break
        assert answer["content"].endswith("\n") and f"offset={answer['next_offset']}" in answer["message"]
        offset = answer["next_offset"]
    assert "".join(pages) == text and len(pages) > 3
    assert "past the end" in read_file.invoke({"file_path": "long.py", "offset": len(text) + 1})
