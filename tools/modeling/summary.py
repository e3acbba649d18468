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
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from torchscout.settings import get_settings
from torchscout.tools.codegen.llm import get_chat_model, model_identity
from torchscout.tools.codegen.llm_usage import notify
from torchscout.tools.errors import ToolError
from torchscout.tools.loading import ModelKwargs, ModelSource, parse_model_source
from torchscout.tools.modeling.dtypes import DTYPES, canonical_dtypes
from torchscout.tools.modeling.summary_analysis import builtin_analysis, llm_analysis
from torchscout.tools.modeling.summary_answer import details_stem, shape_answer
from torchscout.tools.modeling.summary_measure import measure_model
from torchscout.tools.modeling.types import ModelMeasurement, SummaryAnswer
from torchscout.tools.sandbox.runner import run_in_sandbox
from torchscout.tools.toolkit import make_tool
from torchscout.tools.workspace import relative_to_workspace, resolve

logger = logging.getLogger(__name__)

MEASURE_TIMEOUT_S = 300.0
WARM_MEASUREMENT = "torchscout.tools.modeling.summary_measure:prime_measurement"
_IMPORTS_TORCHVISION = re.compile(r"^\s*(?:from|import)\s+torchvision\b", re.MULTILINE)


Detail = Literal["brief", "full"] | int


class PytorchModelSummaryArgs(BaseModel):
    model_script_path: str = Field(description="A workspace .py file, or an import spec such as "
                                   "'torchvision.models:resnet18'. The file or installed module defines the model.")
    model_class_name: str | None = Field(default=None, description="The nn.Module class or factory function there "
                                         "(not needed with an import spec). A factory returns the model.")
    input_size: list[int] = Field(description="Dummy input shape INCLUDING the batch dimension, e.g. [1, 3, 224, 224].")
    input_dtype: str = Field(default="float32", description="Input dtype: float32 (default), int64 for token ids, "
                             "or float16/bfloat16/float64/int32.")
    model_kwargs: ModelKwargs | None = Field(default=None, description="Keyword arguments for the class or "
                                                "function, e.g. {'num_classes': 10}.")
    detail: Detail = Field(default="brief", description="Per-layer detail: 'brief' (default), a depth such as 2, "
                           "or 'full'. 'brief' shows the top levels and the largest layers and writes every layer "
                           "to table_path; N shows the layers down to depth N; 'full' every layer in the answer.")


def _check_arguments(model_script_path: str, model_class_name: str | None, input_size: Any, input_dtype: str,
                     detail: Any) -> tuple[ModelSource, list[int]]:
    source = parse_model_source(model_script_path, model_class_name)
    if source.kind == "file":
        path = resolve(source.location, must_exist=True, kind="model_script_path")
        if path.suffix != ".py" or not path.is_file():
            raise ToolError(f"model_script_path {source.location!r} is not a .py file (nor an import spec such as "
                            "'torchvision.models:resnet18')")
    sizes = list(input_size) if isinstance(input_size, list | tuple) else None
    if not sizes or not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes):
        raise ToolError(f"input_size must be a list of positive integers including the batch dimension, "
                        f"e.g. [1, 3, 224, 224]; got {input_size!r}")
    if input_dtype not in DTYPES:
        raise ToolError(f"input_dtype must be one of {', '.join(canonical_dtypes())}, got {input_dtype!r}")
    if detail not in ("brief", "full") and not (isinstance(detail, int) and not isinstance(detail, bool)
                                                 and detail >= 0):
        raise ToolError(f"detail must be 'brief', 'full' or a depth such as 2; got {detail!r}")
    return source, sizes


def _warm_for(source: ModelSource) -> list[str]:
    """torchvision's models, imported once into the sandbox's fork server, when this model comes from
    them (an import spec, or a workspace file importing torchvision); other models leave the server as
    it is, so a research run whose candidates never use torchvision does not pay for importing it."""
    if source.kind == "import":
        uses_torchvision = source.location.partition(".")[0] == "torchvision"
    else:
        text = resolve(source.location).read_text(encoding="utf-8", errors="replace")
        uses_torchvision = _IMPORTS_TORCHVISION.search(text) is not None
    return [WARM_MEASUREMENT] if uses_torchvision else []


