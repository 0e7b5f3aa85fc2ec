"""LangChain messages <-> wire and template dicts, and responses -> messages. Pure functions only.

Two directions, named for them:

* ``messages_to_wire`` builds chat-completions ``messages`` (OpenAI shape, which TGI accepts);
* ``messages_to_template`` builds the dicts a Hugging Face chat template expects (``content`` as a string,
  assistant ``tool_calls`` with ``arguments`` as objects, ``tool`` messages with ``name``/``tool_call_id``);
* ``message_from_chat_response`` / ``chunk_from_chat_chunk`` turn chat-completions responses into
  ``AIMessage`` / ``AIMessageChunk``.

Example:
    >>> from langchain_core.messages import HumanMessage, SystemMessage
    >>> messages_to_template([SystemMessage("Be brief."), HumanMessage("Hi")])
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi'}]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk

from langchain_hf_chat import errors

__all__ = [
    "FINISH_REASONS",
    "chunk_from_chat_chunk",
    "message_from_chat_response",
    "messages_to_template",
    "messages_to_wire",
    "normalize_finish_reason",
    "template_dicts",
    "usage_from",
]

#: TGI and OpenAI-style finish reasons, normalised to LangChain's usual vocabulary.
FINISH_REASONS: dict[str, str] = {
    "eos_token": "stop",
    "stop_sequence": "stop",
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def normalize_finish_reason(raw: str | None) -> str | None:
    """``eos_token``/``stop_sequence`` -> ``stop``; unknown values pass through.

    >>> normalize_finish_reason("eos_token"), normalize_finish_reason("length")
    ('stop', 'length')
    """
    if raw is None:
        return None
    return FINISH_REASONS.get(raw, raw)


def _role(message: BaseMessage) -> str:
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, ToolMessage):
        return "tool"
    if isinstance(message, FunctionMessage):
        return "function"
    if isinstance(message, ChatMessage):
        return message.role
    raise TypeError(f"unsupported message type {type(message).__name__}")


def _text_of(content: str | list[Any]) -> str:
    """Plain text of a message's content; non-text blocks raise (callers needing images use the wire form)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping):
            kind = block.get("type")
            if kind == "text":
                parts.append(str(block.get("text", "")))
            elif kind in ("reasoning", "thinking", "tool_use", "tool_call"):
                continue  # not part of the visible conversation text
            elif kind in ("image_url", "image", "input_image"):
                raise ValueError(
                    "image content cannot be rendered into a text prompt: use a vision model in "
                    "chat-completions mode (mode='chat')"
                )
            else:
                raise ValueError(f"unsupported content block type {kind!r} in a text prompt")
        else:
            raise ValueError(f"unsupported content element {type(block).__name__}")
    return "".join(parts)


def _wire_content(content: str | list[Any]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    blocks: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, str):
            blocks.append({"type": "text", "text": block})
            continue
        if not isinstance(block, Mapping):
            raise ValueError(f"unsupported content element {type(block).__name__}")
        kind = block.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image_url":
            url = block.get("image_url")
            url = url.get("url") if isinstance(url, Mapping) else url
            blocks.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "image":
            # LangChain standard block: url, or base64 data with a mime type.
            if block.get("url"):
                url = block["url"]
            elif block.get("base64") or block.get("data"):
                mime = block.get("mime_type", "image/png")
                url = f"data:{mime};base64,{block.get('base64') or block.get('data')}"
            else:
                raise ValueError("image content block needs `url` or `base64` data")
            blocks.append({"type": "image_url", "image_url": {"url": url}})
        elif kind in ("reasoning", "thinking"):
            continue
        else:
            raise ValueError(f"unsupported content block type {kind!r}")
    if all(b["type"] == "text" for b in blocks):
        return "".join(b["text"] for b in blocks)
    return blocks


def _tool_call_arguments(args: Any) -> dict[str, Any]:
    return dict(args) if isinstance(args, Mapping) else {}


