"""Property tests for SSE decoding: chunking never changes the events; garbage raises only StreamParseError.

The bytes go through httpx's text decoding (``iter_text`` / ``aiter_text``) and :meth:`SSEDecoder.feed`, as the
transport reads a response. JSON strings carry any character, U+2028 and U+0085 included, which
``str.splitlines`` (and so httpx's ``iter_lines``) would wrongly treat as line ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_hf_chat import errors
from langchain_hf_chat._sse import DONE, SSEDecoder

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),  # any text: newlines, "data:", "\r", multi-byte characters
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
payloads = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
framing = st.fixed_dictionaries(
    {
        "space": st.booleans(),
        "eol": st.sampled_from(["\n", "\r\n", "\r"]),
        "comments": st.integers(0, 2),
        "fields": st.booleans(),
        "ascii": st.booleans(),
    }
)


def encode(events: list[Any], done: bool, frame: dict[str, Any]) -> bytes:
    eol = frame["eol"]
    prefix = "data: " if frame["space"] else "data:"
    out = []
    for index, event in enumerate(events):
        out.extend([":" + eol] * frame["comments"])
        if frame["fields"]:
            out.append(f"event: message{eol}id: {index}{eol}retry: 1000{eol}")
        data = json.dumps(event, ensure_ascii=frame["ascii"], separators=(",", ":"))
        out.append(prefix + data + eol + eol)
    if done:
        out.append(prefix + "[DONE]" + eol + eol)
    return "".join(out).encode("utf-8")


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return [piece for piece in pieces if piece]


def decode_text(chunks: Iterable[str]) -> list[Any]:
    """What the transport does with a response's text."""
    decoder = SSEDecoder()
    out: list[Any] = []
    for text in chunks:
        for payload in decoder.feed(text):
            out.append(payload)
            if payload is DONE:
                return out
    tail = decoder.close()
    if tail is not None:
        out.append(tail)
    return out


def decode(lines: Iterable[str]) -> list[Any]:
    """Line by line, with :meth:`SSEDecoder.feed_line`."""
    decoder = SSEDecoder()
    out: list[Any] = []
    for line in lines:
        payload = decoder.feed_line(line)
        if payload is None:
            continue
        out.append(payload)
        if payload is DONE:
            return out
    tail = decoder.close()
    if tail is not None:
        out.append(tail)
    return out


async def adecode(response: httpx.Response) -> list[Any]:
    return decode_text([text async for text in response.aiter_text()])


@FUZZ
@given(st.lists(payloads, max_size=5), st.booleans(), framing, st.lists(st.integers(0, 10_000), max_size=12))
def test_any_chunking_of_a_valid_stream_gives_the_same_events(
    events: list[Any], done: bool, frame: dict[str, Any], cuts: list[int]
) -> None:
    data = encode(events, done, frame)
    expected = [*events, DONE] if done else events
    assert decode_text(httpx.Response(200, content=iter(split(data, cuts))).iter_text()) == expected

    async def chunks() -> AsyncIterator[bytes]:
        for piece in split(data, cuts):
            yield piece

    assert asyncio.run(adecode(httpx.Response(200, content=chunks()))) == expected


@FUZZ
@given(st.lists(payloads, min_size=1, max_size=3), st.integers(1, 5))
def test_one_json_line_wrapped_over_data_lines_is_read_whole(events: list[Any], parts: int) -> None:
    lines = []
    for event in events:
        data = json.dumps(event)
        size = max(1, len(data) // parts)
        lines += ["data: " + data[i : i + size] for i in range(0, len(data), size)] + [""]
    assert decode(lines) == events


@FUZZ
@given(st.lists(st.text(max_size=30), max_size=8))
def test_arbitrary_lines_decode_or_raise_stream_parse_error(lines: list[str]) -> None:
    try:
        payloads = decode(lines)
    except errors.StreamParseError as exc:
        error: errors.StreamParseError | None = exc
        payloads = []
    else:
        error = None
    assert error is None or len(error.line) <= 203
    for payload in payloads:
        assert payload is DONE or payload is None or isinstance(payload, (dict, list, str, int, float, bool))


@FUZZ
@given(st.binary(max_size=200), st.lists(st.integers(0, 1000), max_size=6))
def test_arbitrary_bytes_decode_or_raise_stream_parse_error(data: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(errors.StreamParseError):
        decode_text(httpx.Response(200, content=iter(split(data, cuts))).iter_text())


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c"])
def test_unicode_line_separators_inside_json_strings_do_not_split_events(separator: str) -> None:
    # serde_json (TGI) escapes control characters below U+0020 but sends U+0085, U+2028 and U+2029 raw.
    event = {"token": {"text": f"a{separator}b"}}
    wire = ("data: " + json.dumps(event, ensure_ascii=False) + "\n\n").encode()
    assert decode_text(httpx.Response(200, content=iter([wire])).iter_text()) == [event]


def test_a_malformed_event_names_its_line() -> None:
    with pytest.raises(errors.StreamParseError) as info:
        decode(['data: {"index":1,"token":', ""])
    assert info.value.line == '{"index":1,"token":'
    assert '{"index":1,"token":' in str(info.value)
