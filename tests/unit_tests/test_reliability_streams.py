"""Damaged streams and cancellation, against the fault-injecting TGI server.

A stream cut mid-way is never a normal finish; error events raise the typed error of their ``error_type`` in both
TGI flavours; a malformed SSE line raises ``StreamParseError`` naming it; a clean close without ``[DONE]`` is
handled as TGI does. Cancelling or abandoning a stream closes its connection, and the server sees it go.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceTextGenInference, errors
from langchain_hf_chat.testing import Fault, ScriptedBackend, TGIServer

MODEL_ID = "HuggingFaceH4/zephyr-7b-beta"
REPLY = "one two three four five six seven eight"
KINDS = ("tgi", "endpoint", "chat")
STREAMS = [(kind, how) for kind in KINDS for how in ("stream", "astream")]


def make(kind: str, server: TGIServer, **options: Any) -> Any:
    options.setdefault("max_retry_wait", 0.05)
    if kind == "endpoint":
        return HuggingFaceEndpoint(endpoint_url=server.url, **options)
    llm = HuggingFaceTextGenInference(inference_server_url=server.url, **options)
    if kind in ("chat", "text"):
        extra = {"mode": "text", "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}
        return ChatHuggingFace(llm=llm, model_id=MODEL_ID, **({"mode": "chat"} if kind == "chat" else extra))
    return llm


def route(kind: str) -> str:
    return {"chat": "/v1/chat/completions", "endpoint": "/", "text": "/generate_stream"}.get(kind, "/generate_stream")


def _text(output: str | BaseMessage) -> str:
    return output if isinstance(output, str) else str(output.content)


async def collect(model: Any, how: str, received: list[str]) -> str:
    """Stream to the end, appending each chunk's text to ``received`` as it arrives."""
    if how == "stream":
        for chunk in model.stream("Hi"):
            received.append(_text(chunk))
    else:
        async for chunk in model.astream("Hi"):
            received.append(_text(chunk))
    return "".join(received)


@pytest.fixture
def backend(server: TGIServer) -> ScriptedBackend:
    assert isinstance(server.backend, ScriptedBackend)
    return server.backend


def _wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# -- cuts -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("after", [1, 3])
@pytest.mark.parametrize(("kind", "how"), [*STREAMS, ("text", "stream"), ("text", "astream")])
async def test_a_stream_cut_after_n_events_raises_incomplete_generation_with_the_partial_text(
    server: TGIServer, backend: ScriptedBackend, kind: str, how: str, after: int
) -> None:
    backend.queue_reply(REPLY)
    server.inject(Fault.disconnect(after=after), route=route(kind))
    received: list[str] = []
    with pytest.raises(errors.IncompleteGenerationError, match="cut") as info:
        await collect(make(kind, server), how, received)
    expected = " ".join(REPLY.split()[:after])
    assert info.value.partial_text == expected
    assert "".join(received) == expected


@pytest.mark.parametrize("how", ["invoke", "ainvoke"])
@pytest.mark.parametrize("kind", ["tgi", "endpoint"])
async def test_a_cut_stream_behind_invoke_with_streaming_is_an_error_not_a_short_answer(
    server: TGIServer, backend: ScriptedBackend, kind: str, how: str
) -> None:
    backend.queue_reply(REPLY)
    server.inject(Fault.disconnect(after=2), route=route(kind))
    model = make(kind, server, streaming=True)
    with pytest.raises(errors.IncompleteGenerationError) as info:
        model.invoke("Hi") if how == "invoke" else await model.ainvoke("Hi")
    assert info.value.partial_text == "one two"


@pytest.mark.parametrize(("kind", "how"), [*STREAMS, ("text", "stream")])
async def test_a_clean_close_before_the_final_event_raises_incomplete_generation(
    server: TGIServer, backend: ScriptedBackend, kind: str, how: str
) -> None:
    backend.queue_reply(REPLY)
    server.inject(Fault.eof(after=2), route=route(kind))
    received: list[str] = []
    with pytest.raises(errors.IncompleteGenerationError) as info:
        await collect(make(kind, server), how, received)
    assert info.value.partial_text == "one two" == "".join(received)


@pytest.mark.parametrize("how", ["stream", "astream"])
async def test_a_chat_stream_with_finish_reason_but_no_done_finishes_normally(
    server: TGIServer, backend: ScriptedBackend, how: str
) -> None:
    # TGI always sends [DONE]; a proxy may drop it. The finish_reason chunk is enough to know it ended.
    backend.queue_reply(REPLY)
    server.inject(Fault.missing_done(), route="/v1/chat/completions")
    assert await collect(make("chat", server), how, []) == REPLY


