"""Reasoning: ``<think>`` text and ``reasoning_content`` fields become reasoning, out of the visible answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
from langchain_hf_chat._messages import messages_to_wire
from langchain_hf_chat._reasoning import ReasoningSplitter, split_reasoning
from langchain_hf_chat.testing import ScriptedBackend, TGIServer

OUTPUT = "<think>The user greets me. I greet back.</think>\n\nHello there!"
SIMPLE_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
OPENS_THINK_TEMPLATE = SIMPLE_TEMPLATE.replace("<|assistant|>\n{% endif %}", "<|assistant|>\n<think>\n{% endif %}")


def chat_for(server: TGIServer, **kwargs: Any) -> ChatHuggingFace:
    return ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url=server.url), **kwargs)


def text_chat(server: TGIServer, template: str = SIMPLE_TEMPLATE, **kwargs: Any) -> ChatHuggingFace:
    return chat_for(server, chat_template=template, model_id="org/reasoner", **kwargs)


def scripted(server: TGIServer) -> ScriptedBackend:
    assert isinstance(server.backend, ScriptedBackend)
    return server.backend


def aggregate(chunks: Iterator[AIMessageChunk]) -> AIMessageChunk:
    total: AIMessageChunk | None = None
    for chunk in chunks:
        total = chunk if total is None else total + chunk
    assert total is not None
    return total


def reasoning_of(message: AIMessage) -> str | None:
    return message.additional_kwargs.get("reasoning_content")


# -- splitting ---------------------------------------------------------------------------------------------


def test_split_takes_think_out_of_the_answer() -> None:
    assert split_reasoning(OUTPUT) == ("The user greets me. I greet back.", "Hello there!")


def test_split_leaves_plain_answers_alone() -> None:
    assert split_reasoning("Just an answer, no <think> at the start.") == (
        "",
        "Just an answer, no <think> at the start.",
    )


def test_split_of_unterminated_reasoning_is_all_reasoning() -> None:
    assert split_reasoning("<think>Still thinking when the tokens ran out") == (
        "Still thinking when the tokens ran out",
        "",
    )


def test_split_with_think_opened_in_the_prompt() -> None:
    assert split_reasoning("Thinking.</think>\n\nAnswer.", opened=True) == ("Thinking.", "Answer.")


@pytest.mark.parametrize("cut", range(1, len(OUTPUT)))
def test_streamed_split_matches_the_whole_at_every_cut(cut: int) -> None:
    splitter = ReasoningSplitter()
    pieces = [splitter.feed(OUTPUT[:cut]), splitter.feed(OUTPUT[cut:]), splitter.flush()]
    reasoning = "".join(r for r, _ in pieces)
    answer = "".join(a for _, a in pieces)
    assert (reasoning, answer) == ("The user greets me. I greet back.", "Hello there!")


def test_streamed_split_character_by_character() -> None:
    splitter = ReasoningSplitter()
    pieces = [splitter.feed(c) for c in OUTPUT] + [splitter.flush()]
    assert "".join(a for _, a in pieces) == "Hello there!"


def test_answer_starting_with_an_angle_bracket_is_not_held_forever() -> None:
    splitter = ReasoningSplitter()
    assert [splitter.feed("<"), splitter.feed("b>bold</b>")] == [("", ""), ("", "<b>bold</b>")]


# -- chat mode: TGI sends the tags inline -------------------------------------------------------------------


def test_chat_invoke_moves_think_text_to_reasoning(server: TGIServer) -> None:
    scripted(server).queue_reply("Hello there!", reasoning="The user greets me.")
    message = chat_for(server).invoke("Hi")
    assert message.content == "Hello there!"
    assert reasoning_of(message) == "The user greets me."


def test_reasoning_is_a_standard_content_block(server: TGIServer) -> None:
    scripted(server).queue_reply("Hello there!", reasoning="The user greets me.")
    blocks = chat_for(server).invoke("Hi").content_blocks
    assert blocks[0] == {"type": "reasoning", "reasoning": "The user greets me."}
    assert blocks[1]["type"] == "text"
    assert blocks[1].get("text") == "Hello there!"


def test_chat_stream_splits_a_think_tag_cut_across_chunks(server: TGIServer) -> None:
    tokens = ["<th", "ink>Let", " me", " think</th", "ink>", "\n\n", "The", " answer."]
    scripted(server).queue_reply(tokens=tokens)
    chunks = list(chat_for(server).stream("Hi"))
    total = aggregate(iter(chunks))
    assert total.content == "The answer."
    assert reasoning_of(total) == "Let me think"
    assert all("think" not in str(c.content) for c in chunks)


async def test_chat_async_stream_splits_reasoning(server: TGIServer) -> None:
    scripted(server).queue_reply("Hello there!", reasoning="Thinking.")
    total = aggregate(iter([c async for c in chat_for(server).astream("Hi")]))
    assert (total.content, reasoning_of(total)) == ("Hello there!", "Thinking.")


def test_keep_think_tags_leaves_content_as_sent(server: TGIServer) -> None:
    scripted(server).queue_reply("Hello there!", reasoning="Thinking.")
    message = chat_for(server, keep_think_tags=True).invoke("Hi")
    assert str(message.content).startswith("<think>")
    assert reasoning_of(message) is None


def test_stop_sequence_in_the_answer_keeps_the_reasoning(server: TGIServer) -> None:
    scripted(server).queue_reply("Paris. Then more.", reasoning="Capital of France.")
    total = aggregate(iter(chat_for(server).stream("Capital?", stop=["Then"])))
    assert reasoning_of(total) == "Capital of France."
    assert total.content == "Paris. "


def test_reasoning_is_not_sent_back_in_the_next_turn(server: TGIServer) -> None:
    scripted(server).queue_reply("Hello there!", reasoning="Secret thoughts.")
    answer = chat_for(server).invoke("Hi")
    wire = messages_to_wire([HumanMessage("Hi"), answer, HumanMessage("And?")])
    assert wire[1] == {"role": "assistant", "content": "Hello there!"}


# -- chat mode: a reasoning parser sends a field ------------------------------------------------------------


@pytest.fixture(scope="module", params=["reasoning_content", "reasoning"])
def parser_server(request: pytest.FixtureRequest) -> Iterator[TGIServer]:
    with TGIServer(backend=ScriptedBackend(model_id="org/reasoner"), reasoning_field=request.param) as server:
        yield server


def test_reasoning_field_in_a_response(parser_server: TGIServer) -> None:
    scripted(parser_server).queue_reply("Hello there!", reasoning="The user greets me.")
    message = chat_for(parser_server).invoke("Hi")
    assert (message.content, reasoning_of(message)) == ("Hello there!", "The user greets me.")


def test_reasoning_field_in_stream_deltas(parser_server: TGIServer) -> None:
    scripted(parser_server).queue_reply("Hello there!", reasoning="The user greets me.")
    chunks = list(chat_for(parser_server).stream("Hi"))
    total = aggregate(iter(chunks))
    assert total.content == "Hello there!"
    assert reasoning_of(total) == "The user greets me."
    assert sum(1 for c in chunks if reasoning_of(c)) > 1  # streamed as it comes, not at the end


def test_server_sends_the_field_not_tags(parser_server: TGIServer) -> None:
    import httpx

    scripted(parser_server).queue_reply("Hi!", reasoning="Hmm.")
    body = {"model": "tgi", "messages": [{"role": "user", "content": "Hi"}]}
    message = httpx.post(parser_server.url + "/v1/chat/completions", json=body).json()["choices"][0]["message"]
    field = next(k for k in ("reasoning_content", "reasoning") if k in message)
    assert (message["content"], message[field]) == ("Hi!", "Hmm.")


# -- text mode -----------------------------------------------------------------------------------------------


def test_text_mode_invoke_moves_think_text_to_reasoning(server: TGIServer) -> None:
    scripted(server).queue_reply("Hello there!", reasoning="The user greets me.")
    message = text_chat(server).invoke("Hi")
    assert server.requests[-1].path == "/generate"
    assert (message.content, reasoning_of(message)) == ("Hello there!", "The user greets me.")


def test_text_mode_stream_splits_reasoning(server: TGIServer) -> None:
    scripted(server).queue_reply(tokens=["<think>", "Hm", "m.</thi", "nk>", "\n\n", "Yes."])
    total = aggregate(iter(text_chat(server).stream("Hi")))
    assert (total.content, reasoning_of(total)) == ("Yes.", "Hmm.")


def test_text_mode_with_think_opened_by_the_template(server: TGIServer) -> None:
    scripted(server).queue_reply(tokens=["I", " should", " greet.", "</think>", "\n\n", "Hello!"])
    message = text_chat(server, template=OPENS_THINK_TEMPLATE).invoke("Hi")
    assert (message.content, reasoning_of(message)) == ("Hello!", "I should greet.")


def test_text_mode_stream_with_think_opened_by_the_template(server: TGIServer) -> None:
    scripted(server).queue_reply(tokens=["I", " should", " greet.", "</think>", "\n\n", "Hello!"])
    total = aggregate(iter(text_chat(server, template=OPENS_THINK_TEMPLATE).stream("Hi")))
    assert (total.content, reasoning_of(total)) == ("Hello!", "I should greet.")


def test_text_mode_tool_calls_are_parsed_from_the_answer_only(server: TGIServer) -> None:
    thinking = 'Maybe {"name": "wrong_tool", "arguments": {}} is it? No.'
    answer = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    scripted(server).queue_reply(answer, reasoning=thinking)

    def get_weather(city: str) -> str:
        """Weather in a city."""
        return "sunny"

    message = text_chat(server).bind_tools([get_weather]).invoke("Weather in Paris?")
    assert isinstance(message, AIMessage)
    assert [c["name"] for c in message.tool_calls] == ["get_weather"]
    assert reasoning_of(message) == thinking
