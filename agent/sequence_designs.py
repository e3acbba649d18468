"""Designs of the search space for flat features and sequences: MLPs, and the encoders of token ids
and of signals that are not convolutional (recurrent and attention).

- flat features ``[F]``: a linear model (``depth`` 0) or an MLP of ``depth`` blocks (linear,
  normalisation, activation, dropout; blocks after the first optionally residual);
- token ids ``[L]``: an embedding, then a bag of embeddings, a TextCNN (Kim 2014), a GRU or a
  Transformer encoder, pooled over the sequence;
- signals ``[C, L]``: a GRU or an LSTM (optionally bidirectional) over the L time steps, or a
  Transformer encoder over the steps or over patches of ``patch`` steps (a strided Conv1d embeds
  each patch, as ViT does for images), with a learned positional embedding; pooled by mean or max
  over the steps, or flattened (every step's features, so position stays available); or an MLP on
  the flattened signal (``blocks`` layers of ``8 x width`` units), the design that ignores order.
"""

from __future__ import annotations

from torchscout.agent.conv_designs import Design, activation
from torchscout.tools.modeling.types import LayerSpec


def _linear(outputs: int) -> LayerSpec:
    return LayerSpec(type="Linear", params={"out_features": outputs})


def _classifier(design: Design, outputs: int) -> list[LayerSpec]:
    dropout = design.get("dropout", 0.0)
    layers = [LayerSpec(type="Dropout", params={"p": dropout})] if dropout else []
    return [*layers, _linear(outputs)]


def flat_layers(design: Design, outputs: int) -> list[LayerSpec]:
    """A linear model (depth 0) or an MLP; the blocks after the first may be residual."""
    def dense() -> list[LayerSpec]:
        block = [_linear(int(design["width"]))]
        if design["norm"] == "layer":
            block.append(LayerSpec(type="LayerNorm"))
        elif design["norm"] == "batch":
            block.append(LayerSpec(type="BatchNorm1d"))
        block.append(activation(design["activation"]))
        if design["dropout"] > 0:
            block.append(LayerSpec(type="Dropout", params={"p": design["dropout"]}))
        return block

    depth = int(design["depth"])
    if depth == 0:
        return [_linear(outputs)]
    layers = dense()  # the first block changes the width, so it cannot be residual
    for _ in range(depth - 1):
        layers += [LayerSpec(type="Residual", layers=dense())] if design["residual"] else dense()
    return [*layers, _linear(outputs)]


def _pool(kind: object) -> LayerSpec:
    """Mean, Max or Last over the sequence dimension of (N, L, D)."""
    return LayerSpec(type=str(kind).capitalize(), params={"dim": 1})


def _attention_layers(design: Design, width: int) -> list[LayerSpec]:
    heads = 4 if width % 4 == 0 else 1
    return [LayerSpec(type="TransformerEncoderLayer", params={
        "d_model": width, "nhead": heads, "dim_feedforward": 2 * width, "dropout": design["dropout"],
        "batch_first": True, **({"activation": "gelu"} if design.get("activation") == "gelu" else {})})
        for _ in range(int(design["layers"]))]


def token_layers(design: Design, seq_len: int, vocab_size: int, outputs: int) -> list[LayerSpec]:
    embed = int(design["embed_dim"])
    layers = [LayerSpec(type="Embedding", params={"num_embeddings": vocab_size, "embedding_dim": embed})]
    encoder = design["encoder"]
    if encoder == "bag":
        layers += [_pool("mean"), _linear(int(design["hidden"])), LayerSpec(type="ReLU")]
    elif encoder == "textcnn":
        # Kim (2014): convolve windows of k token embeddings, max-pool over time
        kernel = min(int(design["kernel"]), seq_len)
        layers += [LayerSpec(type="Unflatten", params={"dim": 1, "unflattened_size": [1, seq_len]}),
                   LayerSpec(type="Conv2d", params={"out_channels": design["hidden"], "kernel_size": [kernel, embed]}),
                   LayerSpec(type="ReLU"),
                   LayerSpec(type="Flatten", params={"start_dim": 2}),
                   LayerSpec(type="Max", params={"dim": 2})]
    elif encoder == "gru":
        layers += [LayerSpec(type="GRU", params={"input_size": embed, "hidden_size": design["hidden"],
                                                 "num_layers": design["layers"], "batch_first": True},
                             output_index=0),
                   _pool(design["pooling"])]
    else:
        layers += _attention_layers({**design, "activation": "relu"}, embed)
        layers.append(_pool("mean" if design["pooling"] == "last" else design["pooling"]))
    return layers + _classifier(design, outputs)


def _sequence_head(design: Design, outputs: int) -> list[LayerSpec]:
    head = design.get("head", "mean")
    pooled = [LayerSpec(type="Flatten")] if head == "flatten" else [_pool(head)]
    return pooled + _classifier(design, outputs)


MLP_WIDTH_FACTOR = 8  # an MLP layer on a signal gets 8x the width a conv or recurrent layer would


def signal_sequence_layers(design: Design, input_shape: list[int], outputs: int) -> list[LayerSpec]:
    """A recurrent (gru, lstm) or attention (transformer) encoder over a signal's time steps, or an MLP."""
    width = int(design["width"])
    encoder = design["encoder"]
    if encoder == "mlp":
        norm = "batch" if design.get("norm") == "batch" else "none"
        return [LayerSpec(type="Flatten"), *flat_layers(
            {"depth": design["blocks"], "width": width * MLP_WIDTH_FACTOR, "norm": norm, "residual": False,
             "activation": design["activation"], "dropout": design["dropout"]}, outputs)]
    if encoder in ("gru", "lstm"):
        layers = int(design["layers"])
        params = {"hidden_size": width, "num_layers": layers, "batch_first": True,
                  "bidirectional": bool(design.get("bidirectional"))}
        if layers > 1 and design["dropout"] > 0:
            params["dropout"] = design["dropout"]
        body = [LayerSpec(type="Transpose", params={"dim0": 1, "dim1": 2}),
                LayerSpec(type=encoder.upper(), params=params, output_index=0)]
        return body + _sequence_head(design, outputs)
    patch = max(1, min(int(design.get("patch", 1)), input_shape[1]))
    body = [LayerSpec(type="Conv1d", params={"out_channels": width, "kernel_size": patch, "stride": patch}),
            LayerSpec(type="Transpose", params={"dim0": 1, "dim1": 2}),
            LayerSpec(type="PositionalEmbedding")]
    return body + _attention_layers(design, width) + _sequence_head(design, outputs)
