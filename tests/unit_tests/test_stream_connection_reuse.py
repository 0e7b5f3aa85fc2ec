"""A finished stream hands its connection back to the pool, even when the consumer stops at the last event."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3.util.connection as sync_connection

from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceTextGenInference
from langchain_hf_chat.testing import TGIServer


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every TCP connection the sync HTTP layer (urllib3) opens."""
    opened: list[Any] = []
    original = sync_connection.create_connection

    def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(sync_connection, "create_connection", counting)
    return opened


def test_generate_streams_reuse_one_connection(server: TGIServer, connections: list[Any]) -> None:
    llm = HuggingFaceTextGenInference(inference_server_url=server.url)
    for _ in range(10):
        server.backend.queue_reply("a b c")
        assert "".join(llm.stream("hi")) == "a b c"
    assert len(connections) == 1


def test_compat_route_streams_reuse_one_connection(server: TGIServer, connections: list[Any]) -> None:
    llm = HuggingFaceEndpoint(endpoint_url=server.url)
    for _ in range(10):
        server.backend.queue_reply("a b c")
        assert "".join(llm.stream("hi")) == "a b c"
    assert len(connections) == 1


def test_chat_streams_reuse_one_connection(server: TGIServer, connections: list[Any]) -> None:
    chat = ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url=server.url), model_id="a/b")
    for _ in range(10):
        server.backend.queue_reply("a b c")
        assert "".join(str(c.content) for c in chat.stream("hi")) == "a b c"
    assert len(connections) == 1
