"""Convolutional designs of the search space: conv nets for images ``[C, H, W]`` and signals ``[C, L]``.

One layout for both (``dims`` 2 or 1): stages of a block, optionally a second block of the same
shape in a skip connection (``residual``) or an Inception-style pair of branches (``parallel``,
images), optionally squeeze-excitation, then pooling while the resolution allows, and a head.

Blocks (images, the ``block`` axis; signals always use ``conv``):

- ``conv``: convolution, normalisation, activation (VGG / ResNet style);
- ``separable``: a depthwise kxk convolution then a pointwise 1x1 (Xception / MobileNet v1);
- ``inverted``: the inverted residual of MobileNet v2: expand 1x1 (x4), depthwise kxk, project 1x1
  without activation; a skip connection when the shapes allow.

Both depthwise blocks are always batch-normalised, as in their papers: without it they barely
train in a short budget (digits, 4 epochs: 0.17 vs 0.64 accuracy separable, 0.48 vs 0.80 inverted),
so the ``norm`` axis applies to ``conv`` blocks only.

Squeeze-excitation (``se``, SENet) is a ``Parallel`` of the identity and a gate (global pool, 1x1
bottleneck, sigmoid) merged by multiplication. Everything is plain ``torch.nn`` plus the
assembler's streams, so the builtin compiler builds each design exactly, offline.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchscout.tools.modeling.types import LayerSpec

# One point of a space, as the planner holds it (the same alias as search_space.Blueprint).
Design = dict[str, int | float | str | bool]

EXPANSION = 4  # the inverted residual's hidden width, as a multiple of its input channels
SE_REDUCTION = 4  # squeeze-excitation bottleneck: channels / 4 (at least 4)
MAX_WIDTH_FACTOR = 4  # signal stages double their channels up to 4x the first stage's


def activation(name: object) -> LayerSpec:
    return LayerSpec(type="GELU") if name == "gelu" else LayerSpec(type="ReLU")


@dataclass
class Layout:
    """The spatial size while a net is laid out (one size for signals, two for images), so pooling
    stops before it reaches 1, and the channel count reaching the next block."""

    dims: int
    sizes: list[int]
    channels: int

    def conv(self, out_channels: int, kernel: int, *, groups: int = 1, dilation: int = 1,
             bias: bool = True) -> LayerSpec:
        params = {"out_channels": out_channels, "kernel_size": kernel, "padding": dilation * (kernel // 2),
                  "bias": bias}
        if groups > 1:
            params["groups"] = groups
        if dilation > 1:
            params["dilation"] = dilation
        return LayerSpec(type=f"Conv{self.dims}d", params=params)

    def norm(self) -> LayerSpec:
        return LayerSpec(type=f"BatchNorm{self.dims}d")

    def pool(self) -> LayerSpec | None:
        if min(self.sizes) < 2:
            return None
        self.sizes = [size // 2 for size in self.sizes]
        return LayerSpec(type=f"MaxPool{self.dims}d", params={"kernel_size": 2})


def _conv_block(design: Design, layout: Layout, channels: int, dilation: int = 1) -> list[LayerSpec]:
    batch_norm = design.get("norm") == "batch"
    layers = [layout.conv(channels, int(design["kernel"]), dilation=dilation, bias=not batch_norm)]
    if batch_norm:
        layers.append(layout.norm())
    layers.append(activation(design["activation"]))
    return layers


def _separable_block(design: Design, layout: Layout, channels_in: int, channels: int) -> list[LayerSpec]:
    act = design["activation"]
    return [layout.conv(channels_in, int(design["kernel"]), groups=channels_in, bias=False), layout.norm(),
            activation(act), layout.conv(channels, 1, bias=False), layout.norm(), activation(act)]


def _inverted_block(design: Design, layout: Layout, channels_in: int, channels: int) -> list[LayerSpec]:
    act, hidden = design["activation"], channels_in * EXPANSION
    body = [layout.conv(hidden, 1, bias=False), layout.norm(), activation(act),
            layout.conv(hidden, int(design["kernel"]), groups=hidden, bias=False), layout.norm(), activation(act),
            layout.conv(channels, 1, bias=False), layout.norm()]  # a linear bottleneck: no activation at the end
    return [LayerSpec(type="Residual", layers=body)] if channels_in == channels else body


def _block(design: Design, layout: Layout, channels_in: int, channels: int, dilation: int = 1) -> list[LayerSpec]:
    kind = design.get("block", "conv")
    if kind == "separable":
        return _separable_block(design, layout, channels_in, channels)
    if kind == "inverted":
        return _inverted_block(design, layout, channels_in, channels)
    return _conv_block(design, layout, channels, dilation)


def squeeze_excitation(layout: Layout, channels: int) -> LayerSpec:
    """x * gate(x): the gate pools each channel to one number and learns how much to keep of it."""
    gate = [LayerSpec(type=f"AdaptiveAvgPool{layout.dims}d", params={"output_size": 1}),
            layout.conv(max(4, channels // SE_REDUCTION), 1), LayerSpec(type="ReLU"),
            layout.conv(channels, 1), LayerSpec(type="Sigmoid")]
    return LayerSpec(type="Parallel", branches=[[], gate], merge="mul")


def _parallel(design: Design, layout: Layout, channels: int) -> LayerSpec:
    """Inception-style: a 1x1 and a kxk view of the same features, concatenated on channels."""
    kernel = int(design["kernel"])
    conv = f"Conv{layout.dims}d"
    branch_1x1 = [LayerSpec(type=conv, params={"out_channels": channels // 2, "kernel_size": 1}),
                  activation(design["activation"])]
    branch_kxk = [LayerSpec(type=conv, params={"out_channels": channels // 2, "kernel_size": kernel,
                                               "padding": kernel // 2}),
                  activation(design["activation"])]
    return LayerSpec(type="Parallel", branches=[branch_1x1, branch_kxk], merge="concat", dim=1)


def _stage(design: Design, layout: Layout, channels: int, dilation: int, stream: object) -> list[LayerSpec]:
    layers = _block(design, layout, layout.channels, channels, dilation)
    if stream == "residual":
        # a second block wrapped in a skip connection: same shape in and out
        layers.append(LayerSpec(type="Residual", layers=_block(design, layout, channels, channels, dilation)))
    elif stream == "parallel":
        layers.append(_parallel(design, layout, channels))
    if design.get("se"):
        layers.append(squeeze_excitation(layout, channels))
    layout.channels = channels
    return layers


def _head(design: Design, layout: Layout, outputs: int) -> list[LayerSpec]:
    head = design.get("head", "avgpool")
    layers: list[LayerSpec] = []
    if head in ("avgpool", "mean"):
        layers.append(LayerSpec(type=f"AdaptiveAvgPool{layout.dims}d", params={"output_size": 1}))
    elif head == "max":
        layers.append(LayerSpec(type=f"AdaptiveMaxPool{layout.dims}d", params={"output_size": 1}))
    layers.append(LayerSpec(type="Flatten"))
    if design["dropout"] > 0:
        layers.append(LayerSpec(type="Dropout", params={"p": design["dropout"]}))
    layers.append(LayerSpec(type="Linear", params={"out_features": outputs}))
    return layers


def image_layers(design: Design, input_shape: list[int], outputs: int) -> list[LayerSpec]:
    """A conv net for images ``[C, H, W]``: ``blocks`` stages, channels doubling, max-pooled after each."""
    layout = Layout(2, list(input_shape[1:]), input_shape[0])
    layers: list[LayerSpec] = []
    for index in range(int(design["blocks"])):
        layers += _stage(design, layout, int(design["width"]) * 2**index, 1, design.get("stream", "plain"))
        pool = layout.pool()
        if pool is not None:
            layers.append(pool)
    return layers + _head(design, layout, outputs)


def signal_conv_layers(design: Design, input_shape: list[int], outputs: int) -> list[LayerSpec]:
    """A 1D conv net for signals ``[C, L]``: ``blocks`` stages with dilation ``dilation**index`` (a
    temporal conv net when > 1), optional residual blocks and max pooling, then a global-pool or
    flatten head."""
    layout = Layout(1, [input_shape[1]], input_shape[0])
    layers: list[LayerSpec] = []
    for index in range(int(design["blocks"])):
        channels = int(design["width"]) * min(2**index, MAX_WIDTH_FACTOR)
        dilation = int(design.get("dilation", 1)) ** index
        stream = "residual" if design.get("residual") else "plain"
        layers += _stage(design, layout, channels, dilation, stream)
        pool = layout.pool() if design.get("pooling") == "max" else None
        if pool is not None:
            layers.append(pool)
    return layers + _head(design, layout, outputs)
