"""Images: content blocks reach the server in chat-completions mode; template mode refuses them up front."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
from langchain_hf_chat.testing import TGIServer

PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
URL = "https://example.com/cat.png"
TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture(autouse=True)
def vision_server(server: TGIServer) -> Iterator[None]:
    """The scripted server reports a vision-language model (TGI's /info ``model_pipeline_tag``)."""
    server.backend.model_pipeline_tag = "image-text-to-text"
    yield
    server.backend.model_pipeline_tag = "text-generation"


def chat_for(server: TGIServer, **kwargs: Any) -> ChatHuggingFace:
    return ChatHuggingFace(
        llm=HuggingFaceTextGenInference(inference_server_url=server.url), model_id="org/vision", **kwargs
    )


def sent_content(server: TGIServer) -> Any:
    request = [r for r in server.requests if r.path == "/v1/chat/completions"][-1]
    return request.json["messages"][-1]["content"]


@pytest.mark.parametrize(
    ("block", "url"),
    [
        ({"type": "image", "base64": PNG_BASE64, "mime_type": "image/png"}, f"data:image/png;base64,{PNG_BASE64}"),
        ({"type": "image", "url": URL}, URL),
        ({"type": "image_url", "image_url": {"url": URL}}, URL),
        ({"type": "image_url", "image_url": URL}, URL),
    ],
    ids=["standard-base64", "standard-url", "openai-image-url", "openai-image-url-string"],
)
def test_image_blocks_reach_the_server_as_image_url(server: TGIServer, block: dict[str, Any], url: str) -> None:
    message = HumanMessage(content=[{"type": "text", "text": "What is this?"}, block])
    chat_for(server).invoke([message])
    assert sent_content(server) == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]


def test_jpeg_base64_keeps_its_mime_type(server: TGIServer) -> None:
    block = {"type": "image", "base64": "AAAA", "mime_type": "image/jpeg"}
    chat_for(server).invoke([HumanMessage(content=[{"type": "text", "text": "Hi"}, block])])
    assert sent_content(server)[1]["image_url"]["url"] == "data:image/jpeg;base64,AAAA"


async def test_images_in_async_streams(server: TGIServer) -> None:
    message = HumanMessage(content=[{"type": "text", "text": "Describe"}, {"type": "image", "url": URL}])
    chunks = [c async for c in chat_for(server).astream([message])]
    assert chunks
    assert sent_content(server)[1] == {"type": "image_url", "image_url": {"url": URL}}


def test_text_only_content_stays_a_string(server: TGIServer) -> None:
    chat_for(server).invoke([HumanMessage(content=[{"type": "text", "text": "Hello"}])])
    assert sent_content(server) == "Hello"


def test_template_mode_refuses_images_before_any_request(server: TGIServer) -> None:
    message = HumanMessage(content=[{"type": "text", "text": "What is this?"}, {"type": "image", "url": URL}])
    with pytest.raises(ValueError, match="chat-completions mode"):
        chat_for(server, chat_template=TEMPLATE).invoke([message])
    assert [r.path for r in server.requests if r.method == "POST"] == []


def test_template_mode_refuses_openai_image_blocks_too(server: TGIServer) -> None:
    message = HumanMessage(content=[{"type": "image_url", "image_url": {"url": URL}}])
    with pytest.raises(ValueError, match="image content cannot be rendered into a text prompt"):
        chat_for(server, chat_template=TEMPLATE).invoke([message])


def test_image_block_without_data_is_a_clear_error(server: TGIServer) -> None:
    with pytest.raises(ValueError, match="needs `url` or `base64`"):
        chat_for(server).invoke([HumanMessage(content=[{"type": "image", "mime_type": "image/png"}])])
    assert server.requests == []
