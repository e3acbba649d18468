"""pytorch_model_summary's answer within the tools' size contract, and the full table as files.

A measurement holds one row per module call (ResNet-50: 183; EfficientNet-V2-L: 1,403), far
more than an agent can read in one tool message. The default (``detail="brief"``) answer keeps
the totals, the shapes, the memory, the top levels' rows (as deep as keeps them at most
:data:`BRIEF_ROWS`) and the largest layers, and stays under :data:`BRIEF_CHARS` characters for any model; every row goes to two workspace files whose
paths it returns (``table_path``: the torchinfo-style table; ``layers_path``: the rows as JSON).
``detail=N`` shows the rows down to depth N (capped at :data:`DEPTH_CHARS`); ``detail="full"``
answers with every row and writes no file (what Python callers such as the research graph use).
"""

from __future__ import annotations

import hashlib
import json

from torchscout.tools.loading import ModelKwargs
from torchscout.tools.modeling.summary_format import format_summary, human
from torchscout.tools.modeling.types import LayerCall, LayerRow, ModelMeasurement, SummaryAnswer
from torchscout.tools.workspace import atomic_write_text, relative_to_workspace, resolve

BRIEF_CHARS = 4_000
DEPTH_CHARS = 16_000
LARGEST = 5
ANALYSIS_CHARS = 800
BRIEF_ROWS = 16  # "brief" goes as deep as keeps the rows at most this many (ResNet: depth 1, EfficientNet: 2)
DETAILS_FOLDER = "summaries"
ROW_KEYS = ("name", "type", "depth", "output_shape", "params", "flops")


def details_stem(label: str, input_size: list[int], input_dtype: str, kwargs: ModelKwargs) -> str:
    """A file name per model, input and arguments: the same call writes the same files again."""
    key = json.dumps([label, input_size, input_dtype, kwargs], sort_keys=True, default=str)
    name = "".join(char if char.isalnum() else "_" for char in label.rpartition(":")[2])[:60]
    return f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def write_details(measured: ModelMeasurement, title: str, input_size: list[int], stem: str) -> dict[str, str]:
    """The full table (text) and every row (JSON) into the workspace; their workspace-relative paths."""
    table = resolve(f"{DETAILS_FOLDER}/{stem}.layers.txt")
    rows = resolve(f"{DETAILS_FOLDER}/{stem}.layers.json")
    table.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(table, format_summary(measured, title, input_size, max_rows=None))
    atomic_write_text(rows, json.dumps(measured["layer_details"], indent=1))
    return {"table_path": relative_to_workspace(table), "layers_path": relative_to_workspace(rows)}


def _compact(row: LayerCall) -> LayerRow:
    return LayerRow(**{key: row[key] for key in ROW_KEYS})


def largest_layers(measured: ModelMeasurement, count: int) -> list[LayerCall]:
    """The ``count`` leaf layer calls that cost the most FLOPs (then parameters)."""
    leaves = [row for row in measured["layer_details"] if row["is_leaf"] and not row["repeat"]]
    return sorted(leaves, key=lambda row: (-row["flops"], -row["params"]))[:count]


def _largest_lines(rows: list[LayerCall]) -> list[str]:
    return [f"  {row['name']} ({row['type']}) -> {row['output_shape']}: {row['params']:,} params, "
            f"{human(row['flops'])} FLOPs ({100 * row.get('flops_share', 0.0):.1f}%)" for row in rows]


def brief_text(measured: ModelMeasurement, title: str, input_size: list[int], largest: list[LayerCall],
               table_path: str | None) -> str:
    """The totals and the largest layers as a few lines (the rows themselves are in ``layer_details``)."""
    megabytes = 1024 ** 2
    memory = [measured[key] / megabytes for key in ("input_memory_bytes", "activation_memory_bytes",
                                                     "param_memory_bytes", "buffer_memory_bytes")]
    lines = [
        f"{title}: input {input_size} -> output {measured['output_shape']}",
        f"Params: {measured['total_params']:,} (trainable {measured['trainable_params']:,})",
        f"FLOPs: {human(measured['flops'])} (MACs {human(measured['macs'])}), {len(measured['layer_details'])} "
        f"layer calls, measured on {measured['measured_on']}",
        "Memory (MB): input {:.2f}, activations {:.2f}, params {:.2f}, buffers {:.2f}, "
        "inference total {:.2f}".format(*memory, sum(memory)),
    ]
    if largest:
        lines += [f"Largest {len(largest)} layers by FLOPs:", *_largest_lines(largest)]
    if table_path:
        lines.append(f"Every layer: {table_path}")
    return "\n".join(lines)


