"""Streaming tool calls: tool-call deltas stream as ``tool_call_chunks`` and aggregate into what invoke returns.

Each TGI release streams tool calls differently (protocol §7.3): 3.2+ sends a list with the name first and no
``finish_reason``; 2.1-3.1 a single object whose ``arguments`` fragments spell TGI's raw grammar output; 2.0 the
same with ``parameters``. Every version must give the same ``tool_calls``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from pydantic import BaseModel

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
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
