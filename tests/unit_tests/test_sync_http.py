"""The sync HTTP layer (urllib3) keeps what the httpx client it replaced did.

Cookies from ``server_kwargs`` are sent and dropped on a redirect to another origin; ``HTTP_PROXY`` and
``NO_PROXY`` are honoured; ``SSL_CERT_FILE`` decides the CA trust; the host that gets the token is the host
urllib3 connects to (in ``test_security.py``); connect and read failures map to the typed errors.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from _redirects import RecordingRedirects

from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceTextGenInference, errors
from langchain_hf_chat._sync_http import SyncHTTP, _ssl_context
from langchain_hf_chat.testing import TGIServer

MODEL_ID = "HuggingFaceH4/zephyr-7b-beta"


@pytest.fixture
def recorder() -> Iterator[RecordingRedirects]:
    with RecordingRedirects(reply="recorded") as server:
        yield server


def cookies_seen(recorder: RecordingRedirects) -> list[tuple[str, str | None]]:
    return [(path, headers.get("cookie")) for path, headers in recorder.requests]


@pytest.mark.parametrize("how", ["invoke", "ainvoke"])
async def test_cookies_from_server_kwargs_are_sent(server: TGIServer, how: str) -> None:
    llm = HuggingFaceTextGenInference(inference_server_url=server.url, server_kwargs={"cookies": {"a": "1", "b": "2"}})
    if how == "invoke":
        llm.invoke("Hi")
    else:
        await llm.ainvoke("Hi")
    cookie = server.requests[-1].headers.get("cookie") or ""
    assert sorted(part.strip() for part in cookie.split(";")) == ["a=1", "b=2"]


def test_cookies_are_dropped_on_a_redirect_to_another_origin(server: TGIServer, recorder: RecordingRedirects) -> None:
    recorder.target = server.url  # another port: another origin
    llm = HuggingFaceTextGenInference(
        inference_server_url=recorder.url, server_kwargs={"cookies": {"session": "s3cret"}}
    )
    server.backend.queue_reply("redirected")
    assert llm.invoke("Hi") == "redirected"
    assert cookies_seen(recorder) == [("/generate", "session=s3cret")]
    assert server.requests[-1].headers.get("cookie") is None


def test_cookies_survive_a_same_origin_redirect(recorder: RecordingRedirects) -> None:
    llm = HuggingFaceEndpoint(endpoint_url=recorder.url + "/start", server_kwargs={"cookies": {"session": "s3cret"}})
    assert llm.invoke("Hi") == "recorded"
    assert cookies_seen(recorder) == [("/start", "session=s3cret"), ("/final/start", "session=s3cret")]


@pytest.mark.parametrize("kind", ["llm", "chat-text"])
def test_the_http_proxy_environment_variable_is_honoured(
    recorder: RecordingRedirects, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # The recorder plays the forward proxy: a proxied request names the absolute URL in its request line.
    monkeypatch.setenv("HTTP_PROXY", recorder.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    target = "http://tgi.internal.example:8080"
    llm = HuggingFaceTextGenInference(inference_server_url=target, max_retries=0)
    if kind == "llm":
        assert llm.invoke("Hi") == "recorded"
    else:
        chat = ChatHuggingFace(llm=llm, model_id=MODEL_ID, mode="text", chat_template="{{ messages[0].content }}")
        assert chat.invoke("Hi").content == "recorded"
    assert [path for path, _ in recorder.requests] == [target + "/generate"]


def test_no_proxy_bypasses_the_proxy(server: TGIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there: a proxied request would fail
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    llm = HuggingFaceTextGenInference(inference_server_url=server.url, max_retries=0)
    server.backend.queue_reply("direct")
    assert llm.invoke("Hi") == "direct"
    assert SyncHTTP().proxy_for(server.url) is None
    assert SyncHTTP().proxy_for("http://elsewhere.example") == "http://127.0.0.1:9"


def test_ssl_cert_file_decides_the_ca_trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    with pytest.raises(ssl.SSLError):  # the file is read: an empty bundle is rejected
        _ssl_context()
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = _ssl_context()  # certifi's bundle
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 50


def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        llm = HuggingFaceTextGenInference(inference_server_url=f"http://127.0.0.1:{port}", max_retries=0)
        with pytest.raises(errors.ConnectionError, match="could not connect"):
            llm.invoke("Hi")
        with pytest.raises(errors.ConnectionError, match="could not connect"):
            list(llm.stream("Hi"))


def test_a_slow_reply_is_a_read_timeout(server: TGIServer) -> None:
    server.backend.queue_reply("late", delay=1.0)
    llm = HuggingFaceTextGenInference(inference_server_url=server.url, timeout=0.2, max_retries=0)
    with pytest.raises(errors.TimeoutError, match=r"timed out \(read\)"):
        llm.invoke("Hi")


def test_a_wide_sync_batch_reuses_pooled_connections_without_pool_warnings(
    server: TGIServer, caplog: pytest.LogCaptureFixture
) -> None:
    llm = HuggingFaceTextGenInference(inference_server_url=server.url, max_retries=0)
    with caplog.at_level("WARNING"):
        for _ in range(3):
            for _ in range(48):  # replies that take a while, so the 48 calls really overlap
                server.backend.queue_reply("ok", delay=0.1)
            assert llm.batch(["Hi"] * 48, config={"max_concurrency": 48}) == ["ok"] * 48
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
    pool = llm.transport.http._direct.connection_from_url(server.url)
    assert pool.num_connections <= 32  # at most one per concurrent call, kept and reused across the batches
