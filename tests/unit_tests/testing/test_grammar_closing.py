"""The real-model backend's JSON *closing mode*, on a tiny byte vocabulary (no model needed).

In the last tokens of the budget, allowed tokens that move toward the end of the current JSON value
outrank the others. A "model" here is a fixed preference over the vocabulary, decoded greedily.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("llguidance")

import llguidance
import torch

from langchain_hf_chat.testing.backends._grammar import (
    ClosingTokens,
    GrammarConstraint,
    compile_grammar,
)

WORDS = ["}}}", "]]]", "}", '"', '"}', '", "', ", ", ', "', "hello", "9"]
VOCABULARY = [bytes([b]) for b in range(256)] + [word.encode() for word in WORDS] + [b"<eos>"]
EOS = len(VOCABULARY) - 1
TEXTS = [token.decode("utf-8", "replace") for token in VOCABULARY]


class _ByteTokenizer:
    """What llguidance's ``TokenizerWrapper`` needs: the token bytes, EOS, and an encoder."""

    eos_token_id = EOS
    bos_token_id = None
    special_token_ids = [EOS]
    tokens = VOCABULARY

    def __call__(self, text: bytes) -> list[int]:
        return list(text)


@pytest.fixture(scope="module")
def llg_tokenizer() -> Any:
    return llguidance.LLTokenizer(llguidance.TokenizerWrapper(_ByteTokenizer()))


def decode_in_closing_mode(llg_tokenizer: Any, schema: dict[str, Any], prefix: str, favourite: str) -> str:
    """Consume ``prefix``, then decode greedily in closing mode from a model that always prefers ``favourite``."""
    constraint = GrammarConstraint(
        llg_tokenizer, compile_grammar({"type": "json", "value": schema}, llg_tokenizer), ClosingTokens(TEXTS)
    )
    for byte in prefix.encode():
        constraint.advance(byte)
    preference = torch.zeros(1, len(VOCABULARY))
    preference[0, TEXTS.index(favourite)] = 10.0
    output = prefix
    for _ in range(20):
        logits = preference.clone()
        constraint.mask_logits(logits, closing=True)
        token_id = int(logits.argmax())
        if token_id == EOS:
            return output
        constraint.advance(token_id)
        output += TEXTS[token_id]
    raise AssertionError(f"closing mode never ended the JSON: {output!r}")


TEXT_SCHEMA = {"properties": {"text": {"type": "string"}, "note": {"type": "string"}}, "required": ["text"]}


def test_an_open_string_is_ended_not_padded_with_braces(llg_tokenizer: Any) -> None:
    # "}}}" is allowed inside a string (as content); favouring it there never closes anything.
    output = decode_in_closing_mode(llg_tokenizer, TEXT_SCHEMA, '{"text": "hel', favourite="}}}")
    assert json.loads(output) == {"text": "hel"}


def test_an_escaped_quote_does_not_count_as_ending_the_string(llg_tokenizer: Any) -> None:
    output = decode_in_closing_mode(llg_tokenizer, TEXT_SCHEMA, '{"text": "a\\', favourite="}}}")
    assert json.loads(output)["text"].startswith('a"')


def test_outside_a_string_the_object_is_closed_rather_than_continued(llg_tokenizer: Any) -> None:
    output = decode_in_closing_mode(llg_tokenizer, TEXT_SCHEMA, '{"text": "hi"', favourite=', "')
    assert json.loads(output) == {"text": "hi"}


def test_a_number_ends_with_the_separator_the_schema_still_requires(llg_tokenizer: Any) -> None:
    schema = {"properties": {"count": {"type": "integer"}, "text": {"type": "string"}}, "required": ["count", "text"]}
    output = decode_in_closing_mode(llg_tokenizer, schema, '{"count": 12', favourite="9")
    assert json.loads(output) == {"count": 12, "text": ""}


@pytest.mark.parametrize(
    ("text", "escaped", "ends"),
    [
        ('"', False, True),
        ('"}', False, True),
        ('abc"', False, True),
        ('", "', False, False),  # ends the string but opens the next one
        ("}}}", False, False),
        ('\\"', False, False),
        ('"', True, False),
        ('""', True, True),
    ],
)
def test_a_token_ends_a_string_only_with_an_unescaped_quote(text: str, escaped: bool, ends: bool) -> None:
    closers = ClosingTokens([text])
    assert bool(closers.ends_string[escaped][0]) is ends
