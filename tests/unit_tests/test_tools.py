"""Specification of tool schemas in and tool calls out (`langchain_hf_chat._tools`)."""

from __future__ import annotations

import doctest
import json
from typing import Any, Optional

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_hf_chat import _schema, _stop, _tool_parsers, _tools
from langchain_hf_chat._tools import (
    MAX_TOOL_CALLS,
    NO_TOOL_NAME,
    TOOL_CALL_PARSERS,
    ParsedToolCalls,
    convert_tools,
    normalize_tool_choice,
    parse_tool_calls,
    parse_wire_tool_calls,
    tool_call_from_object,
    tool_call_grammar,
)


class Address(BaseModel):
    city: str
    zip_code: Optional[str] = None  # noqa: UP045 - Optional is what users write


class CreateUser(BaseModel):
    """Create a user."""

    name: str = Field(description="Full name")
    addresses: list[Address]


@tool
def search(query: str) -> str:
    """Search the web."""
    return query


def get_weather(city: str, unit: str = "celsius") -> str:
    """Weather for a city.

    Args:
        city: The city.
        unit: celsius or fahrenheit.
    """
    return city


WEATHER_DICT: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def tools() -> list[dict[str, Any]]:
    return convert_tools([search, get_weather, CreateUser])


def test_docstring_examples_run() -> None:
    for module in (_tools, _tool_parsers, _schema, _stop):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
        assert result.attempted > 0


# --- convert_tools --------------------------------------------------------------------------


def test_convert_tools_accepts_langchain_tool_function_model_and_dict() -> None:
    weather_dict = {**WEATHER_DICT, "function": {**WEATHER_DICT["function"], "name": "weather"}}
    converted = convert_tools([search, get_weather, CreateUser, weather_dict])
    names = [t["function"]["name"] for t in converted]
    assert names == ["search", "get_weather", "CreateUser", "weather"]
    assert all(t["type"] == "function" for t in converted)


def test_convert_tools_always_gives_name_description_and_parameters() -> None:
    (converted,) = convert_tools([{"name": "ping"}])
    assert converted["function"] == {
        "name": "ping",
        "description": "",
        "parameters": {"type": "object", "properties": {}},
    }


def test_convert_tools_keeps_function_descriptions() -> None:
    (converted,) = convert_tools([get_weather])
    assert converted["function"]["description"].startswith("Weather for a city.")


def test_convert_tools_inlines_nested_model_refs() -> None:
    (converted,) = convert_tools([{"title": "create_user", **CreateUser.model_json_schema()}])
    parameters = converted["function"]["parameters"]
    assert "$defs" not in parameters
    assert "$ref" not in json.dumps(parameters)
    assert parameters["properties"]["addresses"]["items"]["properties"]["city"]["type"] == "string"


def test_convert_tools_does_not_modify_dict_tools() -> None:
    original = json.loads(json.dumps(WEATHER_DICT))
    convert_tools([WEATHER_DICT])
    assert original == WEATHER_DICT


@pytest.mark.parametrize("bad_name", ["has space", "", "x" * 65, "semi;colon"])
def test_convert_tools_rejects_invalid_names_naming_the_tool(bad_name: str) -> None:
    with pytest.raises(ValueError, match=r"Tool #1 .* invalid name"):
        convert_tools([search, {"name": bad_name, "parameters": {}}])


def test_convert_tools_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match=r"Tool #1 .*same name as tool #0: 'get_weather'"):
        convert_tools([get_weather, WEATHER_DICT])


def test_convert_tools_rejects_the_reserved_no_tool_name() -> None:
    with pytest.raises(ValueError, match="reserved"):
        convert_tools([{"name": NO_TOOL_NAME, "parameters": {}}])


def test_convert_tools_rejects_non_function_tools() -> None:
    with pytest.raises(ValueError, match=r"Tool #0 .*'web_search'.*only function tools"):
        convert_tools([{"type": "web_search"}])


def test_convert_tools_rejects_unconvertible_objects_with_their_position() -> None:
    with pytest.raises(ValueError, match=r"Tool #0 .*cannot be converted"):
        convert_tools([{"type": "object", "properties": {}}])


