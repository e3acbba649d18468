"""The shapes of a model blueprint, of what the modeling jobs report, and of the two tools' answers.

A blueprint (``model_config``) is plain JSON; :mod:`~torchscout.tools.modeling.blueprint` checks
one and parses it into nodes. A layer's ``params`` are its constructor's keyword arguments, so
they stay a free-form mapping.
"""

from typing import Any, Literal, NotRequired, Required, TypedDict, final

# Arguments the assembler filled in, by config location ("layers[0].in_channels": 3): inferred
# dimensions and flags, and "<stream>.projection": the shortcut layer a Residual got.
InferredArguments = dict[str, int | bool | str]


class LayerSpec(TypedDict, total=False):
    """One entry of a blueprint's ``layers``: a torch.nn layer, a custom block, a helper or a stream.

    ``type`` says which; the other keys belong to one kind each.
    """

    type: Required[str]  # a torch.nn class, a custom block's class, Mean/Max/Last, or a stream
    params: dict[str, Any]  # layers, blocks, helpers: constructor arguments
    module_path: str  # custom block: the workspace .py file defining ``type``
    output_index: int  # layers returning tuples: the element that flows on
    name: str  # the attribute name in the generated model (streams: a label)
    layers: list["LayerSpec"]  # Sequential and Residual
    branches: list[list["LayerSpec"]]  # Parallel
    merge: Literal["concat", "add", "mul"]  # Parallel
    dim: int  # Parallel: the dimension concat merges along (batch included)


class BlueprintSpec(TypedDict):
    """``model_config`` of pytorch_model_assembler."""

    model_name: str
    input_shape: list[int]  # without the batch dimension
    input_dtype: NotRequired[str]  # float32 (default) or int64 for token ids
    layers: list[LayerSpec]
    description: NotRequired[str]


class BlockRequest(TypedDict):
    """A layer type nothing can build, with what an LLM needs to write it."""

    type: str
    where: str  # its config location, e.g. layers[3]
    params: dict[str, Any]
    input_shape: list[int]  # batch included
    input_dtype: str


@final  # final, so that `"missing_block" in compiled` tells the two compile results apart
class CompiledModel(TypedDict):
    """The builtin compiler's output for a blueprint it could build completely."""

    code: str
    output_shape: list[int]  # without the batch dimension
    total_params: int
    inferred: InferredArguments
    custom_blocks: dict[str, str]  # class name -> workspace-relative file


@final
class BlockNeeded(TypedDict):
    """The compiler stopped at a layer type it cannot build."""

    missing_block: BlockRequest


class ModelCheck(TypedDict):
    """What the sandbox measured on a generated model file."""

    output_shape: list[int]  # without the batch dimension
    total_params: int


class BlockCheck(TypedDict):
    output_shape: list[int]
    params: int


class AssemblerAnswer(TypedDict):
    """``pytorch_model_assembler``'s answer."""

    status: Literal["success"]
    output_script_path: str  # workspace-relative
    model_name: str
    backend: str  # "builtin", or "builtin+llm:<model>" when an LLM wrote blocks
    input_shape: list[int]
    input_dtype: str
    output_shape: list[int]
    total_params: int
    inferred: InferredArguments
    custom_blocks: dict[str, str]
    generated_blocks: NotRequired[list[str]]  # the files an LLM wrote, workspace-relative


class LayerRow(TypedDict):
    """One module call as the summary's brief answer shows it (a module called twice has two rows)."""

    name: str
    type: str
    depth: int  # 0: the model itself
    output_shape: list[int] | None  # None when the output holds no tensor
    params: int  # in the module and its children
    flops: int  # spent inside this call, children included


class LayerCall(LayerRow):
    """One module call of the measured forward pass, as measured (and in ``detail="full"`` answers)."""

    own_params: int  # in the module itself
    trainable_params: int
    is_leaf: bool
    repeat: bool  # the module was called before
    output_bytes: NotRequired[int]  # during measurement; not in the answer
    flops_share: NotRequired[float]  # of the whole forward pass, once it is known


class ModelMeasurement(TypedDict):
    """What the sandbox job measures on one forward pass."""

    total_params: int  # shared (tied) parameters once
    trainable_params: int
    non_trainable_params: int
    flops: int  # 2 per multiply-accumulate, as torch.utils.flop_counter counts
    macs: int
    param_memory_bytes: int
    buffer_memory_bytes: int
    activation_memory_bytes: int  # the leaf layers' outputs
    input_memory_bytes: int
    output_shape: list[int] | None
    layer_details: list[LayerCall]
    measured_on: str  # "meta", or "cpu" when the model needs real values
    source_file: NotRequired[str | None]  # from the sandbox job, for the LLM's analysis; not in the answer


class SummaryAnswer(ModelMeasurement):
    """``pytorch_model_summary``'s answer: the measurement, the table and the analysis.

    With ``detail`` "brief" or a depth, ``layer_details`` holds the rows down to that depth (name,
    type, depth, output_shape, params, flops) and ``table_path``/``layers_path`` every row."""

    status: Literal["success"]
    message: str  # one line: the key numbers and where the rest is
    model: str  # "<file or module>:<name>"
    model_script_path: str  # workspace-relative, or the installed module's dotted name
    model_class_name: str  # the class or factory function
    input_size: list[int]  # batch included
    input_dtype: str
    summary_str: str
    analysis: str
    analysis_backend: str  # "builtin", "llm:<model>" or why the builtin rules stood in
    layer_details: list[LayerRow] | list[LayerCall]  # type: ignore[misc] - rows to a depth, or every call
    detail: str | int  # "brief", a depth or "full"
    layer_details_shown: NotRequired[str]  # "<n> of <m> rows at this depth", unless detail is "full"
    table_path: NotRequired[str]  # every row, as a text table (unless detail is "full")
    layers_path: NotRequired[str]  # every row, as JSON
