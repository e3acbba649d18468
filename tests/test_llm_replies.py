"""Reading model replies: JSON objects, grounded analyses, echoed schemas, tool calls written as text."""

from __future__ import annotations

import json

import pytest

from torchscout.agent.agent_guards import text_tool_calls
from torchscout.agent.llm_answers import AnswerProblem, is_schema_echo, parse_answer
from torchscout.agent.planner_answers import PlannerAnswer
from torchscout.tools.codegen.llm_json import NoUsableJSON, first_valid, json_objects
from torchscout.tools.modeling.summary_grounding import grounded_analysis

SHOWN = ("Total parameters: 5,130. Total FLOPs: 10.24K.\nfc | Linear | [1, 10] | 5,130 | 100.0%\n"
         "fc (Linear) holds 98.4% of the 5,130 parameters.")


def test_every_top_level_object_is_found_in_order_and_nested_ones_are_not_repeated():
    text = 'a {"x": {"y": 1}} b {"broken": } c ```json\n{"z": [1, {"w": 2}]}\n``` d {"last": true}'
    assert list(json_objects(text)) == [{"x": {"y": 1}}, {"z": [1, {"w": 2}]}, {"last": True}]


def test_first_valid_names_the_problem_of_each_refused_object():
    def needs_z(value):
        if "z" not in value:
            raise ValueError("no z")
        return value["z"]

    assert first_valid('{"a": 1} {"z": 3}', needs_z) == 3
    with pytest.raises(NoUsableJSON, match="object 1: no z; object 2: no z"):
        first_valid('{"a": 1} {"b": 2}', needs_z)
    with pytest.raises(NoUsableJSON, match="contains no JSON object"):
        first_valid("no braces at all", needs_z)
    with pytest.raises(NoUsableJSON, match="not valid JSON"):
        first_valid('{"a": 1,}', needs_z)


def test_an_echoed_schema_is_recognised_and_refused():
    schema = PlannerAnswer.model_json_schema()
    assert is_schema_echo(schema) and not is_schema_echo({"notes": "", "candidates": []})
    with pytest.raises(AnswerProblem, match="format description"):
        parse_answer(json.dumps(schema), PlannerAnswer)


def test_numbers_are_matched_in_any_common_format_and_invented_ones_dropped():
    reply = ("The fc layer holds 5130 parameters (5.13K, about 5K). It takes 98% of them and 10.2K FLOPs. "
             "It has 9,999 parameters in total. Two layers would be better. It costs 11K FLOPs.")
    checked = grounded_analysis(reply, SHOWN, truncated=False)
    assert checked.text == ("The fc layer holds 5130 parameters (5.13K, about 5K). It takes 98% of them and 10.2K "
                            "FLOPs. Two layers would be better.")
    assert checked.note == "2 of 5 sentences dropped: 2 with numbers not in the measurement"


def test_a_self_comparison_a_repeat_and_a_cut_off_ending_are_dropped():
    reply = ("The parameters are 5,130, which is significantly lower than the 5,130. "
             "The fc layer dominates the model. The fc layer dominates the model! The fc la")
    checked = grounded_analysis(reply, SHOWN, truncated=True)
    assert checked.text == "The fc layer dominates the model."
    assert checked.dropped == {"comparing a number with itself": 1, "repeated": 1, "cut off": 1}


@pytest.mark.parametrize("text", [
    '{"name": "read_file", "arguments": {"file_path": "a.txt"}}',
    '<tool_call>\n{"name": "read_file", "arguments": "{\\"file_path\\": \\"a.txt\\"}"}\n</tool_call>',
    'Calling: {"type": "function", "function": {"name": "read_file", "arguments": {"file_path": "a.txt"}}}',
    '```json\n{"tool": "read_file", "args": {"file_path": "a.txt"}}\n```',
])
def test_tool_calls_written_as_text_are_read_in_the_usual_formats(text):
    calls, unknown = text_tool_calls(text, ["read_file", "write_file"])
    assert [(call["name"], call["args"], call["type"]) for call in calls] == [
        ("read_file", {"file_path": "a.txt"}, "tool_call")]
    assert unknown == []


def test_plain_json_is_not_a_tool_call_and_an_unknown_name_is_reported():
    assert text_tool_calls('{"accuracy": 0.97}', ["read_file"]) == ([], [])
    assert text_tool_calls('Best: {"name": "DigitNet", "accuracy": 0.97}', ["read_file"]) == ([], [])
    assert text_tool_calls('{"name": "web_search", "arguments": {}}', ["read_file"]) == ([], ["web_search"])


def test_an_analysis_that_names_nothing_measured_is_no_analysis():
    checked = grounded_analysis("I am not sure how to write that.", SHOWN, truncated=False, anchors={"fc", "Linear"})
    assert checked.text == "" and checked.dropped == {"about nothing that was measured": 1}
    named = grounded_analysis("The Linear head is the whole model.", SHOWN, truncated=False, anchors={"fc", "Linear"})
    assert named.text == "The Linear head is the whole model."
