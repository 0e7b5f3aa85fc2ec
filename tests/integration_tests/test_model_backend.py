"""The real-model backend (SmolLM2-135M-Instruct on the CPU) behaves like TGI.

Generations are kept short: the model makes about 10 tokens per second on one core.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import httpx
import jsonschema
import pytest

from langchain_hf_chat.testing import TGIServer
from langchain_hf_chat.testing.backends._grammar import GrammarError
from langchain_hf_chat.testing.backends.base import (
    Finish,
    GenerationParameters,
    GenerationRequest,
    Token,
)
from langchain_hf_chat.testing.backends.model import ModelBackend

pytestmark = pytest.mark.real_model

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]

WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location", "unit"],
    },
}
CALCULATOR = {
    "name": "calculator",
    "description": "Evaluate an arithmetic expression",
    "parameters": {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
}
BOOKING = {
    "name": "book_table",
    "description": "Book a restaurant table",
    "parameters": {
        "type": "object",
        "properties": {
            "people": {"type": "integer", "minimum": 1, "maximum": 20},
            "vegan": {"type": "boolean"},
            "dishes": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
        "required": ["people", "vegan", "dishes"],
    },
}


async def generate(
    backend: ModelBackend,
    inputs: str,
    *,
    chat: bool = True,
    **parameters: Any,
) -> tuple[list[Token], Finish]:
    request = GenerationRequest(
        inputs=inputs,
        parameters=GenerationParameters(**parameters),
        route="/v1/chat/completions" if chat else "/generate",
        messages=QUESTION if chat else None,
    )
    tokens: list[Token] = []
    finish: Finish | None = None
    async for event in backend.generate(request):
        if isinstance(event, Finish):
            finish = event
        else:
            assert finish is None, "no token may follow the Finish event"
            tokens.append(event)
    assert finish is not None
    return tokens, finish


def text_of(tokens: list[Token]) -> str:
    return "".join(token.text for token in tokens if not token.special)


def chat_prompt(backend: ModelBackend, content: str) -> str:
    return backend.render_chat([{"role": "user", "content": content}])


def tool_grammar(function: dict[str, Any]) -> dict[str, Any]:
    """The grammar TGI's chat route builds for a forced call (README §7.2), built as the test server does."""
    from langchain_hf_chat.testing._chat import tool_grammar as build

    tool = {"name": function["name"], "description": function["description"], "arguments": function["parameters"]}
    return {"type": "json", "value": build([tool])}


# -- tokenizer and template ------------------------------------------------------------------------


def test_tokenize_gives_real_ids_and_byte_offsets(real_model_backend: ModelBackend) -> None:
    text = "Hello wörld"
    pieces = real_model_backend.tokenize(text)
    tokenizer = real_model_backend._tokenizer
    assert [p[0] for p in pieces] == tokenizer(text)["input_ids"]
    encoded = text.encode()
    assert [encoded[start:stop].decode() for _, _, start, stop in pieces] == [p[1] for p in pieces]
    assert pieces[-1][3] == len(encoded)  # byte offsets: "ö" is two bytes


@pytest.mark.parametrize(
    "messages",
    [
        QUESTION,
        [
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Bonjour !"},
            {"role": "user", "content": "Ça va ?"},
        ],
    ],
)
def test_chat_template_matches_transformers(real_model_backend: ModelBackend, messages: list[dict[str, str]]) -> None:
    expected = real_model_backend._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert real_model_backend.render_chat(messages) == expected
    assert real_model_backend.template_uses_tools() is False


# -- decoding ----------------------------------------------------------------------------------------


async def test_greedy_decoding_is_deterministic_and_reports_no_seed(real_model_backend: ModelBackend) -> None:
    prompt = real_model_backend.render_chat(QUESTION)
    first, finish = await generate(real_model_backend, prompt, max_new_tokens=6)
    second, _ = await generate(real_model_backend, prompt, max_new_tokens=6)
    assert [t.id for t in first] == [t.id for t in second]
    assert finish.seed is None


async def test_sampling_with_a_seed_is_reproducible_and_reports_it(real_model_backend: ModelBackend) -> None:
    prompt = chat_prompt(real_model_backend, "Tell me a story.")
    params = {"max_new_tokens": 6, "do_sample": True, "temperature": 1.3, "top_k": 50, "seed": 1234}
    first, finish = await generate(real_model_backend, prompt, **params)
    second, _ = await generate(real_model_backend, prompt, **params)
    assert [t.id for t in first] == [t.id for t in second]
    assert finish.seed == 1234


async def test_sampling_without_a_seed_reports_the_drawn_seed(real_model_backend: ModelBackend) -> None:
    _, finish = await generate(real_model_backend, "Once upon a time", chat=False, max_new_tokens=1, top_p=0.9)
    assert isinstance(finish.seed, int)


async def test_max_new_tokens_bounds_the_generation(real_model_backend: ModelBackend) -> None:
    tokens, finish = await generate(
        real_model_backend, chat_prompt(real_model_backend, "Write a poem."), max_new_tokens=4
    )
    assert len(tokens) == 4
    assert finish.reason == "length"


async def test_generation_ends_with_the_eos_token(real_model_backend: ModelBackend) -> None:
    tokens, finish = await generate(real_model_backend, real_model_backend.render_chat(QUESTION), max_new_tokens=20)
    assert finish.reason == "eos_token"
    assert tokens[-1].special and tokens[-1].text == "<|im_end|>"
    assert "Paris" in text_of(tokens)
    assert "<|im_end|>" not in text_of(tokens)


