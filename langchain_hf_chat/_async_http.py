"""The async HTTP layer: httpx, imported only when the first async client is made.

httpx (and httpcore) cost ~120 ms to import and are not needed by sync callers, so nothing imports this
module until an async request is sent.
"""

from __future__ import annotations

import time

import httpcore
import httpx

__all__ = ["TransportError", "make_async_client", "timeout"]

TransportError = httpx.TransportError

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


def make_async_client(cookies: dict[str, str] | None) -> httpx.AsyncClient:
    """A pooled async client with the linear pool bookkeeping, following redirects like the sync layer."""
    client = httpx.AsyncClient(
        follow_redirects=True,
        cookies=cookies,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=64),
    )
    _use_linear_pool(client)
    return client


def timeout(read: float | None, connect: float | None) -> httpx.Timeout:
    """An httpx timeout with separate connect and read limits."""
    return httpx.Timeout(read, connect=connect)
