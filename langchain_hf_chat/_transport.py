"""The one place that talks to the network.

A :class:`Transport` owns the pooled connections (sync: urllib3 pools, :mod:`langchain_hf_chat._sync_http`;
async: one ``httpx.AsyncClient`` per event loop, :mod:`langchain_hf_chat._async_http`; both created on first
use), the headers and token policy, timeouts, retries with backoff, and streaming. Failures are mapped to
:mod:`langchain_hf_chat.errors` through one table, in :mod:`langchain_hf_chat._error_mapping` (its
`error_from_response` and `error_from_event` are re-exported here). Request building and response parsing live
elsewhere as pure functions; sync and async differ here only in the send.

Token policy: a Hugging Face token is attached only to Hugging Face hosts (``huggingface.co`` and subdomains,
``*.endpoints.huggingface.cloud``, ``*.hf.space``), or to any host when the user passed it explicitly for that
client. A token found only in the environment never reaches a self-hosted server. Both HTTP layers drop the
``Authorization`` header on redirects to another origin.
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import json
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

from urllib3.util import parse_url

from langchain_hf_chat import errors
from langchain_hf_chat._error_mapping import (
    _connection_error,
    _cut_stream,
    _redact_url,
    error_from_event,
    error_from_response,
)
from langchain_hf_chat._sse import DONE, SSEDecoder
from langchain_hf_chat._sync_http import TRANSPORT_ERRORS, SyncHTTP

if TYPE_CHECKING:
    import httpx
    import urllib3

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


@functools.lru_cache(maxsize=512)
def is_hf_host(url: str) -> bool:
    r"""Whether ``url`` points at a Hugging Face host, where the user's HF token belongs.

    Both URL parsers in play must agree: the standard library's (what httpx, the async layer, follows) and
    urllib3's (the sync layer). They differ on inputs such as a backslash in the authority
    (``http://evil.example\@huggingface.co/`` is ``huggingface.co`` to one and ``evil.example`` to the other).

    >>> is_hf_host("https://router.huggingface.co/v1"), is_hf_host("http://127.0.0.1:8080")
    (True, False)
    >>> is_hf_host("https://huggingface.co.evil.example")
    False
    """
    try:
        hosts = (urlsplit(url).hostname or "", parse_url(url).host or "")
    except ValueError:  # urllib3's LocationParseError is a ValueError: nothing will connect there
        return False
    return all(_hf_hostname(host) for host in hosts)


def _hf_hostname(host: str) -> bool:
    host = host.lower().rstrip(".")
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
    _sync: SyncHTTP | None = field(default=None, init=False, repr=False)
    _aclients: dict[int, httpx.AsyncClient] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __repr__(self) -> str:
        return f"Transport(timeout={self.timeout!r}, retries={self.retry.max_retries})"

    # -- configuration -------------------------------------------------------------------------------------

    def _timeouts(self, timeout: float | None) -> tuple[float | None, float | None]:
        """``(connect, read)`` seconds for one request: the call's ``timeout`` or the instance's."""
        read = self.timeout if timeout is None else timeout
        connect = self.connect_timeout if self.connect_timeout is not None else read
        if read is not None and connect is not None:
            connect = min(connect, read)
        return connect, read

    def _httpx_timeout(self, timeout: float | None) -> httpx.Timeout:
        from langchain_hf_chat._async_http import timeout as httpx_timeout  # httpx loads on first async use

        connect, read = self._timeouts(timeout)
        return httpx_timeout(read, connect)

    def request_headers(self, url: str, *, sync: bool = False) -> dict[str, str]:
        """Headers for a request to ``url``: defaults, the token where the policy allows, user headers last.

        The sync layer has no cookie jar, so for it the configured cookies travel as a ``cookie`` header
        (dropped, like ``authorization``, on a redirect to another origin).
        """
        headers = {"content-type": "application/json", "user-agent": _USER_AGENT}
        if sync:
            headers.update(_SYNC_DEFAULTS)
            if self.cookies:
                headers["cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
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
    def http(self) -> SyncHTTP:
        """The pooled sync connections, created on first use."""
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    self._sync = SyncHTTP()
        return self._sync

    @property
    def aclient(self) -> httpx.AsyncClient:
        """The pooled async client for the running event loop, created on first use."""
        loop_id = id(asyncio.get_running_loop())
        client = self._aclients.get(loop_id)
        if client is None or client.is_closed:
            from langchain_hf_chat._async_http import make_async_client  # httpx loads on first async use

            client = make_async_client(dict(self.cookies) if self.cookies else None)
            # One client per event loop: httpx async pools cannot cross loops (pytest, asyncio.run).
            if len(self._aclients) > 8:
                self._aclients.clear()
            self._aclients[loop_id] = client
        return client

    def close(self) -> None:
        """Close pooled connections (sync pools; async clients close with their loop)."""
        if self._sync is not None:
            self._sync.clear()
            self._sync = None

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
        return self._with_retries(lambda: self._send_once("POST", url, _dumps(body), timeout))

    def get_json(self, url: str, *, timeout: float | None = None) -> Any:
        """GET ``url`` and return the decoded JSON response."""
        return self._with_retries(lambda: self._send_once("GET", url, None, timeout))

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

    def _send_once(self, method: str, url: str, body: bytes | None, timeout: float | None) -> Any:
        connect, read = self._timeouts(timeout)
        try:
            response = self.http.request(
                method,
                url,
                body=body,
                headers=self.request_headers(url, sync=True),
                connect_timeout=connect,
                read_timeout=read,
            )
        except TRANSPORT_ERRORS as exc:
            raise _connection_error(exc, url) from None  # type: ignore[arg-type]
        return _json_body(response.status, response.data, response.headers, url)

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
        content = _dumps(body)
        connect, read = self._timeouts(timeout)
        while True:
            yielded = False
            try:
                try:
                    response = self.http.request(
                        "POST",
                        url,
                        body=content,
                        headers=self.request_headers(url, sync=True),
                        connect_timeout=connect,
                        read_timeout=read,
                        stream=True,
                    )
                except TRANSPORT_ERRORS as exc:
                    raise _connection_error(exc, url) from None  # type: ignore[arg-type]
                finished = False
                try:
                    if response.status >= 400:
                        data = _read_all(response, url)
                        finished = True
                        raise error_from_response(response.status, data, response.headers, url)
                    decoder = SSEDecoder()
                    try:
                        texts = _iter_text(response)
                        for text in texts:
                            for payload in decoder.feed(text):
                                if not yielded:
                                    _raise_if_overloaded(payload, url)
                                yielded = True
                                if payload is DONE or (is_final is not None and is_final(payload)):
                                    finished = _drain(texts)
                                    yield payload
                                    return
                                yield payload
                        finished = True
                        tail = decoder.close()
                        if tail is not None:
                            yield tail
                    except TRANSPORT_ERRORS as exc:
                        if yielded:
                            raise _cut_stream(exc, url) from None  # type: ignore[arg-type]
                        raise _connection_error(exc, url) from None  # type: ignore[arg-type]
                finally:
                    if not finished:
                        response.close()  # an unread body: drop the connection (the server sees the client go)
                    _release(response)
                return
            except errors.HuggingFaceError as exc:
                wait = None if yielded else retries.next_wait(exc)
                if wait is None:
                    raise
                self._log_retry(exc, retries, wait)
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
        return await self._asend_once("GET", url, None, timeout)

    async def _apost_once(self, url: str, body: Mapping[str, Any], timeout: float | None) -> Any:
        return await self._asend_once("POST", url, _dumps(body), timeout)

    async def _asend_once(self, method: str, url: str, body: bytes | None, timeout: float | None) -> Any:
        client = self.aclient
        try:
            response = await client.request(
                method,
                url,
                content=body,
                headers=self.request_headers(url),
                timeout=self._httpx_timeout(timeout),
            )
        except _async_transport_error() as exc:
            raise _connection_error(exc, url) from None
        return _json_body(response.status_code, response.content, response.headers, url)

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
        transport_error = _async_transport_error()
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
                    except transport_error as exc:
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
            except transport_error as exc:
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


def _json_body(status: int, content: bytes, headers: Mapping[str, str], url: str) -> Any:
    """The decoded JSON of a finished response, or the typed error for it (shared by sync and async sends)."""
    if status >= 400:
        raise error_from_response(status, content, headers, url)
    try:
        return json.loads(content)
    except ValueError:
        raise errors.ServerError(
            f"the server answered with a body that is not JSON: {content[:200].decode('utf-8', 'replace')!r}",
            status_code=status,
            url=_redact_url(url),
        ) from None


def _release(response: urllib3.BaseHTTPResponse) -> None:
    """Hand the connection back to its pool (a recorded response from vcrpy has no pool to go back to)."""
    release = getattr(response, "release_conn", None)
    if release is not None:
        release()


def _read_all(response: urllib3.BaseHTTPResponse, url: str) -> bytes:
    """The whole body of an error response on the sync stream path (network failures mapped)."""
    try:
        return response.read()
    except TRANSPORT_ERRORS as exc:
        raise _connection_error(exc, url) from None  # type: ignore[arg-type]


#: Bytes asked for per read of a streamed body; a read returns as soon as any bytes arrived.
_READ_SIZE = 64 * 1024


def _iter_text(response: urllib3.BaseHTTPResponse) -> Iterator[str]:
    """The body of a streamed response as text, chunk by chunk as it arrives (UTF-8, invalid bytes replaced)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    read1 = response.read1
    while True:
        data = read1(_READ_SIZE)
        if not data:
            break
        text = decoder.decode(data)
        if text:
            yield text
    text = decoder.decode(b"", final=True)
    if text:
        yield text


def _drain(texts: Iterator[str]) -> bool:
    """Read what follows the last event, so the pooled connection can be reused; whether the body ended.

    Normally that is just the end of the chunked body; a server that keeps talking is cut off after
    ``_DRAIN_LIMIT`` characters (and its connection is then dropped rather than reused).
    """
    seen = 0
    try:
        for text in texts:
            seen += len(text)
            if seen > _DRAIN_LIMIT:
                return False
    except TRANSPORT_ERRORS:
        return False
    return True


async def _adrain(texts: AsyncIterator[str]) -> None:
    """Async :func:`_drain`."""
    seen = 0
    async for text in texts:
        seen += len(text)
        if seen > _DRAIN_LIMIT:
            return


def _dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _async_transport_error() -> type[Exception]:
    """The transport error of the async layer (imported on first async use: it loads httpx)."""
    from langchain_hf_chat._async_http import TransportError

    return TransportError


#: What httpx sends by default, sent by the sync layer too (urllib3 adds no such headers).
_SYNC_DEFAULTS: dict[str, str] = {"accept": "*/*", "accept-encoding": "gzip, deflate"}


def _user_agent() -> str:
    from importlib import metadata

    try:
        version = metadata.version("langchain-hf-chat")
    except metadata.PackageNotFoundError:  # pragma: no cover
        version = "0"
    return f"langchain-hf-chat/{version}"


_USER_AGENT = _user_agent()
