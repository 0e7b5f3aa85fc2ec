"""Request-body parsing with axum/serde's rejections (protocol README §1.1).

TGI deserializes bodies with axum's ``Json`` extractor and serde. A failure is a ``text/plain`` response:
415 for a missing JSON content type, 413 over the payload limit, 400 for a JSON syntax error and 422 for a
body of the wrong shape (``Failed to deserialize the JSON body into the target type: <path>: <msg> at line L
column C``). This module reproduces those texts: the JSON is parsed once with positions so the serde-style
``line``/``column`` can be reported, then checked against small shape specs of TGI's request structs.
Unknown fields are ignored, as in TGI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_hf_chat.testing._errors import BodyRejection

__all__ = ["Path", "Shape", "check_content_type", "parse_json_body", "rejection"]

Path = tuple[str | int, ...]

# The stdlib's JSON string scanner (not in typeshed): (text, index after the quote) -> (value, end).
scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_JSON_MIME = re.compile(r"^\s*application/(?:json|[^;\s]+\+json)\s*(?:;.*)?$", re.IGNORECASE)

PREFIX_SYNTAX = "Failed to parse the request body as JSON: "
PREFIX_DATA = "Failed to deserialize the JSON body into the target type: "


def check_content_type(content_type: str | None) -> None:
    """415 unless the content type is ``application/json`` or ``application/*+json``."""
    if not content_type or not _JSON_MIME.match(content_type):
        raise BodyRejection(415, "Expected request with `Content-Type: application/json`")


@dataclass
class ParsedBody:
    """A JSON document with the byte span of every value, keyed by path."""

    text: str
    value: Any
    spans: dict[Path, tuple[int, int]]

    def position(self, path: Path, *, at_end: bool = True) -> tuple[int, int]:
        """Serde's ``(line, column)`` for the value at ``path`` (column counts bytes, as serde does)."""
        start, end = self.spans.get(path, (0, len(self.text)))
        index = end if at_end else start + 1
        prefix = self.text[:index]
        line = prefix.count("\n") + 1
        column = len(prefix[prefix.rfind("\n") + 1 :].encode("utf-8"))
        return line, column


def serde_syntax_message(exc: json.JSONDecodeError) -> str:
    doc, pos, msg = exc.doc, exc.pos, exc.msg
    at_eof = pos >= len(doc.rstrip(" \t\r\n")) or msg.startswith("Unterminated string")
    if at_eof:
        if msg.startswith("Unterminated string"):
            what = "a string"
        elif "delimiter" in msg and "']'" not in doc[pos:]:
            what = "a list" if doc.rstrip().rfind("[") > doc.rstrip().rfind("{") else "an object"
        elif msg.startswith("Expecting property name"):
            what = "an object"
        else:
            what = "a value"
        text = f"EOF while parsing {what}"
        index = len(doc)
    else:
        table = {
            "Expecting value": "expected value",
            "Extra data": "trailing characters",
            "Expecting property name enclosed in double quotes": "key must be a string",
            "Expecting ':' delimiter": "expected `:`",
            "Expecting ',' delimiter": "expected `,` or `}`",
            "Invalid control character at": "control character (\\u0000-\\u001F) found while parsing a string",
            "Invalid \\escape": "invalid escape",
            "Invalid \\uXXXX escape": "invalid escape",
        }
        text = next((v for k, v in table.items() if msg.startswith(k)), msg.lower())
        if text.startswith("expected `,`"):
            opener = _enclosing(doc, pos)
            text = "expected `,` or `]`" if opener == "[" else text
        index = pos + 1
    prefix = doc[:index]
    line = prefix.count("\n") + 1
    column = len(prefix[prefix.rfind("\n") + 1 :].encode("utf-8"))
    return f"{text} at line {line} column {column}"


def _enclosing(doc: str, pos: int) -> str:
    depth = 0
    for char in reversed(doc[:pos]):
        if char in "]}":
            depth += 1
        elif char in "[{":
            if depth == 0:
                return char
            depth -= 1
    return "{"


def _spans(text: str) -> dict[Path, tuple[int, int]]:
    spans: dict[Path, tuple[int, int]] = {}

    def skip(i: int) -> int:
        match = _WS.match(text, i)
        return match.end() if match else i

    def value(i: int, path: Path) -> int:
        i = skip(i)
        start = i
        char = text[i]
        if char == "{":
            i = skip(i + 1)
            if text[i] == "}":
                end = i + 1
            else:
                while True:
                    key, i = scanstring(text, skip(i) + 1)
                    i = skip(i) + 1  # the colon
                    i = skip(value(i, (*path, key)))
                    if text[i] == ",":
                        i += 1
                        continue
                    end = i + 1
                    break
        elif char == "[":
            i = skip(i + 1)
            if text[i] == "]":
                end = i + 1
            else:
                index = 0
                while True:
                    i = skip(value(i, (*path, index)))
                    index += 1
                    if text[i] == ",":
                        i += 1
                        continue
                    end = i + 1
                    break
        elif char == '"':
            _, end = scanstring(text, i + 1)
        elif text.startswith(("true", "null"), i):
            end = i + 4
        elif text.startswith("false", i):
            end = i + 5
        else:
            number = _NUMBER.match(text, i)
            end = number.end() if number else i + 1
        spans[path] = (start, end)
        return end

    value(0, ())
    return spans


def parse_json_body(body: bytes) -> ParsedBody:
    """Parse ``body`` as JSON; 400 ``Failed to parse the request body as JSON: ...`` on a syntax error."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRejection(400, f"{PREFIX_SYNTAX}invalid unicode code point at line 1 column {exc.start + 1}") from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyRejection(400, PREFIX_SYNTAX + serde_syntax_message(exc)) from exc
    except RecursionError as exc:
        raise BodyRejection(400, f"{PREFIX_SYNTAX}recursion limit exceeded") from exc
    return ParsedBody(text=text, value=value, spans=_spans(text))


# -- shapes ---------------------------------------------------------------------------------------


class ShapeError(Exception):
    """A serde data error at ``path``."""

    def __init__(self, path: Path, message: str, *, at_end: bool = True) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.at_end = at_end


def rejection(parsed: ParsedBody, error: ShapeError) -> BodyRejection:
    """The 422 text TGI sends for a body of the wrong shape."""
    line, column = parsed.position(error.path, at_end=error.at_end)
    rendered = _render_path(error.path)
    where = f"{rendered}: " if rendered else ""
    return BodyRejection(422, f"{PREFIX_DATA}{where}{error.message} at line {line} column {column}")


def _render_path(path: Path) -> str:
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            out += f".{segment}" if out else segment
    return out


def unexpected(value: Any) -> str:
    """Serde's ``Unexpected`` rendering of a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return "string " + json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "sequence"
    return "map"


def _invalid_type(path: Path, value: Any, expected: str) -> ShapeError:
    return ShapeError(
        path,
        f"invalid type: {unexpected(value)}, expected {expected}",
        at_end=not isinstance(value, dict | list),
    )


class Shape:
    """A check of one JSON value against a serde type."""

    def check(self, value: Any, path: Path) -> None:
        """Raise :class:`ShapeError` when ``value`` does not deserialize."""
        raise NotImplementedError


class Scalar(Shape):
    """``String``, ``bool``, a float or an integer type."""

    _INT_RANGES: Mapping[str, tuple[int, int]] = {
        "u32": (0, 2**32 - 1),
        "u64": (0, 2**64 - 1),
        "usize": (0, 2**64 - 1),
        "i32": (-(2**31), 2**31 - 1),
    }

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def check(self, value: Any, path: Path) -> None:
        kind = self.kind
        if kind == "string":
            if not isinstance(value, str):
                raise _invalid_type(path, value, "a string")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise _invalid_type(path, value, "a boolean")
        elif kind in ("f32", "f64"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _invalid_type(path, value, kind)
        else:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _invalid_type(path, value, kind)
            low, high = self._INT_RANGES[kind]
            if not low <= value <= high:
                raise ShapeError(path, f"invalid value: integer `{value}`, expected {kind}")


class Anything(Shape):
    """``serde_json::Value``: anything goes."""

    def check(self, value: Any, path: Path) -> None:
        return


class Optional(Shape):
    """``Option<T>``: ``null`` is fine."""

    def __init__(self, inner: Shape) -> None:
        self.inner = inner

    def check(self, value: Any, path: Path) -> None:
        if value is not None:
            self.inner.check(value, path)


class Seq(Shape):
    """``Vec<T>``."""

    def __init__(self, item: Shape) -> None:
        self.item = item

    def check(self, value: Any, path: Path) -> None:
        if not isinstance(value, list):
            raise _invalid_type(path, value, "a sequence")
        for index, item in enumerate(value):
            self.item.check(item, (*path, index))


@dataclass(frozen=True)
class Field:
    """A struct field: its shape, whether it may be absent, and its serde aliases."""

    shape: Shape
    required: bool = False
    aliases: tuple[str, ...] = ()


class Struct(Shape):
    """A serde struct: fields are checked in document order, then missing required fields."""

    def __init__(self, name: str, fields: Mapping[str, Field]) -> None:
        self.name = name
        self.fields = dict(fields)
        self._by_key: dict[str, tuple[str, Field]] = {}
        for field_name, spec in self.fields.items():
            self._by_key[field_name] = (field_name, spec)
            for alias in spec.aliases:
                self._by_key[alias] = (field_name, spec)

    def check(self, value: Any, path: Path) -> None:
        if not isinstance(value, dict):
            raise _invalid_type(path, value, f"struct {self.name}")
        seen: set[str] = set()
        for key, item in value.items():
            entry = self._by_key.get(key)
            if entry is None:
                continue  # unknown fields are ignored
            field_name, spec = entry
            if field_name in seen:
                raise ShapeError(path, f"duplicate field `{field_name}`")
            seen.add(field_name)
            spec.shape.check(item, (*path, key))
        for field_name, spec in self.fields.items():
            if spec.required and field_name not in seen:
                raise ShapeError(path, f"missing field `{field_name}`")


class Tagged(Shape):
    """An adjacently tagged enum (``{"type": ..., "value": ...}``), as TGI's ``GrammarType``."""

    def __init__(self, variants: Mapping[str, Shape | None], *, listed: tuple[str, ...], tag: str = "type") -> None:
        self.variants = dict(variants)
        self.listed = listed
        self.tag = tag

    def check(self, value: Any, path: Path) -> None:
        if not isinstance(value, dict):
            raise _invalid_type(path, value, "adjacently tagged enum")
        if self.tag not in value:
            raise ShapeError(path, f"missing field `{self.tag}`")
        tag = value[self.tag]
        if not isinstance(tag, str):
            raise _invalid_type((*path, self.tag), tag, "variant identifier")
        if tag not in self.variants:
            expected = ", ".join(f"`{name}`" for name in self.listed)
            raise ShapeError((*path, self.tag), f"unknown variant `{tag}`, expected one of {expected}")
        content = self.variants[tag]
        if content is not None:
            if "value" not in value:
                raise ShapeError(path, "missing field `value`")
            content.check(value["value"], (*path, "value"))


class Untagged(Shape):
    """A serde untagged enum: the first variant that fits wins; otherwise one generic message."""

    def __init__(self, name: str, variants: list[Shape]) -> None:
        self.name = name
        self.variants = variants

    def check(self, value: Any, path: Path) -> None:
        for variant in self.variants:
            try:
                variant.check(value, path)
            except ShapeError:
                continue
            return
        raise ShapeError(path, f"data did not match any variant of untagged enum {self.name}", at_end=True)


class Custom(Shape):
    """A hand-written deserializer: ``check`` returns an error message or ``None``."""

    def __init__(self, check: Callable[[Any], str | None]) -> None:
        self._check = check

    def check(self, value: Any, path: Path) -> None:
        message = self._check(value)
        if message is not None:
            raise ShapeError(path, message)


def parse_and_check(body: bytes, shape: Shape) -> Any:
    """Parse ``body`` and check it against ``shape``; the parsed JSON value on success."""
    parsed = parse_json_body(body)
    try:
        shape.check(parsed.value, ())
    except ShapeError as exc:
        raise rejection(parsed, exc) from exc
    return parsed.value