def messages_to_wire(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Chat-completions ``messages`` for a list of LangChain messages."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        role = _role(message)
        item: dict[str, Any] = {"role": role}
        if isinstance(message, AIMessage) and message.tool_calls:
            item["content"] = _text_of(message.content) or None
            item["tool_calls"] = [
                {
                    "id": call.get("id") or f"call_{i}",
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": json.dumps(call["args"], ensure_ascii=False),
                    },
                }
                for i, call in enumerate(message.tool_calls)
            ]
            if item["content"] is None:
                item["content"] = ""
        elif isinstance(message, AIMessage):
            item["content"] = _text_of(message.content)
        else:
            item["content"] = _wire_content(message.content)
        if isinstance(message, ToolMessage):
            item["tool_call_id"] = message.tool_call_id
            if isinstance(item["content"], list):
                item["content"] = _text_of(message.content)
        if isinstance(message, FunctionMessage) or (message.name and role in ("user", "system")):
            item["name"] = message.name
        wire.append(item)
    return wire


_PLAIN_ROLES: dict[type[BaseMessage], str] = {HumanMessage: "user", SystemMessage: "system", AIMessage: "assistant"}


def messages_to_template(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Dicts for a Hugging Face chat template (as ``transformers.apply_chat_template`` receives them)."""
    return template_dicts(messages)[0]


def template_dicts(messages: Sequence[BaseMessage]) -> tuple[list[dict[str, Any]], bool]:
    """``messages_to_template``, and whether every dict is a plain ``{"role": str, "content": str}``.

    Plain dicts need no further normalising before a template renders them (``str`` values only, exactly).

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> template_dicts([HumanMessage("Hi")])
        ([{'role': 'user', 'content': 'Hi'}], True)
    """
    out: list[dict[str, Any]] = []
    plain = True
    plain_roles = _PLAIN_ROLES
    for message in messages:
        # Most messages: no fields beyond the role and the text.
        role = plain_roles.get(type(message))
        if role is not None and (role != "assistant" or not message.tool_calls):  # type: ignore[attr-defined]
            content = message.content
            if type(content) is not str:
                content = _text_of(content)
                plain = plain and type(content) is str
            out.append({"role": role, "content": content})
            continue
        plain = False
        role = _role(message)
        item: dict[str, Any] = {"role": role, "content": _text_of(message.content)}
        if isinstance(message, AIMessage) and message.tool_calls:
            item["tool_calls"] = [
                {
                    "id": call.get("id"),
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": _tool_call_arguments(call["args"]),
                    },
                }
                for call in message.tool_calls
            ]
        if isinstance(message, ToolMessage):
            item["tool_call_id"] = message.tool_call_id
            if message.name:
                item["name"] = message.name
        if isinstance(message, FunctionMessage):
            item["name"] = message.name
        out.append(item)
    return out, plain


# Responses come from servers of every version and quality: the readers below take what has the expected type
# and ignore the rest, so a malformed field never becomes an AttributeError deep inside.


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        return 0
    return int(value) if value < 2**63 else 0


def _response_text(content: Any) -> str:
    """``content`` of a response message: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part if isinstance(part, str) else str(part.get("text") or "")
            for part in content
            if isinstance(part, str) or (isinstance(part, Mapping) and isinstance(part.get("text"), str))
        )
    return ""