# --- normalize_tool_choice -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        (False, None),
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        ("ANY", "required"),
    ],
)
def test_normalize_tool_choice_keywords(choice: Any, expected: Any) -> None:
    assert normalize_tool_choice(choice, ["a", "b"]) == expected


def test_normalize_tool_choice_tool_name_becomes_the_dict_form() -> None:
    assert normalize_tool_choice("b", ["a", "b"]) == {"type": "function", "function": {"name": "b"}}


def test_normalize_tool_choice_accepts_the_openai_dict_form() -> None:
    choice = {"type": "function", "function": {"name": "a"}}
    assert normalize_tool_choice(choice, ["a"]) == choice


def test_normalize_tool_choice_accepts_anthropic_style_dicts() -> None:
    assert normalize_tool_choice({"type": "tool", "name": "a"}, ["a"]) == {
        "type": "function",
        "function": {"name": "a"},
    }
    assert normalize_tool_choice({"type": "any"}, ["a"]) == "required"


def test_normalize_tool_choice_true_with_one_tool_forces_that_tool() -> None:
    assert normalize_tool_choice(True, ["only"]) == {"type": "function", "function": {"name": "only"}}


def test_normalize_tool_choice_true_with_several_tools_is_required() -> None:
    assert normalize_tool_choice(True, ["a", "b"]) == "required"


def test_normalize_tool_choice_unknown_name_lists_available_tools() -> None:
    with pytest.raises(ValueError, match=r"'nope'.*available tools: 'a', 'b'"):
        normalize_tool_choice("nope", ["a", "b"])


def test_normalize_tool_choice_unknown_name_in_dict_form_raises() -> None:
    with pytest.raises(ValueError, match="available tools"):
        normalize_tool_choice({"type": "function", "function": {"name": "nope"}}, ["a"])


def test_normalize_tool_choice_required_without_tools_raises() -> None:
    with pytest.raises(ValueError, match="at least one"):
        normalize_tool_choice("any", [])


def test_normalize_tool_choice_rejects_unrecognised_values() -> None:
    with pytest.raises(ValueError, match="Unrecognised tool_choice"):
        normalize_tool_choice(42, ["a"])  # type: ignore[arg-type]


# --- tool_call_grammar ---------------------------------------------------------------------


def tgi_output(tool_name: str, /, **arguments: Any) -> dict[str, Any]:
    return {"function": {"_name": tool_name, **arguments}}


def test_grammar_is_a_tgi_json_grammar_with_top_level_properties(tools: list[dict[str, Any]]) -> None:
    grammar = tool_call_grammar(tools, "required")
    assert grammar["type"] == "json"
    assert "properties" in grammar["value"]
    jsonschema.Draft202012Validator.check_schema(grammar["value"])


def test_grammar_accepts_a_call_to_any_tool_when_required(tools: list[dict[str, Any]]) -> None:
    value = tool_call_grammar(tools, "required")["value"]
    jsonschema.validate(tgi_output("search", query="tgi"), value)
    jsonschema.validate(tgi_output("get_weather", city="Paris"), value)


def test_grammar_rejects_unknown_tools_and_missing_arguments(tools: list[dict[str, Any]]) -> None:
    value = tool_call_grammar(tools, "required")["value"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tgi_output("rm_rf", path="/"), value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tgi_output("get_weather"), value)


def test_grammar_rejects_extra_arguments(tools: list[dict[str, Any]]) -> None:
    value = tool_call_grammar(tools, "required")["value"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tgi_output("search", query="x", extra=1), value)


def test_grammar_forces_the_named_tool(tools: list[dict[str, Any]]) -> None:
    value = tool_call_grammar(tools, "get_weather")["value"]
    jsonschema.validate(tgi_output("get_weather", city="Paris"), value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tgi_output("search", query="x"), value)


def test_grammar_in_auto_mode_allows_the_no_tool_answer(tools: list[dict[str, Any]]) -> None:
    value = tool_call_grammar(tools, "auto")["value"]
    jsonschema.validate(tgi_output(NO_TOOL_NAME, content="Hello!"), value)
    jsonschema.validate(tgi_output("search", query="x"), value)


