"""Chat preparation as TGI's router does it: messages, tools, the tool grammar, tool-call parsing (README §7)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_hf_chat.testing._errors import InferError, template_error, tool_error
from langchain_hf_chat.testing.backends.base import (
    Backend,
    TemplateNotFoundError,
    TemplateRenderError,
)

__all__ = [
    "DEFAULT_TOOL_PROMPT",
    "NO_TOOL",
    "PreparedChat",
    "ToolStreamParser",
    "next_tool_call_id",
    "parse_tool_call",
    "prepare_chat",
]

DEFAULT_TOOL_PROMPT = (
    "\nGiven the functions available, please respond with a JSON for a function call with its proper "
    "arguments that best answers the given prompt. Respond in the format {name: function name, "
    "parameters: dictionary of argument name and its value}.Do not use variables.\n"
)

NO_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "description": "Open ended response with no specific tool selected",
        "name": "no_tool",
        "arguments": {
            "type": "object",
            "properties": {"content": {"type": "string", "description": "The response content"}},
            "required": ["content"],
        },
    },
}


def flatten_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """TGI's ``TextMessage``: text chunks joined, images as ``![](url)``, tool calls as their JSON."""
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join(
            chunk["text"] if chunk.get("type") == "text" else f"![]({chunk['image_url']['url']})" for chunk in content
        )
    else:
        text = json.dumps(message.get("tool_calls") or [], ensure_ascii=False, separators=(",", ":"))
    return {"role": message["role"], "content": text}


