"""Structured output: self-contained schemas, the ``response_format`` shape per server, and the fallback chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceTextGenInference, errors
from langchain_hf_chat._response_format import fallback_plan, schema_of, to_openai, to_tgi
from langchain_hf_chat.testing import Fault, ScriptedBackend, TGIServer


class Address(BaseModel):
    """A postal address."""

    city: str
    country: str


class Person(BaseModel):
    """A person and where they live."""

    name: str
    home: Address


PERSON = {"name": "Ada", "home": {"city": "London", "country": "UK"}}
SIMPLE_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def has_refs(value: Any) -> bool:
    text = json.dumps(value)
    return "$ref" in text or "$defs" in text


def chat_for(server: TGIServer, **kwargs: Any) -> ChatHuggingFace:
    return ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url=server.url), **kwargs)


def scripted(server: TGIServer) -> ScriptedBackend:
    assert isinstance(server.backend, ScriptedBackend)
    return server.backend


def chat_posts(server: TGIServer) -> list[Any]:
    return [r for r in server.requests if r.method == "POST" and r.path.endswith("/chat/completions")]


@pytest.fixture(scope="module")
def _no_grammar_module() -> Iterator[TGIServer]:
    with TGIServer(backend=ScriptedBackend(model_id="org/model"), disable_grammar_support=True) as server:
        yield server


@pytest.fixture
def no_grammar(_no_grammar_module: TGIServer) -> TGIServer:
    """A TGI server started with --disable-grammar-support."""
    _no_grammar_module.clear()
    return _no_grammar_module


@pytest.fixture(scope="module")
def _router_module() -> Iterator[TGIServer]:
    with TGIServer(backend=ScriptedBackend(model_id="org/model"), router=True) as server:
        yield server


@pytest.fixture
def router(_router_module: TGIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[TGIServer]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGINGFACEHUB_API_TOKEN", raising=False)
    _router_module.clear()
    _router_module.state.config.provider_mappings.clear()
    yield _router_module
    _router_module.state.config.provider_mappings.clear()


def router_chat(router: TGIServer, **kwargs: Any) -> ChatHuggingFace:
    return ChatHuggingFace(llm=HuggingFaceEndpoint(repo_id="org/model", router_url=router.url), **kwargs)


# -- shapes (pure) ------------------------------------------------------------------------------------------


def test_openai_shape_converts_to_tgi_with_refs_inlined() -> None:
    schema = Person.model_json_schema()
    fmt = to_tgi({"type": "json_schema", "json_schema": {"name": "Person", "schema": schema}})
    assert fmt["type"] == "json_object"
    assert not has_refs(fmt["value"])
    assert fmt["value"]["properties"]["home"]["properties"]["city"] == {"title": "City", "type": "string"}


def test_tgi_shape_converts_to_openai() -> None:
    fmt = to_openai({"type": "json_object", "value": {"title": "P", "type": "object", "properties": {}}})
    assert fmt == {
        "type": "json_schema",
        "json_schema": {"name": "P", "schema": {"title": "P", "type": "object", "properties": {}}},
    }


def test_json_mode_in_both_shapes() -> None:
    assert to_openai({"type": "json_object", "value": {"type": "object", "properties": {}}}) == {"type": "json_object"}
    assert to_tgi({"type": "json_object"}) == {"type": "json_object", "value": {"type": "object", "properties": {}}}


def test_regex_is_left_alone() -> None:
    assert to_openai({"type": "regex", "value": "a+"}) == to_tgi({"type": "regex", "value": "a+"})


def test_schema_of_reads_every_shape() -> None:
    schema = {"type": "object", "properties": {"a": {}}}
    shapes = [
        {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        {"type": "json_schema", "value": {"name": "x", "schema": schema}},
        {"type": "json_object", "value": schema},
        {"type": "json", "value": json.dumps(schema)},
    ]
    assert [schema_of(s) for s in shapes] == [schema] * 4


def test_fallback_plan_goes_from_schema_to_json_mode_to_prompt() -> None:
    request = {"response_format": {"type": "json_object", "value": {"type": "object", "properties": {"a": {}}}}}
    plan = fallback_plan([], request)
    assert [method for method, _, _ in plan] == ["json_schema", "json_mode", "prompt"]
    assert "response_format" not in plan[2][2]
    assert '"a"' in str(plan[2][1][0].content)


def test_fallback_plan_without_response_format_is_one_attempt() -> None:
    assert [m for m, _, _ in fallback_plan([], {"tools": []})] == [None]


# -- the shape each server gets ------------------------------------------------------------------------------


def test_tgi_server_gets_the_tgi_shape_with_a_self_contained_schema(server: TGIServer) -> None:
    scripted(server).queue_json(PERSON)
    person = chat_for(server).with_structured_output(Person).invoke("Who?")
    assert person == Person.model_validate(PERSON)
    fmt = chat_posts(server)[-1].json["response_format"]
    assert fmt["type"] == "json_object"
    assert fmt["value"]["properties"]["home"]["required"] == ["city", "country"]
    assert not has_refs(fmt)


def test_router_gets_the_openai_shape(router: TGIServer) -> None:
    scripted(router).queue_json(PERSON)
    person = router_chat(router).with_structured_output(Person).invoke("Who?")
    assert person == Person.model_validate(PERSON)
    fmt = chat_posts(router)[-1].json["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Person"
    assert not has_refs(fmt)


def test_server_without_info_gets_the_openai_shape(server: TGIServer) -> None:
    server.inject(Fault.status(404, ""), route="/info")
    chat = chat_for(server, model_id="org/model", structured_output_fallback=False)
    with pytest.raises(errors.HuggingFaceError):  # TGI itself rejects the OpenAI shape: proof of what was sent
        chat.with_structured_output(Person).invoke("Who?")
    assert chat_posts(server)[-1].json["response_format"]["type"] == "json_schema"


def test_style_override_sends_the_tgi_shape_to_the_router(router: TGIServer) -> None:
    scripted(router).queue_json(PERSON)
    router_chat(router, response_format_style="tgi").with_structured_output(Person).invoke("Who?")
    assert chat_posts(router)[-1].json["response_format"]["type"] == "json_object"


def test_info_is_read_once_for_the_shape(server: TGIServer) -> None:
    chat = chat_for(server, model_id="org/model")
    for _ in range(2):
        scripted(server).queue_json(PERSON)
        chat.with_structured_output(Person).invoke("Who?")
    assert sum(1 for r in server.requests if r.path == "/info") == 1


def test_bound_tool_schemas_are_self_contained(server: TGIServer) -> None:
    scripted(server).queue_tool_call("Person", PERSON)
    message = chat_for(server).bind_tools([Person], tool_choice="Person").invoke("Who?")
    assert message.tool_calls[0]["args"] == PERSON  # type: ignore[attr-defined]
    assert not has_refs(chat_posts(server)[-1].json["tools"])


def test_function_calling_method_with_nested_model(server: TGIServer) -> None:
    scripted(server).queue_tool_call("Person", PERSON)
    person = chat_for(server).with_structured_output(Person, method="function_calling").invoke("Who?")
    assert person == Person.model_validate(PERSON)


def test_successful_schema_records_its_method(server: TGIServer) -> None:
    scripted(server).queue_json(PERSON)
    out = chat_for(server).with_structured_output(Person, include_raw=True).invoke("Who?")
    assert out["raw"].response_metadata["structured_output_method"] == "json_schema"


# -- the fallback chain ----------------------------------------------------------------------------------------


def test_no_grammar_support_falls_back_to_prompt_and_parse(no_grammar: TGIServer) -> None:
    scripted(no_grammar).queue_json(PERSON)
    out = chat_for(no_grammar).with_structured_output(Person, include_raw=True).invoke("Who?")
    assert out["parsed"] == Person.model_validate(PERSON)
    assert out["raw"].response_metadata["structured_output_method"] == "prompt"
    sent = chat_posts(no_grammar)
    assert [("response_format" in r.json) for r in sent] == [True, True, False]
    assert "JSON schema" in sent[-1].json["messages"][0]["content"]


def test_fallback_is_remembered_for_later_calls(no_grammar: TGIServer) -> None:
    chat = chat_for(no_grammar).with_structured_output(Person)
    scripted(no_grammar).queue_json(PERSON)
    chat.invoke("Who?")
    no_grammar.clear()
    scripted(no_grammar).queue_json(PERSON)
    assert chat.invoke("Who?") == Person.model_validate(PERSON)
    assert len(chat_posts(no_grammar)) == 1


async def test_async_fallback(no_grammar: TGIServer) -> None:
    scripted(no_grammar).queue_json(PERSON)
    out = await chat_for(no_grammar).with_structured_output(Person, include_raw=True).ainvoke("Who?")
    assert out["raw"].response_metadata["structured_output_method"] == "prompt"


def test_json_mode_falls_back_to_prompt(no_grammar: TGIServer) -> None:
    scripted(no_grammar).queue_json({"a": 1})
    out = chat_for(no_grammar).with_structured_output(Person, method="json_mode", include_raw=True).invoke("JSON")
    assert out["raw"].response_metadata["structured_output_method"] == "prompt"
    assert len(chat_posts(no_grammar)) == 2


def test_text_mode_falls_back_too(no_grammar: TGIServer) -> None:
    scripted(no_grammar).queue_json(PERSON)
    chat = chat_for(no_grammar, chat_template=SIMPLE_TEMPLATE, model_id="org/model")
    out = chat.with_structured_output(Person, include_raw=True).invoke("Who?")
    assert out["parsed"] == Person.model_validate(PERSON)
    assert out["raw"].response_metadata["structured_output_method"] == "prompt"
    assert "grammar" not in no_grammar.requests[-1].json["parameters"]


def test_fallback_can_be_switched_off(no_grammar: TGIServer) -> None:
    with pytest.raises(errors.ValidationError, match="grammar is not supported"):
        chat_for(no_grammar, structured_output_fallback=False).with_structured_output(Person).invoke("Who?")


def test_other_validation_errors_do_not_fall_back(server: TGIServer) -> None:
    server.inject(Fault.validation("`top_k` must be strictly positive"), route="/v1/chat/completions")
    with pytest.raises(errors.ValidationError, match="top_k"):
        chat_for(server, model_id="org/model").with_structured_output(Person).invoke("Who?")
    assert len(chat_posts(server)) == 1


def test_provider_without_structured_output_falls_back_to_prompt(router: TGIServer) -> None:
    live = {"status": "live", "providerId": "p", "task": "conversational"}
    router.set_provider_mapping("org/model", {"nscale": {**live, "features": {"structuredOutput": False}}})
    scripted(router).queue_json(PERSON)
    out = router_chat(router).with_structured_output(Person, include_raw=True).invoke("Who?")
    assert out["parsed"] == Person.model_validate(PERSON)
    assert out["raw"].response_metadata["structured_output_method"] == "prompt"
    assert len(chat_posts(router)) == 1  # the capability check refused the constrained attempts early