def test_grammar_in_required_mode_forbids_the_no_tool_answer(tools: list[dict[str, Any]]) -> None:
    value = tool_call_grammar(tools, "required")["value"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tgi_output(NO_TOOL_NAME, content="Hello!"), value)


def test_grammar_inlines_nested_model_arguments(tools: list[dict[str, Any]]) -> None:
    value = tool_call_grammar(tools, "CreateUser")["value"]
    assert "$ref" not in json.dumps(value)
    jsonschema.validate(tgi_output("CreateUser", name="Ada", addresses=[{"city": "London"}]), value)


def test_grammar_output_parses_back_into_the_tool_call(tools: list[dict[str, Any]]) -> None:
    generated = json.dumps(tgi_output("get_weather", city="Paris"))
    jsonschema.validate(json.loads(generated), tool_call_grammar(tools, "get_weather")["value"])
    (call,) = parse_tool_calls(generated).tool_calls
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})


def test_grammar_refuses_tool_choice_none(tools: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="none"):
        tool_call_grammar(tools, "none")


def test_grammar_refuses_recursive_parameters() -> None:
    recursive = {
        "name": "tree",
        "parameters": {
            "type": "object",
            "properties": {"node": {"$ref": "#/$defs/Node"}},
            "$defs": {"Node": {"type": "object", "properties": {"kids": {"items": {"$ref": "#/$defs/Node"}}}}},
        },
    }
    tools = convert_tools([recursive])
    with pytest.raises(ValueError, match=r"Tool 'tree'.*recursive"):
        tool_call_grammar(tools, "required")


def test_grammar_without_tools_raises() -> None:
    with pytest.raises(ValueError, match="at least one"):
        tool_call_grammar([], "auto")


# --- parse_tool_calls: formats -------------------------------------------------------------


def only_call(parsed: ParsedToolCalls) -> tuple[str, dict[str, Any]]:
    assert parsed.invalid_tool_calls == []
    (call,) = parsed.tool_calls
    return call["name"], call["args"]


def test_plain_text_is_content_untouched() -> None:
    text = "  The capital of France is Paris.\n"
    assert parse_tool_calls(text) == ParsedToolCalls(content=text)


def test_hermes_single_call() -> None:
    text = '<tool_call>\n{"name": "search", "arguments": {"query": "tgi"}}\n</tool_call>'
    assert only_call(parse_tool_calls(text)) == ("search", {"query": "tgi"})


def test_hermes_several_blocks_are_several_calls_and_text_outside_is_content() -> None:
    text = (
        "I will check both.\n"
        '<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n'
        '<tool_call>\n{"name": "b", "arguments": {"y": 2}}\n</tool_call>'
    )
    parsed = parse_tool_calls(text)
    assert [(c["name"], c["args"]) for c in parsed.tool_calls] == [("a", {"x": 1}), ("b", {"y": 2})]
    assert parsed.content == "I will check both."


def test_hermes_block_left_open_at_the_end_still_counts() -> None:
    text = '<tool_call>\n{"name": "search", "arguments": {"query": "x"}}\n'
    assert only_call(parse_tool_calls(text)) == ("search", {"query": "x"})


def test_hermes_close_tag_inside_a_json_string_does_not_cut_the_call() -> None:
    text = '<tool_call>{"name": "echo", "arguments": {"s": "</tool_call>"}}</tool_call>'
    assert only_call(parse_tool_calls(text)) == ("echo", {"s": "</tool_call>"})


def test_hermes_arguments_as_a_json_string_are_decoded() -> None:
    text = '<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>'
    assert only_call(parse_tool_calls(text)) == ("f", {"a": 1})