def _size(answer: SummaryAnswer) -> int:
    return len(json.dumps(answer, ensure_ascii=False))


def fit_rows(answer: SummaryAnswer, rows: list[LayerCall], limit: int) -> SummaryAnswer:
    """``answer`` with as many of ``rows`` as ``layer_details`` as fit in ``limit`` characters (a binary
    search: at most a few dozen JSON sizes for thousands of rows), and ``layer_details_shown`` saying
    how many of how many."""
    compact = [_compact(row) for row in rows]
    deepest = max((row["depth"] for row in rows), default=0)

    def with_rows(shown: int) -> SummaryAnswer:
        return {**answer, "layer_details": compact[:shown],
                "layer_details_shown": f"{shown} of {len(rows)} rows down to depth {deepest}"}

    low, high = 0, len(compact)  # with_rows(low) fits (or nothing does); find the most that fit
    while low < high:
        middle = (low + high + 1) // 2
        if _size(with_rows(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return with_rows(low)


def brief_depth(measured: ModelMeasurement) -> int:
    """The deepest level (at least 1) whose rows, with all above it, number at most :data:`BRIEF_ROWS`."""
    depths = sorted(row["depth"] for row in measured["layer_details"])
    depth = 1
    while depth < depths[-1] and sum(1 for value in depths if value <= depth + 1) <= BRIEF_ROWS:
        depth += 1
    return depth


def _whole_sentences(text: str, limit: int) -> str:
    """``text`` cut after its last whole sentence within ``limit`` characters (an LLM's analysis can be long)."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rfind(". ")
    return text[:cut + 1] if cut > 0 else text[:limit - 3].rstrip() + "..."


def _capped(text: str, limit: int, table_path: str) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rpartition("\n")[0]
    return f"{cut}\n... (cut at {limit:,} characters; every layer: {table_path})"


def _message(answer: SummaryAnswer, shown: str, table_path: str | None) -> str:
    text = (f"Measured {answer['model']}: {answer['total_params']:,} params, {human(answer['macs'])} MACs, "
            f"input {answer['input_size']} -> output {answer['output_shape']}.")
    if table_path:
        text += (f" layer_details: {shown}; every layer is in {table_path} (read_file), or ask detail=<depth> "
                 "or detail='full'.")
    return text


def shape_answer(answer: SummaryAnswer, measured: ModelMeasurement, detail: str | int, stem: str) -> SummaryAnswer:
    """The summary's answer for ``detail``: every row ("full"), or the rows down to a depth within the
    size limit with the full table written to the workspace."""
    title, input_size = answer["model"], answer["input_size"]
    if detail == "full":
        table = format_summary(measured, title, input_size, max_rows=None)
        return {"status": answer["status"], "message": _message(answer, "", None), **answer, "detail": "full",
                "summary_str": table}
    paths = write_details(measured, title, input_size, stem)
    depth, limit = (brief_depth(measured), BRIEF_CHARS) if detail == "brief" else (int(detail), DEPTH_CHARS)
    if detail == "brief":
        text = brief_text(measured, title, input_size, largest_layers(measured, LARGEST), paths["table_path"])
    else:
        table = format_summary(measured, title, input_size, max_rows=None, max_depth=depth)
        text = _capped(table, limit // 2, paths["table_path"])
    rest = {key: value for key, value in answer.items() if key not in {"layer_details", "status"}}
    if detail == "brief":
        rest["analysis"] = _whole_sentences(str(rest.get("analysis", "")), ANALYSIS_CHARS)
    base = {"status": answer["status"], "message": "", **rest, "detail": detail, **paths, "summary_str": text}
    rows = [row for row in measured["layer_details"] if row["depth"] <= depth]
    room = limit - 300  # the message names the rows shown, so it is written last; it is about 300 characters
    while True:
        fitted = fit_rows(base, rows, room)
        fitted["message"] = _message(answer, fitted["layer_details_shown"], paths["table_path"])
        if _size(fitted) <= limit or not fitted["layer_details"]:
            return fitted
        room -= _size(fitted) - limit
