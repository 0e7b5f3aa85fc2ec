"""TGI's wire shapes: compact JSON in serde's key order, response headers, SSE framing (README §2, §3, §6)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.responses import Response

from langchain_hf_chat.testing._errors import InferError
from langchain_hf_chat.testing.backends.base import FinishReason, Token

__all__ = [
    "Generation",
    "SSEItem",
    "dumps",
    "empty_response",
    "error_response",
    "frame",
    "json_response",
    "text_response",
]


def dumps(value: Any) -> str:
    r"""Serde-like JSON: compact, UTF-8 (no ``\u`` escapes), key order kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_response(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``application/json`` with :func:`dumps` formatting."""
    return Response(
        dumps(value).encode("utf-8"),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def text_response(text: str, status: int) -> Response:
    """``text/plain; charset=utf-8`` (axum's rejections)."""
    return Response(text.encode("utf-8"), status_code=status, media_type="text/plain; charset=utf-8")


def empty_response(status: int) -> Response:
    """An empty body (401, 404, 405, and the healthy ``/health``)."""
    return Response(b"", status_code=status)


def error_response(error: InferError, headers: Mapping[str, str] | None = None) -> Response:
    """TGI's JSON error envelope with the error's status."""
    return json_response(error.envelope(), error.status, headers)


@dataclass
class Generation:
    """The outcome of one generation, as the routes shape it."""

    tokens: list[Token]
    finish_reason: FinishReason
    seed: int | None
    input_length: int
    inputs: str = ""
    prefill: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    validation_time: float = 0.0
    queue_time: float = 0.0
    inference_time: float = 0.0

    @property
    def text(self) -> str:
        """The generated text: special tokens left out, stop sequences kept."""
        return "".join(t.text for t in self.tokens if not t.special)

    @property
    def generated_tokens(self) -> int:
        """How many tokens were generated (the EOS token included)."""
        return len(self.tokens)


def token_json(token: Token) -> dict[str, Any]:
    """``{"id","text","logprob","special"}``."""
    return {"id": token.id, "text": token.text, "logprob": token.logprob, "special": token.special}


def top_tokens_json(token: Token) -> list[dict[str, Any]]:
    """A token's alternatives."""
    return [token_json(t) for t in token.top_tokens]


def details_json(gen: Generation, *, best_of: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """``/generate`` ``details``: ``best_of_sequences`` and ``top_tokens`` only when non-empty."""
    details: dict[str, Any] = {
        "finish_reason": gen.finish_reason,
        "generated_tokens": gen.generated_tokens,
        "seed": gen.seed,
        "prefill": gen.prefill,
        "tokens": [token_json(t) for t in gen.tokens],
    }
    if best_of:
        details["best_of_sequences"] = list(best_of)
    if any(t.top_tokens for t in gen.tokens):
        details["top_tokens"] = [top_tokens_json(t) for t in gen.tokens]
    return details


def best_of_sequence_json(gen: Generation, prefix: str) -> dict[str, Any]:
    """One of ``details.best_of_sequences``."""
    sequence: dict[str, Any] = {
        "generated_text": prefix + gen.text,
        "finish_reason": gen.finish_reason,
        "generated_tokens": gen.generated_tokens,
        "seed": gen.seed,
        "prefill": gen.prefill,
        "tokens": [token_json(t) for t in gen.tokens],
    }
    if any(t.top_tokens for t in gen.tokens):
        sequence["top_tokens"] = [top_tokens_json(t) for t in gen.tokens]
    return sequence


def stream_event_json(
    index: int,
    token: Token,
    *,
    generated_text: str | None = None,
    details: dict[str, Any] | None = None,
    with_top_tokens: bool = False,
) -> dict[str, Any]:
    """A ``/generate_stream`` event."""
    event: dict[str, Any] = {"index": index, "token": token_json(token)}
    if with_top_tokens:
        event["top_tokens"] = top_tokens_json(token)
    event["generated_text"] = generated_text
    event["details"] = details
    return event


def timing_headers(gens: Sequence[Generation], *, compute_type: str, characters: int) -> dict[str, str]:
    """The ``x-*`` headers of ``/generate`` (summed over several generations)."""
    total = sum(time.monotonic() - g.started for g in gens)
    generated = sum(g.generated_tokens for g in gens)
    inference = sum(g.inference_time for g in gens)
    per_token = inference / generated if generated else 0.0
    return {
        "x-compute-type": compute_type,
        "x-compute-time": f"{total:.6f}",
        "x-compute-characters": str(characters),
        "x-total-time": str(round(total * 1000)),
        "x-validation-time": str(round(sum(g.validation_time for g in gens) * 1000)),
        "x-queue-time": str(round(sum(g.queue_time for g in gens) * 1000)),
        "x-inference-time": str(round(inference * 1000)),
        "x-time-per-token": str(round(per_token * 1000)),
        "x-prompt-tokens": str(sum(g.input_length for g in gens)),
        "x-generated-tokens": str(generated),
    }


def usage_json(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """OpenAI-style usage."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_logprobs_json(tokens: Sequence[Token]) -> dict[str, Any]:
    """``choices[].logprobs`` of chat responses and chunks."""
    return {
        "content": [
            {
                "token": t.text,
                "logprob": t.logprob,
                "top_logprobs": [{"token": a.text, "logprob": a.logprob} for a in t.top_tokens],
            }
            for t in tokens
        ]
    }


SSEKind = Literal["event", "final", "done", "error"]


@dataclass(frozen=True)
class SSEItem:
    """One SSE event before framing. ``final`` marks the events a clean-EOF fault leaves out."""

    kind: SSEKind
    data: str

    @classmethod
    def of(cls, value: Any, kind: SSEKind = "event") -> SSEItem:
        """An event carrying ``value`` as JSON."""
        return cls(kind, dumps(value))


DONE = SSEItem("done", "[DONE]")


def error_item(error: InferError, *, openai: bool) -> SSEItem:
    """An in-stream error in one of README §5.2's two flavours."""
    if openai:
        return SSEItem.of({"error": {"message": error.message, "http_status_code": 422}}, "error")
    return SSEItem.of(error.envelope(), "error")


def frame(
    data: str,
    *,
    space: bool = True,
    crlf: bool = False,
    extra_fields: str = "",
    split: bool = False,
) -> bytes:
    r"""Frame one SSE event: ``data: <payload>\n\n`` (axum 0.7), or ``data:<payload>`` (axum 0.6)."""
    prefix = "data: " if space else "data:"
    if split and len(data) > 1:
        middle = len(data) // 2
        lines = [prefix + data[:middle], prefix + data[middle:]]
    else:
        lines = [prefix + data]
    newline = "\r\n" if crlf else "\n"
    text = extra_fields.replace("\n", newline) + newline.join(lines) + newline + newline
    return text.encode("utf-8")


def keep_alive(*, crlf: bool = False) -> bytes:
    """The ``:`` comment axum sends after 15 s without an event."""
    return b":\r\n\r\n" if crlf else b":\n\n"


SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