async def test_stop_sequence_ends_the_generation_and_is_kept(real_model_backend: ModelBackend) -> None:
    prompt = real_model_backend.render_chat(QUESTION)
    tokens, finish = await generate(real_model_backend, prompt, max_new_tokens=20, stop=["capital of"])
    assert finish.reason == "stop_sequence"
    assert text_of(tokens).endswith("capital of")


async def test_logprobs_are_real_and_top_tokens_ranked(real_model_backend: ModelBackend) -> None:
    prompt = real_model_backend.render_chat(QUESTION)
    tokens, _ = await generate(real_model_backend, prompt, max_new_tokens=3, top_n_tokens=3)
    for token in tokens:
        assert math.isfinite(token.logprob) and token.logprob <= 0.0
        assert len(token.top_tokens) == 3
        ranked = [t.logprob for t in token.top_tokens]
        assert ranked == sorted(ranked, reverse=True)
        # Greedy: the chosen token is the most likely one.
        assert token.top_tokens[0].id == token.id
        assert token.top_tokens[0].logprob == pytest.approx(token.logprob)
    assert sum(math.exp(t.logprob) for t in tokens[0].top_tokens) <= 1.0 + 1e-6


async def test_abandoned_stream_frees_the_model_for_the_next_request(real_model_backend: ModelBackend) -> None:
    request = GenerationRequest(
        inputs=chat_prompt(real_model_backend, "Write a long essay."),
        parameters=GenerationParameters(max_new_tokens=200),
        route="/generate",
    )
    stream = real_model_backend.generate(request)
    first = await stream.__anext__()
    assert isinstance(first, Token)
    await stream.aclose()  # the client went away after one token
    tokens, _ = await generate(real_model_backend, "Hi", chat=False, max_new_tokens=2)
    assert len(tokens) == 2


# -- grammars ----------------------------------------------------------------------------------------

CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 20},
        "population": {"type": "integer", "minimum": 0},
        "coastal": {"type": "boolean"},
    },
    "required": ["city", "population", "coastal"],
}


@pytest.mark.parametrize(("seed", "temperature"), [(1, 0.7), (2, 1.0), (3, 1.5)])
async def test_json_schema_grammar_output_matches_the_schema(
    real_model_backend: ModelBackend, seed: int, temperature: float
) -> None:
    tokens, finish = await generate(
        real_model_backend,
        chat_prompt(real_model_backend, "Describe Paris as JSON."),
        max_new_tokens=40,
        do_sample=True,
        seed=seed,
        temperature=temperature,
        grammar={"type": "json_schema", "value": {"name": "city", "schema": CITY_SCHEMA}},
    )
    jsonschema.validate(json.loads(text_of(tokens)), CITY_SCHEMA)
    assert finish.reason == "eos_token"


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_regex_grammar_output_matches_the_pattern(real_model_backend: ModelBackend, seed: int) -> None:
    pattern = r"[0-9]{3}-[0-9]{4}"
    tokens, finish = await generate(
        real_model_backend,
        chat_prompt(real_model_backend, "Give me a phone number."),
        max_new_tokens=12,
        do_sample=True,
        seed=seed,
        grammar={"type": "regex", "value": pattern},
    )
    assert re.fullmatch(pattern, text_of(tokens))
    assert finish.reason == "eos_token"


@pytest.mark.parametrize(
    ("function", "seed", "temperature"),
    [
        (WEATHER, None, None),
        (WEATHER, 7, 1.5),
        (CALCULATOR, None, None),
        (CALCULATOR, 8, 1.2),
        (BOOKING, None, None),
        (BOOKING, 9, 1.5),
    ],
)
async def test_forced_tool_call_is_always_valid_for_the_tool_schema(
    real_model_backend: ModelBackend, function: dict[str, Any], seed: int | None, temperature: float | None
) -> None:
    # A tight budget: unbounded strings must still be closed in time (the backend's closing mode).
    prompt = chat_prompt(real_model_backend, f"{function['description']}, please.")
    tokens, _ = await generate(
        real_model_backend,
        prompt,
        max_new_tokens=36,
        do_sample=temperature is not None,
        seed=seed,
        temperature=temperature,
        grammar=tool_grammar(function),
    )
    call = json.loads(text_of(tokens))["function"]
    assert call.pop("_name") == function["name"]
    jsonschema.validate(call, function["parameters"])


async def test_schema_without_properties_is_rejected_with_tgis_message(real_model_backend: ModelBackend) -> None:
    with pytest.raises(GrammarError, match="Grammar must have a 'properties' field"):
        await generate(real_model_backend, "x", chat=False, max_new_tokens=2, grammar={"type": "json", "value": {}})


# -- behind the TGI-compatible server -----------------------------------------------------------------


def test_model_backend_behind_server(real_model_backend: ModelBackend, real_model_server: TGIServer) -> None:
    generated = httpx.post(
        real_model_server.url + "/generate",
        json={
            "inputs": real_model_backend.render_chat(QUESTION),
            "parameters": {"max_new_tokens": 5, "details": True},
        },
        timeout=120,
    )
    chat = httpx.post(
        real_model_server.url + "/v1/chat/completions",
        json={"model": "tgi", "messages": QUESTION, "max_tokens": 20, "temperature": 0},
        timeout=120,
    )
    info = httpx.get(real_model_server.url + "/info").json()
    assert generated.status_code == 200, generated.text
    details = generated.json()["details"]
    assert details["finish_reason"] == "length" and details["generated_tokens"] == 5
    assert chat.status_code == 200, chat.text
    body = chat.json()
    assert "Paris" in body["choices"][0]["message"]["content"]
    assert body["model"] == info["model_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert body["usage"]["prompt_tokens"] == len(real_model_backend.tokenize(real_model_backend.render_chat(QUESTION)))
