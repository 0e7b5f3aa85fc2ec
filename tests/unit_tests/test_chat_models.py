"""ChatHuggingFace against the scripted TGI-compatible server, in both modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceHub, HuggingFaceTextGenInference
from langchain_hf_chat.testing import TGIServer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "templates"
ZEPHYR = (FIXTURES / "zephyr-7b-beta.jinja").read_text()

MESSAGES = [
    SystemMessage(content="You're a helpful assistant"),
    HumanMessage(content="What happens when an unstoppable force meets an immovable object?"),
]
ZEPHYR_PROMPT = (
    "<|system|>\nYou're a helpful assistant</s>\n"
    "<|user|>\nWhat happens when an unstoppable force meets an immovable object?</s>\n"
    "<|assistant|>\n"
)


def last_to(server: TGIServer, path: str) -> Any:
    """The last request the server received on ``path`` (model-id lookups may come after it)."""
    return [r for r in server.requests if r.path == path][-1]


def chat_for(server: TGIServer, **kwargs: Any) -> ChatHuggingFace:
    return ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url=server.url), **kwargs)


def text_chat(server: TGIServer, **kwargs: Any) -> ChatHuggingFace:
    return chat_for(server, chat_template=ZEPHYR, bos_token="<s>", eos_token="</s>", **kwargs)


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str


class Joke(BaseModel):
    """A joke."""

    setup: str
    punchline: str


# -- model id and template -----------------------------------------------------------------------------------


def test_model_id_comes_from_tgi_info_never_the_url(server: TGIServer) -> None:
    chat = chat_for(server)
    assert chat.model_id == "HuggingFaceH4/zephyr-7b-beta"
    assert chat.model_id == "HuggingFaceH4/zephyr-7b-beta"
    assert [r.path for r in server.requests].count("/info") == 1  # resolved once


def test_model_id_from_repo_id_needs_no_request() -> None:
    chat = ChatHuggingFace(llm=HuggingFaceHub(repo_id="HuggingFaceH4/zephyr-7b-beta"))
    assert chat.model_id == "HuggingFaceH4/zephyr-7b-beta"


def test_explicit_model_id_wins(server: TGIServer) -> None:
    assert chat_for(server, model_id="me/mine").model_id == "me/mine"
    assert server.requests == []


def test_construction_does_no_io() -> None:
    ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1"))


def test_to_chat_prompt_renders_zephyr_exactly(server: TGIServer) -> None:
    assert text_chat(server)._to_chat_prompt(MESSAGES) == ZEPHYR_PROMPT


def test_template_error_names_the_model_and_the_message(server: TGIServer) -> None:
    chat = chat_for(server, chat_template="{{ raise_exception('System role not supported') }}", model_id="a/b")
    from langchain_hf_chat.errors import TemplateError

    with pytest.raises(TemplateError, match=r"a/b.*System role not supported"):
        chat._to_chat_prompt(MESSAGES)


# -- chat-completions mode -----------------------------------------------------------------------------------


def test_auto_mode_uses_chat_completions_for_tgi(server: TGIServer) -> None:
    server.backend.queue_reply("It is a paradox.")
    result = chat_for(server).invoke(MESSAGES)
    assert result.content == "It is a paradox."
    assert server.last_request.path == "/v1/chat/completions"
    body = server.last_request.json
    assert body["messages"] == [
        {"role": "system", "content": "You're a helpful assistant"},
        {"role": "user", "content": "What happens when an unstoppable force meets an immovable object?"},
    ]


def test_response_metadata_and_usage(server: TGIServer) -> None:
    server.backend.queue_reply("Hello there friend")
    result = chat_for(server).invoke("Hi")
    assert result.usage_metadata is not None
    assert result.usage_metadata["output_tokens"] >= 3
    assert result.usage_metadata["total_tokens"] == (
        result.usage_metadata["input_tokens"] + result.usage_metadata["output_tokens"]
    )
    assert result.response_metadata["finish_reason"] == "stop"
    assert result.response_metadata["model_name"] == "HuggingFaceH4/zephyr-7b-beta"
    assert result.id


def test_chat_parameters_override_llm_and_reach_the_server(server: TGIServer) -> None:
    llm = HuggingFaceTextGenInference(inference_server_url=server.url, temperature=0.8, max_new_tokens=512, seed=3)
    chat = ChatHuggingFace(
        llm=llm, temperature=0.2, max_tokens=20, top_p=0.9, frequency_penalty=0.1, presence_penalty=0.2
    )
    chat.invoke("Hi")
    body = server.last_request.json
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 20
    assert body["top_p"] == 0.9
    assert body["seed"] == 3
    assert body["frequency_penalty"] == 0.1
    assert body["presence_penalty"] == 0.2


def test_greedy_on_chat_route_is_temperature_zero(server: TGIServer) -> None:
    chat_for(server, temperature=0).invoke("Hi")
    assert server.last_request.json["temperature"] == 0


def test_bind_stop_in_chat_mode_cuts_output(server: TGIServer) -> None:
    server.backend.queue_reply("Thought: x\nObservation: y")
    result = chat_for(server).bind(stop=["\nObservation"]).invoke("Q")
    assert result.content == "Thought: x"
    assert server.last_request.json["stop"] == ["\nObservation"]


def test_stream_in_chat_mode_ends_with_finish_and_usage(server: TGIServer) -> None:
    server.backend.queue_reply("one two three")
    chunks = list(chat_for(server).stream("Hi"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert full.content == "one two three"
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.usage_metadata is not None and full.usage_metadata["output_tokens"] >= 3
    assert server.last_request.json["stream_options"] == {"include_usage": True}


def test_stream_stops_at_bound_stop(server: TGIServer) -> None:
    server.backend.queue_reply("a b\nObservation: c d")
    text = "".join(str(c.content) for c in chat_for(server).bind(stop=["\nObservation"]).stream("Q"))
    assert text == "a b"


async def test_async_invoke_and_stream_chat_mode(server: TGIServer) -> None:
    chat = chat_for(server)
    server.backend.queue_reply("async hello")
    assert (await chat.ainvoke("Hi")).content == "async hello"
    server.backend.queue_reply("x y")
    assert "".join([str(c.content) async for c in chat.astream("Hi")]) == "x y"


def test_tool_calls_in_chat_mode(server: TGIServer) -> None:
    server.backend.queue_tool_call("GetWeather", {"city": "Paris"})
    result = chat_for(server).bind_tools([GetWeather]).invoke("Weather in Paris?")
    assert result.tool_calls[0]["name"] == "GetWeather"
    assert result.tool_calls[0]["args"] == {"city": "Paris"}
    assert server.last_request.json["tools"][0]["function"]["name"] == "GetWeather"


def test_streamed_tool_calls_aggregate_like_invoke(server: TGIServer) -> None:
    server.backend.queue_tool_call("GetWeather", {"city": "Paris"})
    chunks = list(chat_for(server).bind_tools([GetWeather], tool_choice="GetWeather").stream("Weather?"))
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert isinstance(full, AIMessageChunk)
    assert full.tool_calls[0]["name"] == "GetWeather"
    assert full.tool_calls[0]["args"] == {"city": "Paris"}
    assert full.response_metadata["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("any", "required"),
        ("required", "required"),
        ("GetWeather", {"type": "function", "function": {"name": "GetWeather"}}),
    ],
)
def test_tool_choice_on_the_wire(server: TGIServer, choice: str, wire: Any) -> None:
    chat_for(server).bind_tools([GetWeather], tool_choice=choice).invoke("Q")
    assert server.last_request.json["tool_choice"] == wire


def test_tool_message_round_trip(server: TGIServer) -> None:
    history = [
        HumanMessage("Weather in Paris?"),
        AIMessage(content="", tool_calls=[{"name": "GetWeather", "args": {"city": "Paris"}, "id": "call_1"}]),
        ToolMessage(content="Sunny, 21C", tool_call_id="call_1"),
    ]
    server.backend.queue_reply("It is sunny.")
    assert chat_for(server).bind_tools([GetWeather]).invoke(history).content == "It is sunny."
    sent = server.last_request.json["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "GetWeather", "arguments": '{"city": "Paris"}'}
    assert sent[2] == {"role": "tool", "content": "Sunny, 21C", "tool_call_id": "call_1"}


def test_structured_output_json_schema_uses_tgi_response_format(server: TGIServer) -> None:
    server.backend.queue_json({"setup": "Why?", "punchline": "Because."})
    joke = chat_for(server).with_structured_output(Joke).invoke("A joke")
    assert joke == Joke(setup="Why?", punchline="Because.")
    fmt = server.last_request.json["response_format"]
    assert fmt["type"] == "json_object" and fmt["value"]["properties"]["setup"]["type"] == "string"


def test_structured_output_function_calling(server: TGIServer) -> None:
    server.backend.queue_tool_call("Joke", {"setup": "S", "punchline": "P"})
    joke = chat_for(server).with_structured_output(Joke, method="function_calling").invoke("A joke")
    assert joke == Joke(setup="S", punchline="P")


def test_structured_output_include_raw(server: TGIServer) -> None:
    server.backend.queue_json({"setup": "a", "punchline": "b"})
    out = chat_for(server).with_structured_output(Joke, include_raw=True).invoke("A joke")
    assert isinstance(out["raw"], AIMessage) and out["parsed"] == Joke(setup="a", punchline="b")
    assert out["parsing_error"] is None


def test_structured_output_dict_schema_returns_dict(server: TGIServer) -> None:
    server.backend.queue_json({"answer": 4})
    schema = {
        "title": "Answer",
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    assert chat_for(server).with_structured_output(schema).invoke("2+2") == {"answer": 4}


def test_router_uses_openai_response_format_shape() -> None:
    chat = ChatHuggingFace(llm=HuggingFaceEndpoint(repo_id="a/b"))
    fmt = chat._response_format({"type": "object", "properties": {}}, "X")
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "X"


# -- text mode ------------------------------------------------------------------------------------------------


def test_text_mode_renders_the_template_and_calls_generate(server: TGIServer) -> None:
    server.backend.queue_reply("A paradox.")
    result = text_chat(server).invoke(MESSAGES)
    assert result.content == "A paradox."
    assert last_to(server, "/generate").json["inputs"] == ZEPHYR_PROMPT


def test_text_mode_bind_stop_invoke_and_stream(server: TGIServer) -> None:
    chat = text_chat(server).bind(stop=["\nObservation"])
    server.backend.queue_reply("Thought: a\nObservation: b")
    assert chat.invoke("Q").content == "Thought: a"
    server.backend.queue_reply("Thought: a\nObservation: b")
    assert "".join(str(c.content) for c in chat.stream("Q")) == "Thought: a"


def test_text_mode_usage_and_finish_reason(server: TGIServer) -> None:
    server.backend.queue_reply("one two")
    result = text_chat(server).invoke("Hi")
    assert result.response_metadata["finish_reason"] == "stop"
    assert result.response_metadata["raw_finish_reason"] == "eos_token"
    assert result.usage_metadata is not None and result.usage_metadata["output_tokens"] >= 2


def test_text_mode_parses_hermes_tool_calls(server: TGIServer) -> None:
    server.backend.queue_reply('<tool_call>\n{"name": "GetWeather", "arguments": {"city": "Oslo"}}\n</tool_call>')
    result = text_chat(server).bind_tools([GetWeather]).invoke("Weather in Oslo?")
    assert result.tool_calls[0]["name"] == "GetWeather" and result.tool_calls[0]["args"] == {"city": "Oslo"}


def test_text_mode_forced_tool_uses_grammar(server: TGIServer) -> None:
    server.backend.queue_reply('{"function": {"_name": "GetWeather", "city": "Rome"}}')
    result = text_chat(server).bind_tools([GetWeather], tool_choice="GetWeather").invoke("Weather?")
    assert result.tool_calls[0]["args"] == {"city": "Rome"}
    assert last_to(server, "/generate").json["parameters"]["grammar"]["type"] == "json"


def test_text_mode_malformed_tool_call_is_invalid_not_an_exception(server: TGIServer) -> None:
    server.backend.queue_reply('<tool_call>{"name": "GetWeather", "arguments": {bad</tool_call>')
    result = text_chat(server).bind_tools([GetWeather]).invoke("Weather?")
    assert result.tool_calls == [] and len(result.invalid_tool_calls) == 1


def test_text_mode_structured_output_sends_grammar(server: TGIServer) -> None:
    server.backend.queue_reply('{"setup": "s", "punchline": "p"}')
    assert text_chat(server).with_structured_output(Joke).invoke("joke") == Joke(setup="s", punchline="p")
    assert last_to(server, "/generate").json["parameters"]["grammar"]["type"] == "json"


async def test_text_mode_async(server: TGIServer) -> None:
    server.backend.queue_reply("async text")
    assert (await text_chat(server).ainvoke("Hi")).content == "async text"
    server.backend.queue_reply("p q")
    assert "".join([str(c.content) async for c in text_chat(server).astream("Hi")]) == "p q"


def test_no_rule_that_the_last_message_must_be_human(server: TGIServer) -> None:
    server.backend.queue_reply("continued")
    text_chat(server).invoke([HumanMessage("Hi"), AIMessage("Hello")])


# -- tracing and identity -------------------------------------------------------------------------------------


def test_ls_params(server: TGIServer) -> None:
    chat = ChatHuggingFace(llm=HuggingFaceHub(repo_id="a/b"), temperature=0.3, max_tokens=9)
    params = chat._get_ls_params(stop=["x"])
    assert params["ls_provider"] == "huggingface"
    assert params["ls_model_name"] == "a/b"
    assert params["ls_temperature"] == 0.3 and params["ls_max_tokens"] == 9 and params["ls_stop"] == ["x"]


def test_identifying_params_differ_per_model_and_settings() -> None:
    a = ChatHuggingFace(llm=HuggingFaceHub(repo_id="a/b"), temperature=0.1)._identifying_params
    b = ChatHuggingFace(llm=HuggingFaceHub(repo_id="a/c"), temperature=0.1)._identifying_params
    c = ChatHuggingFace(llm=HuggingFaceHub(repo_id="a/b"), temperature=0.2)._identifying_params
    assert a != b and a != c


def test_images_reach_a_vision_server(server: TGIServer) -> None:
    server.backend.model_pipeline_tag = "image-text-to-text"
    try:
        image = {"type": "image", "base64": "aGVsbG8=", "mime_type": "image/png"}
        chat_for(server).invoke([HumanMessage(content=[{"type": "text", "text": "What is this?"}, image])])
        sent = last_to(server, "/v1/chat/completions").json["messages"][0]["content"]
        assert sent[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}
    finally:
        server.backend.model_pipeline_tag = "text-generation"


def test_images_for_a_text_only_model_fail_before_any_generation(server: TGIServer) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}
    with pytest.raises(ValueError, match="text-only"):
        chat_for(server).invoke([HumanMessage(content=[{"type": "text", "text": "What is this?"}, image])])
    assert "/v1/chat/completions" not in [r.path for r in server.requests]


def test_info_is_read_once_per_instance(server: TGIServer) -> None:
    chat = chat_for(server)
    assert chat.model_id
    chat.with_structured_output(Joke).invoke("joke")
    assert [r.path for r in server.requests].count("/info") == 1