def _first_choice(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    return choice if isinstance(choice, Mapping) else None


def usage_from(usage: Any) -> UsageMetadata | None:
    """LangChain ``usage_metadata`` from an OpenAI/TGI ``usage`` object (``None`` when absent or malformed)."""
    if not usage or not isinstance(usage, Mapping):
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    total = _count(usage.get("total_tokens")) or prompt + completion
    metadata: UsageMetadata = {"input_tokens": prompt, "output_tokens": completion, "total_tokens": total}  # type: ignore[typeddict-item]
    return metadata


def message_from_chat_response(data: Mapping[str, Any]) -> AIMessage:
    """An ``AIMessage`` from a non-streaming chat-completions response (any TGI or OpenAI-style version).

    Raises :class:`~langchain_hf_chat.errors.ServerError` when the response has no choice to read.
    """
    from langchain_hf_chat._tools import parse_wire_tool_calls

    choice = _first_choice(data)
    if choice is None:
        raise errors.ServerError(f"chat response has no choices: {str(data)[:200]!r}")
    message = _mapping(choice.get("message"))
    content = _response_text(message.get("content"))
    tool_calls, invalid = parse_wire_tool_calls(message.get("tool_calls"))
    raw_reason = _text_or_none(choice.get("finish_reason"))
    metadata: dict[str, Any] = {
        "model_name": _text_or_none(data.get("model")),
        "finish_reason": "tool_calls"
        if tool_calls and raw_reason in (None, "stop", "eos_token")
        else normalize_finish_reason(raw_reason),
    }
    if raw_reason is not None:
        metadata["raw_finish_reason"] = raw_reason
    if _text_or_none(data.get("system_fingerprint")):
        metadata["system_fingerprint"] = data["system_fingerprint"]
    if choice.get("logprobs") is not None:
        metadata["logprobs"] = choice["logprobs"]
    additional: dict[str, Any] = {}
    reasoning = _text_or_none(message.get("reasoning_content")) or _text_or_none(message.get("reasoning"))
    if reasoning:
        additional["reasoning_content"] = reasoning
    return AIMessage(
        content=content,
        tool_calls=tool_calls,
        invalid_tool_calls=invalid,
        usage_metadata=usage_from(data.get("usage")),
        response_metadata=metadata,
        additional_kwargs=additional,
        id=_text_or_none(data.get("id")) or None,
    )


def chunk_from_chat_chunk(data: Mapping[str, Any]) -> AIMessageChunk | None:
    """An ``AIMessageChunk`` for one streamed chat-completions chunk (``None`` for an empty one)."""
    usage = usage_from(data.get("usage"))
    choice = _first_choice(data)
    if choice is None:
        if usage is None:
            return None
        return AIMessageChunk(content="", usage_metadata=usage)
    delta = _mapping(choice.get("delta"))
    content = _response_text(delta.get("content"))
    tool_chunks = []
    raw_calls = delta.get("tool_calls")
    if isinstance(raw_calls, Mapping):  # TGI 2.x-3.1: a single object
        raw_calls = [raw_calls]
    for position, call in enumerate(raw_calls if isinstance(raw_calls, list) else []):
        if not isinstance(call, Mapping):
            continue
        function = _mapping(call.get("function"))
        args = function.get("arguments")
        if args is not None and not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        raw_id = call.get("id")
        index = call.get("index", position)
        tool_chunks.append(
            tool_call_chunk(
                name=_text_or_none(function.get("name")) or None,
                args=args,
                id=str(raw_id) if isinstance(raw_id, (str, int)) and raw_id != "" else None,
                index=index if isinstance(index, int) and not isinstance(index, bool) else position,
            )
        )
    metadata: dict[str, Any] = {}
    raw_reason = _text_or_none(choice.get("finish_reason"))
    if raw_reason:
        metadata["finish_reason"] = normalize_finish_reason(raw_reason)
        metadata["raw_finish_reason"] = raw_reason
        metadata["model_name"] = _text_or_none(data.get("model"))
    logprobs = _mapping(choice.get("logprobs")).get("content")
    if isinstance(logprobs, list):  # chunks are merged, so keep only the one shape that merges: {"content": [...]}
        metadata["logprobs"] = {"content": logprobs}
    additional: dict[str, Any] = {}
    reasoning = _text_or_none(delta.get("reasoning_content")) or _text_or_none(delta.get("reasoning"))
    if reasoning:
        additional["reasoning_content"] = reasoning
    return AIMessageChunk(
        content=content,
        tool_call_chunks=tool_chunks,
        usage_metadata=usage,
        response_metadata=metadata,
        additional_kwargs=additional,
    )
