"""Server-sent events: a small, strict decoder for the streams TGI and OpenAI-style servers send.

Pure: lines in, JSON payloads out. Sync and async streams share it.

* ``data:`` with or without the space (TGI <= 2.0 wrote ``data:{...}``), CRLF endings, ``:`` keep-alives,
  ``event:``/``id:``/``retry:`` fields are all accepted.
* An event whose JSON spans several ``data:`` lines is joined as the SSE standard says (or glued, when a
  server wrapped one long line).
* ``[DONE]`` (with or without the space) ends the stream.
* A payload that is not JSON raises :class:`~langchain_hf_chat.errors.StreamParseError` naming the line.

Example:
    >>> decoder = SSEDecoder()
    >>> [decoder.feed_line(line) for line in ['data: {"a": 1}', '', ': keep-alive', 'data: [DONE]']]
    [{'a': 1}, None, None, <DONE>]
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, Final

from langchain_hf_chat.errors import StreamParseError

__all__ = ["DONE", "SSEDecoder"]


class _Done:
    def __repr__(self) -> str:
        return "<DONE>"


#: Returned by :meth:`SSEDecoder.feed_line` when the stream's ``[DONE]`` marker arrives.
DONE: Final = _Done()

_MAX_EVENT_CHARS = 16 * 1024 * 1024


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class SSEDecoder:
    """Turns SSE lines (or text chunks, with :meth:`feed`) into decoded JSON payloads or :data:`DONE`."""

    __slots__ = ("_data", "_pending", "_size", "_trailing_cr")

    def __init__(self) -> None:
        self._data: list[str] = []
        self._size = 0
        self._pending = ""
        self._trailing_cr = False

    def feed(self, text: str) -> Iterator[Any]:
        r"""Feed a chunk of the response text; yield the payloads of the events it completes, in order.

        Only CR LF, LF and CR end a line, as the SSE standard says. (``str.splitlines`` and httpx's
        ``iter_lines`` also split on U+2028, U+0085 and friends, which JSON carries unescaped inside strings.)

        >>> decoder = SSEDecoder()
        >>> [*decoder.feed('data: {"text": "a\u2028b"}\n')], [*decoder.feed("\ndata: [DO")], [*decoder.feed("NE]\n\n")]
        ([{'text': 'a\u2028b'}], [], [<DONE>])
        """
        if self._trailing_cr:
            text = "\r" + text
            self._trailing_cr = False
        if text.endswith("\r"):  # maybe the first half of a CR LF
            self._trailing_cr = True
            text = text[:-1]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        lines[0] = self._pending + lines[0]
        self._pending = lines.pop()
        for line in lines:
            payload = self.feed_line(line)
            if payload is not None:
                yield payload

    def feed_line(self, line: str) -> Any:
        """Feed one line (without its line ending); return a payload when an event completes, else ``None``."""
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if field != "data":
            # event:, id:, retry: and unknown fields carry nothing we use.
            return None
        if value.startswith(" "):
            value = value[1:]
        # A lone ``data: [DONE]`` ends the stream even without the blank line after it.
        if not self._data and value.strip() == "[DONE]":
            return DONE
        self._size += len(value)
        if self._size > _MAX_EVENT_CHARS:
            self._data.clear()
            self._size = 0
            raise StreamParseError(f"server-sent event exceeds {_MAX_EVENT_CHARS} characters", line=_shorten(value))
        self._data.append(value)
        # TGI puts one complete JSON document on each data line; decode eagerly so a stream that ends
        # without the trailing blank line still yields its last event.
        if len(self._data) == 1:
            try:
                payload = json.loads(value)
            except ValueError:
                return None  # maybe continued on the next data line
            self._data.clear()
            self._size = 0
            return payload
        return None

    def _dispatch(self) -> Any:
        if not self._data:
            return None
        raw = "\n".join(self._data)
        # Servers that wrap a long JSON line over several data lines cut it anywhere (inside a string or a
        # number), where the standard's "\n" join is not JSON: try the plain concatenation too.
        glued = "".join(self._data) if len(self._data) > 1 else None
        self._data.clear()
        self._size = 0
        if raw.strip() == "[DONE]":
            return DONE
        try:
            return json.loads(raw)
        except ValueError as exc:
            if glued is not None:
                with contextlib.suppress(ValueError):
                    return json.loads(glued)
            raise StreamParseError(
                f"malformed server-sent event: {exc}: {_shorten(raw)!r}", line=_shorten(raw)
            ) from None

    def close(self) -> Any:
        """End of input: decode what is buffered (a last line without its line ending, an unfinished event)."""
        pending, self._pending = self._pending, ""
        self._trailing_cr = False
        if pending:
            payload = self.feed_line(pending)
            if payload is not None:
                return payload
        return self._dispatch()
