"""Each LLM class through invoke, stream, batch, ainvoke, astream and abatch, against the scripted server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from langchain_core.language_models.llms import BaseLLM

from langchain_hf_chat import HuggingFaceEndpoint, HuggingFaceHub, HuggingFaceTextGenInference
from langchain_hf_chat.testing import ScriptedBackend, TGIServer

REPLY = "Deep learning is a subset of machine learning."


@pytest.fixture(scope="module")
def server() -> Iterator[TGIServer]:
    with TGIServer(backend=ScriptedBackend(model_id="HuggingFaceH4/zephyr-7b-beta", default_reply=REPLY)) as srv:
        yield srv


def make_tgi(url: str) -> BaseLLM:
    return HuggingFaceTextGenInference(inference_server_url=url, max_new_tokens=64, temperature=0.1)


def make_endpoint(url: str) -> BaseLLM:
    return HuggingFaceEndpoint(endpoint_url=url, task="text-generation", model_kwargs={"max_new_tokens": 64})


def make_hub(url: str) -> BaseLLM:
    return HuggingFaceHub(
        repo_id="HuggingFaceH4/zephyr-7b-beta",
        router_url=url,
        check_provider=False,
        model_kwargs={"max_new_tokens": 64},
    )


FACTORIES: dict[str, Callable[[str], BaseLLM]] = {"tgi": make_tgi, "endpoint": make_endpoint, "hub": make_hub}
ROUTES = {"tgi": "/generate", "endpoint": "/", "hub": "/hf-inference/models/HuggingFaceH4/zephyr-7b-beta"}


@pytest.fixture(params=sorted(FACTORIES))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_invoke(server: TGIServer, kind: str) -> None:
    assert FACTORIES[kind](server.url).invoke("What is deep learning?") == REPLY
    assert server.last_request.path == ROUTES[kind]


def test_stream(server: TGIServer, kind: str) -> None:
    chunks = list(FACTORIES[kind](server.url).stream("What is deep learning?"))
    assert len(chunks) > 3
    assert "".join(chunks) == REPLY


def test_batch(server: TGIServer, kind: str) -> None:
    assert FACTORIES[kind](server.url).batch(["a", "b", "c"]) == [REPLY] * 3


async def test_ainvoke(server: TGIServer, kind: str) -> None:
    assert await FACTORIES[kind](server.url).ainvoke("What is deep learning?") == REPLY


async def test_astream(server: TGIServer, kind: str) -> None:
    chunks = [c async for c in FACTORIES[kind](server.url).astream("What is deep learning?")]
    assert len(chunks) > 3
    assert "".join(chunks) == REPLY


async def test_abatch(server: TGIServer, kind: str) -> None:
    assert await FACTORIES[kind](server.url).abatch(["a", "b", "c"]) == [REPLY] * 3


def test_stop_in_every_call_style(server: TGIServer, kind: str) -> None:
    llm = FACTORIES[kind](server.url)
    assert llm.invoke("q", stop=[" subset"]) == "Deep learning is a"
    assert "".join(llm.stream("q", stop=[" subset"])) == "Deep learning is a"


async def test_stop_async(server: TGIServer, kind: str) -> None:
    llm = FACTORIES[kind](server.url)
    assert await llm.ainvoke("q", stop=[" subset"]) == "Deep learning is a"
    assert "".join([c async for c in llm.astream("q", stop=[" subset"])]) == "Deep learning is a"
