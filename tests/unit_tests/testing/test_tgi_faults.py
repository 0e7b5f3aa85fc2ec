"""Fault injection (protocol README §11), recording, disconnect tracking and the server lifecycle."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from langchain_hf_chat.testing import Fault, FaultSpecError, ScriptedBackend, TGIServer

USER = [{"role": "user", "content": "hi"}]
CHAT = {"messages": USER, "stream": True}


def _wait_for(condition: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


# -- HTTP faults -----------------------------------------------------------------------------------


def test_loading_is_503_with_estimated_time_and_retry_after(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.loading(estimated_time=2, retry_after=2))
    response = client.post("/generate", json={"inputs": "x"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json() == {"error": "Model tgi-test/scripted is currently loading", "estimated_time": 2.0}


def test_rate_limit_with_seconds_and_ratelimit_headers(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.rate_limit(retry_after=3, ratelimit=True, limit=10, window=60))
    response = client.post("/v1/chat/completions", json={"messages": USER})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.headers["ratelimit"] == '"api";r=0;t=3'
    assert response.headers["ratelimit-policy"] == '"fixed window";"api";q=10;w=60'
    assert "error" in response.json()


def test_rate_limit_with_http_date(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.rate_limit(retry_after=5, http_date=True))
    retry_after = client.post("/generate", json={"inputs": "x"}).headers["retry-after"]
    assert retry_after.endswith(" GMT")


@pytest.mark.parametrize(
    ("code", "content_type", "fragment"),
    [
        (400, "application/json", "not supported by any provider you have enabled"),
        (401, "application/json", "Invalid credentials"),
        (402, "application/json", "exceeded your monthly included credits"),
        (403, "application/json", "sufficient permissions"),
        (404, "application/json", "does not exist"),
        (422, "application/json", '"error_type":"validation"'),
        (424, "application/json", '"error_type":"generation"'),
        (500, "application/json", '"error_type":"incomplete_generation"'),
        (502, "text/html", "502 Bad Gateway"),
        (504, "text/html", "504 Gateway Timeout"),
    ],
)
def test_status_faults_have_realistic_bodies(
    tgi: TGIServer, client: httpx.Client, code: int, content_type: str, fragment: str
) -> None:
    tgi.inject(Fault.status(code))
    response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == code
    assert response.headers["content-type"].startswith(content_type)
    assert fragment in response.text


def test_status_with_custom_body_and_headers(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.status(418, {"error": "teapot"}, headers={"x-custom": "1"}))
    response = client.get("/info")
    assert (response.status_code, response.json(), response.headers["x-custom"]) == (418, {"error": "teapot"}, "1")


def test_accept_then_close_sends_no_response(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.accept_then_close())
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/generate", json={"inputs": "x"})
    assert client.post("/generate", json={"inputs": "x"}).status_code == 200


def test_delay_before_first_byte_trips_read_timeouts(tgi: TGIServer) -> None:
    start = time.monotonic()
    tgi.inject(Fault.delay(first_byte=0.5))
    with httpx.Client(base_url=tgi.url, timeout=0.1) as c, pytest.raises(httpx.ReadTimeout):
        c.post("/generate", json={"inputs": "x"})
    # Like TGI, the server drops the request once its client has gone: well before the delay would end, and
    # without generating (which would take a reply a later test queues).
    assert tgi.wait_idle(timeout=2)
    assert time.monotonic() - start < 0.45
    assert tgi.disconnects == 1


# -- TGI errors ------------------------------------------------------------------------------------


def test_overloaded_is_429_without_retry_after_or_a_stream_event(
    tgi: TGIServer, client: httpx.Client, sse: Any
) -> None:
    tgi.inject(Fault.overloaded(), times=2)
    plain = client.post("/generate", json={"inputs": "x"})
    assert (plain.status_code, plain.json()) == (429, {"error": "Model is overloaded", "error_type": "overloaded"})
    assert "retry-after" not in plain.headers
    stream = client.post("/generate_stream", json={"inputs": "x"})
    assert stream.status_code == 200
    assert sse(stream.text) == [{"error": "Model is overloaded", "error_type": "overloaded"}]


def test_validation_fault(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.validation("`top_p` must be > 0.0 and < 1.0"))
    body = client.post("/generate", json={"inputs": "x"}).json()
    assert body == {"error": "Input validation error: `top_p` must be > 0.0 and < 1.0", "error_type": "validation"}


def test_generation_error_is_424_and_marks_the_server_unhealthy(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.generation_error(message="CUDA out of memory"))
    response = client.post("/v1/chat/completions", json={"messages": USER})
    assert response.status_code == 424
    assert response.json() == {
        "error": "Request failed during generation: Server error: CUDA out of memory",
        "error_type": "generation",
    }
    health = client.get("/health")
    assert (health.status_code, health.json()) == (503, {"error": "unhealthy", "error_type": "healthcheck"})
    tgi.healthy = True
    assert client.get("/health").status_code == 200


def test_backend_exception_is_a_generation_error(
    tgi: TGIServer, client: httpx.Client, backend: ScriptedBackend
) -> None:
    def explode(request: Any) -> str:
        raise RuntimeError("shard died")

    backend.responder = explode
    try:
        body = client.post("/generate", json={"inputs": "x"}).json()
    finally:
        backend.responder = None
    assert body == {"error": "Request failed during generation: Server error: shard died", "error_type": "generation"}


def test_error_event_after_tokens_on_generate_stream(
    tgi: TGIServer, client: httpx.Client, backend: ScriptedBackend, sse: Any
) -> None:
    backend.queue_reply("one two three four")
    tgi.inject(Fault.error_event(after=2, error_type="generation"))
    events = sse(client.post("/generate_stream", json={"inputs": "x"}).text)
    assert [e["token"]["text"] for e in events[:-1]] == ["one"]  # the second token waits for its successor
    assert events[-1]["error_type"] == "generation"


def test_error_event_on_chat_stream_is_openai_flavoured_then_done(
    tgi: TGIServer, client: httpx.Client, backend: ScriptedBackend, sse: Any
) -> None:
    backend.queue_reply("one two three four")
    tgi.inject(Fault.error_event(after=3, error_type="generation", message="boom"))
    events = sse(client.post("/v1/chat/completions", json=CHAT).text)
    assert events[-2] == {
        "error": {"message": "Request failed during generation: Server error: boom", "http_status_code": 422}
    }
    assert events[-1] == "[DONE]"
    assert [e["choices"][0]["delta"]["content"] for e in events[:-2]] == ["one", " two"]


def test_error_event_flavour_can_be_forced(tgi: TGIServer, client: httpx.Client, sse: Any) -> None:
    tgi.inject(Fault.error_event(error_type="overloaded", flavour="tgi"))
    events = sse(client.post("/v1/chat/completions", json=CHAT).text)
    assert events[0] == {"error": "Model is overloaded", "error_type": "overloaded"}


def test_incomplete_generation(tgi: TGIServer, client: httpx.Client, sse: Any) -> None:
    tgi.inject(Fault.incomplete(), times=2)
    plain = client.post("/generate", json={"inputs": "x"})
    assert (plain.status_code, plain.json()["error_type"]) == (500, "incomplete_generation")
    events = sse(client.post("/generate_stream", json={"inputs": "x"}).text)
    assert events[-1] == {"error": "Incomplete generation stream", "error_type": "incomplete_generation_stream"}


# -- stream faults ---------------------------------------------------------------------------------


def test_disconnect_after_n_events_raises_remote_protocol_error(
    tgi: TGIServer, client: httpx.Client, backend: ScriptedBackend
) -> None:
    backend.queue_reply("a b c d e f")
    tgi.inject(Fault.disconnect(after=2))
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError), client.stream("POST", "/generate_stream", json={"inputs": "x"}) as r:
        received.extend(line for line in r.iter_lines() if line)
    assert len(received) == 2
    assert tgi.disconnects == 0  # closed by the server on purpose


def test_disconnect_on_a_non_stream_route_closes_without_response(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.disconnect())
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/generate", json={"inputs": "x"})


def test_eof_ends_cleanly_without_final_event_or_done(tgi: TGIServer, client: httpx.Client, sse: Any) -> None:
    tgi.inject(Fault.eof(), times=2)
    chat = sse(client.post("/v1/chat/completions", json=CHAT).text)
    assert chat and "[DONE]" not in chat
    assert all(e["choices"][0]["finish_reason"] is None for e in chat)
    generate = sse(client.post("/generate_stream", json={"inputs": "x"}).text)
    assert all(e["generated_text"] is None for e in generate)


def test_eof_after_n_events(tgi: TGIServer, client: httpx.Client, sse: Any) -> None:
    tgi.inject(Fault.eof(after=1))
    assert len(sse(client.post("/v1/chat/completions", json=CHAT).text)) == 1


def test_missing_done(tgi: TGIServer, client: httpx.Client, sse: Any) -> None:
    tgi.inject(Fault.missing_done())
    events = sse(client.post("/v1/chat/completions", json=CHAT).text)
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


def test_done_without_space(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.done_without_space())
    assert client.post("/v1/chat/completions", json=CHAT).text.endswith("\n\ndata:[DONE]\n\n")


def test_partial_line(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.partial_line(after=1))
    text = client.post("/generate_stream", json={"inputs": "x"}).text
    first, rest = text.split("\n\n", 1)
    assert first.startswith("data: {")
    assert rest.startswith('data: {"ind') and not rest.endswith("\n")


def test_malformed_sse_line(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.malformed_sse(after=1))
    blocks = client.post("/generate_stream", json={"inputs": "x"}).text.split("\n\n")
    assert blocks[1] == 'data: {"index":1,"token":{"id":42,"text":" broken'


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (Fault.no_space(), lambda text: text.startswith("data:{") and "data: " not in text),
        (Fault.crlf(), lambda text: text.endswith("\r\n\r\n") and "\n\n" not in text.replace("\r\n", "")),
        (Fault.sse_fields(), lambda text: text.startswith("event: message\nid: 0\nretry: 3000\ndata: ")),
        (Fault.keep_alive(), lambda text: text.startswith(":\n\ndata: ")),
        (Fault.split_event(after=0), lambda text: text.split("\n\n")[0].count("\ndata: ") == 1),
    ],
)
def test_framing_faults(tgi: TGIServer, client: httpx.Client, fault: Fault, check: Any) -> None:
    tgi.inject(fault)
    assert check(client.post("/v1/chat/completions", json=CHAT).text)


def test_slow_tokens(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.slow_tokens(0.05))
    started = time.monotonic()
    client.post("/generate", json={"inputs": "x"})  # six tokens
    assert time.monotonic() - started >= 0.3


def test_idle_streams_get_keep_alive_comments() -> None:
    backend = ScriptedBackend()
    with TGIServer(backend=backend, keep_alive_interval=0.05) as server:
        backend.queue_reply("a b", delay=0.1)
        text = httpx.post(server.url + "/generate_stream", json={"inputs": "x"}).text
    assert text.startswith(":\n\n")


# -- selection: header spec, inject(times, route), recording -------------------------------------


def test_fault_header_selects_a_fault_per_request(tgi: TGIServer, client: httpx.Client) -> None:
    response = client.post("/generate", json={"inputs": "x"}, headers={"X-TGI-Fault": "loading(estimated_time=1.5)"})
    assert response.json()["estimated_time"] == 1.5
    assert client.post("/generate", json={"inputs": "x"}).status_code == 200


def test_fault_header_combines_faults(tgi: TGIServer, client: httpx.Client, sse: Any) -> None:
    spec = "missing_done; error_event(after=0, error_type='validation', message='nope')"
    events = sse(client.post("/v1/chat/completions", json=CHAT, headers={"X-TGI-Fault": spec}).text)
    assert events == [{"error": {"message": "Input validation error: nope", "http_status_code": 422}}]


def test_bad_fault_header_is_a_400(client: httpx.Client) -> None:
    response = client.post("/generate", json={"inputs": "x"}, headers={"X-TGI-Fault": "explode()"})
    assert response.status_code == 400
    assert response.text.startswith("Invalid x-tgi-fault header: unknown fault 'explode'")


def test_fault_spec_parsing() -> None:
    fault = Fault.parse("status(503, {'error': 'x'}); delay(first_byte=0.1); disconnect(after=2)")
    assert (fault.status_code, fault.body, fault.first_byte_delay, fault.disconnect_after) == (
        503,
        b'{"error":"x"}',
        0.1,
        2,
    )
    with pytest.raises(FaultSpecError):
        Fault.parse("status(__import__('os'))")
    with pytest.raises(FaultSpecError):
        Fault.parse("")


def test_inject_times_and_route(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.status(503), times=2, route="/v1/chat/completions")
    assert client.post("/generate", json={"inputs": "x"}).status_code == 200
    statuses = [client.post("/v1/chat/completions", json={"messages": USER}).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_faulted_requests_are_recorded(tgi: TGIServer, client: httpx.Client) -> None:
    tgi.inject(Fault.status(503), times=2)
    for _ in range(3):
        client.post("/generate", json={"inputs": "x"}, headers={"X-Custom": "v"})
    assert [r.fault for r in tgi.requests] == ["status(503)", "status(503)", None]
    last = tgi.last_request
    assert last is not None
    assert (last.method, last.path, last.query, last.json) == ("POST", "/generate", "", {"inputs": "x"})
    assert last.headers["x-custom"] == "v" and last.body == b'{"inputs":"x"}'


def test_recording_keeps_query_and_non_json_bodies(tgi: TGIServer, client: httpx.Client) -> None:
    client.post("/generate?a=1", content=b"not json", headers={"content-type": "text/plain"})
    last = tgi.last_request
    assert last is not None and (last.query, last.json, last.body) == ("a=1", None, b"not json")
    tgi.clear()
    assert tgi.requests == [] and tgi.last_request is None


# -- disconnects and lifecycle ----------------------------------------------------------------------


def test_server_counts_client_disconnects_and_stops_generating(tgi: TGIServer, backend: ScriptedBackend) -> None:
    backend.queue_reply("a b c d e f g h", delay=0.05)
    with httpx.Client(base_url=tgi.url) as c, c.stream("POST", "/generate_stream", json={"inputs": "x"}) as r:
        lines = r.iter_lines()
        next(lines)
    assert _wait_for(lambda: tgi.disconnects == 1)
    assert _wait_for(lambda: tgi.in_flight == 0)


def test_open_connections_are_tracked(tgi: TGIServer) -> None:
    with httpx.Client(base_url=tgi.url) as c:
        c.get("/health")
        assert tgi.open_connections >= 1
    assert _wait_for(lambda: tgi.open_connections == 0)


def test_stop_refuses_connections_and_start_reuses_the_port() -> None:
    server = TGIServer().start()
    url = server.url
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health")
    server.start()
    try:
        assert server.url == url
        assert httpx.get(url + "/health").status_code == 200
    finally:
        server.stop()
