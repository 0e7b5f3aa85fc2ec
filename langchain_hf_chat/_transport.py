"""The one place that talks to the network.

A :class:`Transport` owns one pooled ``httpx.Client`` and one ``httpx.AsyncClient`` (created lazily, on first
use), the headers and token policy, timeouts, retries with backoff, and streaming. Failures are mapped to
:mod:`langchain_hf_chat.errors` through one table, in :mod:`langchain_hf_chat._error_mapping` (its
`error_from_response` and `error_from_event` are re-exported here). Request building and response parsing live
elsewhere as pure functions; sync and async differ here only in the send.

Token policy: a Hugging Face token is attached only to Hugging Face hosts (``huggingface.co`` and subdomains,
``*.endpoints.huggingface.cloud``, ``*.hf.space``), or to any host when the user passed it explicitly for that
client. A token found only in the environment never reaches a self-hosted server. httpx drops the
``Authorization`` header on redirects to another origin.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx

from langchain_hf_chat import errors
from langchain_hf_chat._error_mapping import (
    _connection_error,
    _cut_stream,
    _redact_url,
    error_from_event,
    error_from_response,
)
from langchain_hf_chat._sse import DONE, SSEDecoder

__all__ = [
    "DONE",
    "HF_HOST_SUFFIXES",
    "RetryPolicy",
    "Transport",
    "error_from_event",
    "error_from_response",
    "is_hf_host",
]

logger = logging.getLogger("langchain_hf_chat")

HF_HOST_SUFFIXES: tuple[str, ...] = ("huggingface.co", "endpoints.huggingface.cloud", "hf.space")

TokenPolicy = Literal["auto", "always", "never"]

_T = TypeVar("_T")


def is_hf_host(url: str) -> bool:
    """Whether ``url`` points at a Hugging Face host, where the user's HF token belongs.

    >>> is_hf_host("https://router.huggingface.co/v1"), is_hf_host("http://127.0.0.1:8080")
    (True, False)
    >>> is_hf_host("https://huggingface.co.evil.example")
    False
    """
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return any(host == suffix or host.endswith("." + suffix) for suffix in HF_HOST_SUFFIXES)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry.

    Retried: connection failures before any response byte, 429 (honouring ``Retry-After``), 502, 503
    (honouring ``estimated_time`` up to ``max_wait``), 504. Never retried: other 4xx, and a stream that has
    already yielded data.
    """

    max_retries: int = 2
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    #: Ceiling on any single wait, including server hints such as ``Retry-After`` and ``estimated_time``.
    max_wait: float = 60.0
    jitter: float = 0.25
    #: Wait for a loading model (503): keep retrying, beyond ``max_retries``, until this many seconds have been
    #: spent waiting in total. ``None``: 503s count against ``max_retries`` like any other retry.
    max_load_wait: float | None = None

    def delay(self, attempt: int, hint: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if hint is not None and hint >= 0:
            return min(hint, self.max_wait)
        base = min(self.initial_backoff * float(2 ** (attempt - 1)), self.max_backoff)
        return min(base * (1 + random.uniform(0, self.jitter)), self.max_wait)  # noqa: S311


_RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


def _retryable(exc: errors.HuggingFaceError) -> bool:
    if isinstance(exc, (errors.ConnectionError, errors.TimeoutError)):
        return exc.status_code is None
    return exc.status_code in _RETRYABLE_STATUS and not isinstance(exc, errors.ValidationError)


@dataclass
class _Retries:
    """Retry bookkeeping for one call: how many retries so far, and how long spent waiting for a loading model."""

    policy: RetryPolicy
    count: int = 0
    loading_retries: int = 0
    loading_waited: float = 0.0

    def next_wait(self, exc: errors.HuggingFaceError) -> float | None:
        """Seconds to wait before retrying after ``exc``, or ``None`` to give up and raise it."""
        if not _retryable(exc):
            return None
        budget = self.policy.max_load_wait
        if budget is not None and isinstance(exc, errors.ModelLoadingError):
            remaining = budget - self.loading_waited
            if remaining <= 0:
                return None
            self.loading_retries += 1
            wait = min(self.policy.delay(self.loading_retries, exc.retry_after), remaining)
            self.loading_waited += wait
            return wait
        self.count += 1
        if self.count > self.policy.max_retries:
            return None
        return self.policy.delay(self.count, exc.retry_after)


# --- transport -----------------------------------------------------------------------------------------------


#: How often the async pool probes all its idle connections for expiry (httpcore: on every request).
_EXPIRY_SWEEP_SECONDS = 0.1


class _LinearAsyncConnectionPool(httpcore.AsyncConnectionPool):
    """httpcore 1.0's async pool, with its bookkeeping made linear in the number of connections.

    On every request start and end, httpcore 1.0.x counts the pool's connections with a list comprehension
    for *each* idle connection (``len([c.is_idle() for c in connections])``), which is quadratic, and probes
    the socket of every idle connection for a server-side close. With 64 concurrent requests that bookkeeping
    cost more client CPU than the requests themselves (4x lower throughput than ``AsyncInferenceClient``).

    Here the count is ``len(self._connections)`` (what the comprehension computes), and the full expiry sweep
    runs at most every :data:`_EXPIRY_SWEEP_SECONDS`; in between, a connection is probed just before it is
    reused, so a request is never sent on a connection the server closed. Otherwise the decisions are
    httpcore 1.0.9's, in the same order.
    """

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing_connections: list[httpcore.AsyncConnectionInterface] = []
        connections = self._connections
        now = time.monotonic()
        sweep = now >= getattr(self, "_next_expiry_sweep", 0.0)
        if sweep:
            self._next_expiry_sweep = now + _EXPIRY_SWEEP_SECONDS
        for connection in list(connections):
            if connection.is_closed():
                connections.remove(connection)
            elif (sweep and connection.has_expired()) or (
                connection.is_idle() and len(connections) > self._max_keepalive_connections
            ):
                connections.remove(connection)
                closing_connections.append(connection)

        # A connection handed to a request that has not started on it yet still looks idle. httpcore 1.0 hands
        # it to the next queued request too, which then fails with ConnectionNotAvailable and comes back here:
        # under concurrency, a retry storm. Skip connections that are already spoken for.
        reserved = {id(request.connection) for request in self._requests if request.connection is not None}
        for pool_request in [request for request in self._requests if request.is_queued()]:
            origin = pool_request.request.url.origin
            available = None
            idle = None
            for connection in list(connections):
                if id(connection) in reserved:
                    continue
                if available is None and connection.can_handle_request(origin) and connection.is_available():
                    if not sweep and connection.has_expired():
                        connections.remove(connection)
                        closing_connections.append(connection)
                        continue
                    available = connection
                if idle is None and connection.is_idle():
                    idle = connection
                if available is not None and idle is not None:
                    break
            if available is not None:
                connection = available
            elif len(connections) < self._max_connections:
                connection = self.create_connection(origin)
                connections.append(connection)
            elif idle is not None:
                connections.remove(idle)
                closing_connections.append(idle)
                connection = self.create_connection(origin)
                connections.append(connection)
            else:
                continue  # the pool is full: the request waits for a connection to be released
            pool_request.assign_to_connection(connection)
            reserved.add(id(connection))
        return closing_connections


def _use_linear_pool(client: httpx.AsyncClient) -> None:
    """Give the client's stock httpcore 1.0 pool the bookkeeping of :class:`_LinearAsyncConnectionPool`.

    The pool keeps its state and settings; anything else (another httpcore, a custom transport) is left alone.
    """
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if type(pool) is httpcore.AsyncConnectionPool and httpcore.__version__.startswith("1.0."):
        pool.__class__ = _LinearAsyncConnectionPool


@dataclass
class Transport:
    """Pooled HTTP clients with one token policy, timeout, retry and error-mapping path."""

    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] | None = None
    token: str | None = None
    #: "auto": send ``token`` to HF hosts, or anywhere when ``token_explicit``; "always"; "never".
    token_policy: TokenPolicy = "auto"
    token_explicit: bool = False
    timeout: float | None = 120.0
    connect_timeout: float | None = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Test seam: sleep function used between retries.
    sleep: Callable[[float], None] = time.sleep
    _client: httpx.Client | None = field(default=None, init=False, repr=False)
    _aclients: dict[int, httpx.AsyncClient] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __repr__(self) -> str:
        return f"Transport(timeout={self.timeout!r}, retries={self.retry.max_retries})"

    # -- configuration -------------------------------------------------------------------------------------

    def _httpx_timeout(self, timeout: float | None) -> httpx.Timeout:
        read = self.timeout if timeout is None else timeout
        connect = self.connect_timeout if self.connect_timeout is not None else read
        if read is not None and connect is not None:
            connect = min(connect, read)
        return httpx.Timeout(read, connect=connect)

    def request_headers(self, url: str) -> dict[str, str]:
        """Headers for a request to ``url``: defaults, the token where the policy allows, user headers last."""
        headers = {"content-type": "application/json", "user-agent": _USER_AGENT}
        if self.token and self._token_allowed(url):
            headers["authorization"] = f"Bearer {self.token}"
        for key, value in self.headers.items():
            headers[key.lower()] = value
        return headers

    def _token_allowed(self, url: str) -> bool:
        if self.token_policy == "never":
            return False
        if self.token_policy == "always" or self.token_explicit:
            return True
        return is_hf_host(url)

    @property
    def client(self) -> httpx.Client:
        """The pooled sync client, created on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(
                        follow_redirects=True,
                        cookies=dict(self.cookies) if self.cookies else None,
                        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                    )
        return self._client

    @property
    def aclient(self) -> httpx.AsyncClient:
        """The pooled async client for the running event loop, created on first use."""
        loop_id = id(asyncio.get_running_loop())
        client = self._aclients.get(loop_id)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                follow_redirects=True,
                cookies=dict(self.cookies) if self.cookies else None,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=64),
            )
            _use_linear_pool(client)
            # One client per event loop: httpx async pools cannot cross loops (pytest, asyncio.run).
            if len(self._aclients) > 8:
                self._aclients.clear()
            self._aclients[loop_id] = client
        return client

    def close(self) -> None:
        """Close pooled connections (sync client; async clients close with their loop)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async client of the running loop."""
        client = self._aclients.pop(id(asyncio.get_running_loop()), None)
        if client is not None:
            await client.aclose()

    # -- retries --------------------------------------------------------------------------------------------

    def _log_retry(self, exc: errors.HuggingFaceError, retries: _Retries, wait: float) -> None:
        if retries.loading_retries and isinstance(exc, errors.ModelLoadingError):
            logger.warning(
                "Model loading: retrying in %.2fs (waited %.2fs of %.2fs)",
                wait,
                retries.loading_waited - wait,
                retries.policy.max_load_wait,
            )
            return
        logger.warning(
            "Retrying after %s (attempt %d of %d, waiting %.2fs)",
            type(exc).__name__,
            retries.count,
            self.retry.max_retries,
            wait,
        )

    # -- sync -----------------------------------------------------------------------------------------------

    def post_json(self, url: str, body: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        """POST ``body`` and return the decoded JSON response, retrying transient failures."""
        return self._with_retries(lambda: self._post_once(url, body, timeout))

    def get_json(self, url: str, *, timeout: float | None = None) -> Any:
        """GET ``url`` and return the decoded JSON response."""

        def once() -> Any:
            try:
                response = self.client.get(url, headers=self.request_headers(url), timeout=self._httpx_timeout(timeout))
            except httpx.TransportError as exc:
                raise _connection_error(exc, url) from None
            if response.status_code >= 400:
                raise error_from_response(response.status_code, response.content, response.headers, url)
            return response.json()

        return self._with_retries(once)

    def _with_retries(self, call: Callable[[], _T]) -> _T:
        retries = _Retries(self.retry)
        while True:
            try:
                return call()
            except errors.HuggingFaceError as exc:
                wait = retries.next_wait(exc)
                if wait is None:
                    raise
                self._log_retry(exc, retries, wait)
                self.sleep(wait)

    def _post_once(self, url: str, body: Mapping[str, Any], timeout: float | None) -> Any:
        try:
            response = self.client.post(
                url,
                content=_dumps(body),
                headers=self.request_headers(url),
                timeout=self._httpx_timeout(timeout),
            )
        except httpx.TransportError as exc:
            raise _connection_error(exc, url) from None
        return _json_body(response, url)

    def stream_events(
        self,
        url: str,
        body: Mapping[str, Any],
        *,
        timeout: float | None = None,
        is_final: Callable[[Any], bool] | None = None,
    ) -> Iterator[Any]:
        """POST ``body`` and yield decoded SSE payloads, then :data:`DONE` if the server sent it.

        Retries happen only before the first event; once data has been yielded, failures propagate. Closing
        the generator closes the connection. The last event (``[DONE]``, or one ``is_final`` accepts) is
        yielded only after the rest of the body has been read, so the connection goes back to the pool even
        when the consumer stops right there.
        """
        retries = _Retries(self.retry)
        while True:
            yielded = False
            try:
                with self.client.stream(
                    "POST",
                    url,
                    content=_dumps(body),
                    headers=self.request_headers(url),
                    timeout=self._httpx_timeout(timeout),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise error_from_response(response.status_code, response.content, response.headers, url)
                    decoder = SSEDecoder()
                    try:
                        texts = response.iter_text()
                        for text in texts:
                            for payload in decoder.feed(text):
                                if not yielded:
                                    _raise_if_overloaded(payload, url)
                                yielded = True
                                if payload is DONE or (is_final is not None and is_final(payload)):
                                    _drain(texts)
                                    yield payload
                                    return
                                yield payload
                        tail = decoder.close()
                        if tail is not None:
                            yield tail
                    except httpx.TransportError as exc:
                        if yielded:
                            raise _cut_stream(exc, url) from None
                        raise _connection_error(exc, url) from None
                return
            except errors.HuggingFaceError as exc:
                wait = None if yielded else retries.next_wait(exc)
                if wait is None:
                    raise
                self._log_retry(exc, retries, wait)
                self.sleep(wait)
            except httpx.TransportError as exc:
                err = _connection_error(exc, url)
                wait = retries.next_wait(err)
                if wait is None:
                    raise err from None
                self._log_retry(err, retries, wait)
                self.sleep(wait)

    # -- async ----------------------------------------------------------------------------------------------

    async def apost_json(self, url: str, body: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        """Async :meth:`post_json`."""
        retries = _Retries(self.retry)
        while True:
            try:
                return await self._apost_once(url, body, timeout)
            except errors.HuggingFaceError as exc:
                wait = retries.next_wait(exc)
                if wait is None:
                    raise
                self._log_retry(exc, retries, wait)
                await asyncio.sleep(wait)

    async def aget_json(self, url: str, *, timeout: float | None = None) -> Any:
        """Async :meth:`get_json` (no retries: used for cheap metadata lookups)."""
        try:
            response = await self.aclient.get(
                url, headers=self.request_headers(url), timeout=self._httpx_timeout(timeout)
            )
        except httpx.TransportError as exc:
            raise _connection_error(exc, url) from None
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, response.headers, url)
        return response.json()

    async def _apost_once(self, url: str, body: Mapping[str, Any], timeout: float | None) -> Any:
        try:
            response = await self.aclient.post(
                url,
                content=_dumps(body),
                headers=self.request_headers(url),
                timeout=self._httpx_timeout(timeout),
            )
        except httpx.TransportError as exc:
            raise _connection_error(exc, url) from None
        return _json_body(response, url)

    async def astream_events(
        self,
        url: str,
        body: Mapping[str, Any],
        *,
        timeout: float | None = None,
        is_final: Callable[[Any], bool] | None = None,
    ) -> AsyncIterator[Any]:
        """Async :meth:`stream_events`. Cancelling the consuming task closes the connection."""
        retries = _Retries(self.retry)
        while True:
            yielded = False
            try:
                async with self.aclient.stream(
                    "POST",
                    url,
                    content=_dumps(body),
                    headers=self.request_headers(url),
                    timeout=self._httpx_timeout(timeout),
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise error_from_response(response.status_code, response.content, response.headers, url)
                    decoder = SSEDecoder()
                    try:
                        atexts = response.aiter_text()
                        async for text in atexts:
                            for payload in decoder.feed(text):
                                if not yielded:
                                    _raise_if_overloaded(payload, url)
                                yielded = True
                                if payload is DONE or (is_final is not None and is_final(payload)):
                                    await _adrain(atexts)
                                    yield payload
                                    return
                                yield payload
                        tail = decoder.close()
                        if tail is not None:
                            yield tail
                    except httpx.TransportError as exc:
                        if yielded:
                            raise _cut_stream(exc, url) from None
                        raise _connection_error(exc, url) from None
                return
            except errors.HuggingFaceError as exc:
                wait = None if yielded else retries.next_wait(exc)
                if wait is None:
                    raise
                self._log_retry(exc, retries, wait)
                await asyncio.sleep(wait)
            except httpx.TransportError as exc:
                err = _connection_error(exc, url)
                wait = retries.next_wait(err)
                if wait is None:
                    raise err from None
                self._log_retry(err, retries, wait)
                await asyncio.sleep(wait)


def _raise_if_overloaded(payload: Any, url: str) -> None:
    """Raise an overload event that comes before any token as the 429 it stands for, so it is retried.

    TGI reports overload on stream routes as 200 + an error event (protocol §5.2).
    """
    if not isinstance(payload, dict) or payload.get("error") is None:
        return
    err = error_from_event(payload, url)
    if isinstance(err, errors.OverloadedError):
        err.status_code = 429
        raise err


#: After the last event, read at most this much more before giving up on reusing the connection.
_DRAIN_LIMIT = 64 * 1024


def _json_body(response: httpx.Response, url: str) -> Any:
    """The decoded JSON of a finished response, or the typed error for it (shared by sync and async sends)."""
    if response.status_code >= 400:
        raise error_from_response(response.status_code, response.content, response.headers, url)
    try:
        return json.loads(response.content)
    except ValueError:
        raise errors.ServerError(
            f"the server answered with a body that is not JSON: {response.text[:200]!r}",
            status_code=response.status_code,
            url=_redact_url(url),
        ) from None


def _drain(texts: Iterator[str]) -> None:
    """Read what follows the last event, so the pooled connection can be reused.

    Normally that is just the end of the chunked body; a server that keeps talking is cut off after
    ``_DRAIN_LIMIT`` characters.
    """
    seen = 0
    for text in texts:
        seen += len(text)
        if seen > _DRAIN_LIMIT:
            return


async def _adrain(texts: AsyncIterator[str]) -> None:
    """Async :func:`_drain`."""
    seen = 0
    async for text in texts:
        seen += len(text)
        if seen > _DRAIN_LIMIT:
            return


def _dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _user_agent() -> str:
    from importlib import metadata

    try:
        version = metadata.version("langchain-hf-chat")
    except metadata.PackageNotFoundError:  # pragma: no cover
        version = "0"
    return f"langchain-hf-chat/{version}"


_USER_AGENT = _user_agent()