def test_hermes_malformed_json_becomes_an_invalid_call_with_the_raw_text() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "x", "arguments": {bad</tool_call>')
    assert parsed.tool_calls == []
    (invalid,) = parsed.invalid_tool_calls
    assert invalid["name"] == "x"
    assert invalid["args"] == '{"name": "x", "arguments": {bad'
    assert "Malformed tool call" in (invalid["error"] or "")


def test_hermes_block_without_a_name_is_invalid() -> None:
    (invalid,) = parse_tool_calls('<tool_call>{"arguments": {}}</tool_call>').invalid_tool_calls
    assert invalid["error"] == "Tool call has no name"


def test_hermes_block_with_a_non_object_is_invalid() -> None:
    (invalid,) = parse_tool_calls("<tool_call>42</tool_call>").invalid_tool_calls
    assert invalid["args"] == "42"


def test_hermes_malformed_block_does_not_hide_the_valid_ones() -> None:
    text = '<tool_call>{oops}</tool_call><tool_call>{"name": "ok", "arguments": {}}</tool_call>'
    parsed = parse_tool_calls(text)
    assert [c["name"] for c in parsed.tool_calls] == ["ok"]
    assert len(parsed.invalid_tool_calls) == 1


def test_mistral_list_with_space_after_marker() -> None:
    text = '[TOOL_CALLS] [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]'
    parsed = parse_tool_calls(text)
    assert [(c["name"], c["args"]) for c in parsed.tool_calls] == [("a", {"x": 1}), ("b", {})]


def test_mistral_v03_list_without_space() -> None:
    text = '[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}}]</s>'
    parsed = parse_tool_calls(text)
    assert only_call(parsed) == ("a", {"x": 1})
    assert parsed.content == ""


def test_mistral_keeps_ids_carried_in_the_text() -> None:
    text = '[TOOL_CALLS][{"name": "a", "arguments": {}, "id": "Ab3dE5gH9"}]'
    assert parse_tool_calls(text).tool_calls[0]["id"] == "Ab3dE5gH9"


def test_mistral_name_args_form_repeated() -> None:
    text = '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]search[ARGS]{"query": "x"}'
    parsed = parse_tool_calls(text)
    assert [(c["name"], c["args"]) for c in parsed.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("search", {"query": "x"}),
    ]


def test_mistral_name_form_without_args_token() -> None:
    # v11+ output decoded with special tokens skipped loses "[ARGS]".
    assert only_call(parse_tool_calls('[TOOL_CALLS]get_weather{"city": "Paris"}')) == ("get_weather", {"city": "Paris"})


def test_mistral_name_args_form_with_call_id() -> None:
    text = '[TOOL_CALLS]search[CALL_ID]abc123XYZ[ARGS]{"query": "x"}'
    (call,) = parse_tool_calls(text).tool_calls
    assert (call["name"], call["id"]) == ("search", "abc123XYZ")


def test_mistral_text_before_the_marker_is_content() -> None:
    parsed = parse_tool_calls('Let me search. [TOOL_CALLS][{"name": "s", "arguments": {}}]')
    assert parsed.content == "Let me search."


def test_mistral_malformed_arguments_become_invalid() -> None:
    (invalid,) = parse_tool_calls('[TOOL_CALLS]search[ARGS]{"query": ').invalid_tool_calls
    assert invalid["args"] == 'search[ARGS]{"query":'


def test_llama3_json_with_parameters() -> None:
    text = '{"name": "get_weather", "parameters": {"city": "Paris"}}'
    assert only_call(parse_tool_calls(text)) == ("get_weather", {"city": "Paris"})


def test_llama3_python_tag_with_calls_separated_by_semicolons() -> None:
    text = 'Sure.<|python_tag|>{"name": "a", "parameters": {"x": 1}}; {"name": "b", "parameters": {}}<|eom_id|>'
    parsed = parse_tool_calls(text)
    assert [c["name"] for c in parsed.tool_calls] == ["a", "b"]
    assert parsed.content == "Sure."


def test_llama3_python_tag_with_malformed_json_is_invalid() -> None:
    parsed = parse_tool_calls('<|python_tag|>{"name": "a", "parameters": {')
    assert parsed.tool_calls == []
    assert parsed.invalid_tool_calls[0]["name"] == "a"


def test_tgi_grammar_shape_is_a_call() -> None:
    text = '{"function": {"_name": "get_weather", "city": "Paris"}}'
    assert only_call(parse_tool_calls(text)) == ("get_weather", {"city": "Paris"})


def test_tgi_no_tool_answer_becomes_content() -> None:
    parsed = parse_tool_calls('{"function": {"_name": "no_tool", "content": "Hello there."}}')
    assert parsed == ParsedToolCalls(content="Hello there.")


def test_plain_json_list_of_calls() -> None:
    text = '[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"k": "v"}}]'
    assert [c["name"] for c in parse_tool_calls(text).tool_calls] == ["a", "b"]


def test_openai_shaped_call_object() -> None:
    text = '{"type": "function", "function": {"name": "a", "arguments": {"k": 1}}}'
    assert only_call(parse_tool_calls(text)) == ("a", {"k": 1})


def test_fenced_json_call_with_prose_around() -> None:
    text = 'I will call it:\n```json\n{"name": "search", "arguments": {"query": "x"}}\n```\nDone.'
    parsed = parse_tool_calls(text)
    assert only_call(parsed) == ("search", {"query": "x"})
    assert parsed.content == "I will call it:\n\nDone."


def test_json_answer_that_is_not_a_call_stays_content() -> None:
    text = '{"name": "Alice", "age": 30}'
    assert parse_tool_calls(text) == ParsedToolCalls(content=text)


def test_json_with_string_arguments_outside_a_wrapper_stays_content() -> None:
    text = '{"name": "Alice", "arguments": "she argued a lot"}'
    assert parse_tool_calls(text) == ParsedToolCalls(content=text)


def test_fenced_json_that_is_not_a_call_stays_content() -> None:
    text = 'Here:\n```json\n{"answer": 42}\n```'
    assert parse_tool_calls(text) == ParsedToolCalls(content=text)


def test_list_mixing_calls_and_data_stays_content() -> None:
    text = '[{"name": "a", "arguments": {}}, {"answer": 1}]'
    assert parse_tool_calls(text).tool_calls == []


def test_prose_mentioning_a_marker_like_word_stays_content() -> None:
    text = 'The "name" field and the "arguments" field are described below.'
    assert parse_tool_calls(text) == ParsedToolCalls(content=text)


# --- parse_tool_calls: options and ids ------------------------------------------------------


def test_call_to_an_unknown_tool_is_invalid_and_says_so() -> None:
    text = '<tool_call>{"name": "rm", "arguments": {"path": "/"}}</tool_call>'
    parsed = parse_tool_calls(text, tool_names=["search"])
    assert parsed.tool_calls == []
    (invalid,) = parsed.invalid_tool_calls
    assert invalid["name"] == "rm"
    assert json.loads(invalid["args"] or "") == {"path": "/"}
    assert invalid["error"] == "Tool 'rm' is not available; available tools: 'search'."


def test_known_tools_pass_the_name_check() -> None:
    text = '<tool_call>{"name": "search", "arguments": {}}</tool_call>'
    assert only_call(parse_tool_calls(text, tool_names={"search"}))[0] == "search"


def test_generated_ids_are_unique_and_prefixed() -> None:
    block = '<tool_call>{"name": "a", "arguments": {}}</tool_call>'
    ids = [c["id"] for c in parse_tool_calls(block * 50).tool_calls]
    assert len(set(ids)) == 50
    assert all(i is not None and i.startswith("call_") and len(i) == 29 for i in ids)


def test_formats_option_restricts_the_parsers() -> None:
    text = '<tool_call>{"name": "a", "arguments": {}}</tool_call>'
    assert parse_tool_calls(text, formats=["mistral"]).tool_calls == []


def test_unknown_format_name_raises() -> None:
    with pytest.raises(ValueError, match="Unknown tool-call format"):
        parse_tool_calls("x", formats=["nope"])


def test_custom_format_can_be_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    def parse_bang(text: str) -> ParsedToolCalls | None:
        if not text.startswith("!"):
            return None
        call = tool_call_from_object({"name": text[1:], "arguments": {}})
        assert call is not None
        result = ParsedToolCalls(content="")
        result.add(call)
        return result

    monkeypatch.setitem(TOOL_CALL_PARSERS, "bang", parse_bang)
    assert only_call(parse_tool_calls("!ping")) == ("ping", {})


def test_text_over_max_chars_is_not_parsed() -> None:
    text = '<tool_call>{"name": "a", "arguments": {}}</tool_call>'
    parsed = parse_tool_calls(text, max_chars=10)
    assert parsed.content == text
    assert parsed.tool_calls == []
    assert "limit" in (parsed.invalid_tool_calls[0]["error"] or "")


# --- hostile output ------------------------------------------------------------------------


def test_deeply_nested_json_is_invalid_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    text = f'<tool_call>{{"name": "a", "arguments": {{"x": {deep}}}}}</tool_call>'
    parsed = parse_tool_calls(text)
    assert parsed.tool_calls == []
    assert "nested" in (parsed.invalid_tool_calls[0]["error"] or "")


def test_moderately_nested_arguments_over_the_depth_limit_are_invalid() -> None:
    nested = "[" * 70 + "]" * 70
    parsed = parse_tool_calls(f'<tool_call>{{"name": "a", "arguments": {{"x": {nested}}}}}</tool_call>')
    assert "nested more than" in (parsed.invalid_tool_calls[0]["error"] or "")


def test_code_in_arguments_is_returned_as_data_never_run() -> None:
    payload = "__import__('os').system('echo pwned')"
    text = f'<tool_call>{{"name": "calc", "arguments": {{"expr": "{payload}"}}}}</tool_call>'
    assert only_call(parse_tool_calls(text)) == ("calc", {"expr": payload})


def test_python_literal_syntax_is_not_accepted_as_json() -> None:
    parsed = parse_tool_calls("<tool_call>{'name': 'a', 'arguments': {}}</tool_call>")
    assert parsed.tool_calls == []
    assert len(parsed.invalid_tool_calls) == 1


def test_huge_integer_is_invalid_not_a_crash() -> None:
    text = '<tool_call>{"name": "a", "arguments": {"n": ' + "9" * 5000 + "}}</tool_call>"
    assert len(parse_tool_calls(text).invalid_tool_calls) == 1


def test_number_of_calls_is_bounded() -> None:
    block = '<tool_call>{"name": "a", "arguments": {}}</tool_call>'
    parsed = parse_tool_calls(block * (MAX_TOOL_CALLS + 10))
    assert len(parsed.tool_calls) == MAX_TOOL_CALLS
    (dropped,) = parsed.invalid_tool_calls
    assert "10 more tool calls" in (dropped["error"] or "")


def test_tool_names_given_as_a_single_string_mean_that_one_tool() -> None:
    text = '<tool_call>{"name": "sea", "arguments": {}}</tool_call>'
    assert parse_tool_calls(text, tool_names="search").tool_calls == []


def test_many_unclosed_fences_are_handled_quickly() -> None:
    parsed = parse_tool_calls("```json\n{" * 20_000)
    assert parsed.tool_calls == []


_FRAGMENTS = st.sampled_from(
    [
        "<tool_call>",
        "</tool_call>",
        "[TOOL_CALLS]",
        "[ARGS]",
        "[CALL_ID]",
        "<|python_tag|>",
        "<|eom_id|>",
        "```json\n",
        "```",
        '{"name": "a", "arguments": {"x": 1}}',
        '{"name": ',
        '"arguments": ',
        '"parameters": {}',
        '{"function": {"_name": "b"',
        '"no_tool"',
        "{",
        "}",
        "[",
        "]",
        ";",
        ",",
        '"',
        "\\",
        " ",
        "\n",
        "text",
        "null",
        "1e999",
    ]
)
_hostile_texts = st.one_of(st.text(max_size=200), st.lists(_FRAGMENTS, max_size=30).map("".join))


@settings(max_examples=250, deadline=None)
@given(text=_hostile_texts)
def test_any_text_gives_parsed_tool_calls_never_an_exception(text: str) -> None:
    parsed = parse_tool_calls(text, tool_names=["a"])
    assert isinstance(parsed, ParsedToolCalls)
    assert isinstance(parsed.content, str)
    for call in parsed.tool_calls:
        assert call["name"] == "a"
        assert isinstance(call["args"], dict)
    for invalid in parsed.invalid_tool_calls:
        assert invalid["type"] == "invalid_tool_call"
        assert invalid["error"]


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_characters="{}[]<>`"), max_size=200))
def test_text_without_json_or_markers_comes_back_untouched(text: str) -> None:
    assert parse_tool_calls(text) == ParsedToolCalls(content=text)


