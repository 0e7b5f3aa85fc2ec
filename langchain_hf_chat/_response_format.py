"""``response_format`` in the shape each server accepts, and the structured-output fallback chain. Pure functions.

Two incompatible shapes exist (huggingface_hub #2744): TGI's grammar ``{"type": "json_object", "value": schema}``
(also ``"json"``; ``"regex"``), and OpenAI's ``{"type": "json_schema", "json_schema": {"name", "schema",
"strict"}}`` / ``{"type": "json_object"}``, which the Inference Providers router and vLLM-style servers take.
:func:`to_tgi` and :func:`to_openai` convert either into the other, so a format bound once works on both.

When a server cannot constrain decoding (TGI started with ``--disable-grammar-support``, a provider without
structured output), :func:`fallback_plan` lists what to try next: the schema, then JSON mode, then a prompt
that asks for JSON (parsed afterwards); the step that answered is recorded as ``structured_output_method``.

Example:
    >>> schema = {"title": "Joke", "type": "object", "properties": {"setup": {"type": "string"}}}
    >>> to_tgi(to_openai({"type": "json_object", "value": schema}))
    {'type': 'json_object', 'value': {'title': 'Joke', 'type': 'object', 'properties': {'setup': {'type': 'string'}}}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage

from langchain_hf_chat import errors
from langchain_hf_chat._schema import DEFAULT_SCHEMA_NAME, inline_refs

__all__ = [
    "JSON_MODE",
    "METHODS",
    "cannot_constrain",
    "fallback_plan",
    "schema_of",
    "to_openai",
    "to_tgi",
]

#: OpenAI-shaped JSON mode (any JSON object).
JSON_MODE: dict[str, Any] = {"type": "json_object"}
#: The structured-output methods, strongest first.
METHODS = ("json_schema", "json_mode", "prompt")
_ANY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def schema_of(response_format: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` (either shape) constrains to; ``None`` for JSON mode or regex.

    >>> schema_of({"type": "json_object"}) is None, schema_of({"type": "json", "value": {"properties": {}}})
    (True, {'properties': {}})
    """
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if isinstance(spec, Mapping) and isinstance(spec.get("schema"), Mapping):
            return dict(spec["schema"])
        value = response_format.get("value")  # TGI 3.3's own json_schema grammar type
        if isinstance(value, Mapping) and isinstance(value.get("schema"), Mapping):
            return dict(value["schema"])
        return None
    if kind in ("json_object", "json"):
        value = response_format.get("value")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if isinstance(value, Mapping) and dict(value) != _ANY_OBJECT:
            return dict(value)
    return None


def to_tgi(response_format: Mapping[str, Any]) -> dict[str, Any]:
    """TGI's grammar shape (``$ref``s inlined: TGI's grammar compiler needs self-contained schemas)."""
    kind = response_format.get("type")
    if kind not in ("json_schema", "json_object", "json"):
        return dict(response_format)  # regex, text, or something only the server knows
    schema = schema_of(response_format)
    if schema is None:
        return {"type": "json_object", "value": dict(_ANY_OBJECT)}
    return {"type": "json_object", "value": inline_refs(schema)}


def to_openai(response_format: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's shape; an OpenAI-shaped format comes back unchanged."""
    kind = response_format.get("type")
    if kind == "json_schema" and isinstance(response_format.get("json_schema"), Mapping):
        return dict(response_format)
    if kind not in ("json_schema", "json_object", "json"):
        return dict(response_format)
    schema = schema_of(response_format)
    if schema is None:
        return dict(JSON_MODE)
    name = str(schema.get("title") or DEFAULT_SCHEMA_NAME)
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


_CANNOT_CONSTRAIN = (
    "grammar is not supported",
    "structured output",
    "response_format",
    "json_schema",
    "guided decoding",
)


def cannot_constrain(exc: errors.HuggingFaceError) -> bool:
    """Whether ``exc`` says the server cannot constrain the output to a schema (so a weaker method may work).

    >>> cannot_constrain(errors.ValidationError("Input validation error: grammar is not supported", status_code=422))
    True
    >>> cannot_constrain(errors.ValidationError("`top_k` must be strictly positive", status_code=422))
    False
    """
    if not isinstance(exc, errors.BadRequestError):
        return False
    message = str(exc.server_message or exc.message).lower()
    return any(marker in message for marker in _CANNOT_CONSTRAIN)


def prompt_instruction(schema: Mapping[str, Any] | None) -> str:
    """The instruction that replaces constrained decoding in the ``prompt`` method."""
    if schema is None:
        return "Answer with a single JSON object and nothing else: no prose, no code fences."
    return (
        "Answer with a single JSON object that matches this JSON schema, and nothing else (no prose, no code "
        f"fences):\n{json.dumps(schema, ensure_ascii=False)}"
    )


def with_instruction(messages: Sequence[BaseMessage], instruction: str) -> list[BaseMessage]:
    """``messages`` with ``instruction`` appended to the system message (or a new one first)."""
    out = list(messages)
    if out and isinstance(out[0], SystemMessage) and isinstance(out[0].content, str):
        out[0] = SystemMessage(content=f"{out[0].content}\n\n{instruction}")
    else:
        out.insert(0, SystemMessage(content=instruction))
    return out


def fallback_plan(
    messages: Sequence[BaseMessage], request: Mapping[str, Any], *, start: str | None = None
) -> list[tuple[str | None, Sequence[BaseMessage], dict[str, Any]]]:
    """The attempts for a request: ``(method, messages, request)``, strongest first, from method ``start`` on.

    Without a JSON ``response_format`` there is one attempt and no method.
    """
    response_format = request.get("response_format")
    plain = dict(request)
    if not isinstance(response_format, Mapping) or response_format.get("type") not in (
        "json_schema",
        "json_object",
        "json",
    ):
        return [(None, messages, plain)]
    schema = schema_of(response_format)
    without = {k: v for k, v in request.items() if k != "response_format"}
    steps: list[tuple[str | None, Sequence[BaseMessage], dict[str, Any]]] = []
    if schema is not None:
        steps.append(("json_schema", messages, plain))
    steps.append(("json_mode", messages, {**without, "response_format": dict(JSON_MODE)}))
    steps.append(("prompt", with_instruction(messages, prompt_instruction(schema)), without))
    methods = [method for method, _, _ in steps]
    if start in methods:
        steps = steps[methods.index(start) :]
    return steps
