"""Template inputs, normalised exactly as transformers does before it renders."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

_REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")
_REASONING_KEYS = frozenset(_REASONING_FIELDS)
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "


def _plain(value: Any) -> Any:
    """Rebuild a value from plain JSON types (as transformers' `_plain_template_data`)."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is float or kind is bool:
        return value
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    item = getattr(value, "item", None)  # numpy scalars, without importing numpy
    if type(value).__module__ == "numpy" and callable(item):
        return _plain(item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {field.name: _plain(getattr(value, field.name)) for field in fields}
    if callable(getattr(value, "model_dump", None)):
        return _plain(value.model_dump())
    return f"<{type(value).__name__}>"


class _UnhashableInputError(Exception):
    """The inputs hold something other than plain JSON-like data; they are not memoised."""


_DICT_MARK = object()


def _freeze(value: Any) -> tuple[Any, ...]:
    """A hashable, order-preserving, type-exact key for plain JSON-like data."""
    kind = type(value)
    if kind is dict:
        return (
            _DICT_MARK,
            *[
                (key if type(key) is str else _freeze(key), item if type(item) is str else _freeze(item))
                for key, item in value.items()
            ],
        )
    if kind is list or kind is tuple:
        return (kind, *[item if type(item) is str else _freeze(item) for item in value])
    if kind is str or value is None or kind is int or kind is float or kind is bool:
        return (kind, value)  # the type keeps 1, 1.0 and True apart: they render differently
    raise _UnhashableInputError


def _message_dicts(messages: Any) -> list[dict[Any, Any]]:
    listed = type(messages) is list
    if not listed and (isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Iterable)):
        raise TypeError(f"messages must be a list of message dicts, got {type(messages).__name__}")
    chat: list[dict[Any, Any]] = []
    reasoning = False
    for message in messages:
        if type(message) is dict:
            # Plain messages as they are (templates cannot change them); a copy only to drop or convert.
            for key, value in message.items():
                if type(value) is not str or type(key) is not str:
                    break
            else:
                chat.append(message)
                reasoning = reasoning or not _REASONING_KEYS.isdisjoint(message)
                continue
            reasoning = True  # checked below, with the rest
            chat.append(
                {
                    key if type(key) is str else _plain(key): value if type(value) is str else _plain(value)
                    for key, value in message.items()
                    if value is not None
                }
            )
            continue
        if dataclasses.is_dataclass(message) and not isinstance(message, type):
            message = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
        elif not isinstance(message, Mapping) and callable(getattr(message, "model_dump", None)):
            message = message.model_dump()
        if not isinstance(message, Mapping):
            raise TypeError(f"Chat messages should be dicts, but got {message!r:.80}.")
        # Keys whose value is None are dropped: templates handle a missing key, not `None`.
        chat.append(_plain({key: value for key, value in message.items() if value is not None}))
        reasoning = True
    if not chat:
        raise ValueError("Cannot apply a chat template to an empty conversation.")
    if not reasoning:
        return chat
    for index, message in enumerate(chat):
        if not _REASONING_KEYS.intersection(message):
            continue
        text = next((message[key] for key in _REASONING_FIELDS if message.get(key) is not None), None)
        if text is not None:
            chat[index] = {"thinking": text, **message, "reasoning_content": text}
    return chat


def _mark_continuation(chat: list[dict[Any, Any]], field: str, source: str) -> str:
    """Tag the final message (as transformers) so its end can be found and cut after rendering."""
    last = chat[-1] = dict(chat[-1])  # it may be the caller's own dict
    final = last.get(field)
    if final is None:
        raise ValueError(f'continue_final_message is set but the final message has no "{field}"')
    fields = [field]
    if field in _REASONING_FIELDS:
        fields = [name for name in _REASONING_FIELDS if last.get(name) == final]
    if not any(name in source for name in fields):
        raise ValueError(f'continue_final_message is "{field}", which this template never reads')
    if isinstance(final, (list, tuple)):
        for block in reversed(final):
            if isinstance(block, dict) and "text" in block:
                text = block["text"]
                block["text"] = text + _CONTINUE_TAG
                return str(text)
        raise ValueError("continue_final_message is set but the final message has no text block")
    for name in fields:
        last[name] = last[name] + _CONTINUE_TAG
    return str(final)


def _cut_continuation(rendered: str, final: str) -> str:
    tag = _CONTINUE_TAG.strip()
    if final.strip() not in rendered or tag not in rendered:
        raise ValueError(
            "continue_final_message is set but the final message does not appear in the chat "
            "after applying the chat template (the template deletes part of it)"
        )
    at = rendered.rindex(tag)
    if rendered[at : at + len(_CONTINUE_TAG)] == _CONTINUE_TAG:
        return rendered[:at]
    return rendered[:at].rstrip()