def _function(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    arguments = function.get("arguments", function.get("parameters"))
    return {"description": function.get("description"), "name": function["name"], "arguments": arguments}


def _select_tools(
    tools: Sequence[Mapping[str, Any]] | None, tool_choice: Any
) -> tuple[list[dict[str, Any]], bool] | None:
    """The tools the grammar offers (and whether ``no_tool`` is among them), or ``None`` for no tools."""
    if tools is None:
        return None
    if isinstance(tool_choice, Mapping):
        tool_choice = tool_choice["function"]["name"]
    if tool_choice is None or tool_choice == "auto":
        functions = [_function(t) for t in tools]
        return [*functions, dict(NO_TOOL["function"])], True
    if tool_choice == "none":
        return None
    if tool_choice == "required":
        return [_function(t) for t in tools], False
    for tool in tools:
        if tool["function"]["name"] == tool_choice:
            return [_function(tool)], False
    raise tool_error(f"Tool with name {tool_choice} not found")


def tool_grammar(functions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON schema forcing ``{"function": {"_name": <tool>, <arguments>}}``."""
    defs: dict[str, Any] = {}
    for function in functions:
        arguments = function.get("arguments")
        properties: dict[str, Any] = {"_name": {"type": "string", "const": function["name"]}}
        required: list[Any] = ["_name"]
        additional = False
        if isinstance(arguments, Mapping):
            properties.update(arguments.get("properties") or {})
            required.extend(arguments.get("required") or [])
            # TGI honours additionalProperties only when it is the string "true".
            additional = arguments.get("additionalProperties") == "true"
        defs[function["name"]] = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": additional,
        }
    refs = [{"$ref": f"#/$functions/{name}"} for name in defs]
    return {"$functions": defs, "properties": {"function": {"anyOf": refs}}}


@dataclass(frozen=True)
class PreparedChat:
    """A chat request ready for validation: the rendered prompt and the grammar."""

    prompt: str
    messages: list[dict[str, Any]]
    grammar: dict[str, Any] | None
    using_tools: bool
    tools: list[dict[str, Any]] | None


def render(
    backend: Backend,
    messages: Sequence[Mapping[str, Any]],
    *,
    functions: Sequence[Mapping[str, Any]] | None = None,
    tool_prompt: str = DEFAULT_TOOL_PROMPT,
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None]:
    """Apply the chat template the way TGI's ``ChatTemplate::apply`` does."""
    flat = [flatten_message(m) for m in messages]
    tools: list[dict[str, Any]] | None = None
    if functions is not None:
        tools = [{"type": "function", "function": dict(f)} for f in functions]
        if backend.template_uses_tools():
            text = f"\n---\n{tool_prompt}"
        else:
            tools_json = json.dumps(tools, ensure_ascii=False, separators=(",", ":"))
            text = f"\n---\n{tools_json}\n{tool_prompt}"
        if flat:
            flat[-1] = {**flat[-1], "content": flat[-1]["content"] + text}
    try:
        rendered = backend.render_chat(flat, tools=tools, add_generation_prompt=True)
    except TemplateNotFoundError as exc:
        raise template_error(str(exc) or "template not found") from exc
    except TemplateRenderError as exc:
        raise template_error(str(exc)) from exc
    final = flat[-1] if flat else None
    if final is not None and final["role"] == "assistant" and final["content"]:
        # Continuation: cut the prompt right after the last assistant message's content.
        index = rendered.rfind(final["content"])
        if index >= 0:
            rendered = rendered[: index + len(final["content"])].rstrip()
    return rendered, flat, tools


def prepare_chat(
    backend: Backend,
    body: Mapping[str, Any],
    *,
    with_tools: bool = True,
) -> PreparedChat:
    """TGI's ``prepare_chat_input``: tool/response-format rules, tool grammar, template."""
    messages = body["messages"]
    response_format = body.get("response_format")
    tools = body.get("tools")
    if response_format is not None and tools is not None:
        raise tool_error("Grammar and tools are mutually exclusive")
    if response_format is not None:
        prompt, flat, _ = render(backend, messages)
        return PreparedChat(prompt, flat, dict(response_format), False, None)
    selected = _select_tools(tools, body.get("tool_choice")) if with_tools else None
    if selected is None:
        prompt, flat, _ = render(backend, messages)
        return PreparedChat(prompt, flat, None, False, None)
    functions, _ = selected
    tool_prompt = body.get("tool_prompt") or DEFAULT_TOOL_PROMPT
    prompt, flat, rendered_tools = render(backend, messages, functions=functions, tool_prompt=tool_prompt)
    grammar = {"type": "json", "value": tool_grammar(functions)}
    return PreparedChat(prompt, flat, grammar, True, rendered_tools)


def parse_tool_call(text: str) -> tuple[str, dict[str, Any]]:
    """The tool name and arguments from grammar-shaped output (TGI 3.2+ non-stream parsing)."""
    try:
        value = json.loads(text)
        function = value["function"]
        name = function["_name"]
        if not isinstance(name, str):
            raise TypeError("_name")
    except json.JSONDecodeError as exc:
        raise tool_error(f"Failed to parse generated text: {exc.msg} {json.dumps(text)}") from exc
    except (KeyError, TypeError) as exc:
        raise tool_error(f"Failed to parse generated text: missing field `{exc.args[0]}` {json.dumps(text)}") from exc
    arguments = {k: v for k, v in function.items() if k != "_name"}
    return name, arguments


def next_tool_call_id(messages: Sequence[Mapping[str, Any]]) -> str:
    """The streamed tool-call id: 1 + the largest earlier numeric id, ``"0"``, or a UUID."""
    largest = -1
    for message in messages:
        if message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or []:
            call_id = str(call.get("id", ""))
            if not call_id.isdigit():
                return str(uuid.uuid4())
            largest = max(largest, int(call_id))
    return str(largest + 1)


class ToolStreamParser:
    """TGI 3.2+'s streaming tool-call state machine (``ChatState``).

    Tokens are buffered until the function name parses; then the name is emitted with ``arguments: "{"``
    and later tokens become argument fragments, the grammar's closing brace trimmed from the last one.
    """

    def __init__(self) -> None:
        self.text = ""
        self.name: str | None = None
        self.done = False

    def feed(self, token_text: str) -> tuple[str, str | None] | None:
        """Feed one token; returns ``("name", name)``, ``("args", fragment)`` or ``None`` (buffering)."""
        if self.done:
            return None
        self.text += token_text
        if self.name is None:
            partial = self.text.rstrip().rstrip(",").rstrip()
            name = _name_of(partial + "}}") or _name_of(partial)
            if name is None:
                return None
            self.name = name
            if _name_of(self.text) is not None:
                self.done = True  # the whole call arrived at once: no arguments follow
            return ("name", name)
        if _name_of(self.text) is not None:
            self.done = True
            fragment = token_text.rstrip()
            if fragment.endswith("}"):
                fragment = fragment[:-1]
            return ("args", fragment)
        return ("args", token_text)


def _name_of(text: str) -> str | None:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("function"), dict):
        return None
    name = value["function"].get("_name")
    return name if isinstance(name, str) else None


def as_infer_error(exc: Exception) -> InferError:
    """Any failure during chat preparation as a TGI error."""
    return exc if isinstance(exc, InferError) else template_error(str(exc))
