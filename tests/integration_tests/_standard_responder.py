"""A scripted "model" that answers langchain-tests' standard chat-model prompts sensibly.

The TGI-compatible test server asks :func:`respond` for every generation. It reads what a real model would
see (the chat messages, or the rendered prompt in text mode) and what constrains its output (TGI's tool or
JSON grammar), and answers like a small, obedient model:

* a tool grammar (tools were bound): call the tool the question asks for, with arguments taken from the
  question, or answer in text when the grammar allows ``no_tool`` and the tool already ran;
* a JSON grammar (structured output, JSON mode): an object that satisfies the schema, with values that fit
  the property names (a joke has a setup and a punchline);
* text mode without a grammar (the template cannot show tools to the model): call a tool only when the
  question names a known task, in TGI's grammar shape, which ``ChatHuggingFace`` parses from text;
* otherwise plain text: greetings, haikus, a story, jokes, or an answer built from the last tool result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_hf_chat.testing import GenerationRequest

__all__ = ["respond"]

GREETING = "Hello! How can I help you today?"
HAIKUS = (
    "Morning dew settles\nOn the quiet garden path\nA sparrow takes flight\n\n"
    "Autumn wind whispers\nThrough the maple's crimson leaves\nThe old pond listens"
)
STORY = (
    "Miso the cat lived above a bakery. Every dawn she watched the baker knead the dough, and every dawn she "
    "stole one warm roll. One morning the baker left a roll out on purpose, with her name written in flour."
)
JOKE = {"setup": "Why did the cat sit on the computer?", "punchline": "To keep an eye on the mouse!"}
NO_TOOL = "no_tool"

# Tasks the suite asks for by name: question pattern -> (tool, arguments from the match).
_TASKS: tuple[tuple[re.Pattern[str], str, Callable[[re.Match[str]], dict[str, Any]]], ...] = (
    (re.compile(r"magic_function\((-?\d+)\)"), "magic_function", lambda m: {"input": int(m[1])}),
    (re.compile(r"magic_function_no_args\(\)"), "magic_function_no_args", lambda m: {}),
    (re.compile(r"weather in ([^?]+)", re.IGNORECASE), "get_weather", lambda m: {"location": m[1].strip()}),
    (re.compile(r"What is (-?\d+) \+ (-?\d+)"), "my_adder_tool", lambda m: {"a": int(m[1]), "b": int(m[2])}),
    (re.compile(r"generate an? (\w+) greeting", re.IGNORECASE), "greeting_generator", lambda m: {"answer_style": m[1]}),
    (
        re.compile(r"customer named '([^']+)'(?: \([^)]*\))?\s*-\s*(.+)"),
        "unicode_customer",
        lambda m: {"customer_name": m[1], "description": m[2].strip()},
    ),
)
# Values for JSON properties, by name.
_STRING_VALUES = {**JOKE, "name": "Ada Lovelace", "location": "Paris", "answer_style": "friendly"}
_TEMPLATE_TURN = re.compile(
    r"<\|(system|user|assistant|tool)\|>\n(.*?)(?=</s>|<\|(?:system|user|assistant|tool)\|>|\Z)", re.S
)


@dataclass(frozen=True)
class _Turn:
    role: str
    text: str


def respond(request: GenerationRequest) -> str:
    """The reply for one generation request (text; tool calls in TGI's grammar shape)."""
    turns = _conversation(request)
    question = next((t.text for t in reversed(turns) if t.role == "user"), "")
    acted = _acted_since_question(turns)
    grammar = request.parameters.grammar or {}
    tools = _grammar_tools(grammar)
    if tools is not None:
        return _answer_with_tools(tools, question, turns, acted)
    schema = _grammar_schema(grammar)
    if schema is not None:
        return json.dumps(_instance(schema, question, key=""), ensure_ascii=False)
    if request.messages is None and not acted:
        task = _task(question, names=None)
        if task is not None:
            return _tool_call(*task)
    return _text_answer(question, turns, acted)


# -- reading the request -----------------------------------------------------------------------------------------


def _conversation(request: GenerationRequest) -> list[_Turn]:
    if request.messages is not None:
        return [_Turn(str(m.get("role")), _text_of(m)) for m in request.messages]
    # Text mode: the rendered prompt of a template that tags turns <|role|> (zephyr, the built-in one).
    return [_Turn(role, text.strip()) for role, text in _TEMPLATE_TURN.findall(request.inputs)]


def _text_of(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, Sequence):
        text = " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    else:
        text = ""
    # TGI appends the tools and its tool prompt to the last message: keep what the user wrote.
    return text.split("\n---\n", 1)[0]


def _acted_since_question(turns: Sequence[_Turn]) -> bool:
    """Whether the assistant (or a tool) already took a turn after the last question."""
    last_user = max((i for i, t in enumerate(turns) if t.role == "user"), default=-1)
    # In text mode the prompt ends with the open assistant turn, which has no text yet.
    later = [t for t in turns[last_user + 1 :] if t.role == "tool" or (t.role == "assistant" and t is not turns[-1])]
    return bool(later)


def _grammar_tools(grammar: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The tools a tool grammar offers (name -> argument schema), ``no_tool`` included; ``None`` otherwise.

    Both shapes force ``{"function": {"_name": ..., <arguments>}}``: TGI's chat route puts the alternatives in
    ``$functions``, ``ChatHuggingFace``'s text mode inlines them.
    """
    value = grammar.get("value")
    if not isinstance(value, Mapping):
        return None
    function = (value.get("properties") or {}).get("function")
    if not isinstance(function, Mapping):
        return None
    definitions = value.get("$functions") or {}
    tools: dict[str, dict[str, Any]] = {}
    for alternative in function.get("anyOf") or [function]:
        if "$ref" in alternative:
            alternative = definitions[alternative["$ref"].rsplit("/", 1)[-1]]
        properties = dict(alternative.get("properties") or {})
        name = properties.pop("_name")["const"]
        required = [r for r in alternative.get("required") or [] if r != "_name"]
        tools[name] = {"type": "object", "properties": properties, "required": required}
    return tools


def _grammar_schema(grammar: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if grammar.get("type") not in ("json", "json_object", "json_schema"):
        return None
    schema = grammar.get("value")
    if isinstance(schema, str):
        schema = json.loads(schema)
    if grammar.get("type") == "json_schema" and isinstance(schema, Mapping) and "schema" in schema:
        schema = schema["schema"]
    return schema if isinstance(schema, Mapping) else None


# -- answering ---------------------------------------------------------------------------------------------------


def _answer_with_tools(
    tools: Mapping[str, Mapping[str, Any]], question: str, turns: Sequence[_Turn], acted: bool
) -> str:
    callable_tools = {name: schema for name, schema in tools.items() if name != NO_TOOL}
    may_answer = NO_TOOL in tools
    if acted and may_answer:
        # The tool already ran: answer (TGI's no_tool pass turns plain text into the reply).
        return _text_answer(question, turns, acted)
    task = _task(question, names=callable_tools)
    if task is not None:
        return _tool_call(*task)
    if may_answer:
        return _text_answer(question, turns, acted)
    name, schema = next(iter(callable_tools.items()))
    return _tool_call(name, _instance(schema, question, key=""))


def _task(question: str, names: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
    """The tool call a question asks for, among ``names`` (``None``: the model cannot see the tools)."""
    for pattern, name, arguments in _TASKS:
        match = pattern.search(question)
        if match and (names is None or name in names):
            return name, arguments(match)
    return None


def _tool_call(name: str, arguments: Mapping[str, Any]) -> str:
    return json.dumps({"function": {"_name": name, **arguments}}, ensure_ascii=False)


def _text_answer(question: str, turns: Sequence[_Turn], acted: bool) -> str:
    lowered = question.lower()
    if acted:
        result = next((t.text for t in reversed(turns) if t.role == "tool" and t.text), "")
        return f"The tool returned {result}." if result else "I used the tool; it is done."
    if "haiku" in lowered:
        return HAIKUS
    if "story" in lowered:
        return STORY
    if "joke" in lowered:
        return f"{JOKE['setup']} {JOKE['punchline']}"
    return GREETING


def _instance(schema: Mapping[str, Any], question: str, *, key: str) -> Any:
    """A value satisfying ``schema`` that fits the property ``key`` and the question."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf"):
        options = [o for o in schema.get(combinator) or [] if o.get("type") != "null"]
        if options:
            return _instance(options[0], question, key=key)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return _object(schema, question)
    if kind == "string":
        return _STRING_VALUES.get(key) or schema.get("description") or key or "example"
    if kind in ("integer", "number"):
        number = re.search(r"-?\d+", question)
        return int(number[0]) if number else 0
    if kind == "boolean":
        return True
    if kind == "array":
        return [_instance(schema.get("items") or {"type": "string"}, question, key=key)]
    return None


def _object(schema: Mapping[str, Any], question: str) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    if not properties:
        # JSON mode: no schema, so use the keys the question asks for ("... with 'setup' and 'punchline' keys").
        keys = re.findall(r"'(\w+)'", question)
        properties = {k: {"type": "string"} for k in keys}
    required = set(schema.get("required") or properties)
    lowered = question.lower()
    return {
        name: _instance(sub, question, key=name)
        for name, sub in properties.items()
        if name in required or f"no {name}" not in lowered
    }
