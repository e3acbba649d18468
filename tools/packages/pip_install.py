"""pip_install_pytorch_package: install a PyTorch-ecosystem package without breaking torch.

The one `pip install` command it builds
- pins the installed torch with a constraint file, so no dependency can silently replace it;
- picks the torchvision / torchaudio release that matches the torch version;
- uses PyTorch's own wheel index only for torch-family packages: the one of the installed torch's build
  (``torch.version.cuda``, ROCm or CPU) unless `cuda_version` is given;
- validates every name and version first and runs pip as an argv list (never a shell string).
"""

from __future__ import annotations

import re
import shlex
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, Field

from torchscout.tools.errors import ToolError
from torchscout.tools.shell.answers import command_answer
from torchscout.tools.shell.commands import run_shell_command
from torchscout.tools.toolkit import make_tool

PYTORCH_INDEX = "https://download.pytorch.org/whl/{cuda_version}"
TORCH_FAMILY = {"torch", "torchvision", "torchaudio"}
PACKAGE_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9._,-]+\])?$")
CUDA_PATTERN = re.compile(r"^(cpu|cu\d{2,3}|rocm\d+(?:\.\d+)*)$")
PIP_TIMEOUT_S = 1800

# Releases that break the usual numbering rule (see _companion_versions).
_COMPANION_EXCEPTIONS: dict[str, dict[str, str]] = {
    "2.0.0": {"torchvision": "0.15.1", "torchaudio": "2.0.1"},
    "2.0.1": {"torchvision": "0.15.2", "torchaudio": "2.0.2"},
}


class PipInstallArgs(BaseModel):
    package_name: str = Field(description="Package to install, e.g. 'torchvision', 'timm', 'torchmetrics' "
                              "(extras allowed: 'package[extra]').")
    version: str | None = Field(default=None, description="Exact version to install, e.g. '0.15.2'. "
                                "Omit for the newest compatible one (torchvision/torchaudio: the match for torch).")
    pytorch_version: str = Field(default="2.1.0", description="The PyTorch version the package must work with. "
                                 "When torch is installed, its real version is used and pinned instead.")
    cuda_version: str | None = Field(default=None, description="Build of torch-family wheels: 'cu118', 'cu124', "
                                     "'cu130', 'rocm6.2' or 'cpu'. Omit to follow the installed torch's build. "
                                     "Other packages come from the normal index.")
    upgrade: bool = Field(default=False, description="Pass --upgrade (torch itself stays pinned).")
    dry_run: bool = Field(default=False, description="Return the pip command that would run, without running it.")


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


