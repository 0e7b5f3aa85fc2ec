"""Property tests: parsing whatever a server sends never fails with an unexpected exception.

Responses and stream events are drawn as arbitrary JSON and as near-valid shapes whose every field may be
replaced by arbitrary JSON. Each either parses into well-typed LangChain objects or raises one of the
package's errors (``HuggingFaceError`` subclasses; ``ValueError`` where the pure converters document it).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AIMessageChunk

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference, errors
from langchain_hf_chat._messages import chunk_from_chat_chunk, message_from_chat_response
from langchain_hf_chat._sse import DONE
from langchain_hf_chat._transport import error_from_event, error_from_response
from langchain_hf_chat.chat_models import _ChatStream
from langchain_hf_chat.llms._backend import TextResult, TokenEvent, parse_generate_response, parse_stream_event

#: Bounded for the unit suite; FUZZ_EXAMPLES=5000 for a deeper run.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The valid value most of the time, anything else sometimes."""
    return st.one_of(valid, valid, json_values)


def obj(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with any subset of ``fields``, each near-valid."""
    return st.fixed_dictionaries({}, optional={key: maybe(value) for key, value in fields.items()})


counts = st.integers(0, 10_000)
reasons = st.sampled_from(["stop", "length", "eos_token", "stop_sequence", "tool_calls", "content_filter", "x"])
arguments = st.text(max_size=30) | st.dictionaries(st.text(max_size=5), scalars, max_size=3)
function = obj(name=st.text(max_size=10), arguments=arguments, description=st.text(max_size=5))
tool_call = obj(id=st.text(max_size=5) | st.integers(), type=st.just("function"), function=function, index=counts)
usage = obj(prompt_tokens=counts, completion_tokens=counts, total_tokens=counts)
message = obj(
    role=st.just("assistant"),
    content=st.text(max_size=30),
    tool_calls=st.lists(tool_call, max_size=2) | tool_call,
    reasoning_content=st.text(max_size=10),
)
choice = obj(index=counts, message=message, delta=message, finish_reason=reasons, logprobs=json_values)
chat_response = obj(
    id=st.text(max_size=8),
    object=st.just("chat.completion"),
    model=st.text(max_size=10),
    system_fingerprint=st.text(max_size=5),
    choices=st.lists(choice, max_size=2),
    usage=usage,
)
details = obj(
    finish_reason=reasons,
    generated_tokens=counts,
    seed=counts,
    input_length=counts,
    prefill=st.lists(obj(id=counts, text=st.text(max_size=5)), max_size=3),
)
generate_response = obj(generated_text=st.text(max_size=30), details=details)
token = obj(id=counts, text=st.text(max_size=8), logprob=st.floats(allow_nan=False), special=st.booleans())
stream_event = obj(
    index=counts,
    token=token,
    generated_text=st.none() | st.text(max_size=20),
    details=details,
    error=st.text(max_size=20) | obj(message=st.text(max_size=20), http_status_code=st.just(422)),
    error_type=st.sampled_from(["validation", "generation", "overloaded", "incomplete_generation", "tool_error"]),
)


def _chat() -> ChatHuggingFace:
    llm = HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1")
    return ChatHuggingFace(llm=llm, model_id="HuggingFaceH4/zephyr-7b-beta", mode="chat")


CHAT = _chat()


@FUZZ
@given(st.one_of(chat_response, json_values))
def test_chat_response_parsing_returns_a_message_or_a_documented_error(data: Any) -> None:
    if not isinstance(data, dict):
        return
    try:
        message = message_from_chat_response(data)
    except (errors.HuggingFaceError, ValueError):
        return
    assert isinstance(message, AIMessage)
    assert isinstance(message.content, str)
    json.dumps(message.tool_calls)
    for call in message.tool_calls:
        assert isinstance(call["name"], str) and isinstance(call["args"], dict)


@FUZZ
@given(st.one_of(chat_response, json_values))
def test_chat_model_turns_any_chat_response_into_a_result_or_a_package_error(data: Any) -> None:
    try:
        result = CHAT._chat_result(data, {})
    except errors.HuggingFaceError:
        return
    assert isinstance(result.generations[0].message, AIMessage)


@FUZZ
@given(st.one_of(chat_response, json_values))
def test_chat_chunk_parsing_returns_a_chunk_none_or_a_documented_error(data: Any) -> None:
    if not isinstance(data, dict):
        return
    try:
        chunk = chunk_from_chat_chunk(data)
    except (errors.HuggingFaceError, ValueError):
        return
    assert chunk is None or isinstance(chunk, AIMessageChunk)
    if chunk is not None:
        assert isinstance(chunk.content, str)
        chunk + chunk  # chunks must aggregate


@FUZZ
@given(st.lists(st.one_of(chat_response, json_values, st.just(DONE)), max_size=5))
def test_a_chat_stream_of_anything_yields_chunks_or_raises_a_package_error(payloads: list[Any]) -> None:
    stream = _ChatStream(CHAT, {"stop": ["STOP"]})
    try:
        chunks = [chunk for payload in payloads for chunk in stream.feed(payload)]
        chunks += list(stream.finish())
    except errors.HuggingFaceError:
        return
    total = chunks[0].message if chunks else None
    for chunk in chunks[1:]:
        total = total + chunk.message  # type: ignore[operator]
    assert total is None or isinstance(total.content, (str, list))


@FUZZ
@given(st.one_of(generate_response, st.lists(generate_response, max_size=2), json_values))
def test_generate_response_parsing_returns_text_or_a_package_error(data: Any) -> None:
    try:
        result = parse_generate_response(data, url="http://x")
    except errors.HuggingFaceError:
        return
    assert isinstance(result, TextResult)
    assert isinstance(result.text, str)
    json.dumps(result.generation_info())


@FUZZ
@given(st.one_of(stream_event, json_values))
def test_stream_event_parsing_returns_an_event_or_a_package_error(data: Any) -> None:
    try:
        event = parse_stream_event(data, url="http://x")
    except errors.HuggingFaceError:
        return
    assert event is None or isinstance(event, TokenEvent)
    if event is not None:
        assert isinstance(event.text, str)
        if event.final is not None:
            assert isinstance(event.final.text, str)
            json.dumps(event.final.generation_info())


@FUZZ
@given(st.one_of(stream_event, json_values))
def test_any_error_event_maps_to_a_package_error(data: Any) -> None:
    if isinstance(data, dict) and data.get("error") is not None:
        assert isinstance(error_from_event(data, "http://x"), errors.HuggingFaceError)


@FUZZ
@given(
    st.integers(400, 599),
    st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=40)),
    st.dictionaries(st.sampled_from(["retry-after", "ratelimit", "x-request-id"]), st.text(max_size=30), max_size=3),
)
def test_any_error_response_maps_to_a_package_error(status: int, body: bytes, headers: dict[str, str]) -> None:
    err = error_from_response(status, body, headers, "http://x/generate?token=secret")
    assert isinstance(err, errors.HuggingFaceError)
    assert err.status_code == status
    assert "secret" not in str(err)
    assert err.retry_after is None or err.retry_after >= 0