# --- parse_wire_tool_calls -----------------------------------------------------------------


def test_wire_openai_list_with_string_arguments() -> None:
    raw = [{"id": "call_1", "type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}}]
    calls, invalid = parse_wire_tool_calls(raw)
    assert calls == [{"name": "a", "args": {"x": 1}, "id": "call_1", "type": "tool_call"}]
    assert invalid == []


def test_wire_tgi3_id_and_description_null() -> None:
    raw = [
        {
            "id": "0",
            "type": "function",
            "function": {"description": None, "name": "a", "arguments": '{"x":1}'},
        }
    ]
    assert parse_wire_tool_calls(raw)[0][0]["id"] == "0"


def test_wire_tgi2_single_object_with_int_id_and_object_arguments() -> None:
    raw = {"id": 0, "type": "function", "function": {"name": "a", "arguments": {"x": 1}}}
    (call,), _ = parse_wire_tool_calls(raw)
    assert (call["id"], call["args"]) == ("0", {"x": 1})


def test_wire_tgi20_parameters_with_grammar_wrapper() -> None:
    raw = {
        "id": 0,
        "type": "function",
        "function": {
            "description": None,
            "name": "tools",
            "parameters": {"function": {"_name": "get_weather", "city": "Paris"}},
        },
    }
    (call,), _ = parse_wire_tool_calls(raw)
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})