@pytest.mark.parametrize("how", ["stream", "astream"])
async def test_a_chat_stream_that_stops_right_before_its_end_is_incomplete(
    server: TGIServer, backend: ScriptedBackend, how: str
) -> None:
    backend.queue_reply(REPLY)
    server.inject(Fault.eof(), route="/v1/chat/completions")  # just before the final chunk and [DONE]
    with pytest.raises(errors.IncompleteGenerationError) as info:
        await collect(make("chat", server), how, [])
    assert info.value.partial_text == REPLY


@pytest.mark.parametrize(("kind", "how"), STREAMS)
async def test_a_stream_that_ends_before_any_event_is_incomplete_with_empty_text(
    server: TGIServer, kind: str, how: str
) -> None:
    server.inject(Fault.eof(after=0), route=route(kind))
    with pytest.raises(errors.IncompleteGenerationError) as info:
        await collect(make(kind, server), how, [])
    assert info.value.partial_text == ""


# -- error events ---------------------------------------------------------------------------------------------

ERROR_TYPES = [
    ("generation", errors.GenerationError),
    ("overloaded", errors.OverloadedError),
    ("validation", errors.ValidationError),
    ("incomplete_generation", errors.IncompleteGenerationError),
]


@pytest.mark.parametrize("flavour", ["tgi", "openai"])
@pytest.mark.parametrize(("error_type", "expected"), ERROR_TYPES)
@pytest.mark.parametrize(("kind", "how"), [("tgi", "stream"), ("endpoint", "astream"), ("chat", "stream")])
async def test_an_error_event_after_tokens_raises_the_typed_error_for_its_type(
    server: TGIServer,
    backend: ScriptedBackend,
    kind: str,
    how: str,
    error_type: str,
    expected: type[errors.HuggingFaceError],
    flavour: str,
) -> None:
    backend.queue_reply(REPLY)
    # after=3: the server holds each token until the next one exists, so two tokens go out before the error.
    fault = Fault.error_event(after=3, error_type=error_type, flavour=flavour)  # type: ignore[arg-type]
    server.inject(fault, route=route(kind))
    received: list[str] = []
    with pytest.raises(expected) as info:
        await collect(make(kind, server, max_retries=0), how, received)
    assert "".join(received) == "one two"
    assert info.value.server_message
    server.healthy = True


@pytest.mark.parametrize(("kind", "how"), [("tgi", "astream"), ("chat", "astream")])
async def test_the_error_event_message_reaches_the_user(server: TGIServer, kind: str, how: str) -> None:
    server.inject(Fault.generation_error(after=1, message="CUDA out of memory"), route=route(kind))
    with pytest.raises(errors.GenerationError, match="CUDA out of memory"):
        await collect(make(kind, server), how, [])
    server.healthy = True


# -- wire damage ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "how"), STREAMS)
async def test_a_malformed_sse_line_raises_stream_parse_error_naming_it(server: TGIServer, kind: str, how: str) -> None:
    server.inject(Fault.malformed_sse(after=1), route=route(kind))
    with pytest.raises(errors.StreamParseError, match="malformed") as info:
        await collect(make(kind, server), how, [])
    assert info.value.line
    assert info.value.line in str(info.value)


@pytest.mark.parametrize(("kind", "how"), STREAMS)
async def test_a_partial_last_line_raises_stream_parse_error(server: TGIServer, kind: str, how: str) -> None:
    server.inject(Fault.partial_line(after=1), route=route(kind))
    with pytest.raises(errors.StreamParseError):
        await collect(make(kind, server), how, [])


TOLERATED = [
    Fault.no_space(),
    Fault.done_without_space(),
    Fault.split_event(after=1),
    Fault.sse_fields(),
    Fault.crlf(),
    Fault.keep_alive(2),
    Fault.crlf() | Fault.keep_alive(1) | Fault.no_space(),
]


@pytest.mark.parametrize("fault", TOLERATED, ids=lambda f: f.name)
@pytest.mark.parametrize(("kind", "how"), [("tgi", "stream"), ("endpoint", "astream"), ("chat", "stream")])
async def test_legal_sse_variations_are_tolerated(
    server: TGIServer, backend: ScriptedBackend, fault: Fault, kind: str, how: str
) -> None:
    backend.queue_reply(REPLY)
    server.inject(fault, route=route(kind))
    assert await collect(make(kind, server), how, []) == REPLY


