"""What the LLM classes share: fields, settings, stop handling, secrets, and the generate/stream paths."""

from __future__ import annotations

import asyncio
import difflib
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.llms import BaseLLM
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from langchain_core.runnables.config import ContextThreadPoolExecutor
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, field_serializer, model_validator

from langchain_hf_chat._params import (
    canonical_name,
    merge_settings,
    to_tgi_parameters,
    validate_settings,
)
from langchain_hf_chat._stop import StopSequenceFilter, truncate_at_stop
from langchain_hf_chat._transport import RetryPolicy, TokenPolicy, Transport
from langchain_hf_chat.llms._backend import RemoteBackend, TextResult, TokenEvent

#: Most requests one sync ``generate`` call (``batch``) has in flight; LangChain's ``max_concurrency`` applies first.
_MAX_BATCH_THREADS = 32

__all__ = ["BaseHuggingFaceLLM"]

_TOKEN_ENV = ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN")
_SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"})

#: Generation settings every LLM class accepts as fields (TGI names).
GENERATION_FIELDS: tuple[str, ...] = (
    "max_new_tokens",
    "top_k",
    "top_p",
    "typical_p",
    "temperature",
    "repetition_penalty",
    "frequency_penalty",
    "return_full_text",
    "truncate",
    "seed",
    "do_sample",
    "watermark",
    "details",
    "top_n_tokens",
    "grammar",
    "adapter_id",
)

#: Per-call keyword arguments accepted besides generation settings.
_CALL_OPTIONS = frozenset({"stop", "stop_sequences", "timeout", "max_tokens", "max_completion_tokens"})


def _token_from_env() -> SecretStr | None:
    for name in _TOKEN_ENV:
        value = os.environ.get(name)
        if value:
            return SecretStr(value)
    return None


