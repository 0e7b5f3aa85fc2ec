"""Retries, backoff and timeouts against the fault-injecting TGI server.

Every test counts the attempts the server saw, bounds the time spent waiting (wall clock, with small
``Retry-After`` / ``estimated_time`` hints and a small ``max_retry_wait``), and checks the typed error raised
when retries run out. Each behaviour is checked for the LLM classes and ``ChatHuggingFace``, sync and async,
stream and non-stream.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceTextGenInference, errors
from langchain_hf_chat.testing import Fault, ScriptedBackend, TGIServer

MODEL_ID = "HuggingFaceH4/zephyr-7b-beta"
KINDS = ("tgi", "endpoint", "chat")
HOWS = ("invoke", "ainvoke", "stream", "astream")
ALL = [(kind, how) for kind in KINDS for how in HOWS]
#: One of each shape, for the slower or rarer cases.
SOME = [("tgi", "invoke"), ("tgi", "astream"), ("endpoint", "stream"), ("chat", "ainvoke"), ("chat", "stream")]
#: The two ends: a sync non-stream LLM call and an async chat stream.
TWO = [("tgi", "invoke"), ("chat", "astream")]


def make(kind: str, server: TGIServer, **options: Any) -> Any:
    """A model of ``kind`` pointed at ``server``; options go to the LLM (retries and timeouts live there)."""
    options.setdefault("max_retry_wait", 0.05)
    if kind == "endpoint":
        return HuggingFaceEndpoint(endpoint_url=server.url, **options)
    llm = HuggingFaceTextGenInference(inference_server_url=server.url, **options)
    if kind == "chat":
        # mode="chat": no fallback to text mode on a 404, and no /info lookup (model id given).
        return ChatHuggingFace(llm=llm, model_id=MODEL_ID, mode="chat")
    return llm


def route(kind: str, how: str) -> str:
    """The path a call of ``kind``/``how`` goes to."""
    if kind == "chat":
        return "/v1/chat/completions"
    if kind == "endpoint":
        return "/"
    return "/generate_stream" if how.endswith("stream") else "/generate"


def _text(output: str | BaseMessage) -> str:
    return output if isinstance(output, str) else str(output.content)


async def call(model: Any, how: str, **kwargs: Any) -> str:
    """Drive one call to its end and return the text."""
    if how == "invoke":
        return _text(model.invoke("Hi", **kwargs))
    if how == "ainvoke":
        return _text(await model.ainvoke("Hi", **kwargs))
    if how == "stream":
        return "".join(_text(chunk) for chunk in model.stream("Hi", **kwargs))
    return "".join([_text(chunk) async for chunk in model.astream("Hi", **kwargs)])


def attempts(server: TGIServer, path: str) -> int:
    return sum(1 for request in server.requests if request.path == path)


@pytest.fixture
def reply(server: TGIServer) -> str:
    assert isinstance(server.backend, ScriptedBackend)
    return server.backend.default_reply


# -- 429 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "how"), SOME)
async def test_429_is_retried_after_retry_after_seconds(server: TGIServer, reply: str, kind: str, how: str) -> None:
    server.inject(Fault.rate_limit(retry_after=0.08), times=2, route=route(kind, how))
    model = make(kind, server, max_retries=2, max_retry_wait=5)
    start = time.monotonic()
    assert await call(model, how) == reply
    elapsed = time.monotonic() - start
    assert attempts(server, route(kind, how)) == 3
    assert 0.15 <= elapsed < 5


@pytest.mark.parametrize(("kind", "how"), SOME)
async def test_429_raises_rate_limit_error_when_retries_run_out(server: TGIServer, kind: str, how: str) -> None:
    server.inject(Fault.rate_limit(retry_after=0.05), times=3, route=route(kind, how))
    model = make(kind, server, max_retries=2)
    with pytest.raises(errors.RateLimitError) as info:
        await call(model, how)
    assert attempts(server, route(kind, how)) == 3
    assert info.value.status_code == 429
    assert info.value.retry_after == pytest.approx(0.05)
    assert "Rate limit reached" in str(info.value)


@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_429_with_an_http_date_retry_after_waits_at_most_max_retry_wait(
    server: TGIServer, reply: str, kind: str, how: str
) -> None:
    server.inject(Fault.rate_limit(retry_after=1, http_date=True), times=1, route=route(kind, how))
    model = make(kind, server, max_retries=1, max_retry_wait=0.3)
    start = time.monotonic()
    assert await call(model, how) == reply
    assert attempts(server, route(kind, how)) == 2
    assert time.monotonic() - start < 3


@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_ratelimit_header_reset_is_honoured_without_retry_after(
    server: TGIServer, reply: str, kind: str, how: str
) -> None:
    # RateLimit: "api";r=0;t=1 is the only hint; max_retry_wait bounds it.
    fault = Fault.status(429, {"error": "Rate limit reached."}, headers={"ratelimit": '"api";r=0;t=1'})
    server.inject(fault, route=route(kind, how))
    model = make(kind, server, max_retries=1, max_retry_wait=0.2)
    start = time.monotonic()
    assert await call(model, how) == reply
    assert attempts(server, route(kind, how)) == 2
    assert 0.15 <= time.monotonic() - start < 3


@pytest.mark.parametrize(("kind", "how"), SOME)
async def test_tgi_overload_is_retried_like_a_429(server: TGIServer, reply: str, kind: str, how: str) -> None:
    # Non-stream: HTTP 429 "overloaded"; streams: 200 + an error event before any token (protocol §5.2).
    server.inject(Fault.overloaded(), times=1, route=route(kind, how))
    model = make(kind, server, max_retries=1)
    assert await call(model, how) == reply
    assert attempts(server, route(kind, how)) == 2


@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_tgi_overload_raises_overloaded_error_when_retries_run_out(
    server: TGIServer, kind: str, how: str
) -> None:
    server.inject(Fault.overloaded(), times=2, route=route(kind, how))
    with pytest.raises(errors.OverloadedError, match="overloaded"):
        await call(make(kind, server, max_retries=1), how)
    assert attempts(server, route(kind, how)) == 2


# -- 503 model loading ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "how"), SOME)
async def test_503_loading_is_retried_after_estimated_time(server: TGIServer, reply: str, kind: str, how: str) -> None:
    server.inject(Fault.loading(estimated_time=0.08), times=2, route=route(kind, how))
    model = make(kind, server, max_retries=2, max_retry_wait=5)
    start = time.monotonic()
    assert await call(model, how) == reply
    assert attempts(server, route(kind, how)) == 3
    assert 0.15 <= time.monotonic() - start < 5


@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_503_loading_raises_model_loading_error_when_retries_run_out(
    server: TGIServer, kind: str, how: str
) -> None:
    server.inject(Fault.loading(estimated_time=0.05), times=3, route=route(kind, how))
    with pytest.raises(errors.ModelLoadingError, match="currently loading") as info:
        await call(make(kind, server, max_retries=2), how)
    assert attempts(server, route(kind, how)) == 3
    assert info.value.status_code == 503
    assert info.value.retry_after == pytest.approx(0.05)


@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_estimated_time_is_capped_by_max_retry_wait(server: TGIServer, reply: str, kind: str, how: str) -> None:
    server.inject(Fault.loading(estimated_time=30), times=1, route=route(kind, how))
    start = time.monotonic()
    assert await call(make(kind, server, max_retries=1, max_retry_wait=0.1), how) == reply
    assert time.monotonic() - start < 3


@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_wait_for_model_keeps_retrying_a_loading_model_beyond_max_retries(
    server: TGIServer, reply: str, kind: str, how: str
) -> None:
    server.inject(Fault.loading(estimated_time=0.02), times=6, route=route(kind, how))
    model = make(kind, server, max_retries=0, wait_for_model=True, max_model_load_wait=5)
    assert await call(model, how) == reply
    assert attempts(server, route(kind, how)) == 7


@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_wait_for_model_gives_up_when_its_budget_is_spent(server: TGIServer, kind: str, how: str) -> None:
    server.inject(Fault.loading(estimated_time=0.1), times=50, route=route(kind, how))
    model = make(kind, server, max_retries=0, max_retry_wait=5, wait_for_model=True, max_model_load_wait=0.25)
    start = time.monotonic()
    with pytest.raises(errors.ModelLoadingError):
        await call(model, how)
    # Waits of 0.1, 0.1 and the 0.05 left: four attempts, about 0.25 s.
    assert attempts(server, route(kind, how)) == 4
    assert 0.2 <= time.monotonic() - start < 3


async def test_without_wait_for_model_a_loading_model_fails_after_max_retries(server: TGIServer) -> None:
    server.inject(Fault.loading(estimated_time=0.01), times=5, route="/generate")
    with pytest.raises(errors.ModelLoadingError):
        make("tgi", server, max_retries=1).invoke("Hi")
    assert attempts(server, "/generate") == 2


def test_wait_for_model_is_off_by_default_and_validated() -> None:
    llm = HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1")
    assert llm.wait_for_model is False
    assert llm.transport.retry.max_load_wait is None
    waiting = HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1", wait_for_model=True)
    assert waiting.transport.retry.max_load_wait == waiting.max_model_load_wait == 300
    with pytest.raises(ValueError, match="max_model_load_wait"):
        HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1", max_model_load_wait=-1)


# -- 502 / 504 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [502, 504])
@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_gateway_errors_are_retried_with_backoff(
    server: TGIServer, reply: str, code: int, kind: str, how: str
) -> None:
    server.inject(Fault.status(code), times=2, route=route(kind, how))
    start = time.monotonic()
    assert await call(make(kind, server, max_retries=2), how) == reply
    assert attempts(server, route(kind, how)) == 3
    assert time.monotonic() - start < 3  # backoff capped by max_retry_wait=0.05


@pytest.mark.parametrize("code", [502, 504])
@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_gateway_errors_raise_server_error_when_retries_run_out(
    server: TGIServer, code: int, kind: str, how: str
) -> None:
    server.inject(Fault.status(code), times=3, route=route(kind, how))
    with pytest.raises(errors.ServerError) as info:
        await call(make(kind, server, max_retries=2), how)
    assert info.value.status_code == code
    assert attempts(server, route(kind, how)) == 3


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    from langchain_hf_chat._transport import RetryPolicy

    policy = RetryPolicy(initial_backoff=0.5, max_backoff=8, max_wait=60, jitter=0.25)
    for attempt, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        assert base <= policy.delay(attempt, None) <= base * 1.25
    assert RetryPolicy(max_wait=0.1).delay(5, None) == 0.1
    assert RetryPolicy(max_wait=2).delay(1, 30) == 2  # a server hint is capped too


# -- connection failures --------------------------------------------------------------------------------------


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(("kind", "how"), SOME)
async def test_connection_refused_is_retried_then_raises_connection_error(
    refused_url: str, caplog: pytest.LogCaptureFixture, kind: str, how: str
) -> None:
    class Down:
        url = refused_url

    model = make(kind, Down(), max_retries=2)  # type: ignore[arg-type]
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="langchain_hf_chat"), pytest.raises(errors.ConnectionError) as info:
        await call(model, how)
    retries = [r for r in caplog.records if r.getMessage().startswith("Retrying after ConnectionError")]
    assert len(retries) == 2
    assert time.monotonic() - start < 3
    assert isinstance(info.value, ConnectionError)  # the builtin too
    assert info.value.status_code is None


@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_a_stopped_server_that_comes_back_is_reached_by_retrying(kind: str, how: str) -> None:
    server = TGIServer(backend=ScriptedBackend(model_id=MODEL_ID)).start()
    try:
        server.stop()
        model = make(kind, server, max_retries=20, max_retry_wait=0.1)
        restart = threading.Timer(0.3, server.start)
        restart.start()
        assert await call(model, how) == "Hello! How can I help?"
        restart.join()
    finally:
        server.stop()


@pytest.mark.parametrize(("kind", "how"), SOME)
async def test_connection_closed_before_any_response_is_retried(
    server: TGIServer, reply: str, kind: str, how: str
) -> None:
    server.inject(Fault.accept_then_close(), times=1, route=route(kind, how))
    assert await call(make(kind, server, max_retries=1), how) == reply
    assert attempts(server, route(kind, how)) == 2


# -- never retried --------------------------------------------------------------------------------------------

NOT_RETRIED = [
    pytest.param(Fault.validation(), errors.ValidationError, id="422-validation"),
    pytest.param(Fault.status(401), errors.AuthenticationError, id="401"),
    pytest.param(Fault.status(403), errors.PermissionDeniedError, id="403"),
    pytest.param(Fault.status(404), errors.NotFoundError, id="404"),
    pytest.param(Fault.status(400), errors.BadRequestError, id="400"),
    pytest.param(Fault.status(402), errors.InsufficientCreditsError, id="402"),
    pytest.param(Fault.generation_error(), errors.GenerationError, id="424-generation"),
    pytest.param(Fault.incomplete(), errors.IncompleteGenerationError, id="500-incomplete"),
]


@pytest.mark.parametrize(("fault", "expected"), NOT_RETRIED)
@pytest.mark.parametrize(("kind", "how"), SOME)
async def test_client_errors_are_never_retried(
    server: TGIServer, fault: Fault, expected: type[Exception], kind: str, how: str
) -> None:
    server.inject(fault, times=5, route=route(kind, how))
    with pytest.raises(expected):
        await call(make(kind, server, max_retries=3), how)
    assert attempts(server, route(kind, how)) == 1
    server.healthy = True


@pytest.mark.parametrize(("kind", "how"), [(k, h) for k, h in ALL if h.endswith("stream")])
async def test_a_stream_that_yielded_tokens_is_never_retried(server: TGIServer, kind: str, how: str) -> None:
    server.inject(Fault.disconnect(after=2), times=5, route=route(kind, how))
    with pytest.raises(errors.IncompleteGenerationError):
        await call(make(kind, server, max_retries=3), how)
    assert attempts(server, route(kind, how)) == 1


@pytest.mark.parametrize(("kind", "how"), [(k, h) for k, h in ALL if h.endswith("stream")])
async def test_an_overload_after_tokens_is_not_retried(server: TGIServer, kind: str, how: str) -> None:
    server.inject(Fault.error_event(after=2, error_type="overloaded"), times=5, route=route(kind, how))
    with pytest.raises(errors.OverloadedError):
        await call(make(kind, server, max_retries=3), how)
    assert attempts(server, route(kind, how)) == 1


# -- timeouts -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "how"), SOME)
async def test_instance_read_timeout_raises_timeout_error(server: TGIServer, kind: str, how: str) -> None:
    server.inject(Fault.delay(first_byte=3), route=route(kind, how))
    model = make(kind, server, timeout=0.1, max_retries=0)
    start = time.monotonic()
    with pytest.raises(errors.TimeoutError, match="timed out") as info:
        await call(model, how)
    assert time.monotonic() - start < 2
    assert isinstance(info.value, TimeoutError)  # the builtin too


@pytest.mark.parametrize(("kind", "how"), ALL)
async def test_per_call_timeout_overrides_the_instance_timeout(server: TGIServer, kind: str, how: str) -> None:
    server.inject(Fault.delay(first_byte=3), route=route(kind, how))
    model = make(kind, server, timeout=120, max_retries=0)
    start = time.monotonic()
    with pytest.raises(errors.TimeoutError):
        await call(model, how, timeout=0.1)
    assert time.monotonic() - start < 2


@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_per_call_timeout_applies_to_that_call_only(server: TGIServer, reply: str, kind: str, how: str) -> None:
    model = make(kind, server, timeout=0.1, max_retries=0)
    server.inject(Fault.delay(first_byte=0.3), route=route(kind, how))
    assert await call(model, how, timeout=5) == reply
    server.inject(Fault.delay(first_byte=3), route=route(kind, how))
    with pytest.raises(errors.TimeoutError):
        await call(model, how)


@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_server_kwargs_timeout_is_the_instance_read_timeout(server: TGIServer, kind: str, how: str) -> None:
    server.inject(Fault.delay(first_byte=3), route=route(kind, how))
    with pytest.raises(errors.TimeoutError):
        await call(make(kind, server, server_kwargs={"timeout": 0.1}, max_retries=0), how)


@pytest.mark.parametrize(("kind", "how"), TWO)
async def test_a_timed_out_attempt_is_retried(server: TGIServer, reply: str, kind: str, how: str) -> None:
    server.inject(Fault.delay(first_byte=3), times=1, route=route(kind, how))
    assert await call(make(kind, server, timeout=0.1, max_retries=1), how) == reply
    assert attempts(server, route(kind, how)) == 2


@pytest.fixture
def unresponsive_url() -> Iterator[str]:
    """A loopback port whose accept queue is full: connecting hangs until the client's connect timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    for sock in [*fillers, listener]:
        sock.close()


@pytest.mark.parametrize(("kind", "how"), SOME)
async def test_connect_timeout_raises_timeout_error(unresponsive_url: str, kind: str, how: str) -> None:
    class Hanging:
        url = unresponsive_url

    model = make(kind, Hanging(), connect_timeout=0.1, max_retries=0)  # type: ignore[arg-type]
    start = time.monotonic()
    with pytest.raises(errors.TimeoutError, match=r"timed out \(connect\)"):
        await call(model, how)
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("bad", [0, -1, "1", True])
def test_a_bad_per_call_timeout_is_a_value_error(server: TGIServer, bad: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        make("tgi", server).invoke("Hi", timeout=bad)
    with pytest.raises(ValueError, match="timeout"):
        make("chat", server).invoke("Hi", timeout=bad)
