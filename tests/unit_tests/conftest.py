"""Shared fixtures: one scripted TGI-compatible server per test module, reset between tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_hf_chat.testing import ScriptedBackend, TGIServer


@pytest.fixture(scope="module")
def _module_server() -> Iterator[TGIServer]:
    backend = ScriptedBackend(model_id="HuggingFaceH4/zephyr-7b-beta")
    with TGIServer(backend=backend) as server:
        yield server


@pytest.fixture
def server(_module_server: TGIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[TGIServer]:
    """A scripted TGI server with an empty request log and reply queue; no HF token in the environment."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGINGFACEHUB_API_TOKEN", raising=False)
    _module_server.wait_idle()  # a request abandoned by the previous test must not take this test's replies
    _module_server.clear()
    yield _module_server
    _module_server.wait_idle()
    _module_server.clear()
