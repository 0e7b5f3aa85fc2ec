"""Text mode reports token logprobs in ``response_metadata["logprobs"]``, in the shape chat mode gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
from langchain_hf_chat.testing import ScriptedBackend, TGIServer

ZEPHYR = (Path(__file__).parent.parent / "fixtures" / "templates" / "zephyr-7b-beta.jinja").read_text()
MESSAGES: list[BaseMessage] = [HumanMessage(content="Say hello.")]
REPLY = "Hello there, friend."


def chat_mode(server: TGIServer, **kwargs: Any) -> ChatHuggingFace:
    return ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url=server.url), **kwargs)


def text_mode(server: TGIServer, **kwargs: Any) -> ChatHuggingFace:
    return chat_mode(server, chat_template=ZEPHYR, bos_token="<s>", eos_token="</s>", **kwargs)


def queue_reply(server: TGIServer, text: str = REPLY) -> None:
    assert isinstance(server.backend, ScriptedBackend)
    server.backend.queue_reply(text)


def parameters_sent(server: TGIServer, path: str) -> dict[str, Any]:
    body = [r for r in server.requests if r.path == path][-1].json
    assert isinstance(body, dict)
    parameters: dict[str, Any] = body["parameters"]
    return parameters


def logprobs_of(message: AIMessage) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = message.response_metadata["logprobs"]["content"]
    return content


def streamed(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return total


def test_logprobs_ask_tgi_for_details_and_top_n_tokens(server: TGIServer) -> None:
    queue_reply(server)
    text_mode(server, logprobs=True, top_logprobs=3).invoke(MESSAGES)
    parameters = parameters_sent(server, "/generate")
    assert parameters["details"] is True
    assert parameters["top_n_tokens"] == 3
    assert "logprobs" not in parameters and "top_logprobs" not in parameters


def test_per_call_logprobs_are_honoured(server: TGIServer) -> None:
    queue_reply(server)
    message = text_mode(server).invoke(MESSAGES, logprobs=True, top_logprobs=2)
    assert parameters_sent(server, "/generate")["top_n_tokens"] == 2
    assert all(len(entry["top_logprobs"]) == 2 for entry in logprobs_of(message))


def test_invoke_reports_each_token_in_the_chat_completions_shape(server: TGIServer) -> None:
    queue_reply(server)
    message = text_mode(server, logprobs=True, top_logprobs=2).invoke(MESSAGES)
    entries = logprobs_of(message)
    assert "".join(entry["token"] for entry in entries).startswith(REPLY)
    for entry in entries:
        assert set(entry) == {"token", "logprob", "top_logprobs"}
        assert isinstance(entry["logprob"], float)
        assert len(entry["top_logprobs"]) == 2
        assert all(set(alternative) == {"token", "logprob"} for alternative in entry["top_logprobs"])


def test_text_mode_logprobs_equal_chat_modes_for_the_same_reply(server: TGIServer) -> None:
    queue_reply(server)
    from_chat = chat_mode(server, logprobs=True, top_logprobs=2).invoke(MESSAGES)
    queue_reply(server)
    from_text = text_mode(server, logprobs=True, top_logprobs=2).invoke(MESSAGES)
    assert [r.path for r in server.requests if r.path in ("/v1/chat/completions", "/generate")] == [
        "/v1/chat/completions",
        "/generate",
    ]
    assert logprobs_of(from_text) == logprobs_of(from_chat)


def test_without_top_logprobs_alternatives_are_empty(server: TGIServer) -> None:
    queue_reply(server)
    message = text_mode(server, logprobs=True).invoke(MESSAGES)
    assert "top_n_tokens" not in parameters_sent(server, "/generate")
    entries = logprobs_of(message)
    assert entries and all(entry["top_logprobs"] == [] for entry in entries)


def test_logprobs_are_absent_unless_asked_for(server: TGIServer) -> None:
    queue_reply(server)
    message = text_mode(server).invoke(MESSAGES)
    assert "logprobs" not in message.response_metadata
    assert "top_n_tokens" not in parameters_sent(server, "/generate")


def test_stream_carries_the_same_logprobs_as_invoke(server: TGIServer) -> None:
    chat = text_mode(server, logprobs=True, top_logprobs=2)
    queue_reply(server)
    invoked = chat.invoke(MESSAGES)
    queue_reply(server)
    chunks = list(chat.stream(MESSAGES))
    assert parameters_sent(server, "/generate_stream")["top_n_tokens"] == 2
    assert sum("logprobs" in chunk.response_metadata for chunk in chunks) > 1  # per token, not only at the end
    assert logprobs_of(streamed(chunks)) == logprobs_of(invoked)


def test_stream_with_tools_bound_still_reports_logprobs(server: TGIServer) -> None:
    def get_time(city: str) -> str:
        """The time in a city."""
        return "noon"

    chat = text_mode(server, logprobs=True).bind_tools([get_time])
    queue_reply(server)
    total = streamed(list(chat.stream(MESSAGES)))
    assert "".join(entry["token"] for entry in logprobs_of(total)).startswith(REPLY)


async def test_async_invoke_and_stream_report_logprobs(server: TGIServer) -> None:
    chat = text_mode(server, logprobs=True, top_logprobs=1)
    queue_reply(server)
    invoked = await chat.ainvoke(MESSAGES)
    queue_reply(server)
    chunks = [chunk async for chunk in chat.astream(MESSAGES)]
    assert logprobs_of(streamed(chunks)) == logprobs_of(invoked)
    assert all(len(entry["top_logprobs"]) == 1 for entry in logprobs_of(invoked))
