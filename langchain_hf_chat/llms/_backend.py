"""Client-side backends: where a model is served and how its routes are shaped.

A :class:`RemoteBackend` knows the URLs of one server (a TGI server, an Inference Endpoint, or the Inference
Providers router) and turns a prompt plus TGI parameters into requests through the shared
:class:`~langchain_hf_chat._transport.Transport`. Building bodies and parsing responses are pure functions here;
sync and async differ only in the send.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict
from urllib.parse import urlsplit, urlunsplit

from langchain_hf_chat import errors
from langchain_hf_chat._transport import DONE, Transport, error_from_event

__all__ = [
    "RemoteBackend",
    "TextBackend",
    "TextResult",
    "TokenEvent",
    "TokenLogprob",
    "chat_completions_url",
]


class TopLogprob(TypedDict):
    """One alternative at a position, as chat completions report it."""

    token: str
    logprob: float


class TokenLogprob(TypedDict):
    """One generated token's log-probability, in the chat-completions ``logprobs.content[]`` shape."""

    token: str
    logprob: float
    top_logprobs: list[TopLogprob]


@dataclass
class TextResult:
    """A finished text generation."""

    text: str
    finish_reason: str | None = None
    generated_tokens: int | None = None
    prompt_tokens: int | None = None
    seed: int | None = None
    raw: Mapping[str, Any] | None = field(default=None, repr=False)
    #: Per-token log-probabilities from ``details.tokens`` / ``details.top_tokens`` (``None``: not sent).
    logprobs: list[TokenLogprob] | None = field(default=None, repr=False)

    def generation_info(self) -> dict[str, Any]:
        """What LangChain's ``Generation.generation_info`` carries."""
        info: dict[str, Any] = {}
        if self.finish_reason is not None:
            info["finish_reason"] = self.finish_reason
        if self.generated_tokens is not None:
            info["generated_tokens"] = self.generated_tokens
        if self.seed is not None:
            info["seed"] = self.seed
        if self.prompt_tokens is not None or self.generated_tokens is not None:
            usage: dict[str, int] = {}
            if self.prompt_tokens is not None:
                usage["prompt_tokens"] = self.prompt_tokens
            if self.generated_tokens is not None:
                usage["completion_tokens"] = self.generated_tokens
            if self.prompt_tokens is not None and self.generated_tokens is not None:
                usage["total_tokens"] = self.prompt_tokens + self.generated_tokens
            info["usage"] = usage
        return info


@dataclass
class TokenEvent:
    """One streamed token; the last event of a stream carries ``final``."""

    text: str
    special: bool = False
    final: TextResult | None = None
    #: The token's log-probability and ``top_tokens`` (``None`` when the event has no ``logprob``).
    logprob: TokenLogprob | None = None


class TextBackend(Protocol):
    """What the LLM classes need from a backend: text in, tokens out."""

    def generate(self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None) -> TextResult: ...

    async def agenerate(
        self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None
    ) -> TextResult: ...

    def stream(
        self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None
    ) -> Iterator[TokenEvent]: ...

    def astream(
        self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None
    ) -> AsyncIterator[TokenEvent]: ...


def chat_completions_url(url: str) -> str:
    """The chat-completions URL for a server or endpoint URL, as ``InferenceClient`` derives it.

    >>> chat_completions_url("http://127.0.0.1:8080")
    'http://127.0.0.1:8080/v1/chat/completions'
    >>> chat_completions_url("https://x.endpoints.huggingface.cloud/v1/")
    'https://x.endpoints.huggingface.cloud/v1/chat/completions'
    >>> chat_completions_url("http://h/v1/chat/completions?x=1")
    'http://h/v1/chat/completions?x=1'
    """
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        new_path = path
    elif path.endswith("/v1"):
        new_path = path + "/chat/completions"
    else:
        new_path = path + "/v1/chat/completions"
    return urlunsplit((parts.scheme, parts.netloc, new_path, parts.query, parts.fragment))


def _join(base: str, suffix: str) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + suffix, parts.query, parts.fragment))


def parse_generate_response(data: Any, *, url: str) -> TextResult:
    """Parse a ``/generate`` or compat ``POST /`` response (a dict, or a list of one)."""
    if isinstance(data, list):
        if not data:
            raise errors.ServerError("the server returned an empty list", url=url)
        data = data[0]
    if not isinstance(data, dict):
        raise errors.ServerError(f"unexpected response shape: {str(data)[:200]!r}", url=url)
    text = data.get("generated_text")
    if text is None:
        # text2text-generation / summarization / translation pipelines
        for key in ("summary_text", "translation_text"):
            if key in data:
                text = data[key]
                break
    if not isinstance(text, str):
        raise errors.ServerError(f"the response has no generated text: {str(data)[:200]!r}", url=url)
    details = _details(data)
    prefill = details.get("prefill")
    return TextResult(
        text=text,
        finish_reason=_str_field(details, "finish_reason"),
        generated_tokens=_int_field(details, "generated_tokens"),
        prompt_tokens=len(prefill) if isinstance(prefill, list) and prefill else None,
        seed=_int_field(details, "seed"),
        raw=data,
        logprobs=_details_logprobs(details),
    )


