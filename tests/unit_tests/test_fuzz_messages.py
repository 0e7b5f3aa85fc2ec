"""Property tests for message conversion: any LangChain conversation converts, or fails with ``ValueError``.

``messages_to_wire`` / ``messages_to_template`` document ``ValueError`` for content they cannot carry (images in a
text prompt, unknown content blocks). Whatever they return is JSON-serializable, one dict per message; text and
tool calls survive a round trip through a chat-completions response.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_hf_chat._messages import (
    chunk_from_chat_chunk,
    message_from_chat_response,
    messages_to_template,
    messages_to_wire,
)

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

text = st.text(max_size=20)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    scalars | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
block = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text", "image_url", "image", "reasoning", "thinking", "tool_use", "input_image", "audio", "x"]
        )
    },
    optional={
        "text": text | json_values,
        "image_url": text | st.fixed_dictionaries({"url": text}) | json_values,
        "url": text,
        "base64": text,
        "data": text,
        "mime_type": text,
    },
)
content = text | st.lists(text | block, max_size=3)
text_content = text | st.lists(text | st.fixed_dictionaries({"type": st.just("text"), "text": text}), max_size=3)
tool_call = st.fixed_dictionaries(
    {
        "name": st.text(min_size=1, max_size=10),
        "args": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
        "id": st.none() | st.text(min_size=1, max_size=6),
    }
)
names = st.none() | st.text(min_size=1, max_size=8)

messages: st.SearchStrategy[BaseMessage] = st.one_of(
    st.builds(HumanMessage, content=content, name=names),
    st.builds(SystemMessage, content=content),
    st.builds(AIMessage, content=content),
    st.builds(AIMessage, content=text_content, tool_calls=st.lists(tool_call, max_size=2)),
    st.builds(ToolMessage, content=content, tool_call_id=st.text(max_size=6), name=names),
    st.builds(ChatMessage, role=st.sampled_from(["user", "assistant", "system", "developer", "x"]), content=content),
    st.builds(FunctionMessage, name=st.text(min_size=1, max_size=8), content=text),
)
conversations = st.lists(messages, max_size=5)


def _plain(content: Any) -> str | None:
    """The text of content made only of text (``None`` when it has other blocks)."""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
        else:
            return None
    return "".join(parts)


@FUZZ
@given(conversations)
def test_messages_to_wire_returns_json_for_every_message_or_a_value_error(conversation: list[BaseMessage]) -> None:
    try:
        wire = messages_to_wire(conversation)
    except ValueError:
        return
    assert len(wire) == len(conversation)
    json.dumps(wire, allow_nan=False)
    for item, message in zip(wire, conversation, strict=True):
        assert isinstance(item["role"], str)
        assert isinstance(item["content"], (str, list))
        plain = _plain(message.content)
        if plain is not None:
            assert item["content"] == plain


@FUZZ
@given(conversations)
def test_messages_to_template_gives_text_content_or_a_value_error(conversation: list[BaseMessage]) -> None:
    try:
        template = messages_to_template(conversation)
    except ValueError:
        return
    assert len(template) == len(conversation)
    json.dumps(template, allow_nan=False)
    assert all(isinstance(item["content"], str) for item in template)


@FUZZ
@given(text_content, st.lists(tool_call, max_size=3))
def test_assistant_text_and_tool_calls_survive_a_round_trip(content: Any, calls: list[dict[str, Any]]) -> None:
    original = AIMessage(content=content, tool_calls=calls)
    wire = messages_to_wire([original])[0]
    parsed = message_from_chat_response({"choices": [{"message": wire, "finish_reason": "stop"}]})
    assert parsed.content == _plain(content)
    assert [(c["name"], c["args"]) for c in parsed.tool_calls] == [(c["name"], c["args"]) for c in calls]
    assert parsed.invalid_tool_calls == []


@FUZZ
@given(st.lists(text, min_size=1, max_size=6))
def test_streamed_chunks_add_up_to_the_text(pieces: list[str]) -> None:
    chunks = [chunk_from_chat_chunk({"choices": [{"delta": {"content": piece}}]}) for piece in pieces]
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk  # type: ignore[operator]
    assert total is not None and total.content == "".join(pieces)