def _parse_version(text: str, argument: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion as exc:
        raise ToolError(f"{argument} {text!r} is not a valid version (expected something like '2.1.0')") from exc


def installed_torch_version() -> Version | None:
    """The torch version installed in this environment, without its local build tag."""
    try:
        return Version(Version(metadata.version("torch")).public)
    except metadata.PackageNotFoundError:
        return None


def companion_versions(torch_version: Version) -> dict[str, str]:
    """torchvision and torchaudio releases built against ``torch_version``.

    torch 1.x.y pairs with torchvision 0.(x+1).y and torchaudio 0.x.y; torch 2.x.y with
    torchvision 0.(x+15).y and torchaudio 2.x.y, apart from the 2.0 releases in the table.
    """
    key = f"{torch_version.major}.{torch_version.minor}.{torch_version.micro}"
    if key in _COMPANION_EXCEPTIONS:
        return dict(_COMPANION_EXCEPTIONS[key])
    major, minor, micro = torch_version.major, torch_version.minor, torch_version.micro
    if major == 1:
        return {"torchvision": f"0.{minor + 1}.{micro}", "torchaudio": f"0.{minor}.{micro}"}
    if major == 2:
        return {"torchvision": f"0.{minor + 15}.{micro}", "torchaudio": f"2.{minor}.{micro}"}
    raise ToolError(f"no known torchvision/torchaudio pairing for torch {torch_version}; pass `version` explicitly")


def installed_torch_build() -> tuple[str, str] | None:
    """(build, reason) of the installed torch: 'cu130', 'rocm6.2' or 'cpu'; None when torch is not installed."""
    try:
        full = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None
    local = Version(full).local
    if local and CUDA_PATTERN.match(local):
        return local, f"the installed torch {full} is a {local} build"
    import torch  # a wheel without a local tag (PyPI's): ask torch itself

    if torch.version.cuda:
        build = "cu" + torch.version.cuda.replace(".", "")
        return build, f"the installed torch {full} is built for CUDA {torch.version.cuda} (torch.version.cuda)"
    hip = getattr(torch.version, "hip", None)
    if hip:
        build = "rocm" + ".".join(hip.split(".")[:2])
        return build, f"the installed torch {full} is built for ROCm {hip}"
    return "cpu", f"the installed torch {full} is a CPU build"


def wheel_build(cuda_version: str | None) -> tuple[str, str]:
    """(build, why) for PyTorch's wheel index: ``cuda_version`` when given, else the installed torch's build."""
    if cuda_version:
        return cuda_version, f"cuda_version={cuda_version!r} was given"
    found = installed_torch_build()
    if found is None:
        return "cpu", ("no torch is installed and cuda_version was not given, so CPU wheels; pass cuda_version "
                       "(e.g. 'cu124') for a CUDA build")
    build, reason = found
    return build, f"{reason} (pass cuda_version to choose another)"


def build_pip_command(
    package_name: str,
    version: str | None,
    pytorch_version: str,
    cuda_version: str | None,
    upgrade: bool,
    constraints_file: Path,
) -> tuple[list[str], str, list[str]]:
    """Return (argv, constraints file text, notes) for one validated pip install.

    A torch-family install's notes say which wheel index was chosen and why.
    """
    if not PACKAGE_PATTERN.match(package_name):
        raise ToolError(f"package_name {package_name!r} is not a valid package name (letters, digits, '.', '_', "
                        "'-', optional [extras]); give just the name and put the version in `version`")
    if cuda_version is not None and not CUDA_PATTERN.match(cuda_version):
        raise ToolError(f"cuda_version {cuda_version!r} is not valid: use 'cpu', 'cu118', 'cu121', 'cu124', "
                        "'rocm6.2', ...")
    requested_torch = _parse_version(pytorch_version, "pytorch_version")
    pinned_version = _parse_version(version, "version") if version else None
    installed = installed_torch_version()
    name = _normalised(package_name)
    notes: list[str] = []

    torch_version = installed or requested_torch
    if installed and installed != requested_torch and name != "torch":
        notes.append(f"torch {installed} is installed; it is pinned and used instead of pytorch_version "
                     f"{requested_torch}")
    if name == "torch":
        torch_version = pinned_version or requested_torch
        if installed and installed != torch_version:
            notes.append(f"this replaces the installed torch {installed} with {torch_version}, as asked")
        pinned_version = torch_version

    if name in {"torchvision", "torchaudio"}:
        expected = companion_versions(torch_version)[name]
        if pinned_version and pinned_version != Version(expected):
            raise ToolError(f"{name} {pinned_version} does not match torch {torch_version} (it needs {name} "
                            f"{expected}); omit `version` to get the matching release")
        pinned_version = Version(expected)

    constraints = f"torch=={torch_version}\n" if name != "torch" and installed else ""
    argv = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    if upgrade:
        argv.append("--upgrade")
    if constraints:
        argv += ["--constraint", str(constraints_file)]
    argv.append(f"{package_name}=={pinned_version}" if pinned_version else package_name)
    if name in TORCH_FAMILY:
        build, why = wheel_build(cuda_version)
        index = PYTORCH_INDEX.format(cuda_version=build)
        argv += ["--index-url", index]
        notes.append(f"wheel index {index}: {why}")
    return argv, constraints, notes


def _run_install(package_name: str, version: str | None, pytorch_version: str, cuda_version: str | None,
                 upgrade: bool, dry_run: bool) -> tuple[list[str], list[str], str | None]:
    """(argv, notes with the constraint, pip's text or None for a dry run)."""
    with tempfile.TemporaryDirectory(prefix="torchscout-pip-") as folder:
        constraints_file = Path(folder) / "constraints.txt"
        argv, constraints, notes = build_pip_command(
            package_name, version, pytorch_version, cuda_version, upgrade, constraints_file
        )
        if constraints:
            notes.append(f"constraint: {constraints.strip()} (torch cannot be replaced by this install)")
        if dry_run:
            return argv, notes, None
        constraints_file.write_text(constraints, encoding="utf-8")
        # confined like every command, but with the network and the Python environment writable
        result = run_shell_command(argv, PIP_TIMEOUT_S, profile="packages", network=True, extra_read=[folder])
    if result.timed_out:
        raise ToolError(f"pip did not finish within {PIP_TIMEOUT_S} s and was killed:\n{result.as_text()}")
    return argv, notes, result.as_text()


def pip_install_pytorch_package(
    package_name: str,
    version: str | None = None,
    pytorch_version: str = "2.1.0",
    cuda_version: str | None = None,
    upgrade: bool = False,
    dry_run: bool = False,
) -> str:
    """Install a PyTorch-related package with pip into this environment, keeping torch intact.

    torch is pinned to the installed version with a constraint, torchvision/torchaudio get
    the release matching torch, and torch-family wheels come from PyTorch's index for the
    installed torch's build (or `cuda_version` when given). Returns pip's combined output and
    exit code; with dry_run=True, the command that would run and why.
    """
    argv, notes, text = _run_install(package_name, version, pytorch_version, cuda_version, upgrade, dry_run)
    header = "".join(f"note: {note}\n" if not note.startswith("constraint:") else f"{note}\n" for note in notes)
    if text is None:
        return f"{header}dry run, would run: {shlex.join(argv)}"
    return f"{header}$ {shlex.join(argv)}\n{text}"


def pip_install_answer(
    package_name: str,
    version: str | None = None,
    pytorch_version: str = "2.1.0",
    cuda_version: str | None = None,
    upgrade: bool = False,
    dry_run: bool = False,
) -> dict:
    """Install a PyTorch-related package with pip into this environment, keeping torch intact.

    torch is pinned to the installed version with a constraint, torchvision/torchaudio get
    the release matching torch, and torch-family wheels come from PyTorch's index for the
    installed torch's build (torch.version.cuda, ROCm or CPU) unless `cuda_version` is given.
    The answer has status (success, failed, or dry_run), the command, notes (the index chosen
    and why, the constraint) and pip's exit code and output (long output: its end and log_path).
    """
    argv, notes, text = _run_install(package_name, version, pytorch_version, cuda_version, upgrade, dry_run)
    plan = {"command": shlex.join(argv), "notes": notes}
    if text is None:
        index = next((note for note in notes if note.startswith("wheel index")), None)
        source = f"{index[0].upper()}{index[1:]}." if index else f"{package_name} comes from the normal package index."
        return {"status": "dry_run", **plan,
                "message": f"Dry run: nothing was installed. {source} Call again without dry_run to install."}
    return {**command_answer("pip_install_pytorch_package", text, f"pip install {package_name}"), **plan}


pip_install_pytorch_package_tool = make_tool(pip_install_answer, PipInstallArgs, name="pip_install_pytorch_package")