# ``details`` come from servers of every version: keep the fields that have the expected type, drop the rest.


def _details_logprobs(details: Mapping[str, Any]) -> list[TokenLogprob] | None:
    tokens = details.get("tokens")
    if not isinstance(tokens, list):
        return None
    top_tokens = details.get("top_tokens")
    alternatives = top_tokens if isinstance(top_tokens, list) else []
    entries = (
        _token_logprob(token, alternatives[i] if i < len(alternatives) else None) for i, token in enumerate(tokens)
    )
    return [entry for entry in entries if entry is not None]


def _token_logprob(token: Any, alternatives: Any) -> TokenLogprob | None:
    """A TGI token (``{"text", "logprob", ...}``) and its ``top_tokens``, in the chat-completions shape."""
    if not isinstance(token, Mapping):
        return None
    text, logprob = token.get("text"), _float_field(token, "logprob")
    if not isinstance(text, str) or logprob is None:
        return None
    top: list[TopLogprob] = []
    for alternative in alternatives if isinstance(alternatives, list) else []:
        if isinstance(alternative, Mapping):
            alt_text, alt_logprob = alternative.get("text"), _float_field(alternative, "logprob")
            if isinstance(alt_text, str) and alt_logprob is not None:
                top.append({"token": alt_text, "logprob": alt_logprob})
    return {"token": text, "logprob": logprob, "top_logprobs": top}