# -- cancellation and connection hygiene ----------------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[TGIServer]:
    """A server for this test alone, so its connection count is this test's client's only."""
    backend = ScriptedBackend(model_id=MODEL_ID, default_reply=" ".join(["word"] * 200))
    with TGIServer(backend=backend) as server:
        yield server


def _clean(server: TGIServer) -> bool:
    return server.disconnects >= 1 and server.open_connections == 0 and server.in_flight == 0


def _closed_cleanly(server: TGIServer) -> bool:
    """The server saw the client go, and no connection or generation is left."""
    return _wait_for(lambda: _clean(server))


async def _aclosed_cleanly(server: TGIServer, timeout: float = 3.0) -> bool:
    """:func:`_closed_cleanly` without blocking the event loop (async generators are finalized on the loop)."""
    for _ in range(int(timeout / 0.01)):
        if _clean(server):
            return True
        await asyncio.sleep(0.01)
    return _clean(server)


@pytest.mark.parametrize("kind", ["tgi", "chat"])
async def test_cancelling_an_astream_task_closes_its_connection(own_server: TGIServer, kind: str) -> None:
    own_server.inject(Fault.slow_tokens(0.05))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in make(kind, own_server).astream("Hi"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await _aclosed_cleanly(own_server)


@pytest.mark.parametrize("kind", ["tgi", "chat"])
async def test_cancelling_an_ainvoke_task_closes_its_connection(own_server: TGIServer, kind: str) -> None:
    own_server.inject(Fault.slow_tokens(0.05))
    task = asyncio.create_task(make(kind, own_server).ainvoke("Hi"))
    assert await asyncio.to_thread(_wait_for, lambda: own_server.in_flight == 1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await _aclosed_cleanly(own_server)


@pytest.mark.parametrize("kind", ["tgi", "chat"])
async def test_a_timeout_around_astream_closes_its_connection(own_server: TGIServer, kind: str) -> None:
    own_server.inject(Fault.slow_tokens(0.05))

    async def consume() -> None:
        async for _ in make(kind, own_server).astream("Hi"):
            pass

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(consume(), 0.3)
    assert await _aclosed_cleanly(own_server)


@pytest.mark.parametrize("kind", ["tgi", "endpoint", "chat"])
def test_breaking_out_of_a_sync_stream_closes_its_connection(own_server: TGIServer, kind: str) -> None:
    own_server.inject(Fault.slow_tokens(0.02))
    for _ in make(kind, own_server).stream("Hi"):
        break
    assert _closed_cleanly(own_server)


@pytest.mark.parametrize("kind", ["tgi", "chat"])
async def test_closing_an_async_stream_early_closes_its_connection(own_server: TGIServer, kind: str) -> None:
    own_server.inject(Fault.slow_tokens(0.02))
    stream = make(kind, own_server).astream("Hi")
    async for _ in stream:
        break
    await stream.aclose()
    assert await _aclosed_cleanly(own_server)


@pytest.mark.parametrize("kind", ["tgi", "chat"])
async def test_an_abandoned_async_stream_is_closed_by_the_event_loop(own_server: TGIServer, kind: str) -> None:
    own_server.inject(Fault.slow_tokens(0.02))
    async for _ in make(kind, own_server).astream("Hi"):
        break
    # No aclose(): asyncio finalizes the abandoned generator, which closes the response.
    assert await _aclosed_cleanly(own_server)


@pytest.mark.parametrize("kind", ["tgi", "chat"])
async def test_finished_calls_leave_one_pooled_connection_at_most(own_server: TGIServer, kind: str) -> None:
    model = make(kind, own_server)
    for _ in range(5):
        model.invoke("Hi")
        "".join(_text(c) for c in model.stream("Hi"))
        await model.ainvoke("Hi")
        [c async for c in model.astream("Hi")]
    # One keep-alive connection for the sync client and one for the async client: reused, never piling up.
    assert own_server.open_connections <= 2
    assert own_server.disconnects == 0


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
@pytest.mark.parametrize(
    ("kind", "how"), [("tgi", "stream"), ("endpoint", "astream"), ("chat", "stream"), ("chat", "astream")]
)
async def test_unicode_line_separators_in_generated_text_stream_through(
    server: TGIServer, backend: ScriptedBackend, separator: str, kind: str, how: str
) -> None:
    # The server's JSON carries them raw; a client splitting lines like str.splitlines() would cut the event.
    backend.queue_reply(tokens=["one", f" two{separator}three", " four"])
    assert await collect(make(kind, server), how, []) == f"one two{separator}three four"
