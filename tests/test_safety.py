"""The static safety check refuses OS, file, network and dynamic-execution access, with reasons."""

from __future__ import annotations

import pytest

from torchscout.tools.codegen.safety import UnsafeCodeError, check_code_safety

CLEAN_MODEL = """
import math
import torch
from torch import nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        return F.gelu(self.proj(x)) / math.sqrt(2)
"""


def test_ordinary_model_code_passes():
    check_code_safety(CLEAN_MODEL)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import os\n", "importing 'os' is not allowed (operating-system access)"),
        ("from subprocess import run\n", "importing 'subprocess' is not allowed (running other programs)"),
        ("import socket\n", "importing 'socket' is not allowed (network access)"),
        ("import shutil\n", "file-system changes"),
        ("import sys\n", "importing 'sys'"),
        ("import urllib.request\n", "network access"),
        ("x = eval('1 + 1')\n", "'eval' is not allowed (dynamic code execution)"),
        ("exec('x = 1')\n", "'exec' is not allowed"),
        ("m = __import__('os')\n", "'__import__' is not allowed (dynamic imports)"),
        ("data = open('weights.bin').read()\n", "'open' is not allowed (file access)"),
        ("x = ().__class__.__subclasses__()\n", "__subclasses__"),
        ("from torch import os\n", "importing 'os' from 'torch' is not allowed"),
        ("torch.os.system('id')\n", "the attribute 'os' is not allowed"),
        ("torch.sys.modules['os']\n", "the attribute 'sys'"),
        ("b = globals()['__builtins__']\n", "'globals' is not allowed"),
        ("f = vars(torch.nn)\n", "'vars' is not allowed"),
        ("state = torch.load('w.pt', weights_only=False)\n", "weights_only=False is not allowed"),
    ],
)
def test_refused_constructs_name_the_line_and_the_reason(code, expected):
    with pytest.raises(UnsafeCodeError) as caught:
        check_code_safety(CLEAN_MODEL + code)
    assert expected in str(caught.value)
    assert caught.value.findings[0].line == CLEAN_MODEL.count("\n") + 1


def test_every_finding_is_listed():
    with pytest.raises(UnsafeCodeError) as caught:
        check_code_safety("import os\nimport socket\nopen('x')\n")
    assert [finding.line for finding in caught.value.findings] == [1, 2, 3]


def test_a_caller_may_allow_a_module_it_needs():
    code = "import importlib.util\nfrom pathlib import Path\n"
    with pytest.raises(UnsafeCodeError):
        check_code_safety(code)
    check_code_safety(code, allowed_modules={"importlib", "pathlib"})


def test_a_syntax_error_is_raised_as_such():
    with pytest.raises(SyntaxError):
        check_code_safety("def broken(:\n")