def _float_field(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _details(data: Mapping[str, Any]) -> Mapping[str, Any]:
    details = data.get("details")
    return details if isinstance(details, Mapping) else {}


def _str_field(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _int_field(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_stream_event(payload: Any, *, url: str) -> TokenEvent | None:
    """Parse one ``/generate_stream`` event; raise the typed error for an error event."""
    if payload is DONE:
        return None
    if not isinstance(payload, dict):
        raise errors.StreamParseError(f"unexpected stream event: {str(payload)[:200]!r}", url=url)
    if payload.get("error") is not None:
        raise error_from_event(payload, url)
    token = payload.get("token")
    token = token if isinstance(token, Mapping) else {}
    text = _str_field(token, "text") or ""
    special = token.get("special") is True
    generated = payload.get("generated_text")
    final: TextResult | None = None
    if generated is not None:
        if not isinstance(generated, str):
            raise errors.StreamParseError(
                f"the final stream event's generated_text is not text: {str(payload)[:200]!r}", url=url
            )
        details = _details(payload)
        final = TextResult(
            text=generated,
            finish_reason=_str_field(details, "finish_reason"),
            generated_tokens=_int_field(details, "generated_tokens"),
            prompt_tokens=_int_field(details, "input_length"),
            seed=_int_field(details, "seed"),
            raw=payload,
        )
    logprob = _token_logprob(token, payload.get("top_tokens"))
    return TokenEvent(text=text, special=special, final=final, logprob=logprob)


@dataclass
class RemoteBackend:
    """A server reached over HTTP: TGI routes, an endpoint's compat route, or the providers router."""

    transport: Transport
    #: URL for non-streaming text generation.
    generate_url: str
    #: URL for streaming text generation; ``None`` means the compat route with ``"stream": true``.
    stream_url: str | None
    #: Chat-completions URL, or ``None`` when the server has no Messages API.
    chat_url: str | None
    #: ``/info`` URL, or ``None`` when there is none (hosted APIs).
    info_url: str | None = None
    #: The ``model`` sent in chat bodies (a Hub id, with an optional ``:provider`` suffix).
    chat_model: str | None = None
    #: Extra keys put at the top of text-generation bodies (e.g. ``options`` for hosted APIs).
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    _info: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _info_read: bool = field(default=False, init=False, repr=False)

    # -- bodies ---------------------------------------------------------------------------------------------

    def _text_body(self, prompt: str, parameters: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"inputs": prompt, "parameters": dict(parameters)}
        if stream and self.stream_url is None:
            body["stream"] = True
        body.update(self.extra_body)
        return body

    # -- text generation ------------------------------------------------------------------------------------

    def generate(self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None) -> TextResult:
        """Generate text for ``prompt`` with TGI ``parameters`` (``timeout`` overrides the transport's)."""
        body = self._text_body(prompt, parameters, stream=False)
        data = self.transport.post_json(self.generate_url, body, timeout=timeout)
        return parse_generate_response(data, url=self.generate_url)

    async def agenerate(
        self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None
    ) -> TextResult:
        """Async :meth:`generate`."""
        body = self._text_body(prompt, parameters, stream=False)
        data = await self.transport.apost_json(self.generate_url, body, timeout=timeout)
        return parse_generate_response(data, url=self.generate_url)

    def stream(
        self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None
    ) -> Iterator[TokenEvent]:
        """Yield tokens as the server streams them; raise if the stream ends without its final event.

        A stream cut mid-way raises :class:`~langchain_hf_chat.errors.IncompleteGenerationError` whose
        ``partial_text`` holds the text received so far.
        """
        url = self.stream_url or self.generate_url
        parts: list[str] = []
        body = self._text_body(prompt, parameters, stream=True)
        try:
            for payload in self.transport.stream_events(url, body, timeout=timeout, is_final=_is_final_event):
                event = parse_stream_event(payload, url=url)
                if event is None:
                    continue
                if not event.special:
                    parts.append(event.text)
                yield event
                if event.final is not None:
                    return
        except errors.IncompleteGenerationError as exc:
            _add_partial(exc, parts)
            raise
        raise _incomplete(url, "".join(parts))

    async def astream(
        self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None
    ) -> AsyncIterator[TokenEvent]:
        """Async :meth:`stream`."""
        url = self.stream_url or self.generate_url
        parts: list[str] = []
        agen = self.transport.astream_events(
            url, self._text_body(prompt, parameters, stream=True), timeout=timeout, is_final=_is_final_event
        )
        try:
            async for payload in agen:
                event = parse_stream_event(payload, url=url)
                if event is None:
                    continue
                if not event.special:
                    parts.append(event.text)
                yield event
                if event.final is not None:
                    return
        except errors.IncompleteGenerationError as exc:
            _add_partial(exc, parts)
            raise
        finally:
            await agen.aclose()  # type: ignore[attr-defined]
        raise _incomplete(url, "".join(parts))

    # -- chat completions ----------------------------------------------------------------------------------

    def chat(self, body: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        """POST a chat-completions body; return the decoded response."""
        return self.transport.post_json(self._require_chat_url(), body, timeout=timeout)

    async def achat(self, body: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        """Async :meth:`chat`."""
        return await self.transport.apost_json(self._require_chat_url(), body, timeout=timeout)

    def chat_stream(self, body: Mapping[str, Any], *, timeout: float | None = None) -> Iterator[Any]:
        """Stream chat-completion chunks (decoded JSON, then ``DONE`` if sent)."""
        return self.transport.stream_events(self._require_chat_url(), body, timeout=timeout)

    def achat_stream(self, body: Mapping[str, Any], *, timeout: float | None = None) -> AsyncIterator[Any]:
        """Async :meth:`chat_stream`."""
        return self.transport.astream_events(self._require_chat_url(), body, timeout=timeout)

    def _require_chat_url(self) -> str:
        if self.chat_url is None:
            raise errors.NotFoundError("this backend has no chat-completions route")
        return self.chat_url

    # -- metadata -------------------------------------------------------------------------------------------

    def info(self) -> dict[str, Any] | None:
        """TGI's ``/info`` (model id, limits, pipeline tag), or ``None`` when the server has none.

        Read once per backend: the model id, the ``response_format`` shape and the image check all use it.
        """
        if self.info_url is None:
            return None
        if not self._info_read:
            try:
                data = self.transport.get_json(self.info_url, timeout=10)
            except (errors.NotFoundError, errors.BadRequestError):
                data = None
            self._info = data if isinstance(data, dict) else None
            self._info_read = True
        return self._info


def _is_final_event(payload: Any) -> bool:
    """The last event of a ``/generate_stream`` stream carries the full ``generated_text`` (or an error)."""
    return isinstance(payload, dict) and (payload.get("generated_text") is not None or payload.get("error") is not None)


def _add_partial(exc: errors.IncompleteGenerationError, parts: list[str]) -> None:
    # The transport sees bytes, not tokens: the text received before a cut is known only here.
    if not exc.partial_text:
        exc.partial_text = "".join(parts)


def _incomplete(url: str, partial: str) -> errors.IncompleteGenerationError:
    return errors.IncompleteGenerationError(
        "the stream ended before the server sent its final event "
        f"(received {len(partial)} characters); the output is incomplete",
        partial_text=partial,
        url=url,
    )


def tgi_backend(transport: Transport, url: str) -> RemoteBackend:
    """Backend for a self-hosted TGI server at ``url`` (``/generate``, ``/generate_stream``, ``/v1``)."""
    return RemoteBackend(
        transport=transport,
        generate_url=_join(url, "/generate"),
        stream_url=_join(url, "/generate_stream"),
        chat_url=chat_completions_url(url),
        info_url=_join(url, "/info"),
    )


def endpoint_backend(transport: Transport, url: str) -> RemoteBackend:
    """Backend for an Inference Endpoint URL: its compat route ``POST <url>``, as ``InferenceClient`` uses."""
    parts = urlsplit(url)
    root = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    return RemoteBackend(
        transport=transport,
        generate_url=url,
        stream_url=None,
        chat_url=chat_completions_url(url),
        info_url=_join(root, "/info"),
    )


def router_backend(transport: Transport, router_url: str, repo_id: str, provider: str | None) -> RemoteBackend:
    """Backend for a Hub model through the Inference Providers router."""
    model = repo_id if provider in (None, "auto") else f"{repo_id}:{provider}"
    return RemoteBackend(
        transport=transport,
        generate_url=_join(router_url, f"/hf-inference/models/{repo_id}"),
        stream_url=None,
        chat_url=_join(router_url, "/v1/chat/completions"),
        info_url=None,
        chat_model=model,
    )


__all__ += [
    "endpoint_backend",
    "parse_generate_response",
    "parse_stream_event",
    "router_backend",
    "tgi_backend",
]
