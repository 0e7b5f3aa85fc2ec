"""TGI ``grammar`` → token masks, with llguidance (see ``docs/grammar-engines.md`` for why llguidance).

TGI accepts ``{"type": "json" | "json_object", "value": <schema object or JSON string>}``,
``{"type": "json_schema", "value": {"name"?: str, "schema": <schema>}}`` and
``{"type": "regex", "value": <pattern>}`` (protocol §2.1, §4.2). :func:`compile_grammar` turns one into an
llguidance grammar once (and validates it, with TGI's messages), and :class:`GrammarConstraint` masks the
logits of each decoding step so only tokens that keep the output inside the grammar survive. When the
grammar is complete, only the end-of-sequence token is allowed, so a constrained generation ends with
``eos_token`` exactly as TGI's does.

JSON is generated in the layout Python's ``json.dumps`` uses (``", "`` and ``": "``, no newlines): the
model meets that layout most in training, and an inflexible layout leaves no room for endless whitespace.

llguidance is imported lazily; nothing here imports torch.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ClosingTokens",
    "GrammarConstraint",
    "GrammarError",
    "closing_tokens",
    "compile_grammar",
    "make_llg_tokenizer",
]

_JSON_LAYOUT: Any = {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}


class GrammarError(ValueError):
    """The grammar is invalid or unsupported.

    The message is TGI's text after ``Input validation error: `` (for example
    ``grammar is not valid: Grammar must have a 'properties' field``).
    """


def grammar_schema(grammar: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a TGI grammar asks for (``None`` for a ``regex`` grammar).

    Raises:
        GrammarError: with TGI's message for an unsupported type or an invalid value.
    """
    kind = grammar.get("type")
    value = grammar.get("value")
    if kind == "regex":
        if not isinstance(value, str):
            raise GrammarError("grammar is not supported")
        return None
    if kind in ("json", "json_object"):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as error:
                raise GrammarError(f"grammar is not valid: {error}") from error
        if not isinstance(value, dict):
            raise GrammarError("grammar is not supported")
        schema: dict[str, Any] = value
    elif kind == "json_schema":
        schema_value = value.get("schema") if isinstance(value, Mapping) else None
        if not isinstance(schema_value, dict):
            raise GrammarError("grammar is not supported")
        schema = schema_value
    else:
        raise GrammarError("grammar is not supported")
    if "properties" not in schema:
        raise GrammarError("grammar is not valid: Grammar must have a 'properties' field")
    closed: dict[str, Any] = _close_objects(_require_tool_call(schema))
    return closed


# JSON-Schema keywords whose value is a map of subschemas, a list of them, or one subschema.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "$functions", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalItems", "contains", "not", "if", "then", "else", "propertyNames")


