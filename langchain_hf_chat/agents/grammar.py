r"""Regular expressions that force one ReAct-JSON model turn into the shape the classic parser accepts.

A TGI grammar (``{"type": "regex", "value": pattern}``, sent as ``response_format`` in chat mode and as
``grammar`` in text mode) leaves a model no way to write anything else, so even a 135M-parameter model
cannot produce "Could not parse LLM output". :func:`react_json_turn_pattern` builds the pattern for one turn;
:func:`~langchain_hf_chat.agents.create_react_json_agent` with ``constrain_actions=True`` picks one per turn.

A turn is a thought, then **either** an action (a single-line JSON blob in a fenced block) **or** a final
answer, exactly what ``ReActJsonSingleInputOutputParser`` turns into an ``AgentAction`` or ``AgentFinish``::

    Thought: I need to search for this.
    Action:
    ```
    {"action": "Search", "action_input": "leo dicaprio girlfriend"}
    ```

    Thought: I now know the final answer
    Final Answer: 3.99

Why the character classes are what they are:

- Every part is bounded (thought, tool input and answer lengths), so a generation always ends.
- The thought and the tool input never contain ``:``: if ``Final Answer:`` appeared next to a parseable action,
  the parser would raise. Neither contains a backtick, which would move the parser's fenced-block match.
- The tool input is a JSON string without control characters; only ``\"`` and ``\\`` escapes are allowed.
- ``Final Answer`` is not a JSON action: this parser treats ``{"action": "Final Answer"}`` as a call to a tool
  named "Final Answer" (which does not exist); the prompt's ``Final Answer: ...`` line is what finishes.

The pattern uses only syntax that Python's :mod:`re` and the Rust ``regex`` dialect (TGI's outlines,
llguidance) read the same way, so it can be checked in Python.

Example:
    >>> import re
    >>> pattern = react_json_turn_pattern(["Search", "Calculator"])
    >>> turn = 'Thought: look it up\nAction:\n```\n{"action": "Search", "action_input": "leo"}\n```'
    >>> re.fullmatch(pattern, turn) is not None
    True
    >>> re.fullmatch(pattern, 'Thought: done\nFinal Answer: 4') is not None
    True
    >>> re.fullmatch(pattern, 'Action: Search') is None
    True
"""

from __future__ import annotations

import json
from collections.abc import Sequence

__all__ = [
    "DEFAULT_MAX_ANSWER_CHARS",
    "DEFAULT_MAX_INPUT_CHARS",
    "DEFAULT_MAX_THOUGHT_CHARS",
    "react_json_turn_pattern",
]

#: Longest thought a constrained turn may write, in characters.
DEFAULT_MAX_THOUGHT_CHARS = 200
#: Longest tool input (``action_input``), in characters of its JSON text.
DEFAULT_MAX_INPUT_CHARS = 100
#: Longest final answer, in characters.
DEFAULT_MAX_ANSWER_CHARS = 200

_THOUGHT_CHAR = r"[^\n:`]"
_INPUT_CHAR = r'(?:[^"\\\x00-\x1f:`]|\\["\\])'
_ANSWER_CHAR = r"[^\n`]"
_METACHARACTERS = frozenset("\\.+*?()|[]{}^$")


def _literal(text: str) -> str:
    # Only the metacharacters both dialects share are escaped: Rust's regex rejects some escapes Python emits.
    return "".join(f"\\{char}" if char in _METACHARACTERS else char for char in text)


def react_json_turn_pattern(
    tool_names: Sequence[str],
    *,
    allow_action: bool = True,
    allow_final_answer: bool = True,
    thought_prefix: bool = True,
    max_thought_chars: int = DEFAULT_MAX_THOUGHT_CHARS,
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS,
) -> str:
    r"""The regex for one ReAct-JSON turn: a thought, then an action on one of ``tool_names`` or a final answer.

    Args:
        tool_names: the tools an action may name (at least one when ``allow_action``).
        allow_action: whether the turn may call a tool.
        allow_final_answer: whether the turn may give the final answer.
        thought_prefix: start with ``Thought: ``. Turns after an observation should not: the scratchpad
            (``format_log_to_str``) already ends with ``Thought: `` there.
        max_thought_chars: longest thought (at least 1 character).
        max_input_chars: longest tool input (at least 1 character).
        max_answer_chars: longest final answer (at least 1 character).

    Raises:
        ValueError: neither an action nor a final answer is allowed, no tool is named for an action, or a
            bound is below 1.

    Example:
        >>> print(react_json_turn_pattern(["Search"], allow_action=False, max_thought_chars=80))
        Thought: [^\n:`]{1,80}\nFinal Answer: [^\n`]{1,200}
        >>> print(react_json_turn_pattern(["Search"], allow_final_answer=False, thought_prefix=False)[14:])
        \nAction:\n```\n\{"action": "(?:Search)", "action_input": "(?:[^"\\\x00-\x1f:`]|\\["\\]){1,100}"\}\n```
    """
    if not (allow_action or allow_final_answer):
        raise ValueError("a turn must allow an action, a final answer, or both")
    if allow_action and not tool_names:
        raise ValueError("an action needs at least one tool name")
    for name, bound in (
        ("max_thought_chars", max_thought_chars),
        ("max_input_chars", max_input_chars),
        ("max_answer_chars", max_answer_chars),
    ):
        if bound < 1:
            raise ValueError(f"{name} must be at least 1, not {bound}")
    endings = []
    if allow_action:
        names = "|".join(_literal(json.dumps(name)[1:-1]) for name in tool_names)
        blob = _literal('{"action": "') + f"(?:{names})" + _literal('", "action_input": "')
        blob += f"{_INPUT_CHAR}{{1,{max_input_chars}}}" + _literal('"}')
        endings.append("\\nAction:\\n```\\n" + blob + "\\n```")
    if allow_final_answer:
        endings.append(f"\\nFinal Answer: {_ANSWER_CHAR}{{1,{max_answer_chars}}}")
    ending = endings[0] if len(endings) == 1 else "(?:" + "|".join(endings) + ")"
    prefix = "Thought: " if thought_prefix else ""
    return f"{prefix}{_THOUGHT_CHAR}{{1,{max_thought_chars}}}{ending}"
