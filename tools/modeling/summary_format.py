"""The torchinfo-style table of pytorch_model_summary (``summary_str``)."""

from __future__ import annotations

from torchscout.tools.modeling.types import LayerCall, ModelMeasurement

MAX_ROWS = 400
WIDTHS = (44, 24, 14, 11, 8)


def human(number: float) -> str:
    """3.64G, 236.0M, 12.3K: FLOP and byte counts at a glance."""
    for threshold, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(number) >= threshold:
            return f"{number / threshold:.2f}{suffix}"
    return f"{number:.0f}"


def _label(row: LayerCall, depth_index: int) -> str:
    depth = row["depth"]
    if depth == 0:
        return row["type"]
    prefix = "│    " * (depth - 1) + ("├─" if depth == 1 else "└─")
    return f"{prefix}{row['type']}: {depth}-{depth_index}"


def _cells(*values: str) -> str:
    first, *rest = values
    return first.ljust(WIDTHS[0]) + "".join(value.rjust(width) for value, width in zip(rest, WIDTHS[1:], strict=True))


def format_summary(measured: ModelMeasurement, class_name: str, input_size: list[int], *,
                   max_rows: int | None = MAX_ROWS, max_depth: int | None = None) -> str:
    """Render the measured rows (down to ``max_depth``, at most ``max_rows``) and totals as a fixed-width table."""
    line = "=" * sum(WIDTHS)
    lines = [line, _cells("Layer (type:depth-idx)", "Output Shape", "Param #", "FLOPs", "FLOPs %"), line]
    counters: dict[int, int] = {}
    rows = [row for row in measured["layer_details"] if max_depth is None or row["depth"] <= max_depth]
    shown = rows if max_rows is None else rows[:max_rows]
    for row in shown:
        counters[row["depth"]] = counters.get(row["depth"], 0) + 1
        if row["repeat"]:
            params = "(recursive)"
        elif row["is_leaf"] or row["depth"] == 0:
            params = f"{row['params']:,}" if row["params"] and row["is_leaf"] else "--"
        else:
            params = f"{row['own_params']:,}" if row["own_params"] else "--"
        shape = "--" if row["output_shape"] is None else str(row["output_shape"])
        flops = human(row["flops"]) if row["flops"] else "--"
        share = f"{100 * row['flops_share']:.1f}%" if row["flops"] else "--"
        lines.append(_cells(_label(row, counters[row["depth"]]), shape, params, flops, share))
    if len(rows) > len(shown):
        lines.append(f"... {len(rows) - len(shown)} more layer calls")
    megabytes = 1024 ** 2
    lines += [
        line,
        f"Total params: {measured['total_params']:,}",
        f"Trainable params: {measured['trainable_params']:,}",
        f"Non-trainable params: {measured['non_trainable_params']:,}",
        f"Total FLOPs: {human(measured['flops'])} (MACs: {human(measured['macs'])}) "
        "-- matmul/conv/attention FLOPs as torch.utils.flop_counter counts them",
        line,
        f"Input size {input_size} (MB): {measured['input_memory_bytes'] / megabytes:.2f}",
        f"Forward pass activations of leaf layers (MB): {measured['activation_memory_bytes'] / megabytes:.2f}",
        f"Params size (MB): {measured['param_memory_bytes'] / megabytes:.2f}",
        f"Buffers size (MB): {measured['buffer_memory_bytes'] / megabytes:.2f}",
        f"Estimated total for inference (MB): {(measured['input_memory_bytes'] + measured['activation_memory_bytes'] + measured['param_memory_bytes'] + measured['buffer_memory_bytes']) / megabytes:.2f}",
        line,
    ]
    return "\n".join(lines)