def test_wire_grammar_wrapped_arguments_string_with_eos_text() -> None:
    raw = {"function": {"name": None, "arguments": '{"function": {"_name": "a", "x": 2}}<|eot_id|>'}}
    (call,), _ = parse_wire_tool_calls(raw)
    assert (call["name"], call["args"]) == ("a", {"x": 2})


@pytest.mark.parametrize("arguments", [None, "", "null", "  "])
def test_wire_missing_or_empty_arguments_mean_no_arguments(arguments: Any) -> None:
    function = {"name": "a"} if arguments is None else {"name": "a", "arguments": arguments}
    (call,), _ = parse_wire_tool_calls([{"function": function}])
    assert call["args"] == {}


def test_wire_missing_id_gets_a_generated_one() -> None:
    (call,), _ = parse_wire_tool_calls([{"function": {"name": "a", "arguments": "{}"}}])
    assert (call["id"] or "").startswith("call_")


def test_wire_empty_string_id_gets_a_generated_one() -> None:
    (call,), _ = parse_wire_tool_calls([{"id": "", "function": {"name": "a", "arguments": "{}"}}])
    assert (call["id"] or "").startswith("call_")


def test_wire_malformed_json_is_invalid_with_raw_arguments() -> None:
    calls, (invalid,) = parse_wire_tool_calls([{"id": "7", "function": {"name": "a", "arguments": "{bad"}}])
    assert calls == []
    assert (invalid["name"], invalid["args"], invalid["id"]) == ("a", "{bad", "7")
    assert "Invalid JSON" in (invalid["error"] or "")


