"""Red-team cases: one hostile argument must give a one-line error, not a crash, a hang or a huge allocation."""

from __future__ import annotations

import os
import time

from tests.redteam.harness import Arena, case
from tests.redteam.sources import TINY_MODEL

CORPUS = "the quick brown fox jumps over the lazy dog\n" * 200
DIGITS = {"name": "digits", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10,
          "budget": {"max_rounds": 1, "candidates_per_round": 1, "full_epochs": 0, "optimizer_trials": 0,
                     "confirm_seeds": 1, "max_minutes": 1}}


def _linear_blueprint(**params: int) -> dict:
    return {"model_name": "Net", "input_shape": [8], "layers": [{"type": "Linear", "params": params}]}


def _research(arena: Arena, **overrides) -> None:
    from torchscout.graphs.driver import research

    arena.call(research, {**DIGITS, **overrides})


def _nothing_started(arena: Arena) -> str | None:
    started = [path.name for path in (arena.path("runs").iterdir() if arena.path("runs").exists() else [])]
    return f"the run started anyway: runs/{started}" if started else None


@case("hostile_argument", "data_files glob through a symlink loop (hung)", time_limit_s=60)
def glob_through_a_link_loop(arena: Arena) -> str | None:
    arena.write("data/corpus.txt", CORPUS)
    os.symlink(".", arena.path("data/loop"))
    with arena.attack(may_change=("tokenizers", ".torchscout")):
        arena.tool("pytorch_tokenizer_manager", action="train", tokenizer_name="t",
                   config={"type": "BPE", "vocab_size": 300, "data_files": ["data/**/*.txt"]})
    return None


@case("hostile_argument", "data_files glob through a link to / (hung)", time_limit_s=60)
def glob_through_a_link_to_root(arena: Arena) -> str | None:
    arena.write("data/corpus.txt", CORPUS)
    os.symlink("/", arena.path("data/root"))
    with arena.attack(may_change=("tokenizers", ".torchscout")):
        arena.tool("pytorch_tokenizer_manager", action="train", tokenizer_name="t",
                   config={"type": "BPE", "vocab_size": 300, "data_files": ["**/*.txt"]})
        arena.tool("pytorch_tokenizer_manager", action="train", tokenizer_name="u",
                   config={"type": "BPE", "vocab_size": 300, "data_files": ["data/root/*/*.txt"]})
    return None


@case("hostile_argument", "tokenizer vocab_size 10**12 (aborted the process)", refusal=True)
def huge_vocabulary(arena: Arena) -> str | None:
    arena.write("data/corpus.txt", CORPUS)
    with arena.attack():
        arena.tool("pytorch_tokenizer_manager", action="train", tokenizer_name="t",
                   config={"type": "WordPiece", "vocab_size": 10**12, "data_files": ["data/corpus.txt"]})
    return None


@case("hostile_argument", "tokenizer apply padded to max_length 10**12 (aborted the process)", refusal=True)
def huge_padding(arena: Arena) -> str | None:
    arena.write("data/corpus.txt", CORPUS)
    arena.must(arena.tool("pytorch_tokenizer_manager", action="train", tokenizer_name="t",
                          config={"type": "BPE", "vocab_size": 300, "data_files": ["data/corpus.txt"]}))
    with arena.attack():
        arena.tool("pytorch_tokenizer_manager", action="apply", tokenizer_name="t", text_input="hello",
                   padding="max_length", max_length=10**12)
        arena.tool("pytorch_tokenizer_manager", action="apply", tokenizer_name="t", text_input=["x"] * 1000,
                   padding="max_length", max_length=100_000)
    return None


@case("hostile_argument", "an empty corpus ('succeeded')", refusal=True)
def empty_corpus(arena: Arena) -> str | None:
    arena.write("data/empty.txt", "")
    arena.write("data/blank.txt", "\n\n   \n")
    with arena.attack():
        arena.tool("pytorch_tokenizer_manager", action="train", tokenizer_name="t",
                   config={"type": "CharLevel", "data_files": ["data/empty.txt", "data/blank.txt"]})
    return None


@case("hostile_argument", "hf_pretrained_id naming a local folder outside the workspace", refusal=True)
def hub_id_that_is_a_path(arena: Arena) -> str | None:
    with arena.attack():
        for source in ("/etc", "../..", "~/.cache/huggingface", "./tokenizers/../../x"):
            arena.tool("pytorch_tokenizer_manager", action="load", tokenizer_name="t", hf_pretrained_id=source)
    return None


@case("hostile_argument", "tokenizer names that are paths or too long", refusal=True)
def tokenizer_names_that_are_paths(arena: Arena) -> str | None:
    arena.write("data/corpus.txt", CORPUS)
    with arena.attack():
        for name in ("../outside", "a/b", ".hidden", "x" * 300, "tab\tname"):
            arena.tool("pytorch_tokenizer_manager", action="train", tokenizer_name=name,
                       config={"type": "BPE", "vocab_size": 300, "data_files": ["data/corpus.txt"]})
    return None


