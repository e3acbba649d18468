"""create_pytorch_project_scaffold: an opinionated PyTorch research project, ready to run.

The templates live in ``tools/scaffold/templates/project/`` (files ending in ``.tmpl``; ``{{project_name}}``
and train.py's data loaders, see ``train_script.py``, are filled in). The project is built in a
hidden temporary folder next to its destination and renamed into place at the end, so a failure
never leaves half a project behind.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, Field

from torchscout.tools.errors import ToolError
from torchscout.tools.scaffold.rendering import render, template_root
from torchscout.tools.scaffold.train_script import Normalisation, train_script_values
from torchscout.tools.toolkit import make_tool
from torchscout.tools.workspace import relative_to_workspace, resolve

PROJECT_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
EMPTY_FOLDERS = ("data", "experiments", "full_experiments", "tokenizers")
# template files whose real name starts with a dot (kept visible in the package)
RENAMED_TEMPLATES = {"gitignore": ".gitignore"}


class ScaffoldArgs(BaseModel):
    project_name: str = Field(description="Name of the new project; it becomes the root folder's name "
                              "(letters, digits, '_', '-', '.'; starts with a letter).")
    base_dir: str = Field(default=".", description="Workspace folder in which the project folder is created.")


def _render_into(destination: Path, values: Mapping[str, str]) -> list[str]:
    written: list[str] = []

    def copy(node, relative: Path) -> None:
        for child in sorted(node.iterdir(), key=lambda item: item.name):
            if child.is_dir():
                copy(child, relative / child.name)
                continue
            if not child.name.endswith(".tmpl"):
                continue
            name = child.name.removesuffix(".tmpl")
            target = destination / relative / RENAMED_TEMPLATES.get(name, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(child.read_text(encoding="utf-8"), values), encoding="utf-8")
            written.append(target.relative_to(destination).as_posix())

    copy(template_root() / "project", Path())
    for folder in EMPTY_FOLDERS:
        (destination / folder).mkdir(exist_ok=True)
        (destination / folder / ".gitkeep").touch()
        written.append(f"{folder}/.gitkeep")
    return sorted(written)


def create_pytorch_project_scaffold(project_name: str, base_dir: str = ".") -> dict:
    """Create a new PyTorch research project folder `<base_dir>/<project_name>`.

    It holds src/models (a baseline CNN), src/data (a synthetic dataset), src/optimizers,
    configs/base.yaml, train.py, tests/, data/, experiments/, full_experiments/, tokenizers/,
    README.md, requirements.txt and .gitignore. `python train.py --config configs/base.yaml`
    runs one epoch on synthetic data at once, and `python -m pytest` passes in the new folder.
    An existing non-empty folder is never overwritten. Returns the project path and its files.
    """
    return create_project(project_name, base_dir)


def create_project(project_name: str, base_dir: str = ".", data_kinds: Iterable[str] = (),
                   normalisation: Mapping[str, Normalisation] | None = None) -> dict:
    """:func:`create_pytorch_project_scaffold`, with a train.py that also loads ``data_kinds``.

    ``torchscout export`` uses it for the research dataset (see :func:`train_script_values`).
    """
    values = {"project_name": project_name, **train_script_values(data_kinds, normalisation)}
    if not PROJECT_NAME_PATTERN.match(project_name):
        raise ToolError(f"project_name {project_name!r} is not a valid folder name: use letters, digits, "
                        "'_', '-' or '.', starting with a letter, at most 64 characters")
    base = resolve(base_dir, kind="base_dir")
    if base.exists() and not base.is_dir():
        raise ToolError(f"base_dir {base_dir!r} is a file, not a directory")
    project = resolve(Path(base_dir) / project_name, kind="project folder")
    if project.exists() and (not project.is_dir() or any(project.iterdir())):
        raise ToolError(f"{relative_to_workspace(project)!r} already exists and is not empty; "
                        "choose another project_name or base_dir (nothing was changed)")
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{project_name}.", dir=base))
    try:
        files = _render_into(staging, values)
        staging.chmod(0o755)  # mkdtemp makes it private; a project folder is an ordinary folder
        if project.exists():
            project.rmdir()  # an existing empty folder is replaced
        staging.rename(project)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shown = relative_to_workspace(project)
    return {
        "status": "success",
        "project_dir": shown,
        "files": files,
        "next_steps": [f"cd {shown}", "python train.py --config configs/base.yaml", "python -m pytest -q"],
        "message": f"Created the project {shown} ({len(files)} files). Put models in {shown}/src/models; "
                   f"`python train.py --config configs/base.yaml` in {shown} trains the baseline.",
    }


create_pytorch_project_scaffold_tool = make_tool(create_pytorch_project_scaffold, ScaffoldArgs)
