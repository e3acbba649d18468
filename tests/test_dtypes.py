"""One dtype table: the blueprint, its compiler, model validation and the summary read tools/modeling/dtypes.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from torchscout.tools.errors import ToolError
from torchscout.tools.modeling.blueprint import BlueprintError, parse_blueprint
from torchscout.tools.modeling.dtypes import DTYPES, MODEL_INPUT_DTYPES, canonical_dtypes, torch_dtype
from torchscout.tools.modeling.model_validation import dummy_input
from torchscout.tools.modeling.summary import pytorch_model_summary

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list(DTYPES))
def test_every_name_is_torchs_own_and_maps_to_its_canonical_dtype(name):
    assert torch_dtype(name) is getattr(torch, name) is getattr(torch, DTYPES[name])
    assert DTYPES[name] in canonical_dtypes()


def _blueprint(dtype: str) -> dict:
    return {"model_name": "Net", "input_shape": [4], "input_dtype": dtype,
            "layers": [{"type": "Linear", "params": {"out_features": 2}}]}


def test_a_blueprint_takes_the_model_input_dtypes_by_any_of_their_names():
    assert parse_blueprint(_blueprint("long")).input_dtype == "int64"
    assert parse_blueprint(_blueprint("float")).input_dtype == "float32"
    with pytest.raises(BlueprintError, match=r"input_dtype must be one of \['float32', 'int64'\], got 'half'"):
        parse_blueprint(_blueprint("half"))
    assert [dummy_input([3], dtype).dtype for dtype in MODEL_INPUT_DTYPES] == [torch.float32, torch.int64]


def test_the_summary_lists_the_canonical_names(workspace):
    (workspace / "net.py").write_text("from torch import nn\n\n\nclass Net(nn.Linear):\n    pass\n")
    with pytest.raises(ToolError, match="input_dtype must be one of bfloat16, float16, float32, float64, int32, "
                                        "int64, got 'complex64'"):
        pytorch_model_summary("net.py", "Net", [1, 4], input_dtype="complex64")


def test_no_other_module_keeps_a_dtype_table():
    tables = []
    for path in sorted(ROOT.glob("[!.]*/**/*.py")):
        if "tests" in path.parts or path == ROOT / "tools" / "modeling" / "dtypes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                tables += [f"{path.relative_to(ROOT)}:{node.lineno}" for target in targets
                           if isinstance(target, ast.Name) and "DTYPES" in target.id]
    assert not tables, tables
