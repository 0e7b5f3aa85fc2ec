"""The async connection pool: httpcore 1.0's pool with linear bookkeeping (see ``_async_http``)."""

from __future__ import annotations

import asyncio

import httpcore
import pytest
from httpcore._async import connection_pool

from langchain_hf_chat._async_http import _LinearAsyncConnectionPool
from langchain_hf_chat._transport import Transport
from langchain_hf_chat.testing import TGIServer


async def test_the_async_client_uses_the_linear_pool() -> None:
    transport = Transport()
    pool = transport.aclient._transport._pool  # type: ignore[attr-defined]
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert type(pool) is _LinearAsyncConnectionPool
    await transport.aclose()


async def test_concurrent_requests_never_share_a_connection_and_retry(
    server: TGIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpcore 1.0 hands a just-assigned idle connection to a second request, which then retries
    # (clear_connection) after ConnectionNotAvailable: thousands of retries for 512 requests at concurrency 64.
    retries = 0
    original = connection_pool.AsyncPoolRequest.clear_connection

    def counting(self: connection_pool.AsyncPoolRequest) -> None:
        nonlocal retries
        retries += 1
        original(self)

    monkeypatch.setattr(connection_pool.AsyncPoolRequest, "clear_connection", counting)
    transport = Transport()

    async def lane(index: int) -> list[str]:
        body = {"inputs": f"Hi {index}", "parameters": {}}
        return [(await transport.apost_json(server.url + "/generate", body))["generated_text"] for _ in range(4)]

    try:
        answers = await asyncio.gather(*(lane(i) for i in range(32)))
    finally:
        await transport.aclose()
    assert sum(len(a) for a in answers) == 128
    assert retries == 0


async def test_connections_are_reused_across_waves(server: TGIServer) -> None:
    transport = Transport()
    try:
        for _ in range(3):
            await asyncio.gather(
                *(transport.apost_json(server.url + "/generate", {"inputs": "Hi", "parameters": {}}) for _ in range(8))
            )
        pool = transport.aclient._transport._pool  # type: ignore[attr-defined]
        assert 1 <= len(pool.connections) <= 8
    finally:
        await transport.aclose()
