"""The Inference Providers router as a backend: the routes of :func:`router_backend`, behind a capability gate.

Every request first passes :class:`~langchain_hf_chat._providers.ProviderGate`, which reads the model's provider
mapping from the Hub once and then answers from its cache: chat bodies are checked for the ``conversational``
task and for the features they use (``tools``, ``response_format``), text generation for the ``text-generation``
task on ``hf-inference``. A request the mapping says cannot be served fails before it is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_hf_chat._providers import CHAT_TASK, TEXT_TASK, ProviderGate
from langchain_hf_chat._transport import Transport
from langchain_hf_chat.llms._backend import RemoteBackend, TextResult, TokenEvent, router_backend

__all__ = ["RouterBackend", "chat_features", "gated_router_backend"]


def chat_features(body: Mapping[str, Any]) -> frozenset[str]:
    """The provider features a chat-completions body relies on.

    >>> sorted(chat_features({"tools": [{}], "response_format": {"type": "json_object"}}))
    ['structured_output', 'tools']
    >>> chat_features({"tools": [{}], "tool_choice": "none"})
    frozenset()
    """
    features: set[str] = set()
    if body.get("tools") and body.get("tool_choice") != "none":
        features.add("tools")
    if body.get("response_format") is not None:
        features.add("structured_output")
    return frozenset(features)


@dataclass
class RouterBackend(RemoteBackend):
    """A :class:`RemoteBackend` for the router whose requests are checked against the provider mapping first."""

    gate: ProviderGate | None = None

    def _pinned_body(self, body: Mapping[str, Any], provider: str | None) -> Mapping[str, Any]:
        if provider is None or self.gate is None:
            return body
        return {**body, "model": f"{self.gate.repo_id}:{provider}"}

    def _check_chat(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.gate is None:
            return body
        return self._pinned_body(body, self.gate.check(CHAT_TASK, chat_features(body)))

    async def _acheck_chat(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.gate is None:
            return body
        return self._pinned_body(body, await self.gate.acheck(CHAT_TASK, chat_features(body)))

    # -- text generation ------------------------------------------------------------------------------------

    def generate(self, prompt: str, parameters: Mapping[str, Any], **kwargs: Any) -> TextResult:
        """Check the text-generation task, then :meth:`RemoteBackend.generate`."""
        if self.gate is not None:
            self.gate.check(TEXT_TASK)
        return super().generate(prompt, parameters, **kwargs)

    async def agenerate(self, prompt: str, parameters: Mapping[str, Any], **kwargs: Any) -> TextResult:
        """Async :meth:`generate`."""
        if self.gate is not None:
            await self.gate.acheck(TEXT_TASK)
        return await super().agenerate(prompt, parameters, **kwargs)

    def stream(self, prompt: str, parameters: Mapping[str, Any], **kwargs: Any) -> Iterator[TokenEvent]:
        """Check the text-generation task, then :meth:`RemoteBackend.stream`."""
        if self.gate is not None:
            self.gate.check(TEXT_TASK)
        yield from super().stream(prompt, parameters, **kwargs)

    async def astream(self, prompt: str, parameters: Mapping[str, Any], **kwargs: Any) -> AsyncIterator[TokenEvent]:
        """Async :meth:`stream`."""
        if self.gate is not None:
            await self.gate.acheck(TEXT_TASK)
        events = super().astream(prompt, parameters, **kwargs)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    # -- chat completions ----------------------------------------------------------------------------------

    def chat(self, body: Mapping[str, Any], **kwargs: Any) -> Any:
        """Check the body's task and features, then :meth:`RemoteBackend.chat`."""
        return super().chat(self._check_chat(body), **kwargs)

    async def achat(self, body: Mapping[str, Any], **kwargs: Any) -> Any:
        """Async :meth:`chat`."""
        return await super().achat(await self._acheck_chat(body), **kwargs)

    def chat_stream(self, body: Mapping[str, Any], **kwargs: Any) -> Iterator[Any]:
        """Check the body, then :meth:`RemoteBackend.chat_stream` (the check runs when called, not when iterated)."""
        return super().chat_stream(self._check_chat(body), **kwargs)

    async def achat_stream(self, body: Mapping[str, Any], **kwargs: Any) -> AsyncIterator[Any]:
        """Async :meth:`chat_stream`."""
        events = super().achat_stream(await self._acheck_chat(body), **kwargs)
        try:
            async for payload in events:
                yield payload
        finally:
            await events.aclose()  # type: ignore[attr-defined]


def gated_router_backend(
    transport: Transport,
    router_url: str,
    repo_id: str,
    provider: str | None,
    *,
    hub_url: str | None,
) -> RouterBackend:
    """:func:`router_backend`'s routes, checked against the provider mapping at ``hub_url`` (``None``: unchecked)."""
    plain = router_backend(transport, router_url, repo_id, provider)
    gate = ProviderGate(transport, hub_url, repo_id, provider) if hub_url else None
    return RouterBackend(
        transport=plain.transport,
        generate_url=plain.generate_url,
        stream_url=plain.stream_url,
        chat_url=plain.chat_url,
        info_url=plain.info_url,
        chat_model=plain.chat_model,
        extra_body=plain.extra_body,
        gate=gate,
    )
