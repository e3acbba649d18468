"""The code-generation pipeline: backends, static checks, sandbox validation, repair, atomic write."""

from __future__ import annotations

import pytest

from tests import sandbox_helpers
from tests.llm_helpers import python_block, scripted
from torchscout.settings import configure
from torchscout.tools.codegen.pipeline import CodeGenerationError, extract_code, generate_code
from torchscout.tools.errors import ToolError

GOOD = "def answer() -> int:\n    return 42\n"
WRONG_TYPE = "def answer():\n    return 'forty-two'\n"
RAISES = "def answer() -> int:\n    raise RuntimeError('tensor sizes do not match')\n"

# prompts/model_block.yaml is a real prompt file; its variables are filled with plausible values
PROMPT_VARIABLES = {"class_name": "Answer", "params": "{}", "input_shape": "[2, 4]", "input_dtype": "float32",
                    "where": "layers[0]", "blueprint": "{}"}


def generate(output_path="src/gen/answer.py", **overrides):
    arguments = {
        "prompt": "model_block",
        "variables": PROMPT_VARIABLES,
        "output_path": output_path,
        "validate": sandbox_helpers.check_defines,
        "validate_kwargs": {"name": "answer"},
    }
    arguments.update(overrides)
    return generate_code(**arguments)


def leftovers(workspace):
    return sorted(str(path.relative_to(workspace)) for path in workspace.rglob("*")
                  if ".torchscout" not in path.parts and "__pycache__" not in path.parts)


def test_builtin_code_is_validated_then_written(workspace):
    result = generate(builtin=lambda: GOOD)
    assert result.backend == "builtin"
    assert result.report == {"value": 42}
    assert (workspace / "src/gen/answer.py").read_text() == GOOD
    assert [attempt.stage for attempt in result.attempts] == ["passed"]
    assert leftovers(workspace) == ["src", "src/gen", "src/gen/answer.py"]


def test_a_failing_builtin_candidate_leaves_nothing_behind(workspace):
    with pytest.raises(CodeGenerationError) as caught:
        generate(builtin=lambda: RAISES)
    error = caught.value
    assert error.stage == "validate"
    assert "RuntimeError: tensor sizes do not match" in str(error)
    assert "failed at the validate stage" in str(error) and "no file was written" in str(error)
    assert leftovers(workspace) == []  # no candidate, and the folders it created are gone


def test_an_existing_file_survives_a_failed_generation(workspace):
    target = workspace / "answer.py"
    target.write_text(GOOD)
    with pytest.raises(CodeGenerationError):
        generate(output_path="answer.py", builtin=lambda: WRONG_TYPE)
    assert target.read_text() == GOOD


def test_unsafe_code_is_refused_before_it_runs(workspace):
    with pytest.raises(CodeGenerationError) as caught:
        generate(builtin=lambda: "import os\n" + GOOD)
    assert caught.value.stage == "safety"
    assert "importing 'os' is not allowed" in str(caught.value)


def test_the_llm_repairs_its_code_after_seeing_the_error(workspace):
    model = scripted(python_block("def answer() -> int:\n    return undefined_name\n"), python_block(GOOD))
    configure(llm=model)
    result = generate()
    assert result.backend.startswith("llm:")
    assert [attempt.stage for attempt in result.attempts] == ["validate", "passed"]
    assert (workspace / "src/gen/answer.py").read_text() == GOOD
    # the second request carried the first answer and the error back to the model
    repair_request = model.requests[1][-1].content
    assert "failed at the validate stage" in repair_request
    assert "NameError" in repair_request and "undefined_name" in repair_request


def test_every_stage_is_fed_back_and_a_hopeless_model_gets_a_clear_error(workspace):
    model = scripted(
        "I cannot write code today.",                   # extract
        python_block("def answer(:\n    return 1\n"),   # parse
        python_block("import subprocess\n" + GOOD),    # safety
        python_block(WRONG_TYPE),                       # validate
    )
    configure(llm=model)
    with pytest.raises(CodeGenerationError) as caught:
        generate()
    error = caught.value
    assert [attempt.stage for attempt in error.attempts] == ["extract", "parse", "safety", "validate"]
    assert error.stage == "validate"
    assert "after 4 attempt(s)" in str(error) and "expected an int" in str(error)
    assert len(model.requests) == 4  # one request plus three repair rounds, no more
    assert leftovers(workspace) == []


def test_a_repeated_generation_is_answered_from_the_cache(workspace):
    configure(llm=scripted(python_block(GOOD)))
    generate()
    (workspace / "src/gen/answer.py").unlink()
    replay = scripted()  # answers nothing: any call would fail
    configure(llm=replay)
    result = generate()
    assert replay.requests == []
    assert result.report == {"value": 42}


def test_no_builtin_and_no_llm_is_a_clear_error():
    with pytest.raises(ToolError, match="needs an LLM"):
        generate()


def test_the_output_path_must_be_a_python_file_in_the_workspace():
    with pytest.raises(ToolError, match="must end in .py"):
        generate(output_path="answer.txt", builtin=lambda: GOOD)
    with pytest.raises(ToolError, match="outside the workspace"):
        generate(output_path="../answer.py", builtin=lambda: GOOD)


def test_extract_code_takes_the_fenced_block_or_bare_code():
    assert extract_code("text\n```python\nx = 1\n```\nmore") == "x = 1\n"
    assert extract_code("x = 1\n") == "x = 1\n"


def test_the_few_shot_examples_are_valid_answers_to_their_own_requests(workspace):
    """The examples teach the format with deliberately unusual blocks; their code must pass the real checks."""
    from torchscout.prompts.loader import load_prompt
    from torchscout.tools.modeling.model_validation import validate_block
    from torchscout.tools.optim.validation import probe_optimizer

    block = extract_code(load_prompt("model_block").examples[0]["assistant"])
    result = generate_code(prompt="model_block", variables={}, output_path="examples/polynomial.py",
                           validate=validate_block, builtin=lambda: block, backend="builtin",
                           required_class="PolynomialActivation",
                           validate_kwargs={"class_name": "PolynomialActivation", "params": {"degree": 3},
                                            "input_shape": [2, 7]})
    assert result.attempts[-1].stage == "passed"
    optimizer = extract_code(load_prompt("custom_optimizer").examples[0]["assistant"])
    result = generate_code(prompt="custom_optimizer", variables={}, output_path="examples/clipped.py",
                           validate=probe_optimizer, builtin=lambda: optimizer, backend="builtin",
                           required_class="ClippedStepSGD",
                           validate_kwargs={"class_name": "ClippedStepSGD", "additional_params": {"max_step": 0.05}})
    assert result.attempts[-1].stage == "passed"
