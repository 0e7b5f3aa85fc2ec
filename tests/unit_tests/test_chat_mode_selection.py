"""How ChatHuggingFace picks its mode, and how auto mode falls back to text mode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceHub, HuggingFaceTextGenInference
from langchain_hf_chat.testing import ScriptedBackend, TGIServer

ZEPHYR = (Path(__file__).parent.parent / "fixtures" / "templates" / "zephyr-7b-beta.jinja").read_text()
MODEL = "HuggingFaceH4/zephyr-7b-beta"


def _fake_hub_cache(cache: Path, repo_id: str, files: dict[str, str]) -> None:
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, text in files.items():
        (snapshot / name).write_text(text, encoding="utf-8")


@pytest.fixture
def no_template_server() -> Iterator[TGIServer]:
    """A TGI server whose model has no chat template: its chat route answers 422 template_error."""
    with TGIServer(backend=ScriptedBackend(model_id=MODEL, chat_template=False)) as server:
        yield server


@pytest.fixture
def cached_zephyr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = {"bos_token": "<s>", "eos_token": "</s>", "chat_template": ZEPHYR}
    _fake_hub_cache(tmp_path / "hub", MODEL, {"tokenizer_config.json": json.dumps(config)})


def test_tgi_server_defaults_to_chat_mode() -> None:
    chat = ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1"))
    assert chat.resolved_mode == "chat"


def test_router_defaults_to_chat_mode() -> None:
    assert ChatHuggingFace(llm=HuggingFaceHub(repo_id=MODEL)).resolved_mode == "chat"


def test_explicit_template_selects_text_mode() -> None:
    llm = HuggingFaceEndpoint(endpoint_url="http://127.0.0.1:1")
    assert ChatHuggingFace(llm=llm, chat_template=ZEPHYR).resolved_mode == "text"
    assert ChatHuggingFace(llm=llm, template_path="/nowhere").resolved_mode == "text"


def test_non_chat_task_selects_text_mode() -> None:
    llm = HuggingFaceEndpoint(endpoint_url="http://127.0.0.1:1", task="summarization")
    assert ChatHuggingFace(llm=llm).resolved_mode == "text"


def test_explicit_mode_wins() -> None:
    llm = HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1")
    assert ChatHuggingFace(llm=llm, mode="text").resolved_mode == "text"
    assert ChatHuggingFace(llm=llm, chat_template=ZEPHYR, mode="chat").resolved_mode == "chat"


def test_auto_falls_back_to_text_mode_when_the_server_has_no_template(
    no_template_server: TGIServer, cached_zephyr: None
) -> None:
    server = no_template_server
    chat = ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url=server.url))
    server.backend.queue_reply("From text mode.")
    result = chat.invoke([HumanMessage("Hi")])
    assert result.content == "From text mode."
    paths = [r.path for r in server.requests]
    assert paths.index("/v1/chat/completions") < paths.index("/generate")
    generate = [r for r in server.requests if r.path == "/generate"][-1]
    assert generate.json["inputs"] == "<|user|>\nHi</s>\n<|assistant|>\n"
    # The choice is made once: the next call goes straight to text generation.
    server.clear()
    server.backend.queue_reply("Again.")
    assert chat.invoke("Hi").content == "Again."
    assert "/v1/chat/completions" not in [r.path for r in server.requests]
    assert chat.resolved_mode == "text"


def test_auto_falls_back_when_the_stream_route_has_no_template(
    no_template_server: TGIServer, cached_zephyr: None
) -> None:
    server = no_template_server
    chat = ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url=server.url))
    server.backend.queue_reply("streamed text")
    assert "".join(str(c.content) for c in chat.stream("Hi")) == "streamed text"
    assert chat.resolved_mode == "text"


def test_explicit_chat_mode_does_not_fall_back(no_template_server: TGIServer) -> None:
    from langchain_hf_chat.errors import TemplateError

    chat = ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url=no_template_server.url), mode="chat")
    with pytest.raises(TemplateError, match="template not found"):
        chat.invoke("Hi")
