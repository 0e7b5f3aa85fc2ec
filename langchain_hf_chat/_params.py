"""Generation parameters: one place that validates them and maps them to the wire.

Precedence, lowest first: the LLM's fields < its ``model_kwargs`` < the chat model's fields < per-call keyword
arguments. :func:`merge_settings` applies it, :func:`validate_settings` checks ranges with messages that name the
field, and :func:`to_tgi_parameters` / :func:`to_chat_fields` translate to TGI's ``parameters`` object and to the
chat-completions body.

Two TGI quirks are handled here and nowhere else:

* ``temperature=0`` means greedy decoding. TGI rejects 0, so greedy is sent as ``do_sample: false`` on the
  text-generation routes (with no sampling warpers, which would switch sampling back on) and as
  ``temperature: 0`` on the chat route, where TGI maps 0 to greedy itself.
* ``top_p=1.0`` (and ``typical_p=1.0``) mean "no filtering"; TGI rejects 1, so they are omitted.

Example:
    >>> to_tgi_parameters({"temperature": 0, "top_k": 50, "max_new_tokens": 10})
    {'max_new_tokens': 10, 'do_sample': False}
    >>> to_tgi_parameters({"temperature": 0.1, "top_p": 1.0})
    {'temperature': 0.1}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "CHAT_FIELDS",
    "TGI_PARAMETERS",
    "merge_settings",
    "to_chat_fields",
    "to_tgi_parameters",
    "validate_settings",
]

#: Every field TGI's ``parameters`` object accepts (protocol §2.1), in a stable order.
TGI_PARAMETERS: tuple[str, ...] = (
    "best_of",
    "decoder_input_details",
    "details",
    "do_sample",
    "frequency_penalty",
    "grammar",
    "max_new_tokens",
    "repetition_penalty",
    "return_full_text",
    "seed",
    "stop",
    "temperature",
    "top_k",
    "top_n_tokens",
    "top_p",
    "truncate",
    "typical_p",
    "watermark",
    "adapter_id",
)

#: Fields the chat-completions route accepts besides ``messages``/``model``/``stream``/``tools``.
CHAT_FIELDS: tuple[str, ...] = (
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "max_tokens",
    "n",
    "presence_penalty",
    "response_format",
    "seed",
    "stop",
    "temperature",
    "tool_prompt",
    "top_logprobs",
    "top_p",
    "stream_options",
    "parallel_tool_calls",
    "reasoning_effort",
)

# Names users reach for, mapped to the canonical setting name.
_ALIASES: dict[str, str] = {
    "max_tokens": "max_new_tokens",
    "max_completion_tokens": "max_new_tokens",
    "stop_sequences": "stop",
}

# Chat-only settings with no TGI ``parameters`` twin.
_CHAT_ONLY = frozenset(
    {
        "logit_bias",
        "logprobs",
        "n",
        "presence_penalty",
        "response_format",
        "tool_prompt",
        "top_logprobs",
        "stream_options",
        "parallel_tool_calls",
        "reasoning_effort",
    }
)

_SAMPLING_WARPERS = ("temperature", "top_k", "top_p", "typical_p")


def canonical_name(name: str) -> str:
    """The canonical setting name for ``name`` (``max_tokens`` -> ``max_new_tokens``)."""
    return _ALIASES.get(name, name)


def merge_settings(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge setting layers, later layers winning; ``None`` values in a layer do not override.

    Aliases are folded to one name, and stop lists are merged (deduplicated, order kept) because a stop
    sequence given anywhere must still stop generation.

    >>> merge_settings({"temperature": 0.8, "stop": ["a"]}, {"max_tokens": 5, "stop": ["b"]}, {"temperature": None})
    {'temperature': 0.8, 'stop': ['a', 'b'], 'max_new_tokens': 5}
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        if not layer:
            continue
        for raw_name, value in layer.items():
            if value is None:
                continue
            name = canonical_name(raw_name)
            if name == "stop":
                stops = [value] if isinstance(value, str) else list(value)
                existing: list[str] = merged.get("stop", [])
                merged["stop"] = existing + [s for s in stops if s not in existing]
            else:
                merged[name] = value
    return merged


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be a number, got {type(value).__name__} {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}")
    return float(value)


def _check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"`{name}` must be an integer, got {type(value).__name__} {value!r}")
    return value


def validate_settings(settings: Mapping[str, Any], *, max_stop_sequences: int | None = None) -> None:
    """Raise ``ValueError`` naming the field and its allowed range for any out-of-range setting.

    >>> validate_settings({"top_k": 0})
    Traceback (most recent call last):
    ...
    ValueError: `top_k` must be a positive integer (>= 1), got 0
    """
    for name, value in settings.items():
        if value is None:
            continue
        if name == "temperature":
            if _check_number(name, value) < 0:
                raise ValueError(f"`temperature` must be >= 0 (0 means greedy decoding), got {value!r}")
        elif name in ("top_p", "typical_p"):
            v = _check_number(name, value)
            if not 0 < v <= 1:
                raise ValueError(f"`{name}` must be in (0, 1] (1 disables it), got {value!r}")
        elif name == "top_k":
            if _check_int(name, value) < 1:
                raise ValueError(f"`top_k` must be a positive integer (>= 1), got {value!r}")
        elif name in ("max_new_tokens", "truncate", "best_of"):
            if _check_int(name, value) < 1:
                raise ValueError(f"`{name}` must be a positive integer (>= 1), got {value!r}")
        elif name == "repetition_penalty":
            if _check_number(name, value) <= 0:
                raise ValueError(f"`repetition_penalty` must be > 0 (1 disables it), got {value!r}")
        elif name in ("frequency_penalty", "presence_penalty"):
            if not -2 <= _check_number(name, value) <= 2:
                raise ValueError(f"`{name}` must be in [-2, 2], got {value!r}")
        elif name == "seed":
            if _check_int(name, value) < 0:
                raise ValueError(f"`seed` must be a non-negative integer, got {value!r}")
        elif name in ("top_n_tokens", "top_logprobs"):
            if _check_int(name, value) < 0:
                raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}")
        elif name == "stop":
            stops = [value] if isinstance(value, str) else value
            if not isinstance(stops, Sequence) or not all(isinstance(s, str) for s in stops):
                raise ValueError(f"`stop` must be a list of strings, got {value!r}")
            if max_stop_sequences is not None and len(stops) > max_stop_sequences:
                raise ValueError(
                    f"`stop` supports up to {max_stop_sequences} stop sequences (TGI's "
                    f"`max_stop_sequences`), got {len(stops)}; raise `max_stop_sequences` if your server "
                    "allows more"
                )
        elif name in (
            "do_sample",
            "watermark",
            "details",
            "return_full_text",
            "decoder_input_details",
        ) and not isinstance(value, bool):
            raise ValueError(f"`{name}` must be a boolean, got {value!r}")


def is_greedy(settings: Mapping[str, Any]) -> bool:
    """Whether the settings ask for greedy decoding (``temperature == 0``)."""
    temperature = settings.get("temperature")
    return temperature is not None and float(temperature) == 0.0


def to_tgi_parameters(settings: Mapping[str, Any], *, max_stop_sequences: int | None = None) -> dict[str, Any]:
    """Build TGI's ``parameters`` object: only what is set, in the shape TGI accepts.

    Settings TGI does not know (chat-only ones) are left out; unknown user keys from ``model_kwargs`` pass
    through untouched (TGI ignores unknown fields, and custom handlers may read them). When more stop
    sequences are set than the server accepts, the first ``max_stop_sequences`` are sent and the rest are
    enforced on the client.
    """
    params: dict[str, Any] = {}
    greedy = is_greedy(settings)
    for name, value in settings.items():
        if value is None or name in _CHAT_ONLY:
            continue
        if greedy and name in _SAMPLING_WARPERS:
            continue
        if name in ("top_p", "typical_p") and float(value) >= 1.0:
            continue
        if name == "stop":
            stops = [value] if isinstance(value, str) else [s for s in value if s]
            if not stops:
                continue
            if max_stop_sequences is not None:
                stops = stops[:max_stop_sequences]
            params["stop"] = stops
            continue
        params[name] = value
    if greedy:
        params["do_sample"] = False
    return params


_TO_CHAT_NAME = {"max_new_tokens": "max_tokens"}
# TGI parameters with no chat-completions field; sent through ``extra_body``-style passthrough only when
# the user set them in a chat-level layer would be surprising, so they are left out of chat requests.
_TGI_ONLY = frozenset(
    {
        "best_of",
        "decoder_input_details",
        "details",
        "do_sample",
        "grammar",
        "return_full_text",
        "top_k",
        "top_n_tokens",
        "truncate",
        "typical_p",
        "watermark",
        "repetition_penalty",
        "adapter_id",
    }
)


def to_chat_fields(
    settings: Mapping[str, Any], *, max_stop_sequences: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split settings into chat-completions body fields and TGI-only leftovers.

    Returns ``(fields, leftovers)``. TGI's chat route has no ``top_k``/``typical_p``/``repetition_penalty``;
    the caller decides whether leftovers go to the server as extra body keys (TGI ignores unknown fields, vLLM
    and SGLang accept ``top_k`` and ``repetition_penalty``) — nothing is dropped silently.

    >>> to_chat_fields({"temperature": 0, "max_new_tokens": 8, "top_k": 5, "top_p": 1.0})
    ({'temperature': 0, 'max_tokens': 8}, {'top_k': 5})
    """
    fields: dict[str, Any] = {}
    leftovers: dict[str, Any] = {}
    greedy = is_greedy(settings)
    for name, value in settings.items():
        if value is None:
            continue
        if name == "do_sample":
            # Chat has no do_sample; greedy is temperature 0 there.
            if value is False and "temperature" not in settings:
                fields["temperature"] = 0
            continue
        if greedy and name in ("top_k", "top_p", "typical_p"):
            continue
        if name in ("top_p", "typical_p") and float(value) >= 1.0:
            continue
        if name == "stop":
            stops = [value] if isinstance(value, str) else [s for s in value if s]
            if stops:
                fields["stop"] = stops[:max_stop_sequences] if max_stop_sequences else stops
            continue
        if name in _TGI_ONLY:
            leftovers[name] = value
            continue
        fields[_TO_CHAT_NAME.get(name, name)] = value
    if greedy:
        fields["temperature"] = 0
    return fields, leftovers