def call_timeout(kwargs: Mapping[str, Any]) -> float | None:
    """The per-call ``timeout=`` in seconds (``None`` when not given); a bad value raises ``ValueError``."""
    value = kwargs.get("timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"`timeout` must be a positive number of seconds, got {value!r}")
    return float(value)


def mask_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Headers with credential values replaced by ``'**********'`` (for repr and logs)."""
    return {k: ("**********" if k.lower() in _SENSITIVE_HEADERS else v) for k, v in headers.items()}


class BaseHuggingFaceLLM(BaseLLM):
    """Base class of the Hugging Face LLMs: one settings path, one stop path, pooled clients."""

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=())

    max_new_tokens: int | None = 512
    """Maximum number of tokens to generate."""
    top_k: int | None = None
    """Sample from the ``k`` most likely tokens."""
    top_p: float | None = 0.95
    """Nucleus sampling; ``1.0`` disables it."""
    typical_p: float | None = 0.95
    """Typical decoding mass; ``1.0`` disables it."""
    temperature: float | None = 0.8
    """Sampling temperature; ``0`` means greedy decoding."""
    repetition_penalty: float | None = None
    """Repetition penalty (1.0 = none)."""
    frequency_penalty: float | None = None
    """Frequency penalty in [-2, 2]."""
    return_full_text: bool = False
    """Prepend the prompt to the output. Always sent explicitly (TGI's compat route defaults it to true)."""
    truncate: int | None = None
    """Truncate the input to this many tokens."""
    stop_sequences: list[str] = Field(default_factory=list)
    """Stop generation at any of these; enforced by the server and the client."""
    seed: int | None = None
    """Random seed for sampling."""
    do_sample: bool = False
    """Activate logits sampling."""
    watermark: bool = False
    """Watermarking (TGI)."""
    details: bool = True
    """Ask the server for finish reason, token counts and seed (filled into ``generation_info``)."""
    top_n_tokens: int | None = None
    """Return the ``n`` most likely tokens at each step (TGI)."""
    grammar: dict[str, Any] | None = None
    """A TGI grammar (``{"type": "json" | "regex", "value": ...}``) constraining the output."""
    adapter_id: str | None = None
    """A LoRA adapter id served by TGI."""
    streaming: bool = False
    """Use the streaming route for ``invoke``/``generate`` too."""
    timeout: float | None = 120
    """Read timeout in seconds for each request (``None``: wait forever)."""
    connect_timeout: float | None = 10
    """Connect timeout in seconds."""
    max_retries: int = 2
    """Retries for 429, 502, 503 (model loading), 504 and connection failures, with backoff."""
    max_retry_wait: float = 60.0
    """Ceiling in seconds on one wait between retries, including server hints (``Retry-After``)."""
    wait_for_model: bool = False
    """Wait for a model that is loading (503, e.g. a cold Inference Endpoint): retry for up to
    ``max_model_load_wait`` seconds in total, honouring the server's ``estimated_time``, instead of giving up
    after ``max_retries``."""
    max_model_load_wait: float = 300.0
    """With ``wait_for_model``: the total seconds to spend waiting for the model to load."""
    max_stop_sequences: int = 4
    """The server's ``max_stop_sequences`` (TGI default 4); extra per-call stops are enforced client-side."""
    server_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Client options: ``headers``, ``cookies``, ``timeout``."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Generation parameters merged last, sent as given (server-specific ones welcome)."""
    huggingfacehub_api_token: SecretStr | None = Field(default_factory=_token_from_env)
    """Hugging Face token; defaults to ``HF_TOKEN`` or ``HUGGINGFACEHUB_API_TOKEN``."""
    token_policy: TokenPolicy = "auto"
    """``"auto"``: send the token to Hugging Face hosts, or anywhere if passed explicitly; ``"always"``;
    ``"never"``."""

    _token_explicit: bool = PrivateAttr(default=False)
    _transport: Transport | None = PrivateAttr(default=None)
    _backend_cache: RemoteBackend | None = PrivateAttr(default=None)

    _CLASSIC_ALIASES: ClassVar[dict[str, str]] = {}
    #: Whether one sync ``generate`` call (``batch``) may send its prompts side by side: yes for a server,
    #: no for a model in this process (one forward pass at a time).
    _PARALLEL_PROMPTS: ClassVar[bool] = True

    # -- construction ---------------------------------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _check_keywords(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for alias, name in cls._CLASSIC_ALIASES.items():
            if alias in data and name not in data:
                data[name] = data.pop(alias)
        known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias is not None}
        if ("client" in data or "async_client" in data) and "client" not in known:
            raise ValueError(
                f"{cls.__name__} does not accept a prebuilt `client`/`async_client` (the `text_generation` "
                "package pins huggingface_hub<1.0); pass its URL as `inference_server_url`/`endpoint_url` and its "
                "headers, cookies and timeout in `server_kwargs` instead"
            )
        unknown = [k for k in data if k not in known]
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ValueError(
                f"{cls.__name__} got unknown parameter(s) {', '.join(hints)}. "
                "Put server-specific generation parameters in `model_kwargs`."
            )
        return data

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A token passed to the constructor is meant for this server; one found in the environment is
        # only sent to Hugging Face hosts.
        self._token_explicit = kwargs.get("huggingfacehub_api_token") is not None

    @model_validator(mode="after")
    def _validate_settings(self) -> BaseHuggingFaceLLM:
        validate_settings(self._field_settings(), max_stop_sequences=self.max_stop_sequences)
        validate_settings(
            {canonical_name(k): v for k, v in self.model_kwargs.items()},
            max_stop_sequences=self.max_stop_sequences,
        )
        if self.max_retries < 0:
            raise ValueError(f"`max_retries` must be >= 0, got {self.max_retries}")
        for name in ("max_retry_wait", "max_model_load_wait"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}")
        for key in ("headers", "cookies"):
            value = self.server_kwargs.get(key)
            if value is not None and not isinstance(value, Mapping):
                raise ValueError(f"`server_kwargs[{key!r}]` must be a mapping, got {type(value).__name__}")
        unknown_server = set(self.server_kwargs) - {"headers", "cookies", "timeout"}
        if unknown_server:
            raise ValueError(
                f"`server_kwargs` accepts 'headers', 'cookies' and 'timeout'; got {sorted(unknown_server)}"
            )
        return self

    # -- serialization and identity -------------------------------------------------------------------------

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """The LLMs serialize with ``dumpd``; the token is stored as a secret reference."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """``["langchain_hf_chat", "llms"]``."""
        return ["langchain_hf_chat", "llms"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Secret fields: the token, and credential headers given in ``server_kwargs``."""
        secrets = {"huggingfacehub_api_token": "HF_TOKEN"}
        headers = self.server_kwargs.get("headers") or {}
        for key in headers:
            if key.lower() in _SENSITIVE_HEADERS:
                secrets[f"server_kwargs.headers.{key}"] = "HF_TOKEN"
        return secrets

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "server_kwargs" and isinstance(value, Mapping) and "headers" in value:
                value = {**value, "headers": mask_headers(value["headers"])}
            yield name, value

    @field_serializer("server_kwargs")
    def _mask_server_kwargs(self, value: dict[str, Any]) -> dict[str, Any]:
        # model_dump / model_dump_json are for display and storage: credential headers are masked there, as
        # SecretStr fields are. The live value (and dumpd's secret references) are unchanged.
        headers = value.get("headers")
        if isinstance(headers, Mapping):
            return {**value, "headers": mask_headers(headers)}
        return value

    def _field_settings(self) -> dict[str, Any]:
        settings = {name: getattr(self, name) for name in GENERATION_FIELDS}
        if self.stop_sequences:
            settings["stop"] = list(self.stop_sequences)
        return settings

    def _default_settings(self) -> dict[str, Any]:
        """The instance's settings: fields, then ``model_kwargs`` (merged last)."""
        return merge_settings(self._field_settings(), self.model_kwargs)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"endpoint": self._target_description(), **self._default_settings()}

    def _target_description(self) -> str:
        raise NotImplementedError

    # -- clients --------------------------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The pooled HTTP transport, created on first use (never at construction)."""
        if self._transport is None:
            timeout = self.server_kwargs.get("timeout", self.timeout)
            self._transport = Transport(
                headers=dict(self.server_kwargs.get("headers") or {}),
                cookies=self.server_kwargs.get("cookies"),
                token=(self.huggingfacehub_api_token.get_secret_value() if self.huggingfacehub_api_token else None),
                token_policy=self.token_policy,
                token_explicit=self._token_explicit,
                timeout=timeout,
                connect_timeout=self.connect_timeout,
                retry=RetryPolicy(
                    max_retries=self.max_retries,
                    max_wait=self.max_retry_wait,
                    max_load_wait=self.max_model_load_wait if self.wait_for_model else None,
                ),
            )
        return self._transport

    @property
    def backend(self) -> RemoteBackend:
        """Where requests go; built once per instance."""
        if self._backend_cache is None:
            self._backend_cache = self._make_backend()
        return self._backend_cache

    def _make_backend(self) -> RemoteBackend:
        raise NotImplementedError

    # -- request settings -----------------------------------------------------------------------------------

    def _call_settings(self, stop: list[str] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Merge per-call ``stop`` and keyword arguments over the instance's settings; validate them."""
        unknown = [k for k in kwargs if canonical_name(k) not in GENERATION_FIELDS and k not in _CALL_OPTIONS]
        if unknown:
            raise ValueError(
                f"{type(self).__name__} got unknown call argument(s) {sorted(unknown)}; "
                f"generation parameters are {sorted(GENERATION_FIELDS)}"
            )
        call = {k: v for k, v in kwargs.items() if k != "timeout"}
        if stop:
            call["stop"] = list(stop)
        settings = merge_settings(self._default_settings(), call)
        validate_settings({k: v for k, v in settings.items() if k != "stop"})
        return settings

    @staticmethod
    def _call_timeout(kwargs: Mapping[str, Any]) -> float | None:
        """The per-call ``timeout=`` (seconds), overriding the instance's read timeout for that call only."""
        return call_timeout(kwargs)

    def _wire_parameters(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return to_tgi_parameters(settings, max_stop_sequences=self.max_stop_sequences)

    # -- LangChain hooks ------------------------------------------------------------------------------------

    def _finish(self, result: TextResult, stop: list[str]) -> Generation:
        text, matched = truncate_at_stop(result.text, stop)
        info = result.generation_info()
        if matched is not None and info.get("finish_reason") in (None, "length", "eos_token"):
            info["finish_reason"] = "stop_sequence"
        return Generation(text=text, generation_info=info or None)

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        settings = self._call_settings(stop, kwargs)
        stops = settings.get("stop", [])
        if len(prompts) > 1 and not self.streaming and self._PARALLEL_PROMPTS:
            # `batch` hands all prompts to one call; TGI takes one input per request, so send them side by side
            # (as `abatch` does), in a thread pool that carries the tracing context.
            parameters, timeout = self._wire_parameters(settings), self._call_timeout(kwargs)
            with ContextThreadPoolExecutor(max_workers=min(len(prompts), _MAX_BATCH_THREADS)) as pool:
                results = list(pool.map(lambda p: self.backend.generate(p, parameters, timeout=timeout), prompts))
            return LLMResult(generations=[[self._finish(r, stops)] for r in results])
        generations: list[list[Generation]] = []
        for prompt in prompts:
            if self.streaming:
                chunk: GenerationChunk | None = None
                for piece in self._stream(prompt, stop, run_manager, **kwargs):
                    chunk = piece if chunk is None else chunk + piece
                generations.append(
                    [
                        Generation(
                            text=chunk.text if chunk else "",
                            generation_info=chunk.generation_info if chunk else None,
                        )
                    ]
                )
                continue
            result = self.backend.generate(prompt, self._wire_parameters(settings), timeout=self._call_timeout(kwargs))
            generations.append([self._finish(result, stops)])
        return LLMResult(generations=generations)

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        settings = self._call_settings(stop, kwargs)
        stops = settings.get("stop", [])
        if self.streaming:
            generations: list[list[Generation]] = []
            for prompt in prompts:
                chunk: GenerationChunk | None = None
                async for piece in self._astream(prompt, stop, run_manager, **kwargs):
                    chunk = piece if chunk is None else chunk + piece
                generations.append(
                    [
                        Generation(
                            text=chunk.text if chunk else "",
                            generation_info=chunk.generation_info if chunk else None,
                        )
                    ]
                )
            return LLMResult(generations=generations)
        parameters = self._wire_parameters(settings)
        timeout = self._call_timeout(kwargs)
        results = await asyncio.gather(*(self.backend.agenerate(p, parameters, timeout=timeout) for p in prompts))
        return LLMResult(generations=[[self._finish(r, stops)] for r in results])

    @staticmethod
    def _chunk_for(event: TokenEvent, stop_filter: StopSequenceFilter) -> tuple[GenerationChunk | None, bool]:
        """Turn a token event into the chunk to yield (if any) and whether the stream is done.

        Shared by sync and async streams: stop sequences are cut here, incrementally, so a stream stops
        yielding at a stop sequence even if the server goes on.
        """
        text = "" if event.special else stop_filter.feed(event.text)
        if event.final is not None or stop_filter.stopped:
            if event.final is not None:
                text += stop_filter.flush()
                info = event.final.generation_info()
            else:
                info = {}
            if stop_filter.stopped:
                info["finish_reason"] = "stop_sequence"
            return GenerationChunk(text=text, generation_info=info or None), True
        return (GenerationChunk(text=text) if text else None), False

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        settings = self._call_settings(stop, kwargs)
        stop_filter = StopSequenceFilter(settings.get("stop"))
        events = self.backend.stream(prompt, self._wire_parameters(settings), timeout=self._call_timeout(kwargs))
        try:
            for event in events:
                chunk, done = self._chunk_for(event, stop_filter)
                if chunk is not None:
                    if run_manager and chunk.text:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
                if done:
                    break
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        settings = self._call_settings(stop, kwargs)
        stop_filter = StopSequenceFilter(settings.get("stop"))
        events = self.backend.astream(prompt, self._wire_parameters(settings), timeout=self._call_timeout(kwargs))
        try:
            async for event in events:
                chunk, done = self._chunk_for(event, stop_filter)
                if chunk is not None:
                    if run_manager and chunk.text:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
                if done:
                    break
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
