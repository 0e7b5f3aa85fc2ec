"""Tool calls out of generated text.

`parse_tool_calls` finds tool calls in plain generated text (Hermes/Qwen, Mistral, Llama 3 and plain
JSON formats, pluggable through `TOOL_CALL_PARSERS`); `parse_streamed_grammar` reads the call in a
TGI 2.x-3.1 tool stream. The bounded JSON reading here (`tool_call_from_object` and its helpers) is
shared with the wire-format parser in `langchain_hf_chat._tools`.

Model output is untrusted. Nothing here evaluates it: JSON is decoded with size and nesting
bounds, and anything malformed becomes an ``InvalidToolCall`` rather than an exception.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import InvalidToolCall, ToolCall
from langchain_core.messages.tool import invalid_tool_call, tool_call

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_TOOL_CALLS",
    "NO_TOOL_NAME",
    "TOOL_CALL_PARSERS",
    "ParsedToolCalls",
    "ToolCallTextParser",
    "new_tool_call_id",
    "parse_hermes",
    "parse_json",
    "parse_llama3",
    "parse_mistral",
    "parse_streamed_grammar",
    "parse_tool_calls",
    "tool_call_from_object",
]

NO_TOOL_NAME = "no_tool"
"""TGI's built-in "answer without a tool" function, added to the grammar in ``auto`` mode."""

MAX_JSON_DEPTH = 64
"""Deepest JSON nesting accepted in model output; deeper input is treated as malformed."""

MAX_TOOL_CALLS = 128
"""Most tool calls (valid and invalid together) kept from one generated text."""

_JSON_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"\s*")
# End-of-turn markers some servers leave after a tool call (TGI 2.1-3.1 tool streams do).
_TRAILING_SPECIAL_TOKENS = re.compile(r"(?:\s*(?:<\|[A-Za-z0-9_]{1,32}\|>|</s>|<eos>|\[/?[A-Z_]{1,16}\]))*\s*")
_NAME_SNIFF = re.compile(r'"(?:name|_name)"\s*:\s*"([^"\\]{1,64})"')


# --- bounded JSON reading, shared with the wire format ---------------------------------------


def new_tool_call_id() -> str:
    """Return a fresh tool-call id, ``"call_"`` followed by 24 hex digits.

    Example:
        >>> tool_id = new_tool_call_id()
        >>> tool_id.startswith("call_"), len(tool_id)
        (True, 29)
    """
    return "call_" + uuid.uuid4().hex[:24]