def _source_text(source_file: str | None) -> str:
    """What the LLM reads next to the table: the file that defines the model's class or function."""
    if not source_file or not Path(source_file).is_file():
        return ""
    return Path(source_file).read_text(encoding="utf-8", errors="replace")


def _analysis(measured: ModelMeasurement, source_file: str | None, class_name: str, input_size: list[int],
              use_llm: bool = True) -> tuple[str, str]:
    chat_model = get_chat_model() if use_llm and get_settings().llm_analysis else None
    if chat_model is None:
        return builtin_analysis(measured), "builtin"
    source = _source_text(source_file)
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
    source = parse_model_source(summary["model_script_path"], summary["model_class_name"])
    source_file = str(resolve(source.location)) if source.kind == "file" else None
    text, backend = _analysis(summary, source_file, source.name, summary["input_size"])
    return {**summary, "analysis": text, "analysis_backend": backend}


def pytorch_model_summary(
    model_script_path: str,
    model_class_name: str | None,
    input_size: list[int] | tuple[int, ...],
    input_dtype: str = "float32",
    model_kwargs: dict[str, Any] | None = None,
    detail: Detail = "brief",
    analysis: Literal["auto", "builtin"] = "auto",
) -> SummaryAnswer:
    """Measure a PyTorch model and explain where its cost is.

    The model: a class or factory function in a workspace .py file (model_script_path +
    model_class_name), or an installed one by import spec (model_script_path=
    "torchvision.models:resnet18"), built with model_kwargs. Runs it once on a dummy input of
    input_size (batch included) in a child process, shape-only where it can, and returns
    total_params, trainable_params, flops (2 per multiply-accumulate), macs, output_shape,
    parameter/activation memory, layer_details (rows: name, type, depth, output_shape, params,
    flops), summary_str (the totals and the largest layers) and analysis: a short paragraph on where
    parameters and FLOPs concentrate. Shared (tied) parameters are counted once. By default
    (detail="brief", under 4,000 characters) layer_details holds the top levels (at most 16 rows)
    and every layer is written to table_path (text) and layers_path (JSON) in the workspace;
    detail=N shows the rows down to depth N; detail="full" every row.
    (``analysis="builtin"``, for callers in Python: the rule-based paragraph even with an LLM configured.)
    """
    source, sizes = _check_arguments(model_script_path, model_class_name, input_size, input_dtype, detail)
    kwargs = model_kwargs or {}
    job_source = dict(vars(source))
    if source.kind == "file":
        job_source["location"] = str(resolve(source.location))
    result = run_in_sandbox(measure_model, {"source": job_source, "input_size": sizes, "input_dtype": input_dtype,
                                            "model_kwargs": kwargs}, timeout_s=MEASURE_TIMEOUT_S,
                            warm=_warm_for(source))
    if not result.ok:
        if result.error_type in {"ToolError", "WorkspaceError"}:
            raise ToolError(result.error or "")
        raise result.to_error(f"measuring {source.label}")
    measured: ModelMeasurement = result.value
    for row in measured["layer_details"]:
        row.pop("output_bytes", None)
    source_file = measured.pop("source_file", None)
    script = relative_to_workspace(resolve(source.location)) if source.kind == "file" else source.location
    analysis_text, analysis_backend = _analysis(measured, source_file, source.name, sizes,
                                                use_llm=analysis == "auto")
    answer = {"status": "success", "model": f"{script}:{source.name}", "model_script_path": script,
              "model_class_name": source.name, "input_size": sizes, "input_dtype": input_dtype, **measured,
              "analysis": analysis_text, "analysis_backend": analysis_backend}
    return shape_answer(answer, measured, detail, details_stem(source.label, sizes, input_dtype, kwargs))


pytorch_model_summary_tool = make_tool(pytorch_model_summary, PytorchModelSummaryArgs)
