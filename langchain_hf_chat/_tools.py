"""Tool schemas in, tool calls out.

In: `convert_tools` turns LangChain tools, Pydantic models, functions and dicts into OpenAI-format
function tools (the shape TGI, Inference Endpoints and the Inference Providers router accept);
`normalize_tool_choice` maps LangChain's ``tool_choice`` values onto the wire values; and
`tool_call_grammar` builds the TGI ``grammar`` that forces a call in template mode.

Out: `parse_wire_tool_calls` reads ``message.tool_calls`` from every TGI and OpenAI-style server
version. Tool calls in plain generated text (`parse_tool_calls`, `TOOL_CALL_PARSERS`) are read by
`langchain_hf_chat._tool_parsers`; its public names are re-exported here.

Model output is untrusted. Nothing here evaluates it: JSON is decoded with size and nesting
bounds, and anything malformed becomes an ``InvalidToolCall`` rather than an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import InvalidToolCall, ToolCall
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_hf_chat._schema import inline_refs
from langchain_hf_chat._tool_parsers import (
    MAX_JSON_DEPTH,
    MAX_TOOL_CALLS,
    NO_TOOL_NAME,
    TOOL_CALL_PARSERS,
    ParsedToolCalls,
    ToolCallTextParser,
    _arguments,
    _call_id,
    _dump,
    _nesting_ok,
    _unwrap_tgi_grammar,
    new_tool_call_id,
    parse_hermes,
    parse_json,
    parse_llama3,
    parse_mistral,
    parse_streamed_grammar,
    parse_tool_calls,
    tool_call_from_object,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_TOOL_CALLS",
    "NO_TOOL_NAME",
    "TOOL_CALL_PARSERS",
    "ParsedToolCalls",
    "ToolCallTextParser",
    "convert_tools",
    "new_tool_call_id",
    "normalize_tool_choice",
    "parse_hermes",
    "parse_json",
    "parse_llama3",
    "parse_mistral",
    "parse_streamed_grammar",
    "parse_tool_calls",
    "parse_wire_tool_calls",
    "tool_call_from_object",
    "tool_call_grammar",
]

_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --- tool schemas in -------------------------------------------------------------------------


def _describe(tool: object) -> str:
    if isinstance(tool, BaseTool):
        return f"tool {tool.name!r}"
    if isinstance(tool, Mapping):
        function = tool.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        name = name or tool.get("name") or tool.get("title")
        return f"dict {name!r}" if name else "dict"
    return repr(getattr(tool, "__name__", tool))


def convert_tools(
    tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | BaseTool],
    *,
    inline_schema_refs: bool = True,
) -> list[dict[str, Any]]:
    """Convert tools to OpenAI-format function tools, validated and self-contained.

    Each tool may be a LangChain ``BaseTool``, a Pydantic model class, a ``TypedDict`` class, a
    Python function, or a dict (OpenAI tool or function, JSON schema with a ``title``, Anthropic
    tool). Every result has ``name``, ``description`` and ``parameters``; local ``$ref``s in the
    parameters are inlined (TGI merges parameters into its own grammar, which would break them).

    Raises:
        ValueError: A tool cannot be converted, is not a function tool, has a name outside
            ``[A-Za-z0-9_-]{1,64}`` or the reserved name ``no_tool``, or two tools share a name.
            The message names the offending tool and its position.

    Example:
        >>> def get_weather(city: str) -> str:
        ...     '''Weather for a city.'''
        ...     return "sunny"
        >>> convert_tools([get_weather])[0]["function"]["name"]
        'get_weather'
        >>> convert_tools([{"name": "bad name!", "parameters": {}}])
        Traceback (most recent call last):
        ...
        ValueError: Tool #0 (dict 'bad name!') has an invalid name 'bad name!': ...
    """
    converted: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, tool in enumerate(tools):
        label = f"Tool #{index} ({_describe(tool)})"
        try:
            openai_tool = convert_to_openai_tool(tool)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            msg = f"{label} cannot be converted to a function schema: {exc}"
            raise ValueError(msg) from exc
        function = openai_tool.get("function")
        if openai_tool.get("type") != "function" or not isinstance(function, Mapping):
            msg = (
                f"{label} has type {openai_tool.get('type')!r}; only function tools are "
                "supported by Hugging Face servers."
            )
            raise ValueError(msg)
        name = function.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            msg = f"{label} has an invalid name {name!r}: use 1 to 64 letters, digits, underscores or hyphens."
            raise ValueError(msg)
        if name == NO_TOOL_NAME:
            msg = f"{label}: the name {NO_TOOL_NAME!r} is reserved by TGI; rename the tool."
            raise ValueError(msg)
        if name in seen:
            msg = f"{label} has the same name as tool #{seen[name]}: {name!r}."
            raise ValueError(msg)
        seen[name] = index
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, Mapping):
            msg = f"{label} has parameters that are not a JSON-schema object: {parameters!r}"
            raise ValueError(msg)
        if inline_schema_refs:
            try:
                parameters = inline_refs(parameters)
            except ValueError as exc:
                raise ValueError(f"{label}: {exc}") from exc
        result: dict[str, Any] = {
            "name": name,
            "description": function.get("description") or "",
            "parameters": dict(parameters),
        }
        if "strict" in function:
            result["strict"] = function["strict"]
        converted.append({"type": "function", "function": result})
    return converted


_CHOICE_KEYWORDS = {"auto": "auto", "none": "none", "any": "required", "required": "required"}


def _named_choice(name: str, tool_names: Sequence[str]) -> dict[str, Any]:
    if name not in tool_names:
        available = ", ".join(repr(n) for n in tool_names) or "none"
        msg = f"tool_choice names the tool {name!r}, which is not bound; available tools: {available}."
        raise ValueError(msg)
    return {"type": "function", "function": {"name": name}}


def normalize_tool_choice(
    tool_choice: str | bool | Mapping[str, Any] | None, tool_names: Sequence[str]
) -> str | dict[str, Any] | None:
    """Map a LangChain ``tool_choice`` onto the value TGI and OpenAI-style servers accept.

    * ``None`` or ``False``: ``None`` (omit the field; servers then default to ``"auto"``);
    * ``"auto"``, ``"none"``, ``"required"``: unchanged (case-insensitive);
    * ``"any"``: ``"required"``;
    * ``True``: the only tool if there is exactly one, else ``"required"``;
    * a tool name, ``{"type": "function", "function": {"name": n}}``, ``{"name": n}`` or
      Anthropic's ``{"type": "tool", "name": n}``: ``{"type": "function", "function":
      {"name": n}}``;
    * ``{"type": "auto" | "any" | "none" | "required"}``: the keyword, as above.

    Keywords win over tool names: a tool called ``"auto"`` can only be chosen with the dict form.

    Raises:
        ValueError: An unknown tool name (the message lists the available tools), a
            ``"required"``/``"any"``/``True`` choice without tools, or an unrecognised value.

    Example:
        >>> normalize_tool_choice("any", ["search"])
        'required'
        >>> normalize_tool_choice("search", ["search", "calc"])
        {'type': 'function', 'function': {'name': 'search'}}
        >>> normalize_tool_choice(True, ["search"])
        {'type': 'function', 'function': {'name': 'search'}}
        >>> normalize_tool_choice("weather", ["search"])
        Traceback (most recent call last):
        ...
        ValueError: tool_choice names the tool 'weather', which is not bound; available tools: 'search'.
    """
    names = list(tool_names)
    if tool_choice is None or tool_choice is False:
        return None
    if tool_choice is True:
        if not names:
            msg = "tool_choice=True needs at least one bound tool."
            raise ValueError(msg)
        return _named_choice(names[0], names) if len(names) == 1 else "required"
    if isinstance(tool_choice, str):
        keyword = _CHOICE_KEYWORDS.get(tool_choice.lower())
        if keyword is None:
            return _named_choice(tool_choice, names)
        if keyword == "required" and not names:
            msg = f"tool_choice={tool_choice!r} needs at least one bound tool."
            raise ValueError(msg)
        return keyword
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return _named_choice(function["name"], names)
        if isinstance(tool_choice.get("name"), str):
            return _named_choice(tool_choice["name"], names)
        kind = tool_choice.get("type")
        if isinstance(kind, str) and kind.lower() in _CHOICE_KEYWORDS:
            return normalize_tool_choice(kind, names)
    msg = (
        f"Unrecognised tool_choice {tool_choice!r}: use None, 'auto', 'none', 'any', "
        "'required', True, a tool name or {'type': 'function', 'function': {'name': ...}}."
    )
    raise ValueError(msg)


def tool_call_grammar(
    tools: Sequence[Mapping[str, Any]], tool_choice: str | bool | Mapping[str, Any] | None
) -> dict[str, Any]:
    """Build a TGI ``grammar`` that forces exactly one tool call in TGI's own shape.

    The model must produce ``{"function": {"_name": "<tool>", <arguments...>}}``, which
    `parse_tool_calls` and TGI both understand. ``tools`` are OpenAI-format tools (see
    `convert_tools`); ``tool_choice`` is any value `normalize_tool_choice` accepts:

    * a named tool: only that tool's arguments are allowed;
    * ``"required"`` / ``"any"``: any of the tools (``anyOf``);
    * ``"auto"`` / ``None``: any tool, or TGI's ``no_tool`` escape hatch
      ``{"_name": "no_tool", "content": "<answer>"}``, which `parse_tool_calls` turns back into
      plain content.

    Each tool's parameters are inlined (a recursive schema is refused: grammar engines cannot
    compile it) and closed with ``additionalProperties: false`` unless the tool asks for
    ``true``, as TGI does.

    Raises:
        ValueError: ``tool_choice`` is ``"none"``, no tools were given, a tool's parameters are
            recursive, or a tool has its own ``_name`` argument.

    Example:
        >>> tools = convert_tools([{"name": "add", "parameters": {
        ...     "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}])
        >>> grammar = tool_call_grammar(tools, "add")
        >>> grammar["type"], grammar["value"]["required"]
        ('json', ['function'])
        >>> grammar["value"]["properties"]["function"]["properties"]["_name"]
        {'type': 'string', 'const': 'add'}
    """
    functions = {
        tool["function"]["name"]: tool["function"] for tool in tools if isinstance(tool.get("function"), Mapping)
    }
    choice = normalize_tool_choice(tool_choice, list(functions))
    if choice == "none":
        msg = "tool_choice='none' forbids tool calls; there is no grammar to build."
        raise ValueError(msg)
    if not functions:
        msg = "A tool-call grammar needs at least one tool."
        raise ValueError(msg)
    if isinstance(choice, dict):
        selected = [functions[choice["function"]["name"]]]
    else:
        selected = list(functions.values())
    alternatives = [_function_alternative(function) for function in selected]
    if choice in (None, "auto"):
        alternatives.append(
            _closed_object(
                "Open ended response with no specific tool selected",
                {
                    "_name": {"type": "string", "const": NO_TOOL_NAME},
                    "content": {"type": "string", "description": "The response content"},
                },
                ["_name", "content"],
                additional=False,
            )
        )
    function_schema = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
    value = _closed_object(None, {"function": function_schema}, ["function"], additional=False)
    return {"type": "json", "value": value}


def _function_alternative(function: Mapping[str, Any]) -> dict[str, Any]:
    name = function["name"]
    try:
        parameters = inline_refs(function.get("parameters") or {}, on_recursion="raise")
    except ValueError as exc:
        msg = f"Tool {name!r}: {exc}"
        raise ValueError(msg) from exc
    arguments = parameters.get("properties") or {}
    if "_name" in arguments:
        msg = f"Tool {name!r} has an argument called '_name', which TGI's call shape reserves."
        raise ValueError(msg)
    required = [r for r in parameters.get("required") or [] if isinstance(r, str)]
    return _closed_object(
        function.get("description") or "",
        {"_name": {"type": "string", "const": name}, **arguments},
        ["_name", *required],
        additional=parameters.get("additionalProperties") in (True, "true"),
    )


def _closed_object(
    description: str | None, properties: dict[str, Any], required: list[str], *, additional: bool
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if description is not None:
        schema["description"] = description
    schema.update(properties=properties, required=required, additionalProperties=additional)
    return schema


# --- wire format -----------------------------------------------------------------------------


def parse_wire_tool_calls(raw: Any) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Read ``message.tool_calls`` from a chat-completions response of any TGI/OpenAI version.

    Accepts a list or a single object (TGI 2.x); ``arguments`` as a JSON string, an object, or
    missing (``{}``); ``parameters`` instead of ``arguments`` (TGI 2.0); ``id`` as an int, a
    string, or missing (a fresh id); TGI's grammar output ``{"function": {"_name": ...}}``
    inside the arguments (its ``_name`` replaces a placeholder name such as ``"tools"``), and
    end-of-turn tokens such as ``<|eot_id|>`` after the JSON. Malformed entries become
    ``InvalidToolCall``s carrying the raw arguments and the reason; this never raises.

    Example:
        >>> calls, invalid = parse_wire_tool_calls([{"id": 0, "type": "function",
        ...     "function": {"name": "add", "arguments": '{"a": 1}'}}])
        >>> calls
        [{'name': 'add', 'args': {'a': 1}, 'id': '0', 'type': 'tool_call'}]
        >>> parse_wire_tool_calls({"function": {"name": "add", "arguments": "{bad"}})[1][0]["error"]
        'Invalid JSON in tool-call arguments: Expecting property name enclosed in double quotes...'
    """
    if raw is None:
        return [], []
    items = raw if isinstance(raw, list) else [raw]
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for item in items:
        call = _wire_call(item)
        if call.get("type") == "invalid_tool_call":
            invalid.append(call)  # type: ignore[arg-type]
        else:
            calls.append(call)  # type: ignore[arg-type]
    return calls, invalid


def _wire_call(item: Any) -> ToolCall | InvalidToolCall:
    if not isinstance(item, Mapping):
        return invalid_tool_call(args=_dump(item), id=new_tool_call_id(), error="Tool call is not an object")
    function = item.get("function")
    function = function if isinstance(function, Mapping) else item
    call_id = _call_id(item.get("id"))
    name = function.get("name")
    raw_args = function.get("arguments", function.get("parameters"))
    raw_text = raw_args if isinstance(raw_args, str) else _dump(raw_args)
    try:
        if raw_args is not None and not isinstance(raw_args, str) and not _nesting_ok(raw_args):
            msg = f"nested more than {MAX_JSON_DEPTH} levels deep"
            raise ValueError(msg)
        raw_args = _arguments(raw_args)
    except ValueError as exc:
        return invalid_tool_call(
            name=name if isinstance(name, str) else None,
            args=raw_text,
            id=call_id,
            error=f"Invalid JSON in tool-call arguments: {exc}",
        )
    grammar_name, args = _unwrap_tgi_grammar(raw_args)
    name = grammar_name or name
    if not isinstance(name, str) or not name:
        return invalid_tool_call(args=raw_text, id=call_id, error="Tool call has no name")
    return tool_call(name=name, args=args, id=call_id)