def _nesting_ok(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Collection[Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _decode_json_at(text: str, pos: int) -> tuple[Any, int]:
    """Decode one JSON value starting at ``pos``; `ValueError` for anything malformed."""
    try:
        value, end = _JSON_DECODER.raw_decode(text, pos)
    except RecursionError as exc:
        msg = "JSON is nested too deeply"
        raise ValueError(msg) from exc
    if not _nesting_ok(value):
        msg = f"JSON is nested more than {MAX_JSON_DEPTH} levels deep"
        raise ValueError(msg)
    return value, end


def _loads(text: str) -> Any:
    value, end = _decode_json_at(text, _skip_space(text, 0))
    if _skip_space(text, end) != len(text):
        msg = f"Extra data after the JSON value at character {end}"
        raise ValueError(msg)
    return value


def _skip_space(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # pragma: no cover - decoded JSON dumps
        return repr(value)


def _call_id(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int)) or raw == "":
        return new_tool_call_id()
    return str(raw)


def _arguments(value: Any) -> dict[str, Any]:
    """Turn an ``arguments`` value into a dict; `ValueError` with the reason otherwise."""
    if value is None:
        return {}
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return {}
        decoded, end = _decode_json_at(text, 0)
        if not _TRAILING_SPECIAL_TOKENS.fullmatch(text, end):
            msg = f"Extra data after the JSON arguments at character {end}"
            raise ValueError(msg)
        value = {} if decoded is None else decoded
    if not isinstance(value, dict):
        msg = f"Tool-call arguments must be a JSON object, got {type(value).__name__}"
        raise ValueError(msg)
    return value


def _unwrap_tgi_grammar(args: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Split TGI's grammar shape ``{"function": {"_name": n, ...}}`` or ``{"_name": n, ...}``."""
    inner = args.get("function")
    if len(args) == 1 and isinstance(inner, dict) and isinstance(inner.get("_name"), str):
        args = inner
    if isinstance(args.get("_name"), str):
        rest = {key: value for key, value in args.items() if key != "_name"}
        return args["_name"], rest
    return None, args


def tool_call_from_object(obj: Any, *, lenient: bool = False) -> ToolCall | InvalidToolCall | None:
    """Read one decoded JSON value as a tool call, if it has the shape of one.

    Recognised shapes: ``{"name", "arguments" | "parameters"}`` (Hermes, Mistral, Llama 3,
    plain JSON), TGI's ``{"function": {"_name", ...}}`` and OpenAI's
    ``{"type": "function", "function": {"name", "arguments"}}``. An ``"id"`` is kept.

    Returns ``None`` when ``obj`` is not call-shaped. Strict mode (the default, for bare JSON that
    may just be an answer) requires a name string and an arguments *object*. With
    ``lenient=True`` (for text inside an explicit tool-call wrapper) arguments may be a JSON
    string or absent, and a call-like object without a usable name or arguments becomes an
    ``InvalidToolCall``. Useful to write a parser for `TOOL_CALL_PARSERS`.

    Example:
        >>> tool_call_from_object({"name": "add", "arguments": {"a": 1}, "id": "c1"})
        {'name': 'add', 'args': {'a': 1}, 'id': 'c1', 'type': 'tool_call'}
        >>> tool_call_from_object({"name": "Alice", "age": 3}) is None
        True
    """
    if not isinstance(obj, dict):
        return invalid_tool_call(args=_dump(obj), error=_NOT_A_CALL) if lenient else None
    function = obj.get("function")
    if isinstance(function, dict) and isinstance(function.get("_name"), str):
        name, args = _unwrap_tgi_grammar(function)
        if name:
            return tool_call(name=name, args=args, id=_call_id(obj.get("id")))
        return invalid_tool_call(args=_dump(function), id=_call_id(obj.get("id")), error="Tool call has no name")
    if isinstance(function, dict) and "name" in function:
        obj = {**function, "id": obj.get("id", function.get("id"))}
    name = obj.get("name")
    key = "arguments" if "arguments" in obj else "parameters"
    has_args = key in obj
    if not lenient and not (isinstance(name, str) and has_args and isinstance(obj[key], dict)):
        return None
    call_id = _call_id(obj.get("id"))
    if not isinstance(name, str) or not name:
        return invalid_tool_call(name=None, args=_dump(obj.get(key)), id=call_id, error="Tool call has no name")
    try:
        args = _arguments(obj.get(key))
    except ValueError as exc:
        raw = obj[key] if isinstance(obj.get(key), str) else _dump(obj.get(key))
        return invalid_tool_call(name=name, args=raw, id=call_id, error=str(exc))
    return tool_call(name=name, args=args, id=call_id)


_NOT_A_CALL = "Expected a tool-call object with a 'name' and 'arguments'"


# --- text formats ----------------------------------------------------------------------------


@dataclass
class ParsedToolCalls:
    """Tool calls found in generated text, and the text that is left as the answer."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)

    def add(self, call: ToolCall | InvalidToolCall) -> None:
        """Append a parsed call to the right list.

        TGI's ``no_tool`` pseudo-call (the grammar's "answer without a tool" branch) is not a
        call: its ``content`` argument is appended to the content instead.
        """
        if call.get("type") == "tool_call" and call.get("name") == NO_TOOL_NAME:
            args = call.get("args")
            answer = args.get("content") if isinstance(args, dict) else None
            if isinstance(answer, str):
                self.content = f"{self.content}\n{answer}" if self.content else answer
            return
        if call.get("type") == "invalid_tool_call":
            self.invalid_tool_calls.append(call)  # type: ignore[arg-type]
        else:
            self.tool_calls.append(call)  # type: ignore[arg-type]


ToolCallTextParser = Callable[[str], "ParsedToolCalls | None"]
"""A text format: returns ``None`` when the text is not in that format, else what it found."""


def _malformed(raw: str, exc: Exception) -> InvalidToolCall:
    sniffed = _NAME_SNIFF.search(raw[:4096])
    return invalid_tool_call(
        name=sniffed.group(1) if sniffed else None,
        args=raw,
        id=new_tool_call_id(),
        error=f"Malformed tool call: {exc}",
    )


def _add_decoded(result: ParsedToolCalls, value: Any) -> None:
    for item in value if isinstance(value, list) else [value]:
        call = tool_call_from_object(item, lenient=True)
        assert call is not None  # lenient mode always answers
        result.add(call)


_HERMES_OPEN, _HERMES_CLOSE = "<tool_call>", "</tool_call>"


def parse_hermes(text: str) -> ParsedToolCalls | None:
    """Hermes / Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, repeated.

    Text outside the blocks is the content. A block left open at the end of the text (the model
    stopped on ``</tool_call>``) still counts.

    Example:
        >>> parsed = parse_hermes('Checking.<tool_call>{"name": "f", "arguments": {}}</tool_call>')
        >>> parsed.content, [c["name"] for c in parsed.tool_calls]
        ('Checking.', ['f'])
    """
    if _HERMES_OPEN not in text:
        return None
    result = ParsedToolCalls(content="")
    content: list[str] = []
    pos = 0
    while (start := text.find(_HERMES_OPEN, pos)) != -1:
        content.append(text[pos:start])
        body = start + len(_HERMES_OPEN)
        close = text.find(_HERMES_CLOSE, body)
        block_end = len(text) if close == -1 else close
        try:
            value, end = _decode_json_at(text, _skip_space(text, body))
            after = _skip_space(text, end)
            if after != len(text) and not text.startswith(_HERMES_CLOSE, after):
                msg = f"Unexpected text after the JSON at character {after - body}"
                raise ValueError(msg)
        except ValueError as exc:
            result.add(_malformed(text[body:block_end].strip(), exc))
            pos = block_end if close == -1 else close + len(_HERMES_CLOSE)
            continue
        _add_decoded(result, value)
        pos = after + len(_HERMES_CLOSE) if after < len(text) else after
    content.append(text[pos:])
    result.content = "".join(content).strip()
    return result


_MISTRAL_MARK = "[TOOL_CALLS]"
_MISTRAL_NAMED = re.compile(r"\s*([A-Za-z0-9_.:-]{1,64})\s*(?:\[CALL_ID\]\s*([A-Za-z0-9_-]{1,64})\s*)?(?:\[ARGS\])?\s*")


def parse_mistral(text: str) -> ParsedToolCalls | None:
    """Mistral: ``[TOOL_CALLS] [{...}, ...]``, ``[TOOL_CALLS][...]`` and ``[TOOL_CALLS]name[ARGS]{...}``.

    The newer form may repeat (one ``[TOOL_CALLS]`` per call) and carry ``[CALL_ID]id``. Text
    before the first marker is the content.

    Example:
        >>> parse_mistral('[TOOL_CALLS]add[ARGS]{"a": 1}').tool_calls[0]["args"]
        {'a': 1}
    """
    first = text.find(_MISTRAL_MARK)
    if first == -1:
        return None
    result = ParsedToolCalls(content="")
    content = [text[:first]]
    segments = text[first + len(_MISTRAL_MARK) :].split(_MISTRAL_MARK)
    for segment in segments:
        start = _skip_space(segment, 0)
        call_id: str | None = None
        name: str | None = None
        if not segment.startswith(("[", "{"), start):
            named = _MISTRAL_NAMED.match(segment)
            if named is None:
                result.add(_malformed(segment.strip(), ValueError("no tool name after [TOOL_CALLS]")))
                continue
            name, call_id, start = named.group(1), named.group(2), named.end()
        try:
            value, end = _decode_json_at(segment, start)
        except ValueError as exc:
            result.add(_malformed(segment.strip(), exc))
            continue
        if name is None:
            _add_decoded(result, value)
        else:
            call = tool_call_from_object({"name": name, "arguments": value, "id": call_id}, lenient=True)
            assert call is not None
            result.add(call)
        trailing = _TRAILING_SPECIAL_TOKENS.match(segment, end)
        content.append(segment[trailing.end() if trailing else end :])
    result.content = "".join(content).strip()
    return result


_PYTHON_TAG = "<|python_tag|>"


def parse_llama3(text: str) -> ParsedToolCalls | None:
    """Llama 3.x JSON: ``{"name": ..., "parameters": {...}}``, optionally after ``<|python_tag|>``.

    Several calls may be separated by ``;``. Without the tag, the whole text must be such calls
    (otherwise it is an ordinary answer); with it, text before the tag is the content.

    Example:
        >>> parsed = parse_llama3('{"name": "a", "parameters": {}}; {"name": "b", "parameters": {}}')
        >>> [c["name"] for c in parsed.tool_calls]
        ['a', 'b']
    """
    tag = text.find(_PYTHON_TAG)
    tagged = tag != -1
    before, body = (text[:tag], text[tag + len(_PYTHON_TAG) :]) if tagged else ("", text)
    pos = _skip_space(body, 0)
    if not body.startswith("{", pos):
        if not tagged:
            return None
        return ParsedToolCalls(
            content=before.strip(),
            invalid_tool_calls=[_malformed(body.strip(), ValueError("expected a JSON object"))],
        )
    result = ParsedToolCalls(content=before.strip())
    while True:
        try:
            value, end = _decode_json_at(body, pos)
        except ValueError as exc:
            if not tagged:
                return None
            result.add(_malformed(body[pos:].strip(), exc))
            return result
        call = tool_call_from_object(value, lenient=tagged)
        if call is None:
            return None
        result.add(call)
        pos = _skip_space(body, end)
        if body.startswith(";", pos):
            pos = _skip_space(body, pos + 1)
            if pos < len(body):
                continue
        elif body.startswith("{", pos):
            continue
        trailing = _TRAILING_SPECIAL_TOKENS.match(body, pos)
        rest = body[trailing.end() if trailing else pos :]
        if rest and not tagged:
            return None
        if rest:
            result.content = (result.content + " " + rest.strip()).strip()
        return result


def _calls_in_json(value: Any) -> list[ToolCall | InvalidToolCall] | None:
    items = value if isinstance(value, list) else [value]
    if not items:
        return None
    calls = [tool_call_from_object(item) for item in items]
    if any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


def _parsed_json_calls(calls: list[ToolCall | InvalidToolCall], content: str) -> ParsedToolCalls:
    result = ParsedToolCalls(content=content)
    for call in calls:
        result.add(call)
    return result


def parse_json(text: str) -> ParsedToolCalls | None:
    r"""Plain JSON: a call object or a list of them, alone or in a fenced code block.

    Objects must be call-shaped (see `tool_call_from_object`), so JSON answers stay content.
    TGI's grammar shape ``{"function": {"_name": ...}}`` is read too, and its ``no_tool``
    answer becomes content.

    Example:
        >>> parse_json('```json\n{"name": "f", "arguments": {"x": 1}}\n```').tool_calls[0]["args"]
        {'x': 1}
        >>> parse_json('{"answer": 42}') is None
        True
    """
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            value, end = _decode_json_at(stripped, 0)
        except ValueError:
            value, end = None, 0
        calls = _calls_in_json(value) if end else None
        if calls is not None:
            return _parsed_json_calls(calls, stripped[end:].strip())
    return _parse_fenced_json(text)


def parse_streamed_grammar(text: str) -> ParsedToolCalls:
    """The call in a TGI 2.x-3.1 tool stream: its ``arguments`` fragments, joined, are the grammar's raw JSON.

    Those streams never name the tool in a delta: the name is the ``_name`` inside
    ``{"function": {"_name": ..., <arguments>}}``, and the EOS token's text may follow the JSON (ignored).
    TGI's ``no_tool`` answer becomes content; anything else malformed an invalid call.

    Example:
        >>> parsed = parse_streamed_grammar('{"function": {"_name": "f", "x": 1}}</s>')
        >>> parsed.tool_calls[0]["name"], parsed.tool_calls[0]["args"], parsed.content
        ('f', {'x': 1}, '')
    """
    stripped = text.strip()
    try:
        value, _ = _decode_json_at(stripped, 0)
    except ValueError as exc:
        return _parsed_json_calls([_malformed(stripped, exc)], "")
    calls = _calls_in_json(value)
    if calls is None:
        return _parsed_json_calls([_malformed(stripped, ValueError("not a tool call"))], "")
    return _parsed_json_calls(calls, "")


def _parse_fenced_json(text: str) -> ParsedToolCalls | None:
    found: list[ToolCall | InvalidToolCall] = []
    content: list[str] = []
    pos = 0
    while (fence := text.find("```", pos)) != -1:
        newline = text.find("\n", fence + 3)
        if newline == -1:
            break
        close = text.find("```", newline + 1)
        if close == -1:
            break
        info = text[fence + 3 : newline].strip().lower()
        calls = None
        if info in ("", "json", "jsonc", "tool_call", "tool_code"):
            try:
                calls = _calls_in_json(_loads(text[newline + 1 : close]))
            except ValueError:
                calls = None
        if calls is None:
            content.append(text[pos : close + 3])
        else:
            content.append(text[pos:fence])
            found.extend(calls)
        pos = close + 3
    if not found:
        return None
    content.append(text[pos:])
    return _parsed_json_calls(found, "".join(content).strip())


TOOL_CALL_PARSERS: dict[str, ToolCallTextParser] = {
    "hermes": parse_hermes,
    "mistral": parse_mistral,
    "llama3": parse_llama3,
    "json": parse_json,
}
"""Text formats by name, tried in this order. Add an entry to support another format."""

_MARKERS = (_HERMES_OPEN, _MISTRAL_MARK, _PYTHON_TAG, '"name"', '"_name"')


def parse_tool_calls(
    text: str,
    *,
    tool_names: Collection[str] | None = None,
    formats: Sequence[str] | None = None,
    max_chars: int = 1_000_000,
) -> ParsedToolCalls:
    r"""Find the tool calls in generated text; the rest of the text is the content.

    Formats (``formats`` picks and orders them; default: all of `TOOL_CALL_PARSERS`):

    * ``hermes``: Hermes / Qwen ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``;
    * ``mistral``: ``[TOOL_CALLS] [{...}]``, ``[TOOL_CALLS][{...}]``, ``[TOOL_CALLS]name[ARGS]{...}``;
    * ``llama3``: ``{"name": ..., "parameters": {...}}``, optionally after ``<|python_tag|>``,
      several separated by ``;``;
    * ``json``: a call object or list, alone or in a fenced block; TGI's
      ``{"function": {"_name": ...}}``.

    The first format that recognises the text wins. Text without tool calls comes back
    untouched. Malformed calls in a recognised wrapper, and calls to tools not in
    ``tool_names`` (when given), become ``invalid_tool_calls``. Text longer than ``max_chars``
    is not parsed (an invalid call says so if it looked like a tool call), and at most
    `MAX_TOOL_CALLS` calls are kept. Never raises for any input text; ``ValueError`` only for an
    unknown format name.

    Example:
        >>> parsed = parse_tool_calls(
        ...     'Let me look.\n<tool_call>\n{"name": "search", "arguments": {"q": "tgi"}}\n</tool_call>'
        ... )
        >>> parsed.content, parsed.tool_calls[0]["name"], parsed.tool_calls[0]["args"]
        ('Let me look.', 'search', {'q': 'tgi'})
        >>> parse_tool_calls("Just an answer.").tool_calls
        []
        >>> parse_tool_calls('[TOOL_CALLS][{"name": "rm", "arguments": {}}]', tool_names=["ls"]
        ...     ).invalid_tool_calls[0]["error"]
        "Tool 'rm' is not available; available tools: 'ls'."
    """
    names = list(TOOL_CALL_PARSERS) if formats is None else list(formats)
    unknown = [name for name in names if name not in TOOL_CALL_PARSERS]
    if unknown:
        msg = f"Unknown tool-call format(s) {unknown}; known: {list(TOOL_CALL_PARSERS)}."
        raise ValueError(msg)
    if len(text) > max_chars:
        result = ParsedToolCalls(content=text)
        if any(marker in text for marker in _MARKERS):
            error = f"Output of {len(text)} characters is over the {max_chars} limit; not parsed"
            result.add(invalid_tool_call(id=new_tool_call_id(), error=error))
        return result
    for name in names:
        parsed = TOOL_CALL_PARSERS[name](text)
        if parsed is not None:
            return _check_names(_bound_calls(parsed), tool_names)
    return ParsedToolCalls(content=text)


def _bound_calls(parsed: ParsedToolCalls) -> ParsedToolCalls:
    total = len(parsed.tool_calls) + len(parsed.invalid_tool_calls)
    if total <= MAX_TOOL_CALLS:
        return parsed
    parsed.tool_calls = parsed.tool_calls[:MAX_TOOL_CALLS]
    parsed.invalid_tool_calls = parsed.invalid_tool_calls[: max(MAX_TOOL_CALLS - len(parsed.tool_calls), 0)]
    error = f"{total - MAX_TOOL_CALLS} more tool calls over the {MAX_TOOL_CALLS} limit were dropped"
    parsed.invalid_tool_calls.append(invalid_tool_call(id=new_tool_call_id(), error=error))
    return parsed


def _check_names(parsed: ParsedToolCalls, tool_names: Collection[str] | None) -> ParsedToolCalls:
    if tool_names is None:
        return parsed
    if isinstance(tool_names, str):
        tool_names = [tool_names]
    allowed = set(tool_names)
    kept: list[ToolCall] = []
    for call in parsed.tool_calls:
        if call["name"] in allowed:
            kept.append(call)
            continue
        available = ", ".join(repr(n) for n in tool_names) or "none"
        parsed.invalid_tool_calls.append(
            invalid_tool_call(
                name=call["name"],
                args=_dump(call["args"]),
                id=call["id"],
                error=f"Tool {call['name']!r} is not available; available tools: {available}.",
            )
        )
    parsed.tool_calls = kept
    return parsed
