"""Fixed-count load runs against the scripted TGI server: no errors, no leaked sockets or descriptors, flat memory.

Each run warms up first (the connection pool fills to the concurrency, caches settle), then measures open
sockets, file descriptors and RSS before and after the counted requests. These tests stop by themselves and
assert nothing about timing: throughput lives in the benchmarks.

Run them with ``pytest -m load tests/integration_tests/test_load.py``.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
from langchain_hf_chat.testing import Fault, ScriptedBackend, TGIServer

pytestmark = pytest.mark.load

MODEL_ID = "HuggingFaceH4/zephyr-7b-beta"
REPLY = "Hello! How can I help?"
CONCURRENCY = 64
COUNT = 1000
WARM_UP = 200
#: Slack for descriptors the interpreter or the loop open on their own (a selector, a wakeup pipe).
FD_SLACK = 8
#: Generous: the point is to catch growth per request (1,000 requests leaking 64 KB each is 64 MB).
RSS_SLACK_MB = 48


@dataclass(frozen=True)
class Usage:
    sockets: int
    fds: int
    rss_mb: float


def usage() -> Usage:
    """Open sockets and descriptors of this process (client and in-process server), and its RSS."""
    gc.collect()
    sockets = fds = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed while listing
            continue
        fds += 1
        sockets += target.startswith("socket:")
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return Usage(sockets, fds, rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20)


def assert_no_growth(before: Usage, after: Usage) -> None:
    assert after.sockets <= before.sockets + FD_SLACK, (before, after)
    assert after.fds <= before.fds + FD_SLACK, (before, after)
    assert after.rss_mb <= before.rss_mb + RSS_SLACK_MB, (before, after)


@pytest.fixture(scope="module")
def load_server() -> Iterator[TGIServer]:
    # TGI's default max_concurrent_requests (128) leaves room for 64 clients and their retries.
    backend = ScriptedBackend(model_id=MODEL_ID, default_reply=REPLY)
    with TGIServer(backend=backend, max_concurrent_requests=128) as server:
        yield server


@pytest.fixture
def server(load_server: TGIServer) -> Iterator[TGIServer]:
    load_server.clear()
    yield load_server
    load_server.clear()


def llm_for(server: TGIServer, **options: Any) -> HuggingFaceTextGenInference:
    return HuggingFaceTextGenInference(inference_server_url=server.url, max_new_tokens=32, **options)


def chat_for(server: TGIServer, **options: Any) -> ChatHuggingFace:
    return ChatHuggingFace(llm=llm_for(server, **options), model_id=MODEL_ID, mode="chat")


async def gather_limited(count: int, call: Callable[[int], Awaitable[str]]) -> list[str]:
    """``count`` calls, at most ``CONCURRENCY`` at a time (``asyncio.gather`` behind a semaphore)."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> str:
        async with limit:
            return await call(index)

    return await asyncio.gather(*(one(index) for index in range(count)))


async def fill_pools(llm: HuggingFaceTextGenInference, chat: ChatHuggingFace) -> None:
    """Streams keep their connections pooled: run each instance alone at full concurrency once, so its pool
    already holds as many connections as the counted run can ever need (more later would be a leak)."""

    async def llm_stream(index: int) -> str:
        return "".join([chunk async for chunk in llm.astream(f"Warm {index}")])

    async def chat_stream(index: int) -> str:
        return "".join([str(chunk.content) async for chunk in chat.astream(f"Warm {index}")])

    assert await gather_limited(CONCURRENCY, llm_stream) == [REPLY] * CONCURRENCY
    assert await gather_limited(CONCURRENCY, chat_stream) == [REPLY] * CONCURRENCY


async def test_abatch_of_1000_at_64_concurrent(server: TGIServer) -> None:
    llm = llm_for(server)
    config: Any = {"max_concurrency": CONCURRENCY}
    assert await llm.abatch(["Hi"] * WARM_UP, config=config) == [REPLY] * WARM_UP
    before = usage()
    results = await llm.abatch([f"Hi {i}" for i in range(COUNT)], config=config, return_exceptions=True)
    assert [r for r in results if r != REPLY] == []
    assert_no_growth(before, usage())
    assert server.in_flight == 0
    assert server.open_connections <= CONCURRENCY


async def test_1000_chat_ainvokes_with_gather_and_a_semaphore(server: TGIServer) -> None:
    chat = chat_for(server)

    async def call(index: int) -> str:
        return str((await chat.ainvoke(f"Hi {index}")).content)

    assert await gather_limited(WARM_UP, call) == [REPLY] * WARM_UP
    before = usage()
    assert await gather_limited(COUNT, call) == [REPLY] * COUNT
    assert_no_growth(before, usage())
    assert server.in_flight == 0


async def test_1000_streams_llm_and_chat(server: TGIServer) -> None:
    llm, chat = llm_for(server), chat_for(server)

    async def call(index: int) -> str:
        if index % 2:
            return "".join([chunk async for chunk in llm.astream(f"Hi {index}")])
        return "".join([str(chunk.content) async for chunk in chat.astream(f"Hi {index}")])

    assert await gather_limited(WARM_UP, call) == [REPLY] * WARM_UP
    await fill_pools(llm, chat)
    before = usage()
    assert await gather_limited(COUNT, call) == [REPLY] * COUNT
    assert_no_growth(before, usage())
    assert server.in_flight == 0
    assert server.disconnects == 0  # every stream was read to its end


async def test_1000_requests_with_10_percent_429_and_503_all_answered_after_retries(server: TGIServer) -> None:
    llm = llm_for(server, max_retries=6, max_retry_wait=0.2)
    chat = chat_for(server, max_retries=6, max_retry_wait=0.2)

    async def call(index: int) -> str:
        if index % 4 == 0:
            return "".join([chunk async for chunk in llm.astream(f"Hi {index}")])
        if index % 4 == 1:
            return str((await chat.ainvoke(f"Hi {index}")).content)
        return await llm.ainvoke(f"Hi {index}")

    assert await gather_limited(WARM_UP, call) == [REPLY] * WARM_UP
    await fill_pools(llm, chat)
    before = usage()
    # One in ten requests meets a fault, spread over the run: a 429 (Retry-After) or a loading 503.
    faults = 0
    for index in range(COUNT):
        if index % 20 == 3:
            server.inject(Fault.rate_limit(retry_after=0.05))
            faults += 1
        elif index % 20 == 13:
            server.inject(Fault.loading(estimated_time=0.05))
            faults += 1
        else:
            server.inject(Fault())  # no fault: keeps the faulty ones spread out
    results = await gather_limited(COUNT, call)
    assert results == [REPLY] * COUNT
    generations = [request for request in server.requests if request.path != "/info"]
    assert len(generations) >= COUNT + faults  # every fault cost one more attempt
    assert_no_growth(before, usage())
    assert server.in_flight == 0
