"""The sync HTTP layer (urllib3) keeps what the httpx client it replaced did.

Cookies from ``server_kwargs`` are sent and dropped on a redirect to another origin; ``HTTP_PROXY`` and
``NO_PROXY`` are honoured; ``SSL_CERT_FILE`` decides the CA trust; the host that gets the token is the host
urllib3 connects to (in ``test_security.py``); connect and read failures map to the typed errors.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceTextGenInference, errors
from langchain_hf_chat._sync_http import SyncHTTP, _ssl_context
from langchain_hf_chat.testing import TGIServer

MODEL_ID = "HuggingFaceH4/zephyr-7b-beta"


class _Recorder:
    """A loopback HTTP server answering like TGI's ``/generate``; ``/hop*`` paths redirect (307) to ``target``.

    It records the request line (an absolute URI when it is used as a forward proxy) and the cookie header.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.target = ""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.seen.append((self.path, self.headers.get("cookie")))
                self.rfile.read(int(self.headers.get("content-length") or 0))
                if "/hop" in self.path:
                    self.send_response(307)
                    self.send_header("location", outer.target)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"generated_text": "recorded"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    server = _Recorder()
    yield server
    server.close()


@pytest.mark.parametrize("how", ["invoke", "ainvoke"])
async def test_cookies_from_server_kwargs_are_sent(server: TGIServer, how: str) -> None:
    llm = HuggingFaceTextGenInference(inference_server_url=server.url, server_kwargs={"cookies": {"a": "1", "b": "2"}})
    if how == "invoke":
        llm.invoke("Hi")
    else:
        await llm.ainvoke("Hi")
    cookie = server.requests[-1].headers.get("cookie") or ""
    assert sorted(part.strip() for part in cookie.split(";")) == ["a=1", "b=2"]


def test_cookies_are_dropped_on_a_redirect_to_another_origin(server: TGIServer, recorder: _Recorder) -> None:
    recorder.target = server.url + "/generate"  # another port: another origin
    llm = HuggingFaceEndpoint(endpoint_url=recorder.url + "/hop", server_kwargs={"cookies": {"session": "s3cret"}})
    llm.invoke("Hi")
    assert recorder.seen == [("/hop", "session=s3cret")]
    assert server.requests[-1].headers.get("cookie") is None


def test_cookies_survive_a_same_origin_redirect(recorder: _Recorder) -> None:
    recorder.target = recorder.url + "/final"
    llm = HuggingFaceEndpoint(endpoint_url=recorder.url + "/hop", server_kwargs={"cookies": {"session": "s3cret"}})
    assert llm.invoke("Hi") == "recorded"
    assert recorder.seen == [("/hop", "session=s3cret"), ("/final", "session=s3cret")]


@pytest.mark.parametrize("kind", ["llm", "chat-text"])
def test_the_http_proxy_environment_variable_is_honoured(
    recorder: _Recorder, monkeypatch: pytest.MonkeyPatch, kind: str
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
    assert [path for path, _ in recorder.seen] == [target + "/generate"]


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
