"""`TGIServer`: the TGI-compatible app under uvicorn, on 127.0.0.1, in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from langchain_hf_chat.testing._state import (
    RecordedRequest,
    ServerConfig,
    ServerState,
    TGIVersion,
    _Connection,
)
from langchain_hf_chat.testing.app import build_app
from langchain_hf_chat.testing.backends.base import Backend
from langchain_hf_chat.testing.faults import Fault

__all__ = ["TGIServer"]


def _copy_mappings(
    mappings: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> dict[str, dict[str, dict[str, Any]]]:
    return {repo: {name: dict(entry) for name, entry in providers.items()} for repo, providers in mappings.items()}


def _protocol_class(state: ServerState) -> type[H11Protocol]:
    """The h11 protocol of uvicorn, registering each connection so routes can close it on purpose."""

    class _TrackedProtocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            self._tgi_peer = (str(peer[0]), int(peer[1])) if peer else None
            if self._tgi_peer is not None:
                state.connections[self._tgi_peer] = _Connection(transport, asyncio.Event())

        def connection_lost(self, exc: Exception | None) -> None:
            peer = getattr(self, "_tgi_peer", None)
            connection = state.connections.pop(peer, None) if peer else None
            if connection is not None:
                connection.lost.set()
            super().connection_lost(exc)

    return _TrackedProtocol


class TGIServer:
    """A local server that speaks TGI's HTTP protocol, errors included, for tests and demos.

    Args:
        backend: where generations come from; a fresh
            :class:`~langchain_hf_chat.testing.ScriptedBackend` when ``None``.
        api_key: when set, protected routes need ``Authorization: Bearer <api_key>`` (else 401, empty).
        max_stop_sequences, max_concurrent_requests, max_best_of, max_top_n_tokens,
            max_client_batch_size, payload_limit: TGI's launcher limits.
        version: the TGI release to imitate (``"3.3"`` default; ``"2.0"`` ... ``"3.2"`` change the wire
            shapes as in README §8).
        host, port: where to listen (``port=0``: a free port).
        keep_alive_interval: seconds without an SSE event before a ``:`` keep-alive comment (TGI: 15).
        router: answer as the Inference Providers router (``https://router.huggingface.co``) and the Hub's
            model-info route instead of a bare TGI: ``model`` required in chat bodies, ``:provider`` suffixes,
            ``/<provider>/v1/chat/completions``, the router's error bodies, ``GET /api/models/<id>``.
        provider_mappings: router mode: ``{repo_id: {provider: {"status", "providerId", "task", ...}}}`` as the
            Hub's ``inferenceProviderMapping`` (default: the backend's model on ``hf-inference``, for chat).
        reasoning_field: ``"reasoning_content"`` or ``"reasoning"``: chat routes send ``<think>`` text in that
            field of messages and deltas (a server with a reasoning parser: vLLM, SGLang, most providers);
            ``None`` (TGI): the reasoning stays inline in ``content``.

    Example:
        >>> import httpx
        >>> from langchain_hf_chat.testing import ScriptedBackend, TGIServer
        >>> backend = ScriptedBackend()
        >>> with TGIServer(backend=backend) as server:
        ...     backend.queue_reply("Hi there")
        ...     r = httpx.post(server.url + "/generate", json={"inputs": "Hello"})
        ...     r.json()["generated_text"], server.last_request.path
        ('Hi there', '/generate')
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        api_key: str | None = None,
        max_stop_sequences: int = 4,
        max_concurrent_requests: int = 128,
        max_best_of: int = 2,
        max_top_n_tokens: int = 5,
        max_client_batch_size: int = 4,
        payload_limit: int = 2_000_000,
        version: str = "3.3",
        host: str = "127.0.0.1",
        port: int = 0,
        keep_alive_interval: float = 15.0,
        compute_type: str = "gpu+optimized",
        enable_prefill_logprobs: bool = False,
        disable_grammar_support: bool = False,
        router: bool = False,
        provider_mappings: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
        reasoning_field: str | None = None,
    ) -> None:
        if backend is None:
            from langchain_hf_chat.testing.backends.scripted import ScriptedBackend

            backend = ScriptedBackend()
        self.backend = backend
        self.host = host
        self.port = port
        self.state = ServerState(
            ServerConfig(
                backend=backend,
                api_key=api_key,
                max_stop_sequences=max_stop_sequences,
                max_concurrent_requests=max_concurrent_requests,
                max_best_of=max_best_of,
                max_top_n_tokens=max_top_n_tokens,
                max_client_batch_size=max_client_batch_size,
                payload_limit=payload_limit,
                version=TGIVersion.parse(version),
                compute_type=compute_type,
                keep_alive_interval=keep_alive_interval,
                enable_prefill_logprobs=enable_prefill_logprobs,
                disable_grammar_support=disable_grammar_support,
                router=router,
                provider_mappings=_copy_mappings(provider_mappings or {}),
                reasoning_field=reasoning_field,
            )
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        if not self.port:
            raise RuntimeError("the server has not been started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> TGIServer:
        """Start listening (on the previous port when restarted) and return ``self``."""
        if self.running:
            return self
        sock = self._bind()
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            build_app(self.state),
            http=_protocol_class(self.state),
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            ws="none",
        )
        server = uvicorn.Server(config)
        self._server = server
        self._error = None

        def run() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as exc:  # pragma: no cover - reported by start()
                self._error = exc
            finally:
                with contextlib.suppress(OSError):
                    sock.close()

        self._thread = threading.Thread(target=run, name=f"TGIServer:{self.port}", daemon=True)
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the TGI test server failed to start: {self._error!r}")
            self._thread.join(0.005)
        return self

    def _bind(self) -> socket.socket:
        # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP; without
        # it, Nagle holds back the response body behind the headers until the client's delayed ACK (~40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            if not self.port:
                raise
            sock.bind((self.host, 0))  # the old port is taken: take a new one
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def stop(self) -> None:
        """Stop listening: new connections are refused until :meth:`start`."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():  # pragma: no cover - a stuck handler
            server.force_exit = True
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> TGIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- recording -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (faulted ones too), oldest first."""
        return self.state.requests

    @property
    def last_request(self) -> RecordedRequest | None:
        """The most recent request, or ``None``."""
        requests = self.state.requests
        return requests[-1] if requests else None

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being handled (a delayed or abandoned one included); ``False`` on timeout.

        Tests that abandon requests call it before queueing replies for the next test, so a late request
        cannot take them.
        """
        deadline = time.monotonic() + timeout
        while self.state.active_requests:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def clear(self) -> None:
        """Forget recorded requests, pending faults and queued replies; reset health and counters."""
        self.state.clear()
        clear_backend = getattr(self.backend, "clear", None)
        if callable(clear_backend):
            clear_backend()

    # -- router mode -----------------------------------------------------------------------------

    def set_provider_mapping(self, repo_id: str, mapping: Mapping[str, Mapping[str, Any]]) -> None:
        """Router mode: serve ``repo_id`` through these providers (``{provider: {"status", "task", ...}}``).

        Example:
            >>> server = TGIServer(router=True)
            >>> server.set_provider_mapping(
            ...     "org/model", {"together": {"status": "live", "providerId": "m", "task": "conversational"}}
            ... )
        """
        self.state.config.provider_mappings[repo_id] = {name: dict(entry) for name, entry in mapping.items()}

    # -- faults and health -----------------------------------------------------------------------

    def inject(self, fault: Fault, times: int = 1, route: str | None = None) -> None:
        """Apply ``fault`` to the next ``times`` requests (only requests to path ``route``, if given).

        Example:
            >>> server = TGIServer()
            >>> server.inject(Fault.loading(estimated_time=2), times=2, route="/v1/chat/completions")
        """
        self.state.inject(fault, times, route)

    @property
    def healthy(self) -> bool:
        """``GET /health`` answers 200 when true, 503 ``healthcheck`` when false.

        A generation error (from the backend or :meth:`Fault.generation_error`) sets it to false.
        """
        return self.state.healthy

    @healthy.setter
    def healthy(self, value: bool) -> None:
        self.state.healthy = value

    @property
    def disconnects(self) -> int:
        """How many clients went away before their response was complete."""
        return self.state.disconnects

    @property
    def open_connections(self) -> int:
        """How many TCP connections are open right now."""
        return len(self.state.connections)

    @property
    def in_flight(self) -> int:
        """How many generations hold a concurrency permit right now."""
        return self.state.in_flight

    def __repr__(self) -> str:
        where = self.url if self.port else "not started"
        return f"TGIServer({where}, model_id={self.backend.model_id!r})"