@case("hostile_argument", "file names of 300+ characters ('this is a bug')", refusal=True)
def very_long_file_names(arena: Arena) -> str | None:
    with arena.attack():
        arena.tool("write_file", file_path="a" * 300 + ".txt", content="x")
        arena.tool("read_file", file_path="b" * 400)
        arena.tool("create_directory", path="/".join(["c" * 200] * 30))
        arena.tool("append_to_file", file_path="d" * 256, content="x")
    return None


@case("hostile_argument", "a NUL byte in a path", refusal=True)
def nul_byte_in_a_path(arena: Arena) -> str | None:
    with arena.attack():
        arena.tool("write_file", file_path="notes\x00.txt", content="x")
        arena.tool("pytorch_model_assembler", model_config=_linear_blueprint(out_features=2),
                   output_script_path="m\x00.py")
    return None


@case("hostile_argument", "Linear out_features 0 and other zero sizes (accepted)", refusal=True)
def zero_sized_layers(arena: Arena) -> str | None:
    conv = {"model_name": "Net", "input_shape": [1, 8, 8],
            "layers": [{"type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 0}}]}
    with arena.attack():
        arena.tool("pytorch_model_assembler", model_config=_linear_blueprint(out_features=0), output_script_path="a.py")
        arena.tool("pytorch_model_assembler", model_config=_linear_blueprint(out_features=-3), output_script_path="b.py")
        arena.tool("pytorch_model_assembler", model_config=conv, output_script_path="c.py")
    return None


@case("hostile_argument", "600 nested Sequential streams (RecursionError out of .invoke())", refusal=True)
def deeply_nested_streams(arena: Arena) -> str | None:
    from torchscout.tools.modeling.assembler import pytorch_model_assembler

    layer: dict = {"type": "Linear", "params": {"out_features": 4}}
    for _ in range(600):
        layer = {"type": "Sequential", "layers": [layer]}
    blueprint = {"model_name": "Deep", "input_shape": [8], "layers": [layer]}
    with arena.attack():
        arena.tool("pytorch_model_assembler", model_config=blueprint, output_script_path="deep.py")
        arena.call(pytorch_model_assembler, blueprint, "deep.py")
    return None


@case("hostile_argument", "a layer list that contains itself (RecursionError)", refusal=True)
def cyclic_layer_list(arena: Arena) -> str | None:
    from torchscout.tools.modeling.assembler import pytorch_model_assembler

    layers: list = [{"type": "Linear", "params": {"out_features": 4}}]
    layers.append({"type": "Sequential", "layers": layers})
    blueprint = {"model_name": "Loop", "input_shape": [8], "layers": layers}
    with arena.attack():
        arena.call(pytorch_model_assembler, blueprint, "loop.py")
        arena.tool("pytorch_model_assembler", model_config=blueprint, output_script_path="loop.py")
    return None


@case("hostile_argument", "a blueprint too large to train here (10**9 parameters allocated ~4 GB in validation)",
      time_limit_s=120, refusal=True)
def oversized_blueprint(arena: Arena) -> str | None:
    import math
    import resource

    from torchscout.tools.limits import max_trainable_parameters

    limit = max_trainable_parameters()  # 0.8 * 10**9 on a machine with 24 GiB
    linear = {"model_name": "Huge", "input_shape": [100_000],
              "layers": [{"type": "Linear", "params": {"out_features": 2 * limit // 100_000}}]}
    lstm = {"model_name": "HugeLSTM", "input_shape": [4, 8],  # 4 * hidden**2 parameters, built for real
            "layers": [{"type": "LSTM", "params": {"hidden_size": math.isqrt(limit)}}]}
    with arena.attack():
        arena.tool("pytorch_model_assembler", model_config=linear, output_script_path="huge.py")
        arena.tool("pytorch_model_assembler", model_config=lstm, output_script_path="lstm.py")
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # this process: it built nothing
    return f"the process grew to {peak_gib:.1f} GiB while refusing it" if peak_gib > 3.5 else None


@case("hostile_argument", "deeply nested JSON in any tool's arguments", refusal=True)
def nested_arguments_to_other_tools(arena: Arena) -> str | None:
    nested: list = []
    for _ in range(2000):
        nested = [nested]
    with arena.attack():
        arena.tool("pytorch_tokenizer_manager", action="apply", tokenizer_name="t", text_input=nested)
        arena.tool("pytorch_optimizer_configurator", action="generate_config", config_name="c",
                   optimizer_details={"type": "AdamW", "param_groups": nested})
    return None


@case("hostile_argument", "device 'cuda' on a machine without CUDA (ran on the CPU silently)")
def cuda_without_cuda(arena: Arena) -> str | None:
    import torch

    if torch.cuda.is_available():
        return None  # nothing to refuse here: the request can be met
    arena.write("model.py", TINY_MODEL)
    with arena.attack():
        arena.tool("pytorch_quick_evaluator", model_script_path="model.py", model_class_name="Tiny",
                   eval_config={"dataset": "digits", "device": "cuda", "max_steps": 2})
    return None


@case("hostile_argument", "lr 1e6 ('completed' with a loss of 9.8e5)", time_limit_s=180)
def diverging_learning_rate(arena: Arena) -> str | None:
    arena.write("model.py", TINY_MODEL)
    with arena.attack():
        answer = arena.tool("pytorch_quick_evaluator", model_script_path="model.py", model_class_name="Tiny",
                            eval_config={"dataset": "digits", "optimizer": "SGD", "learning_rate": 1e6,
                                         "epochs": 2, "device": "cpu"})
    if "'status': 'diverged'" not in answer.text:
        return f"a learning rate of 1e6 was not reported as diverged: {answer.text[:300]}"
    return None


@case("hostile_argument", "a binary task file (UnicodeDecodeError traceback)", time_limit_s=120, refusal=True)
def binary_task_file(arena: Arena) -> str | None:
    arena.write("task.yaml", bytes(range(256)) * 4)
    with arena.attack():
        arena.cli("run", "task.yaml")
    return None


@case("hostile_argument", "target .nan and max_minutes .inf in a task", refusal=True)
def non_finite_task_numbers(arena: Arena) -> str | None:
    with arena.attack():
        _research(arena, target=float("nan"))
        _research(arena, budget={**DIGITS["budget"], "max_minutes": float("inf")})
    return _nothing_started(arena)


@case("hostile_argument", "an input_shape of 3x10**5x10**5 in a task", refusal=True)
def absurd_input_shape(arena: Arena) -> str | None:
    with arena.attack():
        _research(arena, input_shape=[3, 100_000, 100_000])
    return _nothing_started(arena)


@case("hostile_argument", "a seed past 2**32, 10**12 classes, a dummy dataset of 10**12 samples", refusal=True)
def absurd_task_numbers(arena: Arena) -> str | None:
    with arena.attack():
        _research(arena, seed=10**30)
        _research(arena, num_classes=10**12)
        _research(arena, dataset="dummy", dataset_params={"num_samples": 10**12})
    return _nothing_started(arena)


@case("hostile_argument", "an unknown dataset (every candidate failed, exit 0)", refusal=True)
def unknown_dataset(arena: Arena) -> str | None:
    with arena.attack():
        _research(arena, dataset="digitz")
    return _nothing_started(arena)


@case("hostile_argument", "an input_shape that does not match the data (every candidate failed, exit 0)", refusal=True)
def mismatched_input_shape(arena: Arena) -> str | None:
    with arena.attack():
        _research(arena, input_shape=[1, 28, 28])
        _research(arena, input_shape=[64])
    return _nothing_started(arena)


@case("hostile_argument", "a num_classes smaller than the data's (every candidate failed, exit 0)", refusal=True)
def mismatched_num_classes(arena: Arena) -> str | None:
    with arena.attack():
        _research(arena, num_classes=5)
    return _nothing_started(arena)


@case("hostile_argument", "a text task whose data file is missing or has another sequence length", refusal=True)
def broken_text_task(arena: Arena) -> str | None:
    arena.write("data/reviews.csv", "text,label\ngood film,1\nbad film,0\n" * 20)
    text = {"dataset": "text_classification", "input_shape": [32], "input_dtype": "int64", "num_classes": 2}
    with arena.attack():
        _research(arena, **text, dataset_params={"data_path": "data/missing.csv"})
        _research(arena, **text, dataset_params={"data_path": "data/reviews.csv", "max_length": 64})
        _research(arena, **text, dataset_params={"data_path": "data/reviews.csv", "label_column": "stars"})
    return _nothing_started(arena)


@case("hostile_argument", "a run name that is a path", refusal=True)
def run_name_that_is_a_path(arena: Arena) -> str | None:
    from torchscout.graphs.driver import research, resume

    started = time.monotonic()
    with arena.attack():
        arena.call(research, DIGITS, name="../../escape")
        arena.call(resume, "../../escape")
        arena.call(resume, "x" * 300)
    outside = arena.root.parent.parent / "escape.lock"
    if outside.exists() and outside.stat().st_mtime >= started - 1:
        return f"a lock file was written outside the workspace: {outside}"
    return _nothing_started(arena)


@case("hostile_argument", "a named pipe given to the file tools (open blocked forever)", refusal=True,
      time_limit_s=30)
def named_pipe_to_the_file_tools(arena: Arena) -> str | None:
    os.mkfifo(arena.path("pipe"))
    with arena.attack():
        arena.tool("read_file", file_path="pipe")
        arena.tool("append_to_file", file_path="pipe", content="x")
        arena.tool("write_file", file_path="pipe", content="x")
    return None if arena.path("pipe").is_fifo() else "the pipe was replaced"
