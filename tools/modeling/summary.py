"""pytorch_model_summary: measure a model from a workspace script, then explain the numbers.

Measurement happens in the sandbox child (:mod:`~torchscout.tools.modeling.summary_measure`): exact
parameter counts (shared/tied weights once), FLOPs as ``torch.utils.flop_counter`` counts
them (2 per multiply-accumulate), MACs, per-call layer rows with output shapes, memory, and
a torchinfo-style ``summary_str``. The internal LLM's part (PRD section 6) is the
``analysis`` paragraph: from the builtin rule set, or from the configured chat model reading
the source next to the measured table.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, Field

from torchscout.settings import get_settings
from torchscout.tools.codegen.llm import get_chat_model, model_identity
from torchscout.tools.codegen.llm_usage import notify
from torchscout.tools.errors import ToolError
from torchscout.tools.modeling.dtypes import DTYPES, canonical_dtypes
from torchscout.tools.modeling.summary_analysis import builtin_analysis, llm_analysis
from torchscout.tools.modeling.summary_format import format_summary
from torchscout.tools.modeling.summary_measure import measure_model
from torchscout.tools.modeling.types import ModelMeasurement, SummaryAnswer
from torchscout.tools.sandbox.runner import run_in_sandbox
from torchscout.tools.toolkit import make_tool
from torchscout.tools.workspace import relative_to_workspace, resolve

logger = logging.getLogger(__name__)

MEASURE_TIMEOUT_S = 300.0


class PytorchModelSummaryArgs(BaseModel):
    model_script_path: str = Field(description="Workspace path of the Python file that defines the model class.")
    model_class_name: str = Field(description="Name of the nn.Module class defined in that file.")
    input_size: list[int] = Field(description="Dummy input shape INCLUDING the batch dimension, e.g. [1, 3, 224, 224].")
    input_dtype: str = Field(default="float32", description="Input dtype: float32 (default), int64 for token ids, "
                             "or float16/bfloat16/float64/int32.")
    model_kwargs: dict[str, Any] | None = Field(default=None, description="Keyword arguments for the constructor.")


def _check_arguments(model_script_path: str, model_class_name: str, input_size: Any, input_dtype: str) -> list[int]:
    path = resolve(model_script_path, must_exist=True, kind="model_script_path")
    if path.suffix != ".py" or not path.is_file():
        raise ToolError(f"model_script_path {model_script_path!r} is not a .py file")
    if not model_class_name or not model_class_name.isidentifier():
        raise ToolError(f"model_class_name must be a class name such as 'SimpleCNN', got {model_class_name!r}")
    sizes = list(input_size) if isinstance(input_size, list | tuple) else None
    if not sizes or not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes):
        raise ToolError(f"input_size must be a list of positive integers including the batch dimension, "
                        f"e.g. [1, 3, 224, 224]; got {input_size!r}")
    if input_dtype not in DTYPES:
        raise ToolError(f"input_dtype must be one of {', '.join(canonical_dtypes())}, got {input_dtype!r}")
    return sizes


def _analysis(measured: ModelMeasurement, script_path: str, class_name: str, input_size: list[int],
              use_llm: bool = True) -> tuple[str, str]:
    chat_model = get_chat_model() if use_llm and get_settings().llm_analysis else None
    if chat_model is None:
        return builtin_analysis(measured), "builtin"
    source = resolve(script_path).read_text(encoding="utf-8", errors="replace")
    try:
        text, note = llm_analysis(measured, source=source, class_name=class_name, input_size=input_size)
    except ToolError as exc:
        # the measurement stands on its own; an unreachable or useless LLM must not cost the numbers
        notify(f"summary analysis of {class_name}: LLM analysis not used ({exc}); builtin rules used")
        return builtin_analysis(measured), f"builtin (the LLM's analysis was not used: {exc})"
    return text, f"llm:{model_identity(chat_model)}" + (f" ({note})" if note else "")


def with_llm_analysis(summary: SummaryAnswer) -> SummaryAnswer:
    """``summary`` (measured with ``analysis="builtin"``) with the LLM's analysis, when one is configured
    and ``llm_analysis`` is on; otherwise unchanged. The graph asks this only for candidates it will
    evaluate, so a model rejected for its size costs no LLM call."""
    if get_chat_model() is None or not get_settings().llm_analysis:
        return summary
    text, backend = _analysis(summary, summary["model_script_path"], summary["model_class_name"],
                              summary["input_size"])
    return {**summary, "analysis": text, "analysis_backend": backend}


def pytorch_model_summary(
    model_script_path: str,
    model_class_name: str,
    input_size: list[int] | tuple[int, ...],
    input_dtype: str = "float32",
    model_kwargs: dict[str, Any] | None = None,
    analysis: Literal["auto", "builtin"] = "auto",
) -> SummaryAnswer:
    """Measure a PyTorch model defined in a workspace script and explain where its cost is.

    Runs the model once on a dummy input of input_size (batch included) in a child process and
    returns total_params, trainable_params, flops (2 per multiply-accumulate), macs,
    layer_details (one row per module call: name, type, depth, output_shape, params,
    own_params, flops, flops_share), parameter/activation memory, a torchinfo-style
    summary_str, and analysis: a short paragraph on where parameters and FLOPs concentrate
    and likely issues. Shared (tied) parameters are counted once.
    (``analysis="builtin"``, for callers in Python: the rule-based paragraph even with an LLM configured.)
    """
    sizes = _check_arguments(model_script_path, model_class_name, input_size, input_dtype)
    script = resolve(model_script_path)
    result = run_in_sandbox(measure_model, {"script_path": str(script), "class_name": model_class_name,
                                            "input_size": sizes, "input_dtype": input_dtype,
                                            "model_kwargs": model_kwargs or {}},
                            timeout_s=MEASURE_TIMEOUT_S)
    if not result.ok:
        if result.error_type in {"ToolError", "WorkspaceError"}:
            raise ToolError(result.error or "")
        raise result.to_error(f"measuring {model_class_name} from {relative_to_workspace(script)}")
    measured: ModelMeasurement = result.value
    for row in measured["layer_details"]:
        row.pop("output_bytes", None)
    analysis_text, analysis_backend = _analysis(measured, model_script_path, model_class_name, sizes,
                                                use_llm=analysis == "auto")
    return {
        "status": "success",
        "model_script_path": relative_to_workspace(script),
        "model_class_name": model_class_name,
        "input_size": sizes,
        "input_dtype": input_dtype,
        **measured,
        "summary_str": format_summary(measured, model_class_name, sizes),
        "analysis": analysis_text,
        "analysis_backend": analysis_backend,
    }


pytorch_model_summary_tool = make_tool(pytorch_model_summary, PytorchModelSummaryArgs)
