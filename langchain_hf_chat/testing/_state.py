"""The test server's shared state: configuration, recorded requests, injected faults, permits, connections.

Everything here is touched from the server's event-loop thread and from the test's thread, so mutable
state is guarded by one lock.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from langchain_hf_chat.testing._validation import Limits
from langchain_hf_chat.testing.backends.base import Backend
from langchain_hf_chat.testing.faults import Fault

__all__ = ["RecordedRequest", "ServerConfig", "ServerState", "TGIVersion"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received, faulted or not.

    Attributes:
        method: ``"GET"``, ``"POST"``, ...
        path: the URL path, e.g. ``"/v1/chat/completions"``.
        query: the raw query string (``""`` when there is none).
        headers: header names in lower case; repeated headers joined with ``", "``.
        body: the raw body.
        json: the body parsed as JSON, or ``None`` when it is not JSON.
        fault: the name of the fault applied to this request, if any.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any | None
    fault: str | None = None
    received_at: float = field(default_factory=time.time)


_REPORTED_VERSIONS = {
    (3, 3): "3.3.6-dev0",
    (3, 2): "3.2.3",
    (3, 1): "3.1.1",
    (3, 0): "3.0.2",
    (2, 4): "2.4.1",
    (2, 3): "2.3.1",
    (2, 2): "2.2.0",
    (2, 1): "2.1.1",
    (2, 0): "2.0.4",
}


@dataclass(frozen=True)
class TGIVersion:
    """Which TGI release the server imitates, and the wire differences that follow (README §8)."""

    reported: str
    key: tuple[int, int, int]

    @classmethod
    def parse(cls, version: str) -> TGIVersion:
        """``"3.3"`` → 3.3.6-dev0 (what a 3.3.7 build reports); ``"2.0"`` → 2.0.4; full versions kept."""
        numbers = [int(n) for n in re.findall(r"\d+", version)[:3]]
        if len(numbers) < 2:
            raise ValueError(f"unsupported TGI version {version!r}")
        if len(numbers) == 2:
            reported = _REPORTED_VERSIONS.get((numbers[0], numbers[1]), f"{version}.0")
            numbers = [int(n) for n in re.findall(r"\d+", reported)[:3]]
        else:
            reported = version
        return cls(reported=reported, key=(numbers[0], numbers[1], numbers[2]))

    def at_least(self, major: int, minor: int, patch: int = 0) -> bool:
        """Whether this version is ``major.minor.patch`` or later."""
        return self.key >= (major, minor, patch)

    @property
    def sse_space(self) -> bool:
        """``data: {...}`` (2.1+, axum 0.7) rather than ``data:{...}``."""
        return self.at_least(2, 1)

    @property
    def chat_done(self) -> bool:
        """``data: [DONE]`` ends chat streams (2.2+)."""
        return self.at_least(2, 2)

    @property
    def eos_is_stop(self) -> bool:
        """Chat ``finish_reason`` is ``stop`` for EOS (2.3+), not ``eos_token``."""
        return self.at_least(2, 3)

    @property
    def chunk_usage(self) -> bool:
        """Chunks carry ``usage`` (null) and ``stream_options.include_usage`` works (2.3+)."""
        return self.at_least(2, 3)

    @property
    def openai_stream_errors(self) -> bool:
        """Chat/completions in-stream errors are ``{"error":{"message","http_status_code"}}`` (2.4.1+)."""
        return self.at_least(2, 4, 1)

    @property
    def auto_max_new_tokens(self) -> bool:
        """Omitted ``max_new_tokens`` fills the context (3.0+) rather than defaulting to 100."""
        return self.at_least(3, 0)

    @property
    def tool_style(self) -> str:
        """``"3.2"`` (list, string arguments), ``"2.1"`` (object arguments) or ``"2.0"``."""
        if self.at_least(3, 2):
            return "3.2"
        return "2.1" if self.at_least(2, 1) else "2.0"


@dataclass
class ServerConfig:
    """What :class:`~langchain_hf_chat.testing.TGIServer` was built with."""

    backend: Backend
    api_key: str | None = None
    max_stop_sequences: int = 4
    max_concurrent_requests: int = 128
    max_best_of: int = 2
    max_top_n_tokens: int = 5
    max_client_batch_size: int = 4
    payload_limit: int = 2_000_000
    version: TGIVersion = field(default_factory=lambda: TGIVersion.parse("3.3"))
    compute_type: str = "gpu+optimized"
    keep_alive_interval: float = 15.0
    enable_prefill_logprobs: bool = False
    disable_grammar_support: bool = False
    docker_label: str | None = None
    #: Router mode: the Inference Providers router's routes and errors, and the Hub's model-info route.
    router: bool = False
    #: Router mode: ``{repo_id: {provider: {"status", "providerId", "task", ...}}}`` (empty: the backend's model
    #: served by ``hf-inference`` for chat).
    provider_mappings: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Chat routes move ``<think>`` text into this message/delta field (``"reasoning_content"`` or
    #: ``"reasoning"``), as servers with a reasoning parser do; ``None``: inline, as TGI does.
    reasoning_field: str | None = None
    sha: str | None = "dfb3fbe78e0d1d69251bd33065591c61bafdfaa8"

    @property
    def limits(self) -> Limits:
        """Validation limits (token limits come from the backend)."""
        return Limits(
            max_best_of=self.max_best_of,
            max_stop_sequences=self.max_stop_sequences,
            max_top_n_tokens=self.max_top_n_tokens,
            max_input_tokens=self.backend.max_input_tokens,
            max_total_tokens=self.backend.max_total_tokens,
            disable_grammar_support=self.disable_grammar_support,
            auto_max_new_tokens=self.version.auto_max_new_tokens,
            chunked_max_new_tokens=self.version.at_least(3, 1, 1),
        )


@dataclass
class _Injected:
    fault: Fault
    remaining: int
    route: str | None


@dataclass
class _Connection:
    transport: asyncio.BaseTransport
    lost: asyncio.Event


class ServerState:
    """Mutable state shared by the routes and :class:`~langchain_hf_chat.testing.TGIServer`."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._injected: list[_Injected] = []
        self._in_flight = 0
        self._active = 0
        self.healthy = True
        self.disconnects = 0
        self.metrics: Counter[str] = Counter()
        self.connections: dict[tuple[str, int], _Connection] = {}

    # -- recording -------------------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        """Keep ``request`` for the test to inspect."""
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and pending injected faults; reset health and counters."""
        with self._lock:
            self._requests.clear()
            self._injected.clear()
            self.healthy = True
            self.disconnects = 0
            self.metrics.clear()

    # -- faults ----------------------------------------------------------------------------------

    def inject(self, fault: Fault, times: int = 1, route: str | None = None) -> None:
        """Apply ``fault`` to the next ``times`` requests (to ``route`` only, when given)."""
        with self._lock:
            self._injected.append(_Injected(fault, times, route))

    def take_fault(self, path: str) -> Fault | None:
        """The injected fault for a request to ``path`` (consuming one use), or ``None``."""
        with self._lock:
            for index, entry in enumerate(self._injected):
                if entry.route is None or entry.route == path:
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        del self._injected[index]
                    return entry.fault
        return None

    # -- concurrency -----------------------------------------------------------------------------

    def try_acquire(self, permits: int = 1) -> bool:
        """Take ``permits`` concurrency permits without waiting (TGI's ``try_acquire``)."""
        with self._lock:
            if self._in_flight + permits > self.config.max_concurrent_requests:
                return False
            self._in_flight += permits
            return True

    def release(self, permits: int = 1) -> None:
        """Give permits back."""
        with self._lock:
            self._in_flight -= permits

    @property
    def in_flight(self) -> int:
        """How many permits are taken."""
        with self._lock:
            return self._in_flight

    def request_started(self) -> None:
        """An HTTP request entered the server (counted until its handler returns)."""
        with self._lock:
            self._active += 1

    def request_finished(self) -> None:
        """An HTTP request's handler returned."""
        with self._lock:
            self._active -= 1

    @property
    def active_requests(self) -> int:
        """Requests whose handlers are still running (a delayed or abandoned one included)."""
        with self._lock:
            return self._active

    def count(self, metric: str, amount: int = 1) -> None:
        """Bump a ``/metrics`` counter."""
        with self._lock:
            self.metrics[metric] += amount

    def count_disconnect(self) -> None:
        """A client went away before its response was complete."""
        with self._lock:
            self.disconnects += 1

    # -- connections -----------------------------------------------------------------------------

    async def close_connection(self, client: tuple[str, int] | None) -> None:
        """Close the client's TCP connection now (flushing what was written) and wait until it is gone."""
        connection = self.connections.get(client) if client else None
        if connection is None:
            return
        connection.transport.close()
        try:
            await asyncio.wait_for(connection.lost.wait(), timeout=2.0)
        except asyncio.TimeoutError:  # pragma: no cover - the loop is stuck
            connection.transport.abort()  # type: ignore[attr-defined]
