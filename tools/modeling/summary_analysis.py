"""The analysis paragraph of pytorch_model_summary: where the cost is, and what looks wrong.

The numbers always come from measurement (:mod:`~torchscout.tools.modeling.summary_measure`); this
module only interprets them. :func:`builtin_analysis` applies a fixed rule set (offline,
deterministic); :func:`llm_analysis` asks the configured chat model to read the model's
source next to the measured table (prompt ``prompts/summary_analysis.yaml``, cached) and keeps
only the sentences that agree with what was measured
(:mod:`~torchscout.tools.modeling.summary_grounding`).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from torchscout.prompts.loader import load_prompt
from torchscout.tools.errors import ToolError
from torchscout.tools.modeling.summary_format import human
from torchscout.tools.modeling.summary_grounding import grounded_analysis
from torchscout.tools.modeling.types import LayerCall, ModelMeasurement

logger = logging.getLogger(__name__)

NORMALIZATION_TYPES = ("BatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm", "RMSNorm", "LocalResponseNorm")
WEIGHTED_TYPES = ("Conv", "Linear", "LSTM", "GRU", "RNN", "MultiheadAttention", "Bilinear")


def _leaves(measured: ModelMeasurement) -> list[LayerCall]:
    return [row for row in measured["layer_details"] if row["is_leaf"] and not row["repeat"]]


def _parameter_concentration(measured: ModelMeasurement, rows: list[LayerCall]) -> list[str]:
    total = measured["total_params"]
    if not total or not rows:
        return []
    top = max(rows, key=lambda row: row["params"])
    share = top["params"] / total
    sentences = [f"{top['name']} ({top['type']}) holds {100 * share:.1f}% of the {total:,} parameters."]
    if share >= 0.5 and top["type"] == "Linear":
        index = measured["layer_details"].index(top)
        previous = [row for row in measured["layer_details"][:index] if row["is_leaf"]]
        if previous and previous[-1]["type"] == "Flatten":
            sentences.append("It sits right after a Flatten, a spatial bottleneck: the whole feature map is "
                             "fed to a dense layer; global pooling (AdaptiveAvgPool2d(1)) before the classifier "
                             "would cut the parameters sharply and usually generalises better.")
        else:
            sentences.append("A single dense layer dominating the parameter count is a common overfitting risk; "
                             "consider a narrower hidden size or a bottleneck.")
    if share >= 0.5 and top["type"] == "Embedding":
        sentences.append("The token embedding dominates; a smaller vocabulary or tied input/output embeddings "
                         "would shrink the model most.")
    return sentences


def _flop_concentration(measured: ModelMeasurement, rows: list[LayerCall]) -> list[str]:
    flops = measured["flops"]
    if not flops:
        return ["No matmul/conv FLOPs were counted (the model is elementwise only, or its work happens outside "
                "the operations torch.utils.flop_counter counts)."]
    by_type: dict[str, int] = defaultdict(int)
    for row in measured["layer_details"]:
        if row["is_leaf"]:
            by_type[row["type"]] += row["flops"]
    ranked = sorted(by_type.items(), key=lambda item: -item[1])[:2]
    parts = [f"{kind} layers {100 * count / flops:.0f}%" for kind, count in ranked if count]
    top = max(rows, key=lambda row: row["flops"], default=None)
    sentence = f"A forward pass costs {human(flops)} FLOPs ({human(measured['macs'])} MACs): {', '.join(parts)}"
    if top is not None and top["flops"]:
        sentence += f"; the most expensive single layer is {top['name']} ({top['type']}, {100 * top['flops_share']:.0f}%)"
    return [sentence + "."]


def _structural_warnings(measured: ModelMeasurement, rows: list[LayerCall]) -> list[str]:
    sentences = []
    weighted = [row for row in rows if row["type"].startswith(WEIGHTED_TYPES)]
    normalized = [row for row in rows if row["type"].startswith(NORMALIZATION_TYPES)]
    if len(weighted) >= 6 and not normalized:
        sentences.append(f"There are {len(weighted)} weighted layers and no normalization layer; a deep "
                         "unnormalised stack often trains slowly or unstably (add BatchNorm/LayerNorm).")
    if measured["non_trainable_params"]:
        sentences.append(f"{measured['non_trainable_params']:,} parameters are frozen (requires_grad=False).")
    activations, parameters = measured["activation_memory_bytes"], measured["param_memory_bytes"]
    if parameters and activations > 4 * parameters and activations > 64 * 1024 ** 2:
        sentences.append(f"Activations ({human(activations)}B for this input) outweigh the parameters "
                         f"({human(parameters)}B) by {activations / parameters:.0f}x: memory, not weights, "
                         "will limit the batch size; early downsampling helps.")
    output = measured.get("output_shape")
    if output is not None and len(output) > 2 and any(row["type"] == "Linear" for row in rows[-1:]):
        sentences.append(f"The output keeps {len(output)} dimensions {output}; for classification a pooling "
                         "or Flatten before the last Linear is usually intended.")
    return sentences


def builtin_analysis(measured: ModelMeasurement) -> str:
    """A short paragraph from the rule set: parameter and FLOP concentration, likely issues."""
    rows = _leaves(measured)
    sentences = [*_parameter_concentration(measured, rows), *_flop_concentration(measured, rows),
                 *_structural_warnings(measured, rows)]
    return " ".join(sentences)


def _table_for_prompt(measured: ModelMeasurement, limit: int = 60) -> str:
    lines = ["name | type | output shape | params | FLOPs share"]
    for row in measured["layer_details"][:limit]:
        lines.append(f"{row['name']} | {row['type']} | {row['output_shape']} | {row['params']:,} | "
                     f"{100 * row['flops_share']:.1f}%")
    if len(measured["layer_details"]) > limit:
        lines.append(f"... {len(measured['layer_details']) - limit} more rows")
    return "\n".join(lines)


def llm_analysis(measured: ModelMeasurement, *, source: str, class_name: str,
                 input_size: list[int]) -> tuple[str, str]:
    """The chat model's paragraph, only its sentences that agree with the measurement, and a note on
    what was dropped (empty when nothing was). Raises ToolError when the model fails or no sentence
    is left; the answer is kept in the cache only when it was used."""
    from torchscout.tools.codegen.llm import accept, ask

    prompt = load_prompt("summary_analysis")
    messages = prompt.render(
        class_name=class_name,
        input_size=input_size,
        source=source[:20_000],
        total_params=f"{measured['total_params']:,}",
        flops=human(measured["flops"]),
        table=_table_for_prompt(measured),
        builtin_findings=builtin_analysis(measured),
    )
    reply = ask(messages, purpose="summary-analysis", prompt_version=prompt.version)
    anchors = {str(row[key]) for row in measured["layer_details"] for key in ("name", "type") if row.get(key)}
    checked = grounded_analysis(reply.text, messages[-1][1], truncated=reply.truncated, anchors=anchors)
    if not checked.kept:
        raise ToolError(f"no sentence of the LLM's analysis was usable ({checked.note or 'the reply was empty'})")
    accept(reply)
    return checked.text, checked.note
