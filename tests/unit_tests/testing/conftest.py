"""Fixtures for the test-server's own tests: one server per module, reset before each test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from langchain_hf_chat.testing import ScriptedBackend, TGIServer


@pytest.fixture(scope="module")
def _tgi_module() -> Iterator[TGIServer]:
    with TGIServer(backend=ScriptedBackend()) as server:
        yield server


@pytest.fixture
def tgi(_tgi_module: TGIServer) -> Iterator[TGIServer]:
    """The module's server with no recorded requests, faults or queued replies (and nothing still running)."""
    _tgi_module.wait_idle()
    _tgi_module.clear()
    yield _tgi_module
    _tgi_module.wait_idle()
    _tgi_module.clear()


@pytest.fixture
def backend(tgi: TGIServer) -> ScriptedBackend:
    assert isinstance(tgi.backend, ScriptedBackend)
    return tgi.backend


@pytest.fixture
def client(tgi: TGIServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tgi.url, timeout=10) as c:
        yield c


def _sse_payloads(text: str) -> list[Any]:
    out: list[Any] = []
    for block in text.split("\n\n"):
        if not block.startswith("data:"):
            continue
        payload = block[len("data:") :].strip()
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


@pytest.fixture
def sse() -> Any:
    """Parse an SSE body into its ``data:`` payloads: JSON values, or the raw string ``[DONE]``."""
    return _sse_payloads
