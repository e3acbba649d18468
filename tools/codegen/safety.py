"""Static safety check for generated code, run before the code is ever executed.

Generated model and optimizer code only needs torch, math and friends. Anything that reaches
the operating system, the file system, the network, or dynamic code execution is refused,
with the line and the reason, so the LLM repair loop (or a person) knows what to change::

    check_code_safety(code)                                   # raises UnsafeCodeError
    check_code_safety(code, allowed_modules={"importlib"})    # a caller that needs one of them

This is a first, cheap filter with clear messages against accidents and careless generations, not
the boundary: a determined adversary gets past any denylist (``getattr(torch.os, 'sys' + 'tem')``).
The boundary is the kernel sandbox every generated file then runs in (``tools/sandbox/``: Landlock,
namespaces, limits; no network, writes only in the workspace, no secrets in its environment).
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from torchscout.tools.errors import ToolError

# module (top-level name) -> why it is refused
FORBIDDEN_MODULES: dict[str, str] = {
    "os": "operating-system access",
    "sys": "interpreter internals",
    "subprocess": "running other programs",
    "shutil": "file-system changes",
    "pathlib": "file-system access",
    "io": "file access",
    "tempfile": "file-system access",
    "glob": "file-system access",
    "pty": "running other programs",
    "signal": "process control",
    "multiprocessing": "starting processes",
    "ctypes": "native memory access",
    "pickle": "arbitrary code execution on load",
    "marshal": "arbitrary code execution on load",
    "importlib": "dynamic imports",
    "builtins": "access to eval/exec/open",
    "socket": "network access",
    "ssl": "network access",
    "http": "network access",
    "urllib": "network access",
    "urllib3": "network access",
    "requests": "network access",
    "httpx": "network access",
    "aiohttp": "network access",
    "ftplib": "network access",
    "smtplib": "network access",
    "telnetlib": "network access",
    "xmlrpc": "network access",
    "webbrowser": "network access",
}

FORBIDDEN_CALLS: dict[str, str] = {
    "eval": "dynamic code execution",
    "exec": "dynamic code execution",
    "compile": "dynamic code execution",
    "__import__": "dynamic imports",
    "open": "file access",
    "breakpoint": "interactive debugging",
    "input": "interactive input",
    "globals": "reaching module internals (__builtins__)",
    "vars": "reaching module internals",
    "locals": "reaching module internals",
    "__builtins__": "access to eval/exec/open",
}

FORBIDDEN_ATTRIBUTES: dict[str, str] = {
    "__subclasses__": "escaping the sandbox through object internals",
    "__globals__": "escaping the sandbox through object internals",
    "__builtins__": "access to eval/exec/open",
    "__code__": "code object manipulation",
    "system": "running other programs",
    "popen": "running other programs",
    "hub": "downloading code (torch.hub)",
    "os": "operating-system access through another module (torch.os)",
    "sys": "interpreter internals through another module (torch.sys)",
    "subprocess": "running other programs",
}


class UnsafeCodeError(ToolError):
    """Generated code uses something the static safety check refuses."""

    def __init__(self, findings: list[SafetyFinding]) -> None:
        self.findings = findings
        listed = "; ".join(str(finding) for finding in findings)
        super().__init__(f"the code was refused by the safety check: {listed}")


@dataclass(frozen=True)
class SafetyFinding:
    line: int
    what: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what} is not allowed ({self.reason})"


def find_unsafe_constructs(tree: ast.AST, allowed_modules: Iterable[str] = ()) -> list[SafetyFinding]:
    """Every refused import, call and attribute in ``tree``, in source order."""
    allowed = set(allowed_modules)
    findings: list[SafetyFinding] = []

    def check_module(name: str, line: int) -> None:
        top = name.split(".")[0]
        if top in FORBIDDEN_MODULES and top not in allowed and name not in allowed:
            findings.append(SafetyFinding(line, f"importing {name!r}", FORBIDDEN_MODULES[top]))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check_module(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            check_module(node.module or "", node.lineno)
            for alias in node.names:  # `from torch import os`: a forbidden module through another one
                if alias.name in FORBIDDEN_MODULES and alias.name not in allowed:
                    findings.append(SafetyFinding(node.lineno, f"importing {alias.name!r} from {node.module!r}",
                                                  FORBIDDEN_MODULES[alias.name]))
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_CALLS:
            findings.append(SafetyFinding(node.lineno, f"{node.id!r}", FORBIDDEN_CALLS[node.id]))
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            findings.append(SafetyFinding(node.lineno, f"the attribute {node.attr!r}", FORBIDDEN_ATTRIBUTES[node.attr]))
        elif isinstance(node, ast.keyword) and node.arg == "weights_only" and \
                isinstance(node.value, ast.Constant) and node.value.value is False:
            findings.append(SafetyFinding(node.value.lineno, "weights_only=False",
                                          "unpickling arbitrary objects runs arbitrary code"))
    return sorted(findings, key=lambda finding: finding.line)


# CPython 3.11 keeps ast.parse's recursion depth in state that every thread shares: two threads
# parsing at once can fail with "SystemError: AST constructor recursion depth mismatch" (python/cpython
# gh-106905; seen here when a research round assembled its candidates in parallel threads).
_PARSING = threading.Lock()


def parse_python(code: str) -> ast.Module:
    """``ast.parse(code)``, one thread at a time."""
    with _PARSING:
        return ast.parse(code)


def check_code_safety(code: str, allowed_modules: Iterable[str] = ()) -> None:
    """Parse ``code`` and raise :class:`UnsafeCodeError` if it uses anything refused.

    A syntax error is raised as ``SyntaxError`` (the caller reports it as the parse stage).
    """
    findings = find_unsafe_constructs(parse_python(code), allowed_modules)
    if findings:
        raise UnsafeCodeError(findings)
