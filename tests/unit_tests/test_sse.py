"""The SSE decoder: every framing TGI and OpenAI-style servers use, and malformed input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_hf_chat._sse import DONE, SSEDecoder
from langchain_hf_chat.errors import HuggingFaceError, StreamParseError


def decode(lines: list[str]) -> list[object]:
    decoder = SSEDecoder()
    out = [p for p in (decoder.feed_line(line) for line in lines) if p is not None]
    tail = decoder.close()
    if tail is not None:
        out.append(tail)
    return out


def test_data_with_and_without_space() -> None:
    assert decode(['data: {"a":1}', "", 'data:{"a":2}', ""]) == [{"a": 1}, {"a": 2}]


def test_done_marker_with_and_without_space() -> None:
    assert decode(["data: [DONE]"]) == [DONE]
    assert decode(["data:[DONE]"]) == [DONE]


def test_keepalive_comments_and_other_fields_are_skipped() -> None:
    assert decode([":", "", "event: message", "id: 3", "retry: 10", 'data: {"a":1}', ""]) == [{"a": 1}]


def test_crlf_line_endings() -> None:
    assert decode(['data: {"a":1}\r', "\r"]) == [{"a": 1}]


def test_event_split_over_several_data_lines_is_joined() -> None:
    assert decode(['data: {"a":', "data: 1}", ""]) == [{"a": 1}]


def test_malformed_json_names_the_line() -> None:
    with pytest.raises(StreamParseError, match="malformed server-sent event") as info:
        decode(["data: {not json", ""])
    assert "{not json" in info.value.line


def test_partial_line_at_end_of_stream_is_an_error() -> None:
    with pytest.raises(StreamParseError):
        decode(['data: {"ind'])


@given(st.lists(st.text(max_size=40), max_size=20))
def test_any_input_decodes_or_raises_a_documented_error(lines: list[str]) -> None:
    with contextlib.suppress(HuggingFaceError):
        decode([line.replace("\n", "") for line in lines])
