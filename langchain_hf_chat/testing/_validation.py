"""TGI's request shapes and its parameter validation, in TGI's order with TGI's messages (README §2.1, §4).

Shapes (``GENERATE_REQUEST``, ``CHAT_REQUEST``, ...) reject bodies the way serde does (422 ``text/plain``);
:func:`validate` then applies the router's ``validate()`` checks (422 ``validation``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_hf_chat.testing._body import (
    Anything,
    Custom,
    Field,
    Optional,
    Scalar,
    Seq,
    Shape,
    ShapeError,
    Struct,
    Tagged,
    Untagged,
    serde_syntax_message,
    unexpected,
)
from langchain_hf_chat.testing._errors import validation_error
from langchain_hf_chat.testing.backends.base import GenerationParameters

__all__ = [
    "CHAT_REQUEST",
    "COMPAT_REQUEST",
    "COMPLETION_REQUEST",
    "GENERATE_REQUEST",
    "Limits",
    "RequestParameters",
    "Validated",
    "check_best_of",
    "check_stream_parameters",
    "validate",
]

STRING = Scalar("string")
BOOL = Scalar("bool")
F32 = Scalar("f32")
U32 = Scalar("u32")
U64 = Scalar("u64")
USIZE = Scalar("usize")
I32 = Scalar("i32")

GRAMMAR = Tagged(
    {
        "json": Anything(),
        "json_object": Anything(),
        "regex": STRING,
        "json_schema": Struct(
            "JsonSchemaConfig",
            {"name": Field(Optional(STRING)), "schema": Field(Anything(), required=True)},
        ),
    },
    listed=("json", "regex", "json_schema"),
)

PARAMETERS = Struct(
    "GenerateParameters",
    {
        "best_of": Field(Optional(USIZE)),
        "temperature": Field(Optional(F32)),
        "repetition_penalty": Field(Optional(F32)),
        "frequency_penalty": Field(Optional(F32)),
        "top_k": Field(Optional(I32)),
        "top_p": Field(Optional(F32)),
        "typical_p": Field(Optional(F32)),
        "do_sample": Field(BOOL),
        "max_new_tokens": Field(Optional(U32)),
        "return_full_text": Field(Optional(BOOL)),
        "stop": Field(Seq(STRING)),
        "truncate": Field(Optional(USIZE)),
        "watermark": Field(BOOL),
        "details": Field(BOOL),
        "decoder_input_details": Field(BOOL),
        "seed": Field(Optional(U64)),
        "top_n_tokens": Field(Optional(U32)),
        "grammar": Field(Optional(GRAMMAR)),
        "adapter_id": Field(Optional(STRING)),
    },
)

GENERATE_REQUEST = Struct(
    "GenerateRequest",
    {"inputs": Field(STRING, required=True), "parameters": Field(PARAMETERS)},
)
COMPAT_REQUEST = Struct(
    "CompatGenerateRequest",
    {"inputs": Field(STRING, required=True), "parameters": Field(PARAMETERS), "stream": Field(BOOL)},
)


def _content_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return None
    if not isinstance(value, list):
        return "bad content"
    for chunk in value:
        if not isinstance(chunk, dict):
            return "bad chunk"
        kind = chunk.get("type")
        if kind == "text" and isinstance(chunk.get("text"), str):
            continue
        image = chunk.get("image_url")
        if kind == "image_url" and isinstance(image, dict) and isinstance(image.get("url"), str):
            continue
        return "bad chunk"
    return None


FUNCTION_DEFINITION = Struct(
    "FunctionDefinition",
    {
        "description": Field(Optional(STRING)),
        "name": Field(STRING, required=True),
        "arguments": Field(Anything(), required=True, aliases=("parameters",)),
    },
)
TOOL = Struct("Tool", {"type": Field(STRING, required=True), "function": Field(FUNCTION_DEFINITION, required=True)})
TOOL_CALL = Struct(
    "ToolCall",
    {
        "id": Field(STRING, required=True),
        "type": Field(STRING, required=True),
        "function": Field(FUNCTION_DEFINITION, required=True),
    },
)
MESSAGE_BODY = Untagged(
    "MessageBody",
    [
        Struct("Content", {"content": Field(Custom(_content_problem), required=True)}),
        Struct("Tool", {"tool_calls": Field(Seq(TOOL_CALL), required=True)}),
    ],
)


class _Message(Shape):
    """``Message``: ``role`` and ``name`` plus a flattened untagged ``MessageBody``."""

    fields = Struct("Message", {"role": Field(STRING, required=True), "name": Field(Optional(STRING))})

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        self.fields.check(value, path)
        MESSAGE_BODY.check(value, path)


def _tool_choice_problem(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, dict):
        function = value.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return None
    return "data did not match any variant of untagged enum ToolTypeDeserializer"


CHAT_REQUEST = Struct(
    "ChatRequest",
    {
        "model": Field(Optional(STRING)),
        "messages": Field(Seq(_Message()), required=True),
        "frequency_penalty": Field(Optional(F32)),
        "logit_bias": Field(Anything()),
        "logprobs": Field(Optional(BOOL)),
        "top_logprobs": Field(Optional(U32)),
        "max_tokens": Field(Optional(U32), aliases=("max_completion_tokens",)),
        "n": Field(Optional(U32)),
        "presence_penalty": Field(Optional(F32)),
        "stream": Field(BOOL),
        "seed": Field(Optional(U64)),
        "temperature": Field(Optional(F32)),
        "top_p": Field(Optional(F32)),
        "tools": Field(Optional(Seq(TOOL))),
        "tool_prompt": Field(Optional(STRING)),
        "tool_choice": Field(Custom(_tool_choice_problem)),
        "response_format": Field(Optional(GRAMMAR)),
        "stop": Field(Optional(Seq(STRING))),
        "stream_options": Field(Struct("StreamOptions", {"include_usage": Field(BOOL)})),
    },
)


def _prompt_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return None
    if isinstance(value, list):
        if not value:
            return "Empty array detected. Do not use an empty array for the prompt."
        if all(isinstance(item, str) for item in value):
            return None
    return f"invalid type: {unexpected(value)}, expected a string or an array of strings"


COMPLETION_REQUEST = Struct(
    "CompletionRequest",
    {
        "model": Field(Optional(STRING)),
        "prompt": Field(Custom(_prompt_problem), required=True),
        "max_tokens": Field(Optional(U32)),
        "temperature": Field(Optional(F32)),
        "top_p": Field(Optional(F32)),
        "stream": Field(BOOL),
        "seed": Field(Optional(U64)),
        "suffix": Field(Optional(STRING)),
        "repetition_penalty": Field(Optional(F32)),
        "frequency_penalty": Field(Optional(F32)),
        "stop": Field(Optional(Seq(STRING))),
    },
)

# ``ShapeError`` is re-exported for the routes.
__all__ += ["ShapeError"]


@dataclass
class RequestParameters:
    """Generation parameters as received (``None`` = not set), before validation."""

    best_of: int | None = None
    temperature: float | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    typical_p: float | None = None
    do_sample: bool = False
    max_new_tokens: int | None = None
    return_full_text: bool | None = None
    stop: list[str] = field(default_factory=list)
    truncate: int | None = None
    watermark: bool = False
    details: bool = False
    decoder_input_details: bool = False
    seed: int | None = None
    top_n_tokens: int | None = None
    grammar: dict[str, Any] | None = None
    adapter_id: str | None = None

    @classmethod
    def from_json(cls, parameters: Mapping[str, Any] | None) -> RequestParameters:
        """From a ``parameters`` object already checked against ``PARAMETERS``.

        When ``parameters`` is absent TGI uses a preset with ``do_sample=true`` (README §2.1).
        """
        if parameters is None:
            return cls(do_sample=True)
        known = {k: v for k, v in parameters.items() if k in cls.__dataclass_fields__}
        for flag in ("do_sample", "watermark", "details", "decoder_input_details"):
            known.setdefault(flag, False)
        known["stop"] = list(known.get("stop") or [])
        return cls(**known)


@dataclass(frozen=True)
class Limits:
    """The server limits validation reads."""

    max_best_of: int = 2
    max_stop_sequences: int = 4
    max_top_n_tokens: int = 5
    max_input_tokens: int = 8191
    max_total_tokens: int = 8192
    disable_grammar_support: bool = False
    #: TGI >= 3.0: an omitted ``max_new_tokens`` fills the context; before, it defaulted to 100.
    auto_max_new_tokens: bool = True
    #: TGI >= 3.1.1: only ``min(max_new_tokens, 1024)`` counts against ``max_total_tokens``.
    chunked_max_new_tokens: bool = True


@dataclass(frozen=True)
class Validated:
    """A request that passed :func:`validate`."""

    inputs: str
    input_length: int
    parameters: GenerationParameters


def check_stream_parameters(params: RequestParameters) -> None:
    """Step 0 for streams: ``best_of`` and ``decoder_input_details`` are refused."""
    if params.best_of is not None and params.best_of != 1:
        raise validation_error("`best_of` != 1 is not supported when streaming tokens")
    if params.decoder_input_details:
        raise validation_error("`decoder_input_details` == true is not supported when streaming tokens")


def check_best_of(params: RequestParameters, limits: Limits) -> int:
    """Step 0 for ``/generate``: the number of sequences to generate."""
    best_of = params.best_of or 1
    if best_of > 1:
        if limits.max_best_of == 1:
            raise validation_error("`best_of` != 1 is not allowed for this endpoint")
        if best_of > limits.max_best_of:
            raise validation_error(f"`best_of` must be > 0 and <= {limits.max_best_of}. Given: {best_of}")
    return best_of


def _check_grammar(grammar: dict[str, Any], limits: Limits) -> dict[str, Any]:
    if limits.disable_grammar_support:
        raise validation_error("grammar is not supported")
    kind = grammar["type"]
    if kind == "regex":
        return {"type": "regex", "value": grammar["value"]}
    value = grammar["value"]
    if kind == "json_schema":
        schema: Any = value["schema"]
    else:
        schema = value
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise validation_error(f"grammar is not valid: {serde_syntax_message(exc)}") from exc
        if not isinstance(schema, dict):
            raise validation_error("grammar is not supported")
    try:
        jsonschema: Any = importlib.import_module("jsonschema")  # untyped; optional
    except ImportError:  # pragma: no cover - without it, only the 'properties' rule is checked
        jsonschema = None
    if jsonschema is not None:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise validation_error(f"grammar is not valid: {exc.message}") from exc
    if not isinstance(schema, dict) or "properties" not in schema:
        raise validation_error("grammar is not valid: Grammar must have a 'properties' field")
    if kind == "json_schema":
        return {"type": "json_schema", "value": {**value, "schema": schema}}
    return {"type": kind, "value": schema}


def validate(
    inputs: str,
    params: RequestParameters,
    limits: Limits,
    tokenize: Callable[[str], list[tuple[int, str, int, int]]],
    *,
    best_of: int = 1,
) -> Validated:
    """TGI's ``Validation::validate``: the first failing check raises a 422 ``validation`` error."""
    sampling = params.do_sample or any(
        v is not None for v in (params.temperature, params.top_k, params.top_p, params.typical_p)
    )
    if best_of > 1 and not sampling:
        raise validation_error("you must use sampling when `best_of` is > 1")
    if params.temperature is not None and params.temperature <= 0:
        raise validation_error("`temperature` must be strictly positive")
    if params.repetition_penalty is not None and params.repetition_penalty <= 0:
        raise validation_error("`repetition_penalty` must be strictly positive")
    if params.frequency_penalty is not None and not -2.0 <= params.frequency_penalty <= 2.0:
        raise validation_error("`frequency_penalty` must be >= -2.0 and <= 2.0")
    if params.top_p is not None and not 0.0 < params.top_p < 1.0:
        raise validation_error("`top_p` must be > 0.0 and < 1.0")
    if params.typical_p is not None and not 0.0 < params.typical_p < 1.0:
        raise validation_error("`typical_p` must be > 0.0 and < 1.0")
    if params.top_k is not None and params.top_k <= 0:
        raise validation_error("`top_k` must be strictly positive")
    if params.max_new_tokens == 0:
        raise validation_error("`max_new_tokens` must be strictly positive")
    if len(params.stop) > limits.max_stop_sequences:
        raise validation_error(
            f"`stop` supports up to {limits.max_stop_sequences} stop sequences. Given: {len(params.stop)}"
        )
    if best_of > 1 and params.seed is not None:
        raise validation_error("`seed` must not be set when `best_of` > 1")
    if params.top_n_tokens is not None and params.top_n_tokens > limits.max_top_n_tokens:
        raise validation_error(
            f"`top_n_tokens` must be >= 0 and <= {limits.max_top_n_tokens}. Given: {params.top_n_tokens}"
        )
    if not inputs:
        raise validation_error("`inputs` cannot be empty")
    if params.truncate is not None and not 0 < params.truncate <= limits.max_input_tokens:
        raise validation_error(
            f"`truncate` must be strictly positive and less than {limits.max_input_tokens}. Given: {params.truncate}"
        )
    try:
        tokens = tokenize(inputs)
    except Exception as exc:
        raise validation_error(f"tokenizer error {exc}") from exc
    input_length = len(tokens)
    if params.truncate is not None and params.truncate < input_length:
        # TGI truncates on the left; token offsets are byte offsets.
        start = tokens[input_length - params.truncate][2]
        inputs = inputs.encode("utf-8")[start:].decode("utf-8", errors="ignore")
        input_length = params.truncate
    if params.max_new_tokens is not None:
        max_new_tokens = params.max_new_tokens
    elif limits.auto_max_new_tokens:
        max_new_tokens = max(limits.max_total_tokens - input_length, 0)
    else:
        max_new_tokens = 100
    counted = min(max_new_tokens, 1024) if limits.chunked_max_new_tokens else max_new_tokens
    if input_length + counted > limits.max_total_tokens:
        raise validation_error(
            f"`inputs` tokens + `max_new_tokens` must be <= {limits.max_total_tokens}. "
            f"Given: {input_length} `inputs` tokens and {max_new_tokens} `max_new_tokens`"
        )
    if input_length > limits.max_input_tokens:
        raise validation_error(f"`inputs` must have less than {limits.max_input_tokens} tokens. Given: {input_length}")
    grammar = _check_grammar(params.grammar, limits) if params.grammar is not None else None
    return Validated(
        inputs=inputs,
        input_length=input_length,
        parameters=GenerationParameters(
            max_new_tokens=max_new_tokens,
            temperature=params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            typical_p=params.typical_p,
            repetition_penalty=params.repetition_penalty,
            frequency_penalty=params.frequency_penalty,
            seed=params.seed,
            stop=tuple(params.stop),
            do_sample=params.do_sample,
            watermark=params.watermark,
            top_n_tokens=params.top_n_tokens,
            grammar=grammar,
        ),
    )
