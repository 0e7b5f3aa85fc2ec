"""Specification of the JSON-schema helpers (`langchain_hf_chat._schema`)."""

from __future__ import annotations

import copy
import json
from enum import Enum
from typing import Any, Optional

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from langchain_hf_chat._schema import DEFAULT_SCHEMA_NAME, inline_refs, schema_from


class Color(str, Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    color: Optional[Color] = None  # noqa: UP045 - Optional is what users write


class Person(BaseModel):
    """A person with addresses."""

    name: str = Field(description="Full name")
    addresses: list[Address]
    main_address: Address | None = None
    favourite: Color


class TreeNode(BaseModel):
    value: int
    children: list[TreeNode] = []


class Movie(TypedDict):
    """A movie."""

    title: str
    year: int


def refs_in(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.append(node["$ref"])
        for value in node.values():
            found.extend(refs_in(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(refs_in(item))
    return found


# --- inline_refs ----------------------------------------------------------------------


def test_inline_refs_resolves_nested_pydantic_models() -> None:
    schema = inline_refs(Person.model_json_schema())
    assert refs_in(schema) == []
    address = schema["properties"]["addresses"]["items"]
    assert address["properties"]["street"] == {"title": "Street", "type": "string"}


def test_inline_refs_drops_defs_once_everything_is_inlined() -> None:
    assert "$defs" not in inline_refs(Person.model_json_schema())


def test_inline_refs_resolves_optional_model_inside_any_of() -> None:
    main = inline_refs(Person.model_json_schema())["properties"]["main_address"]
    assert main["anyOf"][0]["title"] == "Address"
    assert main["anyOf"][1] == {"type": "null"}


def test_inline_refs_resolves_enums() -> None:
    favourite = inline_refs(Person.model_json_schema())["properties"]["favourite"]
    assert favourite["enum"] == ["red", "blue"]


def test_inline_refs_resolves_refs_inside_definitions() -> None:
    # Address -> Color is a ref between two definitions.
    schema = inline_refs(Person.model_json_schema())
    color = schema["properties"]["addresses"]["items"]["properties"]["color"]
    assert color["anyOf"][0]["enum"] == ["red", "blue"]


def test_inline_refs_supports_legacy_definitions_key() -> None:
    schema = {
        "properties": {"a": {"$ref": "#/definitions/A"}},
        "definitions": {"A": {"type": "integer"}},
    }
    assert inline_refs(schema) == {"properties": {"a": {"type": "integer"}}}


def test_inline_refs_resolves_arbitrary_local_json_pointers() -> None:
    schema = {"properties": {"a": {"type": "string", "maxLength": 3}, "b": {"$ref": "#/properties/a"}}}
    assert inline_refs(schema)["properties"]["b"] == {"type": "string", "maxLength": 3}


def test_inline_refs_decodes_escaped_pointer_tokens() -> None:
    schema = {
        "properties": {"x": {"$ref": "#/$defs/a~1b%20c"}},
        "$defs": {"a/b c": {"type": "null"}},
    }
    assert inline_refs(schema)["properties"]["x"] == {"type": "null"}


def test_inline_refs_keywords_beside_ref_override_the_target() -> None:
    schema = {
        "properties": {"a": {"$ref": "#/$defs/A", "description": "local"}},
        "$defs": {"A": {"type": "integer", "description": "shared"}},
    }
    assert inline_refs(schema)["properties"]["a"] == {"type": "integer", "description": "local"}


def test_inline_refs_resolves_a_top_level_ref() -> None:
    schema = {"$ref": "#/$defs/A", "$defs": {"A": {"type": "object", "properties": {}}}}
    assert inline_refs(schema) == {"type": "object", "properties": {}}


def test_inline_refs_keeps_recursive_refs_with_their_definitions() -> None:
    schema = inline_refs(TreeNode.model_json_schema())
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}
    assert set(schema["$defs"]) == {"TreeNode"}
    assert schema["$defs"]["TreeNode"]["properties"]["value"]["type"] == "integer"


def test_inline_refs_keeps_only_the_definitions_recursion_needs() -> None:
    schema = {
        "properties": {"tree": {"$ref": "#/$defs/Tree"}, "leaf": {"$ref": "#/$defs/Leaf"}},
        "$defs": {
            "Tree": {"properties": {"kids": {"items": {"$ref": "#/$defs/Tree"}}}},
            "Leaf": {"type": "string"},
        },
    }
    result = inline_refs(schema)
    assert set(result["$defs"]) == {"Tree"}
    assert result["properties"]["leaf"] == {"type": "string"}


def test_inline_refs_raises_on_recursion_when_asked() -> None:
    with pytest.raises(ValueError, match=r"recursive.*#/\$defs/TreeNode"):
        inline_refs(TreeNode.model_json_schema(), on_recursion="raise")


def test_inline_refs_raises_for_a_dangling_ref() -> None:
    with pytest.raises(ValueError, match=r"Cannot resolve \$ref '#/\$defs/Missing'"):
        inline_refs({"properties": {"a": {"$ref": "#/$defs/Missing"}}})


def test_inline_refs_leaves_remote_refs_alone() -> None:
    schema = {"properties": {"a": {"$ref": "https://example.com/schema.json"}}}
    assert inline_refs(schema) == schema


def test_inline_refs_does_not_treat_data_as_references() -> None:
    schema = {"properties": {"a": {"type": "object", "default": {"$ref": "#/nowhere"}}}}
    assert inline_refs(schema) == schema


def test_inline_refs_does_not_modify_its_input() -> None:
    original = Person.model_json_schema()
    snapshot = copy.deepcopy(original)
    inline_refs(original)
    assert original == snapshot


def test_inline_refs_bounds_exponential_expansion() -> None:
    defs = {
        f"D{i}": {"properties": {"a": {"$ref": f"#/$defs/D{i + 1}"}, "b": {"$ref": f"#/$defs/D{i + 1}"}}}
        for i in range(30)
    }
    defs["D30"] = {"type": "string"}
    with pytest.raises(ValueError, match="too large"):
        inline_refs({"$ref": "#/$defs/D0", "$defs": defs}, max_nodes=5_000)


def test_inline_refs_result_is_json_serialisable() -> None:
    json.dumps(inline_refs(TreeNode.model_json_schema()))


# --- schema_from ----------------------------------------------------------------------


def test_schema_from_pydantic_model_uses_class_name_and_docstring() -> None:
    schema = schema_from(Person)
    assert schema["title"] == "Person"
    assert schema["description"] == "A person with addresses."


def test_schema_from_pydantic_model_is_self_contained() -> None:
    schema = schema_from(Person)
    assert refs_in(schema) == []
    assert "$defs" not in schema


def test_schema_from_list_of_models_field() -> None:
    items = schema_from(Person)["properties"]["addresses"]["items"]
    assert items["required"] == ["street"]


def test_schema_from_typed_dict() -> None:
    schema = schema_from(Movie)
    assert schema["title"] == "Movie"
    assert schema["description"] == "A movie."
    assert schema["properties"]["year"] == {"type": "integer"}


def test_schema_from_json_schema_keeps_its_title() -> None:
    schema = schema_from({"title": "Answer", "type": "object", "properties": {}})
    assert schema["title"] == "Answer"


def test_schema_from_untitled_json_schema_gets_the_default_name() -> None:
    assert schema_from({"type": "object", "properties": {}})["title"] == DEFAULT_SCHEMA_NAME


def test_schema_from_explicit_name_wins() -> None:
    assert schema_from(Person, name="person_info")["title"] == "person_info"


def test_schema_from_openai_tool_dict() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    schema = schema_from(tool)
    assert schema["title"] == "get_weather"
    assert schema["description"] == "Weather for a city."
    assert schema["properties"] == {"city": {"type": "string"}}


def test_schema_from_response_format_json_schema_body() -> None:
    body = {
        "name": "answer",
        "schema": {"type": "object", "properties": {"x": {"type": "integer"}}},
    }
    schema = schema_from(body)
    assert schema["title"] == "answer"
    assert schema["properties"] == {"x": {"type": "integer"}}


def test_schema_from_inlines_refs_of_a_dict_schema() -> None:
    schema = schema_from(Person.model_json_schema())
    assert refs_in(schema) == []


def test_schema_from_rejects_unsupported_objects() -> None:
    with pytest.raises(ValueError, match="Unsupported schema"):
        schema_from(int)
