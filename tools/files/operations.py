"""The five file tools: read_file, write_file, append_to_file, list_directory, create_directory.

Every path is resolved inside the workspace (see :mod:`torchscout.tools.workspace`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, Field

from torchscout.tools.answers import to_json, write_details
from torchscout.tools.errors import ToolError
from torchscout.tools.ownership import check_not_state
from torchscout.tools.toolkit import make_tool
from torchscout.tools.workspace import atomic_write_text, relative_to_workspace, resolve

MAX_READ_BYTES = 10 * 1024 * 1024
MAX_LISTED_ENTRIES = 2000
READ_WINDOW_CHARS = 3000  # of a file's text per read_file answer (the answer contract's ~4,000 in all)
LISTING_ANSWER_CHARS = 3000  # of entries per list_directory answer; the full listing goes to a file
SKIPPED_DIRECTORIES = {".git"}


class ReadFileArgs(BaseModel):
    file_path: str = Field(description="Path of the file to read, relative to the workspace root.")
    offset: int = Field(default=0, ge=0, description="Character offset to start reading at: 0, or the "
                        "previous answer's next_offset for the rest of a long file.")


class WriteFileArgs(BaseModel):
    file_path: str = Field(description="Path of the file to write, relative to the workspace root. "
                           "Missing parent folders are created.")
    content: str = Field(description="The complete new content of the file (it replaces what was there).")


class AppendToFileArgs(BaseModel):
    file_path: str = Field(description="Path of the file to append to; created if it does not exist.")
    content: str = Field(description="Text to add at the end of the file, as is (add your own newlines).")


class ListDirectoryArgs(BaseModel):
    path: str = Field(default=".", description="Folder to list, relative to the workspace root.")
    recursive: bool = Field(default=False, description="List every file and folder below `path` too.")


class CreateDirectoryArgs(BaseModel):
    path: str = Field(description="Folder to create (with any missing parents, like `mkdir -p`).")


def read_file(file_path: str) -> str:
    """Read and return the whole text content of a file in the workspace.

    Use it to look at code, configs, logs and results before changing anything. Files over
    10 MiB and binary files are refused with a message saying so.
    """
    path = resolve(file_path, must_exist=True, kind="file_path")
    if path.is_dir():
        raise ToolError(f"{file_path!r} is a directory; use list_directory to see what it holds")
    _refuse_special(path, file_path)
    size = path.stat().st_size
    if size > MAX_READ_BYTES:
        raise ToolError(f"{file_path!r} is {size:,} bytes, over the {MAX_READ_BYTES:,}-byte read limit; "
                        "use bash_run with head/tail/grep to look at part of it")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{file_path!r} is not UTF-8 text (binary file?): {exc}") from exc


def write_file(file_path: str, content: str) -> None:
    """Replace the whole content of a file with `content`, creating the file and its folders.

    The write is atomic: readers see either the old file or the new one, never half of it.
    """
    path = resolve(file_path, kind="file_path")
    if path.is_dir():
        raise ToolError(f"{file_path!r} is a directory; give a file path")
    check_not_state(path, "file_path")
    _refuse_special(path, file_path)
    atomic_write_text(path, content)


def append_to_file(file_path: str, content: str) -> None:
    """Append `content` to the end of a file, creating the file (and its folders) if needed."""
    path = resolve(file_path, kind="file_path")
    if path.is_dir():
        raise ToolError(f"{file_path!r} is a directory; give a file path")
    check_not_state(path, "file_path")
    _refuse_special(path, file_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(content)


def _refuse_special(path: Path, file_path: str) -> None:
    """Only regular files: opening a FIFO blocks until another process opens its other end (a hang)."""
    if path.exists() and not path.is_file():
        raise ToolError(f"{file_path!r} is not a regular file (a pipe, socket or device); the file tools read "
                        "and write regular files only")


def list_directory(path: str = ".", recursive: bool = False) -> list[str]:
    """List a folder's entries, sorted, as paths relative to that folder; folders end with '/'.

    With recursive=True every entry below the folder is listed. `.git` folders are skipped.
    Past 2,000 entries the list is cut and its last line says how many were left out.
    """
    folder = resolve(path, must_exist=True)
    if not folder.is_dir():
        raise ToolError(f"{path!r} is a file, not a directory; use read_file to read it")
    entries = sorted(_walk(folder) if recursive else _children(folder))
    if len(entries) > MAX_LISTED_ENTRIES:
        left_out = len(entries) - MAX_LISTED_ENTRIES
        return entries[:MAX_LISTED_ENTRIES] + [
            f"... {left_out:,} more entries not shown (listing capped at {MAX_LISTED_ENTRIES:,}; "
            "list a subfolder to see them)"
        ]
    return entries


def _label(entry: Path, base: Path) -> str:
    name = entry.relative_to(base).as_posix()
    return f"{name}/" if entry.is_dir() else name


def _children(folder: Path) -> list[str]:
    return [_label(entry, folder) for entry in folder.iterdir() if entry.name not in SKIPPED_DIRECTORIES]


def _walk(folder: Path) -> list[str]:
    found: list[str] = []
    # followlinks=False: a symlinked folder is listed but not entered, so the listing cannot
    # wander outside the workspace or loop forever.
    for current, directories, files in os.walk(folder, followlinks=False):
        directories[:] = [name for name in directories if name not in SKIPPED_DIRECTORIES]
        here = Path(current)
        found.extend(_label(here / name, folder) for name in directories)
        found.extend(_label(here / name, folder) for name in files)
    return found


def create_directory(path: str) -> None:
    """Create a folder and any missing parents (like `mkdir -p`); an existing folder is fine."""
    folder = resolve(path)
    if folder.exists() and not folder.is_dir():
        raise ToolError(f"{relative_to_workspace(folder)!r} exists and is a file, not a directory")
    folder.mkdir(parents=True, exist_ok=True)


# The agent's answers (see torchscout.tools.answers): the plain functions above keep the PRD's returns.


def read_file_window(file_path: str, offset: int = 0) -> dict:
    """Read a text file in the workspace: its content, up to 3,000 characters per call.

    Use it to look at code, configs, logs and results before changing anything. A longer file
    comes in windows that end at a line break: the answer's next_offset is the offset of the
    next call. Files over 10 MiB and binary files are refused with a message saying so.
    """
    text = read_file(file_path)
    shown_path = relative_to_workspace(resolve(file_path))
    if offset > len(text):
        raise ToolError(f"offset {offset} is past the end of {shown_path!r} ({len(text):,} characters); "
                        "use offset=0 to read it from the start")
    end = min(len(text), offset + READ_WINDOW_CHARS)
    while len(to_json(text[offset:end])) > READ_WINDOW_CHARS:  # quotes and line breaks grow in JSON
        end -= max(1, (len(to_json(text[offset:end])) - READ_WINDOW_CHARS) // 2)
    if end < len(text):
        line_end = text.rfind("\n", offset, end)
        end = line_end + 1 if line_end > offset + READ_WINDOW_CHARS // 2 else end
    answer = {"status": "success", "file_path": shown_path, "content": text[offset:end],
              "total_chars": len(text), "offset": offset}
    if end < len(text):
        answer["next_offset"] = end
        answer["message"] = (f"Characters {offset:,} to {end:,} of {len(text):,}; call read_file with "
                             f"offset={end} for the rest.")
    else:
        answer["message"] = (f"The whole file ({len(text):,} characters)." if offset == 0 else
                             f"Characters {offset:,} to the end ({len(text):,}).")
    return answer


def _written(result: None, arguments: dict) -> dict:
    path = resolve(arguments["file_path"])
    size = path.stat().st_size
    return {"status": "success", "file_path": relative_to_workspace(path), "chars_written": len(arguments["content"]),
            "size_bytes": size, "message": f"Wrote {len(arguments['content']):,} characters to "
                                           f"{relative_to_workspace(path)} ({size:,} bytes)."}


def _appended(result: None, arguments: dict) -> dict:
    path = resolve(arguments["file_path"])
    size = path.stat().st_size
    return {"status": "success", "file_path": relative_to_workspace(path),
            "chars_appended": len(arguments["content"]), "size_bytes": size,
            "message": f"Appended {len(arguments['content']):,} characters to {relative_to_workspace(path)} "
                       f"(now {size:,} bytes)."}


def _created(result: None, arguments: dict) -> dict:
    shown = relative_to_workspace(resolve(arguments["path"]))
    return {"status": "success", "path": shown,
            "message": f"The folder {shown} exists (created with any missing parents if it was not there)."}


_CAP_NOTE = re.compile(r"^\.\.\. ([\d,]+) more entries not shown \(listing capped")


def _listing(entries: list[str], arguments: dict) -> dict:
    shown = relative_to_workspace(resolve(arguments.get("path", ".")))
    capped = _CAP_NOTE.match(entries[-1]) if len(entries) > MAX_LISTED_ENTRIES else None
    count = MAX_LISTED_ENTRIES + int(capped.group(1).replace(",", "")) if capped else len(entries)
    answer = {"status": "success", "path": shown, "count": count, "entries": entries}
    if not entries:
        return {**answer, "message": f"{shown} is empty."}
    if len(to_json(entries)) <= LISTING_ANSWER_CHARS:
        return {**answer, "message": f"{count:,} entries in {shown}; folders end with '/'."}
    kept: list[str] = []
    size = 2
    for entry in entries:
        size += len(to_json(entry)) + 2
        if size > LISTING_ANSWER_CHARS:
            break
        kept.append(entry)
    details = write_details("list_directory", "\n".join(entries) + "\n", "txt")
    return {**answer, "entries": kept, "details_path": details,
            "message": f"{count:,} entries in {shown}; the first {len(kept):,} are shown and "
                       f"{'the first 2,000' if capped else 'all of them'} are in {details}. List a subfolder to see "
                       "fewer."}


read_file_tool = make_tool(read_file_window, ReadFileArgs, name="read_file")
write_file_tool = make_tool(write_file, WriteFileArgs, answer=_written)
append_to_file_tool = make_tool(append_to_file, AppendToFileArgs, answer=_appended)
list_directory_tool = make_tool(list_directory, ListDirectoryArgs, answer=_listing)
create_directory_tool = make_tool(create_directory, CreateDirectoryArgs, answer=_created)
