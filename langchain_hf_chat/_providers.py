"""Inference Providers: which providers serve a Hub model, for which task, and what they support.

The Hub answers ``GET {hub_url}/api/models/{repo_id}?expand=inferenceProviderMapping`` with the model's provider
mapping, as ``huggingface_hub``'s ``model_info(expand=["inferenceProviderMapping"])`` reads it: a dict
``{provider: {"status": "live" | "staging" | "error", "providerId": ..., "task": ...}}`` (or a list of such
entries with a ``provider`` key). :class:`ProviderGate` fetches it once per instance, through our own
:class:`~langchain_hf_chat._transport.Transport` (so the token policy applies and tests can point ``hub_url`` at
the local test server), and checks each request against it before the router sees it: a provider that does not
serve the model, the task, or a requested feature fails early with
:class:`~langchain_hf_chat.errors.ProviderNotSupportedError` naming the provider, the model and what it lacks,
instead of the router's opaque 4xx.

Feature flags (tool calling, structured output) are read when the mapping carries them (``features``:
``{"toolCalling": bool, "structuredOutput": bool}``, or ``supports_tools`` / ``supports_structured_output``);
when it does not, the feature is assumed available and the router has the last word.

Example:
    >>> mappings = parse_provider_mapping(
    ...     {"inferenceProviderMapping": {"together": {"status": "live", "providerId": "m", "task": "conversational"}}}
    ... )
    >>> mappings[0].provider, mappings[0].task, mappings[0].supports("tools")
    ('together', 'conversational', None)
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from langchain_hf_chat import errors
from langchain_hf_chat._transport import Transport

__all__ = [
    "CHAT_TASK",
    "DEFAULT_HUB_URL",
    "HF_INFERENCE",
    "ROUTING_POLICIES",
    "TEXT_TASK",
    "ProviderGate",
    "ProviderMapping",
    "model_info_url",
    "parse_provider_mapping",
]

logger = logging.getLogger("langchain_hf_chat")

DEFAULT_HUB_URL = "https://huggingface.co"
#: The Hub's task name for chat completions.
CHAT_TASK = "conversational"
TEXT_TASK = "text-generation"
HF_INFERENCE = "hf-inference"
#: Router suffixes that pick a provider by policy rather than by name.
ROUTING_POLICIES = frozenset({"auto", "fastest", "cheapest", "preferred"})

_FEATURE_KEYS: dict[str, tuple[str, ...]] = {
    "tools": ("toolCalling", "tool_calling", "tools"),
    "structured_output": ("structuredOutput", "structured_output", "responseFormat"),
}
_FLAT_FEATURE_KEYS: dict[str, tuple[str, ...]] = {
    "tools": ("supports_tools", "supportsTools"),
    "structured_output": ("supports_structured_output", "supportsStructuredOutput"),
}
_FEATURE_NAMES = {"tools": "tool calling", "structured_output": "structured output (response_format)"}


@dataclass(frozen=True)
class ProviderMapping:
    """One provider serving one Hub model."""

    provider: str
    provider_id: str
    task: str
    status: str
    features: Mapping[str, bool] = field(default_factory=dict)

    def supports(self, feature: str) -> bool | None:
        """Whether the provider supports ``feature`` for this model; ``None`` when the Hub does not say."""
        return self.features.get(feature)

    @property
    def usable(self) -> bool:
        """Live or staging (``error`` means the Hub's last health check failed: still tried, with a warning)."""
        return self.status in ("live", "staging", "error")


def model_info_url(hub_url: str, repo_id: str) -> str:
    """The Hub's model-info URL with the provider mapping expanded.

    >>> model_info_url("https://huggingface.co", "org/model")
    'https://huggingface.co/api/models/org/model?expand=inferenceProviderMapping'
    """
    return f"{hub_url.rstrip('/')}/api/models/{quote(repo_id, safe='/')}?expand=inferenceProviderMapping"


def _features(entry: Mapping[str, Any]) -> dict[str, bool]:
    found: dict[str, bool] = {}
    nested = entry.get("features")
    for feature, keys in _FEATURE_KEYS.items():
        if isinstance(nested, Mapping):
            for key in keys:
                if isinstance(nested.get(key), bool):
                    found[feature] = bool(nested[key])
                    break
        for key in _FLAT_FEATURE_KEYS[feature]:
            if feature not in found and isinstance(entry.get(key), bool):
                found[feature] = bool(entry[key])
    return found


def _mapping_of(provider: str, entry: Mapping[str, Any]) -> ProviderMapping:
    return ProviderMapping(
        provider=provider,
        provider_id=str(entry.get("providerId") or entry.get("provider_id") or ""),
        task=str(entry.get("task") or ""),
        status=str(entry.get("status") or "live"),
        features=_features(entry),
    )


def parse_provider_mapping(data: Any) -> list[ProviderMapping]:
    """The provider mappings in a model-info response (dict or list form), in the Hub's order.

    A response without ``inferenceProviderMapping`` means no provider serves the model: an empty list.
    """
    if not isinstance(data, Mapping):
        raise errors.ServerError(f"unexpected model-info response: {str(data)[:200]!r}")
    raw = data.get("inferenceProviderMapping")
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        return [_mapping_of(str(name), entry) for name, entry in raw.items() if isinstance(entry, Mapping)]
    if isinstance(raw, list):
        return [
            _mapping_of(str(entry["provider"]), entry)
            for entry in raw
            if isinstance(entry, Mapping) and entry.get("provider")
        ]
    raise errors.ServerError(f"unexpected inferenceProviderMapping: {str(raw)[:200]!r}")


def _describe(mappings: Sequence[ProviderMapping]) -> str:
    if not mappings:
        return "no Inference Provider serves it"
    return "served by " + ", ".join(f"{m.provider} ({m.task}, {m.status})" for m in mappings)


@dataclass
class ProviderGate:
    """Checks requests to the Inference Providers router against the model's provider mapping.

    The mapping is fetched on the first check (never at construction) and kept for the gate's life; each
    distinct ``(task, features)`` decision is cached too, so later calls cost a dict lookup.

    ``provider``: ``None``/``"auto"`` or a policy (``"fastest"``, ...) lets the router choose among the providers
    serving the task; a name pins that provider.
    """

    transport: Transport
    hub_url: str
    repo_id: str
    provider: str | None = None
    _mappings: list[ProviderMapping] | None = field(default=None, init=False, repr=False)
    _decisions: dict[tuple[str, frozenset[str]], str | None] = field(default_factory=dict, init=False, repr=False)
    _warned: set[str] = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _unavailable: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        """The model-info URL the gate reads."""
        return model_info_url(self.hub_url, self.repo_id)

    @property
    def pinned(self) -> str | None:
        """The provider the user named, or ``None`` for a routing policy."""
        if self.provider is None or self.provider in ROUTING_POLICIES:
            return None
        return self.provider

    # -- fetching -------------------------------------------------------------------------------------------

    def mappings(self) -> list[ProviderMapping] | None:
        """The model's provider mappings, fetched once; ``None`` when the Hub could not be asked."""
        if self._mappings is None and not self._unavailable:
            with self._lock:
                if self._mappings is None and not self._unavailable:
                    try:
                        self._store(self.transport.get_json(self.url, timeout=10))
                    except errors.HuggingFaceError as exc:
                        self._failed(exc)
        return self._mappings

    async def amappings(self) -> list[ProviderMapping] | None:
        """Async :meth:`mappings`."""
        if self._mappings is None and not self._unavailable:
            try:
                data = await self.transport.aget_json(self.url, timeout=10)
            except errors.HuggingFaceError as exc:
                self._failed(exc)
            else:
                self._store(data)
        return self._mappings

    def _store(self, data: Any) -> None:
        self._mappings = parse_provider_mapping(data)

    def _failed(self, exc: errors.HuggingFaceError) -> None:
        # The Hub's 404 names the repository; an empty 404 means this host has no model-info route at all.
        if isinstance(exc, errors.NotFoundError) and "repository" in (exc.server_message or "").lower():
            raise errors.NotFoundError(
                f"model {self.repo_id!r} was not found on the Hugging Face Hub ({self.hub_url}): check the model "
                "id, or, for a private or gated model, that your token can read it",
                status_code=exc.status_code,
                server_message=exc.server_message,
                url=exc.url,
            ) from None
        # The Hub being unreachable must not block inference: the router has the last word.
        logger.warning(
            "could not read the provider mapping of %s (%s); skipping the capability check", self.repo_id, exc
        )
        self._unavailable = True

    # -- checks ---------------------------------------------------------------------------------------------

    def check(self, task: str, features: frozenset[str] = frozenset()) -> str | None:
        """Check a request for ``task`` needing ``features``; return a provider to pin the request to, if any.

        Raises:
            ProviderNotSupportedError: no provider serves the model for the task, or the chosen provider lacks
                a feature (the message names the provider, the model and what is missing).
        """
        key = (task, features)
        if key in self._decisions:
            return self._decisions[key]
        mappings = self.mappings()
        return self._decide(key, mappings)

    async def acheck(self, task: str, features: frozenset[str] = frozenset()) -> str | None:
        """Async :meth:`check`."""
        key = (task, features)
        if key in self._decisions:
            return self._decisions[key]
        mappings = await self.amappings()
        return self._decide(key, mappings)

    def _decide(self, key: tuple[str, frozenset[str]], mappings: list[ProviderMapping] | None) -> str | None:
        if mappings is None:
            return None  # the Hub could not be asked: let the router decide
        task, features = key
        decision = self._choose(mappings, task, features)
        self._decisions[key] = decision
        return decision

    def _choose(self, mappings: list[ProviderMapping], task: str, features: frozenset[str]) -> str | None:
        model = self.repo_id
        pinned = self.pinned
        if task == TEXT_TASK:
            # Raw text generation goes through the router's hf-inference route only.
            if pinned not in (None, HF_INFERENCE):
                raise errors.ProviderNotSupportedError(
                    f"text generation for model {model!r} goes through the router's {HF_INFERENCE!r} route, not "
                    f"provider {pinned!r}: use ChatHuggingFace(llm=...) over this endpoint (chat completions) to "
                    f"call {pinned!r}"
                )
            pinned = HF_INFERENCE
        if pinned is not None:
            mapping = next((m for m in mappings if m.provider == pinned), None)
            if mapping is None:
                served = {m.task for m in mappings}
                advice = _task_advice(task, CHAT_TASK) if task not in served and CHAT_TASK in served else ""
                raise errors.ProviderNotSupportedError(
                    f"provider {pinned!r} does not serve model {model!r} ({_describe(mappings)})"
                    + (advice or ": pick one of those providers, use provider='auto', or deploy an Inference Endpoint")
                )
            if mapping.task != task:
                raise errors.ProviderNotSupportedError(
                    f"provider {pinned!r} serves model {model!r} for task {mapping.task!r}, not {task!r}"
                    + _task_advice(task, mapping.task)
                )
            for feature in sorted(features):
                if mapping.supports(feature) is False:
                    capable = [
                        m.provider for m in mappings if m.task == task and m.usable and m.supports(feature) is not False
                    ]
                    raise errors.ProviderNotSupportedError(
                        f"provider {pinned!r} does not support {_FEATURE_NAMES[feature]} for model {model!r}"
                        + (f"; providers that may: {capable}" if capable else "; no provider of this model does")
                    )
            self._warn_status(mapping)
            return None  # already pinned by the model suffix
        candidates = [m for m in mappings if m.task == task and m.usable]
        if not candidates:
            raise errors.ProviderNotSupportedError(
                f"no Inference Provider serves model {model!r} for task {task!r} ({_describe(mappings)})"
                + (_task_advice(task, mappings[0].task) if mappings else "")
            )
        able = [m for m in candidates if all(m.supports(f) is not False for f in features)]
        if not able:
            missing = " and ".join(_FEATURE_NAMES[f] for f in sorted(features))
            raise errors.ProviderNotSupportedError(
                f"no Inference Provider of model {model!r} supports {missing} "
                f"(providers: {[m.provider for m in candidates]})"
            )
        self._warn_status(able[0])
        if len(able) < len(candidates):
            # The router's policy could pick a provider without the feature (a bare 422): pin a capable one.
            logger.info("pinning %s to provider %s, which supports %s", model, able[0].provider, sorted(features))
            return able[0].provider
        return None

    def _warn_status(self, mapping: ProviderMapping) -> None:
        if mapping.status not in ("staging", "error") or mapping.provider in self._warned:
            return
        self._warned.add(mapping.provider)
        if mapping.status == "staging":
            message = (
                f"model {self.repo_id!r} is in staging on provider {mapping.provider!r}: meant for testing, it may "
                "change or disappear"
            )
        else:
            message = (
                f"the Hub's latest health check of model {self.repo_id!r} on provider {mapping.provider!r} failed; "
                "calls may fail"
            )
        warnings.warn(message, UserWarning, stacklevel=6)


def _task_advice(wanted: str, served: str) -> str:
    if wanted == TEXT_TASK and served == CHAT_TASK:
        return ": use ChatHuggingFace(llm=...) over this endpoint, which calls chat completions"
    if wanted == CHAT_TASK and served == TEXT_TASK:
        return ": use ChatHuggingFace(llm=..., mode='text') to render the chat template and call text generation"
    return ""
