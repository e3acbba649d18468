"""The text files a tokenizer trains on: workspace paths and globs, expanded without following links.

``glob.glob(..., recursive=True)`` follows symbolic links to folders while it expands ``**``, so a
link loop (``data/loop -> .``) or a link to ``/`` inside the workspace made it walk forever. Here
``**`` descends only into real folders, and a pattern that makes the walk visit more than
:data:`MAX_FOLDERS_VISITED` folders is refused with a message instead of running on. A corpus
with no text in it is refused too: a tokenizer trained on nothing is not a tokenizer.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Iterator
from pathlib import Path

from torchscout.tools.errors import ToolError
from torchscout.tools.workspace import relative_to_workspace, resolve, workspace_root

MAX_FOLDERS_VISITED = 20_000
TEXT_PROBE_BYTES = 1 << 20  # a corpus file whose first MiB is blank is taken to hold no text


class _Walk:
    """One pattern's expansion, counting the folders it visits."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.visited = 0

    def _visit(self) -> None:
        self.visited += 1
        if self.visited > MAX_FOLDERS_VISITED:
            raise ToolError(f"config.data_files pattern {self.pattern!r} visits more than {MAX_FOLDERS_VISITED} "
                            "folders; narrow it (e.g. 'corpus/*.txt' instead of '**/*.txt')")

    def expand(self, base: Path, parts: list[str]) -> Iterator[Path]:
        if not parts:
            yield base
            return
        head, rest = parts[0], parts[1:]
        if head == "**":
            for folder in self._real_folders(base):
                yield from self.expand(folder, rest)
                if not rest:  # a trailing '**' matches the files too
                    yield from (folder / name for name in sorted(self._names(folder)) if not name.startswith("."))
        elif glob.has_magic(head):
            self._visit()
            for name in sorted(self._names(base)):
                if fnmatch.fnmatchcase(name, head) and (head.startswith(".") or not name.startswith(".")):
                    yield from self.expand(base / name, rest)
        elif (base / head).exists() or (base / head).is_symlink():
            yield from self.expand(base / head, rest)

    def _real_folders(self, base: Path) -> Iterator[Path]:
        """``base`` and every folder under it, hidden ones and symbolic links excluded (as glob does)."""
        if not base.is_dir():
            return
        for folder, subfolders, _files in os.walk(base, followlinks=False):
            self._visit()
            subfolders[:] = sorted(name for name in subfolders
                                   if not name.startswith(".") and not os.path.islink(os.path.join(folder, name)))
            yield Path(folder)

    @staticmethod
    def _names(base: Path) -> list[str]:
        try:
            return os.listdir(base)
        except (NotADirectoryError, FileNotFoundError, PermissionError):
            return []


def _matches(pattern: str) -> list[Path]:
    root = workspace_root()
    absolute = Path(pattern) if Path(pattern).is_absolute() else root / pattern
    parts = list(absolute.parts)
    # the longest prefix without wildcards is where the walk starts
    start = next(index for index, part in enumerate(parts) if glob.has_magic(part))
    return list(_Walk(pattern).expand(Path(*parts[:start]), parts[start:]))


def expand_data_files(patterns: list[str]) -> list[Path]:
    """Workspace files for a list of paths and globs (``data/*.txt``, ``corpus/**/*.txt``)."""
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
        raise ToolError("config.data_files must be a list of workspace paths or globs such as ['data/*.txt']")
    files: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            found = [resolve(match, kind="data file") for match in _matches(pattern)]
            found = [path for path in found if path.is_file()]
            if not found:
                raise ToolError(f"config.data_files pattern {pattern!r} matched no file in the workspace")
        else:
            path = resolve(pattern, must_exist=True, kind="data file")
            if not path.is_file():
                raise ToolError(f"config.data_files entry {pattern!r} is not a file")
            found = [path]
        files.extend(path for path in found if path not in files)
    return files


def check_has_text(files: list[Path]) -> None:
    """Refuse a corpus whose files are all empty or blank (the trainer would 'succeed' on nothing)."""
    for path in files:
        try:
            with path.open("rb") as handle:
                if handle.read(TEXT_PROBE_BYTES).strip():
                    return
        except OSError as exc:
            raise ToolError(f"cannot read the data file {relative_to_workspace(path)}: {exc.strerror}") from exc
    shown = ", ".join(relative_to_workspace(path) for path in files[:3])
    raise ToolError(f"config.data_files hold no text ({shown}{', ...' if len(files) > 3 else ''} are empty "
                    "or blank); give files with the training texts")
