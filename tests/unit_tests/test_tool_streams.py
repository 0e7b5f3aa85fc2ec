"""Streaming tool calls: tool-call deltas stream as ``tool_call_chunks`` and aggregate into what invoke returns.

Each TGI release streams tool calls differently (protocol §7.3): 3.2+ sends a list with the name first and no
``finish_reason``; 2.1-3.1 a single object whose ``arguments`` fragments spell TGI's raw grammar output; 2.0 the
same with ``parameters``. Every version must give the same ``tool_calls``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from pydantic import BaseModel

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
from langchain_hf_chat.llms._backend import TextResult, TokenEvent
from langchain_hf_chat.testing import ScriptedBackend, TGIServer

VERSIONS = ["3.3", "3.2", "3.1", "3.0", "2.4", "2.1", "2.0"]
ARGS = {"city": "Paris", "unit": "celsius"}


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str
    unit: str


@pytest.fixture(scope="module", params=VERSIONS)
def versioned(request: pytest.FixtureRequest) -> Iterator[TGIServer]:
    with TGIServer(backend=ScriptedBackend(model_id="org/tools"), version=request.param) as server:
        yield server


@pytest.fixture
def tgi_version(versioned: TGIServer) -> TGIServer:
    versioned.clear()
    return versioned


def bound(server: TGIServer, **kwargs: Any) -> Any:
    chat = ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url=server.url), model_id="org/tools")
    return chat.bind_tools([GetWeather], **kwargs)


def queue_call(server: TGIServer) -> None:
    backend = server.backend
    assert isinstance(backend, ScriptedBackend)
    backend.queue_tool_call("GetWeather", ARGS)


def aggregate(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


def test_stream_yields_tool_call_chunks(tgi_version: TGIServer) -> None:
    queue_call(tgi_version)
    chunks = list(bound(tgi_version, tool_choice="GetWeather").stream("Weather in Paris?"))
    assert any(c.tool_call_chunks for c in chunks)


def test_streamed_tool_calls_aggregate_to_what_invoke_returns(tgi_version: TGIServer) -> None:
    queue_call(tgi_version)
    invoked = bound(tgi_version, tool_choice="GetWeather").invoke("Weather in Paris?")
    queue_call(tgi_version)
    streamed = aggregate(list(bound(tgi_version, tool_choice="GetWeather").stream("Weather in Paris?")))
    assert isinstance(invoked, AIMessage)
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [("GetWeather", ARGS)]
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [(c["name"], c["args"]) for c in invoked.tool_calls]
    assert streamed.invalid_tool_calls == []


def test_streamed_tool_call_finishes_with_tool_calls(tgi_version: TGIServer) -> None:
    queue_call(tgi_version)
    streamed = aggregate(list(bound(tgi_version, tool_choice="GetWeather").stream("Weather in Paris?")))
    assert streamed.response_metadata["finish_reason"] == "tool_calls"


def test_streamed_tool_call_has_a_string_id(tgi_version: TGIServer) -> None:
    queue_call(tgi_version)
    streamed = aggregate(list(bound(tgi_version, tool_choice="GetWeather").stream("Weather in Paris?")))
    call_id = streamed.tool_calls[0]["id"]
    assert call_id is None or isinstance(call_id, str)


async def test_async_stream_aggregates_the_same_tool_calls(tgi_version: TGIServer) -> None:
    queue_call(tgi_version)
    chunks = [c async for c in bound(tgi_version, tool_choice="GetWeather").astream("Weather in Paris?")]
    assert [(c["name"], c["args"]) for c in aggregate(chunks).tool_calls] == [("GetWeather", ARGS)]


def test_auto_tool_choice_stream_without_a_call_is_plain_text(tgi_version: TGIServer) -> None:
    backend = tgi_version.backend
    assert isinstance(backend, ScriptedBackend)
    backend.queue_reply("No tool needed.")
    streamed = aggregate(list(bound(tgi_version).stream("Hello")))
    assert streamed.tool_calls == []
    assert streamed.content == "No tool needed."


# -- finish reasons and logprobs, across the same versions ------------------------------------------------


def plain(server: TGIServer, **kwargs: Any) -> ChatHuggingFace:
    return ChatHuggingFace(
        llm=HuggingFaceTextGenInference(inference_server_url=server.url), model_id="org/tools", **kwargs
    )


def scripted(server: TGIServer) -> ScriptedBackend:
    assert isinstance(server.backend, ScriptedBackend)
    return server.backend


def test_eos_is_stop_with_the_raw_reason_kept(tgi_version: TGIServer) -> None:
    scripted(tgi_version).queue_reply("Done.")
    metadata = plain(tgi_version).invoke("Hi").response_metadata
    assert metadata["finish_reason"] == "stop"
    assert metadata["raw_finish_reason"] == ("stop" if tgi_version.state.config.version.eos_is_stop else "eos_token")


@pytest.mark.parametrize(("reason", "expected"), [("length", "length"), ("stop_sequence", "stop")])
def test_finish_reasons_normalise_in_invoke_and_stream(tgi_version: TGIServer, reason: str, expected: str) -> None:
    scripted(tgi_version).queue_reply("Some text", finish_reason=reason)  # type: ignore[arg-type]
    invoked = plain(tgi_version).invoke("Hi").response_metadata
    scripted(tgi_version).queue_reply("Some text", finish_reason=reason)  # type: ignore[arg-type]
    streamed = aggregate(list(plain(tgi_version).stream("Hi"))).response_metadata
    assert (invoked["finish_reason"], invoked["raw_finish_reason"]) == (expected, reason)
    assert (streamed["finish_reason"], streamed["raw_finish_reason"]) == (expected, reason)


def test_logprobs_in_response_metadata(tgi_version: TGIServer) -> None:
    scripted(tgi_version).queue_reply("Hello there")
    metadata = plain(tgi_version, logprobs=True, top_logprobs=2).invoke("Hi").response_metadata
    content = metadata["logprobs"]["content"]
    assert [t["token"] for t in content][:2] == ["Hello", " there"]
    assert all(isinstance(t["logprob"], float) for t in content)
    assert len(content[0]["top_logprobs"]) == 2


def test_logprobs_accumulate_over_a_stream(tgi_version: TGIServer) -> None:
    scripted(tgi_version).queue_reply("Hello there")
    total = aggregate(list(plain(tgi_version, logprobs=True, top_logprobs=1).stream("Hi")))
    assert [t["token"] for t in total.response_metadata["logprobs"]["content"]][:2] == ["Hello", " there"]


def test_no_logprobs_unless_asked(tgi_version: TGIServer) -> None:
    assert "logprobs" not in plain(tgi_version).invoke("Hi").response_metadata


# -- local (in-process) models: tools reach the chat template, calls are parsed from the text ---------------

QWEN_TEMPLATE = (Path(__file__).parent.parent / "fixtures" / "templates" / "qwen2.5-7b-instruct.jinja").read_text()
HERMES_CALL = '<tool_call>\n{"name": "GetWeather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>'


class FakeLocalBackend:
    """A pipeline-like backend: records prompts and answers with a Hermes tool call, token by token."""

    chat_url = None
    info_url = None

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, prompt: str, parameters: Mapping[str, Any], **_: Any) -> TextResult:
        self.prompts.append(prompt)
        return TextResult(text=HERMES_CALL, finish_reason="eos_token", generated_tokens=20)

    def stream(self, prompt: str, parameters: Mapping[str, Any], **_: Any) -> Iterator[TokenEvent]:
        self.prompts.append(prompt)
        pieces = [HERMES_CALL[i : i + 7] for i in range(0, len(HERMES_CALL), 7)]
        for piece in pieces[:-1]:
            yield TokenEvent(text=piece)
        yield TokenEvent(text=pieces[-1], final=TextResult(text=HERMES_CALL, finish_reason="eos_token"))


class FakePipelineLLM:
    """What ChatHuggingFace reads from HuggingFacePipeline, without transformers."""

    model_id = "Qwen/Qwen2.5-7B-Instruct"
    tokenizer = None
    template_path = None

    def __init__(self) -> None:
        self.backend = FakeLocalBackend()


@pytest.fixture
def local_chat() -> ChatHuggingFace:
    return ChatHuggingFace(llm=FakePipelineLLM(), chat_template=QWEN_TEMPLATE)


def test_local_model_uses_text_mode(local_chat: ChatHuggingFace) -> None:
    assert local_chat.resolved_mode == "text"


def test_bound_tools_reach_the_local_chat_template(local_chat: ChatHuggingFace) -> None:
    before = set(sys.modules)
    local_chat.bind_tools([GetWeather]).invoke("Weather in Paris?")
    prompt = local_chat.llm.backend.prompts[-1]
    assert "<tools>" in prompt
    assert '"name": "GetWeather"' in prompt
    assert not any(name.split(".")[0] in ("transformers", "torch") for name in set(sys.modules) - before)


def test_local_tool_calls_are_parsed_from_the_text(local_chat: ChatHuggingFace) -> None:
    message = local_chat.bind_tools([GetWeather]).invoke("Weather in Paris?")
    assert isinstance(message, AIMessage)
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("GetWeather", ARGS)]
    assert message.content == ""
    assert message.response_metadata["finish_reason"] == "tool_calls"


def test_local_tool_call_stream_aggregates_to_the_same_call(local_chat: ChatHuggingFace) -> None:
    streamed = aggregate(list(local_chat.bind_tools([GetWeather]).stream("Weather in Paris?")))
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [("GetWeather", ARGS)]


def test_local_parsers_are_pluggable(local_chat: ChatHuggingFace) -> None:
    chat = local_chat.model_copy(update={"tool_call_formats": ["mistral"]})
    message = chat.bind_tools([GetWeather]).invoke("Weather in Paris?")
    assert isinstance(message, AIMessage)
    assert message.tool_calls == []  # a Hermes call is not Mistral's format: left as text