def test_wire_non_object_arguments_are_invalid() -> None:
    _, (invalid,) = parse_wire_tool_calls([{"function": {"name": "a", "arguments": "[1, 2]"}}])
    assert "must be a JSON object" in (invalid["error"] or "")


def test_wire_call_without_name_is_invalid() -> None:
    _, (invalid,) = parse_wire_tool_calls([{"function": {"arguments": "{}"}}])
    assert invalid["error"] == "Tool call has no name"


def test_wire_none_means_no_calls() -> None:
    assert parse_wire_tool_calls(None) == ([], [])


def test_wire_non_object_entries_are_invalid() -> None:
    _, (invalid,) = parse_wire_tool_calls(["oops"])
    assert invalid["error"] == "Tool call is not an object"


def test_wire_flat_name_and_arguments_are_accepted() -> None:
    (call,), _ = parse_wire_tool_calls([{"name": "a", "arguments": {"k": 1}}])
    assert (call["name"], call["args"]) == ("a", {"k": 1})


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(raw=_json_values | st.text(max_size=50))
def test_wire_any_value_gives_calls_or_invalid_calls_never_an_exception(raw: Any) -> None:
    calls, invalid = parse_wire_tool_calls(raw)
    assert all(isinstance(c["args"], dict) and c["name"] for c in calls)
    assert all(i["error"] for i in invalid)
