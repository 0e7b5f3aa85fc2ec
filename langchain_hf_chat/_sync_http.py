"""The sync HTTP layer: urllib3 pools, honouring the environment's proxies and CA settings like httpx.

The sync path runs on urllib3 rather than httpx: on loopback a pooled urllib3 request costs about half
the client CPU of an httpx one (measured in ``benchmarks/``), and urllib3 is already loaded by
``langchain_core`` (through langsmith and requests), so it adds no import time. The async path stays on httpx.

Kept from the httpx client it replaces: keep-alive pooling, redirects followed with ``Authorization`` and
``Cookie`` dropped when the origin changes, ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY`` read once when the pool is
made, ``SSL_CERT_FILE``/``SSL_CERT_DIR`` or else certifi's CA bundle, separate connect and read timeouts.
No retries happen here: :class:`~langchain_hf_chat._transport.Transport` owns the retry policy.
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
)
from urllib3.util import Retry, Timeout

__all__ = ["SyncHTTP", "is_timeout", "is_transport_error", "transport_error_cause"]

#: Follow redirects (at most 20, as httpx), never retry: the caller's policy decides.
_REDIRECTS_ONLY = Retry(
    total=None,
    connect=0,
    read=0,
    other=0,
    status=0,
    redirect=20,
    raise_on_status=False,
    respect_retry_after_header=False,
)


#: ``NO_PROXY`` matching, as urllib and requests do it (present at run time, missing from typeshed).
_bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]


def _ssl_context() -> ssl.SSLContext:
    """The CA trust httpx 0.28 uses: ``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else certifi's bundle."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


class SyncHTTP:
    """Pooled sync connections: one urllib3 pool manager, plus one per proxy the environment names."""

    def __init__(self, *, maxsize: int = 100) -> None:
        self._maxsize = maxsize
        self._ssl = _ssl_context()
        self._direct = urllib3.PoolManager(num_pools=16, maxsize=maxsize, ssl_context=self._ssl)
        self._env_proxies = urllib.request.getproxies_environment()
        self._proxy_managers: dict[str, urllib3.ProxyManager] = {}
        self._route: dict[tuple[str, str], urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def _manager(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        manager = self._route.get(key)
        if manager is None:
            manager = self._direct
            proxy = self._env_proxies.get(parts.scheme) or self._env_proxies.get("all")
            host = parts.hostname or ""
            if proxy and not _bypass(host, self._env_proxies):
                with self._lock:
                    manager = self._proxy_managers.get(proxy)
                    if manager is None:
                        manager = urllib3.ProxyManager(
                            proxy, num_pools=16, maxsize=self._maxsize, ssl_context=self._ssl
                        )
                        self._proxy_managers[proxy] = manager
            self._route[key] = manager
        return manager

    def proxy_for(self, url: str) -> str | None:
        """The proxy URL a request to ``url`` goes through, or ``None`` for a direct connection."""
        manager = self._manager(url)
        proxy = getattr(manager, "proxy", None)
        return None if proxy is None else str(proxy)

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None,
        headers: Mapping[str, str],
        connect_timeout: float | None,
        read_timeout: float | None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request; with ``stream`` the body is left unread (read it, then ``release_conn``)."""
        return self._manager(url).urlopen(
            method,
            url,
            body=body,
            headers=dict(headers),
            timeout=Timeout(connect=connect_timeout, read=read_timeout),
            retries=_REDIRECTS_ONLY,
            redirect=True,
            preload_content=not stream,
            decode_content=True,
        )

    def clear(self) -> None:
        """Close every pooled connection."""
        self._direct.clear()
        with self._lock:
            for manager in self._proxy_managers.values():
                manager.clear()


#: Exceptions a urllib3 request or body read can raise for a network failure.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


def transport_error_cause(exc: BaseException) -> BaseException:
    """The failure behind urllib3's retry wrapper (``MaxRetryError.reason``), or ``exc`` itself."""
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        return exc.reason
    return exc


def is_transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a network failure of the sync layer."""
    return isinstance(exc, TRANSPORT_ERRORS)


def is_timeout(exc: BaseException) -> str | None:
    """``"connect"`` or ``"read"`` for a urllib3 timeout, else ``None``."""
    exc = transport_error_cause(exc)
    if isinstance(exc, (NewConnectionError, ProxyError)):  # NewConnectionError subclasses ConnectTimeoutError
        return None
    if isinstance(exc, ConnectTimeoutError):
        return "connect"
    if isinstance(exc, (ReadTimeoutError, TimeoutError)):
        return "read"
    return None