def _close_objects(schema: Any) -> Any:
    """Objects with ``properties`` and no ``additionalProperties`` get ``additionalProperties: false``.

    That is what TGI's engine generates (it emits only the listed properties), and it keeps a small model
    from inventing keys until it runs out of tokens. An explicit ``additionalProperties`` is kept.
    """
    if not isinstance(schema, dict):
        return schema
    closed: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            closed[key] = {name: _close_objects(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            closed[key] = [_close_objects(sub) for sub in value]
        elif key in _SCHEMA_ONE or key == "additionalProperties":
            closed[key] = [_close_objects(s) for s in value] if isinstance(value, list) else _close_objects(value)
        else:
            closed[key] = value
    if isinstance(schema.get("properties"), dict) and "additionalProperties" not in schema:
        closed["additionalProperties"] = False
    return closed


def _require_tool_call(schema: dict[str, Any]) -> dict[str, Any]:
    """Make TGI's tool grammar demand the call it was built for.

    TGI's tool grammar (§7.2) is ``{"$functions": {...}, "properties": {"function": {"anyOf": [...]}}}``
    with no ``required`` at the top, which as JSON Schema also admits ``{}``. TGI's engine happened to
    force the property; a faithful JSON-Schema engine must be told, or a small model may answer ``{}``.
    """
    properties = schema.get("properties")
    if "$functions" not in schema or not isinstance(properties, dict) or "function" not in properties:
        return schema
    completed = dict(schema)
    completed.setdefault("type", "object")
    completed.setdefault("required", ["function"])
    completed.setdefault("additionalProperties", False)
    return completed


@functools.lru_cache(maxsize=128)
def _compile_cached(grammar_key: str) -> str:
    import llguidance

    grammar = json.loads(grammar_key)
    schema = grammar_schema(grammar)
    if schema is None:
        return str(llguidance.LLMatcher.grammar_from_regex(grammar["value"]))
    return str(llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=_JSON_LAYOUT))


def compile_grammar(grammar: Mapping[str, Any], llg_tokenizer: Any) -> str:
    """Validate a TGI grammar and return it as an llguidance grammar (a JSON string).

    Raises:
        GrammarError: the grammar is unsupported, invalid JSON, not a schema with ``properties``, or
            cannot be compiled (``cannot compile regex from schema: ...`` as TGI words it).
    """
    import llguidance

    try:
        key = json.dumps(grammar, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise GrammarError("grammar is not supported") from error
    compiled = _compile_cached(key)
    problem = llguidance.LLMatcher.validate_grammar(compiled, llg_tokenizer)
    if problem:
        if grammar.get("type") == "regex":
            raise GrammarError(f"grammar is not valid: {problem.strip()}")
        raise GrammarError(f"cannot compile regex from schema: {problem.strip()}")
    return compiled


def make_llg_tokenizer(hf_tokenizer: Any, eos_token_ids: Sequence[int], vocab_size: int) -> Any:
    """An llguidance tokenizer for a Hugging Face fast tokenizer (about 0.4 s for a 49k vocabulary)."""
    import llguidance.hf

    return llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=vocab_size, eos_token=list(eos_token_ids))


def _json_lexer_state(text: str, in_string: bool, escaped: bool) -> tuple[bool, bool]:
    r"""Where ``text`` leaves a JSON lexer that starts ``in_string`` (after a backslash if ``escaped``).

    Only ``"`` and ``\`` matter; bytes of a split UTF-8 character never decode to either.
    """
    for character in text:
        if not in_string:
            in_string = character == '"'
        elif escaped:
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == '"':
            in_string = False
    return in_string, escaped


class ClosingTokens:
    """Which tokens move a JSON value toward its end, from each lexer state; built once per tokenizer.

    Inside a string only a token that ends it (an unescaped ``"``, not reopening a string) closes
    anything: a ``}`` there is string content. Outside a string, ``}`` and ``]`` close a container, and
    ``,`` moves on when the schema still requires more. See :meth:`GrammarConstraint.mask_logits`.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        import torch

        self.texts = list(texts)
        starts = [text.lstrip()[:1] for text in self.texts]
        self.ends_string = tuple(
            torch.tensor([not _json_lexer_state(text, True, escaped)[0] for text in self.texts], dtype=torch.bool)
            for escaped in (False, True)
        )
        self.closes_container = torch.tensor([start in ("}", "]") for start in starts], dtype=torch.bool)
        self.separates = torch.tensor([start == "," for start in starts], dtype=torch.bool)

    def text(self, token_id: int) -> str:
        return self.texts[token_id] if 0 <= token_id < len(self.texts) else ""


def closing_tokens(hf_tokenizer: Any, vocab_size: int) -> ClosingTokens:
    """The :class:`ClosingTokens` of a Hugging Face tokenizer (about a second for 49k tokens)."""
    return ClosingTokens(hf_tokenizer.batch_decode([[i] for i in range(vocab_size)]))


class GrammarConstraint:
    """Masks a decoding step's logits to the tokens a grammar allows; one instance per generation.

    ``closers`` (from :func:`closing_tokens`) enables *closing mode* for JSON grammars: when the
    generation is about to run out of tokens, tokens that close the current string, array or object are
    preferred over every other allowed token, so the JSON ends (valid) inside the budget instead of being
    cut off mid-string. TGI has no such mode and returns truncated JSON there; a forced tool call must
    always parse, so this backend deviates on purpose, and only in the last tokens of the budget.
    """

    def __init__(self, llg_tokenizer: Any, compiled_grammar: str, closers: ClosingTokens | None = None) -> None:
        import llguidance
        import llguidance.numpy

        self._matcher = llguidance.LLMatcher(llg_tokenizer, compiled_grammar)
        if self._matcher.is_error():
            raise GrammarError(f"cannot compile regex from schema: {self._matcher.get_error()}")
        self._vocab_size = int(llg_tokenizer.vocab_size)
        self._bitmask = llguidance.numpy.allocate_token_bitmask(1, self._vocab_size)
        self._fill = llguidance.numpy.fill_next_token_bitmask
        self._closers = closers
        self._in_string = False  # the JSON lexer's state after the tokens consumed so far
        self._escaped = False

    def mask_logits(self, logits: Any, *, closing: bool = False) -> None:
        """Set the logits of forbidden tokens to ``-inf`` in place (``logits``: a 1×V float tensor).

        With ``closing`` (and closers known), allowed tokens that move toward the end of the current
        value outrank every other allowed token, while the model still chooses among them: inside a
        string, tokens that end it; outside, ``}``/``]``, else ``,`` when the schema requires more.
        """
        import numpy as np
        import torch

        self._fill(self._matcher, self._bitmask, 0)
        allowed = np.unpackbits(self._bitmask[0].view(np.uint8), bitorder="little")
        width = logits.shape[-1]
        keep = torch.zeros(width, dtype=torch.bool)
        usable = min(width, self._vocab_size)
        keep[:usable] = torch.from_numpy(allowed[:usable].astype(np.bool_))
        logits.masked_fill_(~keep, float("-inf"))
        if not closing or self._closers is None:
            return
        if self._in_string:
            tiers = [self._closers.ends_string[self._escaped]]
        else:
            tiers = [self._closers.closes_container, self._closers.separates]
        for tier in tiers:
            preferred = torch.zeros(width, dtype=torch.bool)
            known = min(width, len(tier))
            preferred[:known] = tier[:known]
            preferred &= keep
            if bool(preferred.any()):
                logits.masked_fill_(~preferred, float("-inf"))
                return

    def advance(self, token_id: int) -> None:
        """Feed the chosen token to the grammar."""
        if not self._matcher.consume_token(token_id):  # pragma: no cover - the mask prevents it
            raise RuntimeError(f"grammar rejected token {token_id}: {self._matcher.get_error()}")
        if self._closers is not None:
            text = self._closers.text(token_id)
            self._in_string, self._escaped = _json_lexer_state(text, self._in_string, self._escaped)
