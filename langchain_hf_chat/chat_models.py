"""``ChatHuggingFace``: the LangChain chat model over every Hugging Face backend.

This module is the LangChain face: fields, mode choice, request assembly and the generate/stream paths. Stream
bookkeeping lives in :mod:`langchain_hf_chat._chat_stream`, ``with_structured_output`` and ``response_format``
shaping in :mod:`langchain_hf_chat._structured_output`, text mode in :mod:`langchain_hf_chat._chat_text`.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_hf_chat import errors
from langchain_hf_chat._chat_stream import ChatStream as _ChatStream
from langchain_hf_chat._chat_text import TextModeRunner
from langchain_hf_chat._messages import message_from_chat_response, messages_to_wire
from langchain_hf_chat._params import merge_settings, to_chat_fields, validate_settings
from langchain_hf_chat._reasoning import add_reasoning, extract_reasoning
from langchain_hf_chat._response_format import cannot_constrain, fallback_plan, to_openai, to_tgi
from langchain_hf_chat._stop import truncate_at_stop
from langchain_hf_chat._structured_output import (
    response_format_for,
    server_response_format_shape,
    structured_output_runnable,
    with_method,
)
from langchain_hf_chat._tools import convert_tools, normalize_tool_choice
from langchain_hf_chat._transport import is_hf_host
from langchain_hf_chat.llms._base import call_timeout

__all__ = ["ChatHuggingFace"]

logger = logging.getLogger("langchain_hf_chat")

Mode = Literal["auto", "chat", "text"]

#: Keyword arguments the chat model handles itself (not generation settings).
_REQUEST_KEYS = frozenset(
    {
        "tools",
        "tool_choice",
        "response_format",
        "parallel_tool_calls",
        "ls_structured_output_format",
        "timeout",
    }
)
#: TGI-only settings that the chat-completions route cannot carry on TGI.
_TGI_ONLY_MEANINGFUL = (
    "top_k",
    "typical_p",
    "repetition_penalty",
    "truncate",
    "watermark",
    "top_n_tokens",
)


class ChatHuggingFace(BaseChatModel):
    """A chat model over a Hugging Face LLM: TGI, an Inference Endpoint, Inference Providers, or a local model.

    Two ways to talk to the model, chosen once per instance (``mode``):

    * ``"chat"``: the server applies the chat template (``/v1/chat/completions``). Tools, ``response_format``
      and usage are native.
    * ``"text"``: the model's own chat template is rendered here (``_to_chat_prompt``) and sent to text
      generation; tool calls are parsed from the text.
    * ``"auto"`` (default): ``"text"`` for in-process models and when you pass ``chat_template``,
      ``tokenizer`` or ``template_path``; otherwise ``"chat"``, falling back to ``"text"`` for good when the
      server has no Messages API (404/405) or no chat template.

    Setup:
        ``pip install langchain-hf-chat``; for local models also ``pip install "langchain-hf-chat[local]"``.

    Key init args:
        llm: a ``HuggingFaceTextGenInference``, ``HuggingFaceEndpoint``, ``HuggingFaceHub`` or
            ``HuggingFacePipeline``.
        model_id: the Hub id of the model (resolved from the LLM or the server's ``/info`` if not given).
        temperature, max_tokens, top_p, seed, stop, frequency_penalty, presence_penalty, logprobs:
            override the LLM's settings.

    Instantiate:
        >>> from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint
        >>> llm = HuggingFaceEndpoint(repo_id="HuggingFaceH4/zephyr-7b-beta")
        >>> chat = ChatHuggingFace(llm=llm, temperature=0)
        >>> chat.model_id
        'HuggingFaceH4/zephyr-7b-beta'

    Invoke:
        .. code-block:: python

            chat.invoke([("system", "You're a helpful assistant"), ("human", "Hi!")])

    Stream:
        .. code-block:: python

            for chunk in chat.stream("Tell me a joke"):
                print(chunk.content, end="")

    Tool calling:
        .. code-block:: python

            def get_weather(city: str) -> str:
                '''Weather in a city.'''

            chat.bind_tools([get_weather]).invoke("Weather in Paris?").tool_calls

    Structured output:
        .. code-block:: python

            from pydantic import BaseModel

            class Joke(BaseModel):
                setup: str
                punchline: str

            chat.with_structured_output(Joke).invoke("Tell me a joke about cats")
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=())

    llm: Any
    """The LLM to chat with."""
    explicit_model_id: str | None = Field(default=None, alias="model_id")
    """The model's Hub id; resolved lazily when not given."""
    mode: Mode = "auto"
    """``"auto"``, ``"chat"`` (server-side template) or ``"text"`` (client-side template)."""
    chat_template: str | None = None
    """A chat template (Jinja source) to use instead of the model's."""
    bos_token: str | None = None
    """``bos_token`` for an explicit ``chat_template``."""
    eos_token: str | None = None
    """``eos_token`` for an explicit ``chat_template``."""
    tokenizer: Any = None
    """A ``transformers`` tokenizer whose chat template to use."""
    template_path: str | None = None
    """A local model folder or template file to read the chat template from."""
    tool_call_formats: list[str] | None = None
    """Text formats to parse tool calls from in text mode (default: all known)."""
    response_format_style: Literal["auto", "tgi", "openai"] = "auto"
    """Shape of ``response_format``: TGI's ``{"type": "json_object", "value": schema}`` or OpenAI's
    ``{"type": "json_schema", "json_schema": {...}}``. ``"auto"``: OpenAI for the providers router, else TGI."""
    structured_output_fallback: bool = True
    """When the server cannot constrain the output (no grammar support, a provider without structured output),
    fall back from the JSON schema to JSON mode, then to asking for JSON in the prompt; the method that answered is
    ``response_metadata["structured_output_method"]``. Remembered for later calls."""
    keep_think_tags: bool = False
    """Leave ``<think>...</think>`` in ``content``. By default reasoning (tags, or the server's
    ``reasoning_content``/``reasoning`` field) goes to ``additional_kwargs["reasoning_content"]``, a standard
    reasoning block in ``content_blocks``, and ``content`` is the answer only."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    stream_usage: bool = True
    """Ask the server for token usage in streams."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra chat-completions body fields, sent as given."""

    _resolved_model_id: str | None = PrivateAttr(default=None)
    _resolved_mode: str | None = PrivateAttr(default=None)
    _text_runner: TextModeRunner | None = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _warned_tgi_only: bool = PrivateAttr(default=False)
    _structured_floor: str | None = PrivateAttr(default=None)
    _rf_shape: str | None = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        validate_settings(self._chat_settings(), max_stop_sequences=None)

    # -- identity -------------------------------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "huggingface-chat-wrapper"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Serializable with ``dumpd``; the LLM's token is stored as a secret reference."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """``["langchain_hf_chat", "chat_models"]``."""
        return ["langchain_hf_chat", "chat_models"]

    @property
    def model_id(self) -> str | None:
        """The model's Hub id: explicit, else the LLM's ``repo_id``/``model_id``, else TGI's ``/info``.

        Resolved once, on first access (never at construction); never a URL or a placeholder.
        """
        if self.explicit_model_id:
            return self.explicit_model_id
        if self._resolved_model_id is None:
            with self._lock:
                if self._resolved_model_id is None:
                    self._resolved_model_id = self._lookup_model_id()
        return self._resolved_model_id or None

    def _lookup_model_id(self) -> str:
        for attr in ("repo_id", "model_id"):
            value = getattr(self.llm, attr, None)
            if isinstance(value, str) and value and not value.startswith(("http://", "https://")):
                return value
        backend = getattr(self.llm, "backend", None)
        info_fn = getattr(backend, "info", None)
        if info_fn is not None:
            try:
                info = info_fn()
            except errors.HuggingFaceError as exc:
                logger.debug("could not read /info: %s", exc)
                info = None
            if info and isinstance(info.get("model_id"), str):
                return str(info["model_id"])
        return ""

    @property
    def _identifying_params(self) -> dict[str, Any]:
        llm_params = getattr(self.llm, "_identifying_params", {})
        return {
            "llm": dict(llm_params),
            "model_id": self.explicit_model_id,
            "mode": self.mode,
            "chat_template": self.chat_template,
            **self._chat_settings(),
            **self.model_kwargs,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        settings = self._settings(stop, {k: v for k, v in kwargs.items() if k not in _REQUEST_KEYS})
        params = LangSmithParams(
            ls_provider="huggingface",
            # A per-call ``model`` (an adapter on TGI, another model on the router) is the one the call uses.
            ls_model_name=kwargs.get("model")
            or self.explicit_model_id
            or self._resolved_model_id
            or self._cheap_model_name(),
            ls_model_type="chat",
        )
        if settings.get("temperature") is not None:
            params["ls_temperature"] = settings["temperature"]
        if settings.get("max_new_tokens") is not None:
            params["ls_max_tokens"] = settings["max_new_tokens"]
        if settings.get("stop"):
            params["ls_stop"] = settings["stop"]
        return params

    def _cheap_model_name(self) -> str:
        # Tracing must not trigger network I/O: use what is known without asking the server.
        for attr in ("repo_id", "model_id"):
            value = getattr(self.llm, attr, None)
            if isinstance(value, str) and value:
                return value
        return type(self.llm).__name__

    # -- settings -------------------------------------------------------------------------------------------

    def _chat_settings(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "max_new_tokens": self.max_tokens,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": self.stop,
            "frequency_penalty": self.frequency_penalty,
            "presence_penalty": self.presence_penalty,
            "logprobs": self.logprobs,
            "top_logprobs": self.top_logprobs,
        }

    def _settings(self, stop: list[str] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """LLM defaults < its model_kwargs < chat-model fields < per-call kwargs (one merge for all paths)."""
        llm_defaults: Mapping[str, Any] = {}
        default_fn = getattr(self.llm, "_default_settings", None)
        if callable(default_fn):
            llm_defaults = default_fn()
        call = dict(kwargs)
        if stop:
            call["stop"] = list(stop)
        settings = merge_settings(llm_defaults, self._chat_settings(), call)
        validate_settings({k: v for k, v in settings.items() if k != "stop"})
        return settings

    # -- mode -----------------------------------------------------------------------------------------------

    @property
    def resolved_mode(self) -> str:
        """The mode in use: ``"chat"`` or ``"text"``."""
        if self._resolved_mode is None:
            self._resolved_mode = self._choose_mode()
        return self._resolved_mode

    def _choose_mode(self) -> str:
        if self.mode != "auto":
            return self.mode
        backend = getattr(self.llm, "backend", None)
        if backend is None or getattr(backend, "chat_url", None) is None:
            return "text"
        if self.chat_template is not None or self.tokenizer is not None or self.template_path is not None:
            return "text"
        if getattr(self.llm, "task", "text-generation") != "text-generation":
            return "text"
        return "chat"

    def _fall_back(self, exc: errors.HuggingFaceError) -> bool:
        """In auto mode, switch to text mode for good when the server has no Messages API or template."""
        if self.mode != "auto" or self._resolved_mode != "chat":
            return False
        if getattr(getattr(self.llm, "backend", None), "chat_model", None) is not None:
            return False  # the providers router: a 404 means "model not served", not "no Messages API"
        no_route = isinstance(exc, errors.NotFoundError) or exc.status_code == 405
        no_template = isinstance(exc, errors.TemplateError) and "not found" in str(exc).lower()
        if no_route or no_template:
            logger.info("chat completions unavailable (%s); using text mode with the chat template", exc)
            self._resolved_mode = "text"
            return True
        return False

    @property
    def text_runner(self) -> TextModeRunner:
        """The text-mode path (template rendering, text generation, tool-call parsing)."""
        # Read from pydantic's private-attribute dict: `self._text_runner` goes through __getattr__ (~1.5 µs).
        private = self.__pydantic_private__
        runner = private.get("_text_runner") if private is not None else None
        if runner is None:
            runner = self._text_runner = TextModeRunner(self)
        return runner

    def _to_chat_prompt(self, messages: Sequence[BaseMessage], **kwargs: Any) -> str:
        """The prompt the model's own chat template renders for ``messages`` (with a generation prompt)."""
        if not messages:
            raise ValueError("at least one message is required")
        return self.text_runner.render(messages, tools=kwargs.get("tools"))

    # -- chat-completions requests --------------------------------------------------------------------------

    def _is_router(self) -> bool:
        backend = getattr(self.llm, "backend", None)
        return getattr(backend, "chat_model", None) is not None and is_hf_host(getattr(backend, "chat_url", "") or "")

    def _uses_openai_shape(self) -> bool:
        if self.response_format_style != "auto":
            return self.response_format_style == "openai"
        return getattr(getattr(self.llm, "backend", None), "chat_model", None) is not None

    def _chat_body(
        self,
        messages: Sequence[BaseMessage],
        settings: Mapping[str, Any],
        request: Mapping[str, Any],
        *,
        stream: bool,
    ) -> dict[str, Any]:
        backend = self.llm.backend
        fields, leftovers = to_chat_fields(settings, max_stop_sequences=getattr(self.llm, "max_stop_sequences", None))
        self._warn_tgi_only(leftovers)
        model = backend.chat_model or settings.get("adapter_id") or "tgi"
        body: dict[str, Any] = {"model": model, "messages": messages_to_wire(messages)}
        if _has_images(body["messages"]):
            self._check_accepts_images(backend)
        body.update(fields)
        for key in _TGI_ONLY_MEANINGFUL:
            if key in leftovers and key in self._user_set_keys():
                body[key] = leftovers[key]
        if request.get("tools"):
            body["tools"] = request["tools"]
            if request.get("tool_choice") is not None:
                body["tool_choice"] = request["tool_choice"]
            if request.get("parallel_tool_calls") is not None:
                body["parallel_tool_calls"] = request["parallel_tool_calls"]
        if request.get("response_format") is not None:
            body["response_format"] = self._shaped_response_format(request["response_format"])
        body.update(self.model_kwargs)
        body["stream"] = stream
        if stream and self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        return body

    def _check_accepts_images(self, backend: Any) -> None:
        """Refuse images for a model the server reports as text-only, before sending anything."""
        info_fn = getattr(backend, "info", None)
        info = info_fn() if callable(info_fn) else None
        tag = info.get("model_pipeline_tag") if isinstance(info, Mapping) else None
        if tag == "text-generation":
            model = info.get("model_id") if isinstance(info, Mapping) else None
            raise ValueError(
                f"the model {model or self.model_id!r} is text-only (pipeline tag {tag!r}): it cannot read image "
                "content; send text only, or use a vision-language model"
            )

    def _user_set_keys(self) -> set[str]:
        return set(getattr(self.llm, "model_fields_set", set())) | set(getattr(self.llm, "model_kwargs", {}) or {})

    def _warn_tgi_only(self, leftovers: Mapping[str, Any]) -> None:
        lost = sorted(k for k in _TGI_ONLY_MEANINGFUL if k in leftovers and k in self._user_set_keys())
        if lost and not self._warned_tgi_only:
            self._warned_tgi_only = True
            warnings.warn(
                f"{lost} are sent as extra chat-completions fields: vLLM and SGLang apply them, but TGI's "
                "/v1/chat/completions ignores them. Use ChatHuggingFace(mode='text') to have TGI apply them.",
                UserWarning,
                stacklevel=4,
            )

    def _request_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Pop tool/format options out of the call kwargs (the rest are generation settings)."""
        request = {key: kwargs.pop(key) for key in list(kwargs) if key in _REQUEST_KEYS}
        request.pop("ls_structured_output_format", None)
        # A per-call ``timeout=`` bounds this call's requests, like the LLM classes' per-call timeout.
        request["timeout"] = call_timeout(request)
        return request

    # -- generate -------------------------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request_options(kwargs)
        settings = self._settings(stop, kwargs)
        *weaker, last = self._structured_plan(messages, request)
        for index, (method, attempt_messages, attempt_request) in enumerate(weaker):
            try:
                return with_method(self._generate_once(attempt_messages, settings, attempt_request), method)
            except errors.HuggingFaceError as exc:
                if not self._degrade(exc, method, ([*weaker, last])[index + 1][0]):
                    raise
        return with_method(self._generate_once(last[1], settings, last[2]), last[0])

    def _generate_once(
        self, messages: Sequence[BaseMessage], settings: Mapping[str, Any], request: Mapping[str, Any]
    ) -> ChatResult:
        if self.resolved_mode == "chat":
            try:
                data = self.llm.backend.chat(
                    self._chat_body(messages, settings, request, stream=False), timeout=request["timeout"]
                )
            except errors.HuggingFaceError as exc:
                if not self._fall_back(exc):
                    raise
            else:
                return self._chat_result(data, settings)
        message = self.text_runner.generate(messages, settings, request)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request_options(kwargs)
        settings = self._settings(stop, kwargs)
        *weaker, last = self._structured_plan(messages, request)
        for index, (method, attempt_messages, attempt_request) in enumerate(weaker):
            try:
                result = await self._agenerate_once(attempt_messages, settings, attempt_request)
            except errors.HuggingFaceError as exc:
                if not self._degrade(exc, method, ([*weaker, last])[index + 1][0]):
                    raise
            else:
                return with_method(result, method)
        return with_method(await self._agenerate_once(last[1], settings, last[2]), last[0])

    async def _agenerate_once(
        self, messages: Sequence[BaseMessage], settings: Mapping[str, Any], request: Mapping[str, Any]
    ) -> ChatResult:
        if self.resolved_mode == "chat":
            try:
                data = await self.llm.backend.achat(
                    self._chat_body(messages, settings, request, stream=False), timeout=request["timeout"]
                )
            except errors.HuggingFaceError as exc:
                if not self._fall_back(exc):
                    raise
            else:
                return self._chat_result(data, settings)
        message = await self.text_runner.agenerate(messages, settings, request)
        return ChatResult(generations=[ChatGeneration(message=message)])

    # -- structured output: shapes and fallbacks ------------------------------------------------------------

    def _structured_plan(
        self, messages: Sequence[BaseMessage], request: Mapping[str, Any]
    ) -> list[tuple[str | None, Sequence[BaseMessage], dict[str, Any]]]:
        plan = fallback_plan(messages, request, start=self._structured_floor)
        return plan if self.structured_output_fallback else plan[:1]

    def _degrade(self, exc: errors.HuggingFaceError, method: str | None, weaker: str | None) -> bool:
        """After ``exc``, fall back from ``method`` to ``weaker`` for this and later calls, if that can help."""
        if weaker is None or not cannot_constrain(exc):
            return False
        logger.warning(
            "structured output: the server cannot use %s (%s); falling back to %s", method, exc.server_message, weaker
        )
        self._structured_floor = weaker
        return True

    def _shaped_response_format(self, response_format: Mapping[str, Any]) -> dict[str, Any]:
        """``response_format`` in the shape this server accepts (see ``response_format_style``)."""
        return to_openai(response_format) if self._response_format_shape() == "openai" else to_tgi(response_format)

    def _response_format_shape(self) -> str:
        if self.response_format_style != "auto":
            return self.response_format_style
        if self._rf_shape is None:  # asked once per instance
            self._rf_shape = server_response_format_shape(getattr(self.llm, "backend", None))
        return self._rf_shape

    def _chat_result(self, data: Any, settings: Mapping[str, Any]) -> ChatResult:
        if not isinstance(data, Mapping):
            raise errors.ServerError(f"unexpected chat response: {str(data)[:200]!r}")
        message = message_from_chat_response(data)
        if not self.keep_think_tags and isinstance(message.content, str):
            split = extract_reasoning(message.content)
            if split is not None:
                reasoning, message.content = split
                add_reasoning(message.additional_kwargs, reasoning)
        text, matched = truncate_at_stop(message.text if isinstance(message.content, str) else "", settings.get("stop"))
        if matched is not None:
            message.content = text
            message.response_metadata["finish_reason"] = "stop"
        if message.response_metadata.get("model_name") in (None, "", "tgi", "dummy"):
            message.response_metadata["model_name"] = self.model_id
        message.response_metadata.setdefault("model_provider", "huggingface")
        model_name = message.response_metadata["model_name"]
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model_name": model_name})

    # -- stream ---------------------------------------------------------------------------------------------

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._request_options(kwargs)
        settings = self._settings(stop, kwargs)
        # Streams take the structured-output method that worked before (no retry once tokens flow).
        _, messages, request = self._structured_plan(messages, request)[0]  # type: ignore[assignment]
        if self.resolved_mode == "chat":
            stream = _ChatStream(self, settings)
            events = self.llm.backend.chat_stream(
                self._chat_body(messages, settings, request, stream=True), timeout=request["timeout"]
            )
            try:
                first = True
                for payload in events:
                    for chunk in stream.feed(payload):
                        first = False
                        if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                            run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
                        yield chunk
                    if stream.done:
                        break
                yield from stream.finish()
                return
            except errors.HuggingFaceError as exc:
                stream.add_partial(exc)
                if not (first and self._fall_back(exc)):
                    raise
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
        for chunk in self.text_runner.stream(messages, settings, request):
            if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request_options(kwargs)
        settings = self._settings(stop, kwargs)
        # Streams take the structured-output method that worked before (no retry once tokens flow).
        _, messages, request = self._structured_plan(messages, request)[0]  # type: ignore[assignment]
        if self.resolved_mode == "chat":
            stream = _ChatStream(self, settings)
            events = self.llm.backend.achat_stream(
                self._chat_body(messages, settings, request, stream=True), timeout=request["timeout"]
            )
            try:
                first = True
                async for payload in events:
                    for chunk in stream.feed(payload):
                        first = False
                        if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                            await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
                        yield chunk
                    if stream.done:
                        break
                for chunk in stream.finish():
                    yield chunk
                return
            except errors.HuggingFaceError as exc:
                stream.add_partial(exc)
                if not (first and self._fall_back(exc)):
                    raise
            finally:
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    await aclose()
        async for chunk in self.text_runner.astream(messages, settings, request):
            if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk

    # -- tools and structured output ------------------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, Pydantic models, functions or OpenAI dicts) to the model.

        ``tool_choice``: ``None``/``"auto"``, ``"none"``, ``"any"``/``"required"``, a tool name, or
        ``{"type": "function", "function": {"name": ...}}``. In text mode a forced choice is enforced with
        TGI's grammar.
        """
        formatted = convert_tools(tools)
        names = [t["function"]["name"] for t in formatted]
        choice = normalize_tool_choice(tool_choice, names)
        bound: dict[str, Any] = {"tools": formatted, **kwargs}
        if choice is not None:
            bound["tool_choice"] = choice
        if parallel_tool_calls is not None:
            bound["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(**bound)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: Literal["function_calling", "json_mode", "json_schema"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """A runnable that returns output matching ``schema`` (Pydantic class, TypedDict or JSON schema).

        Methods: ``"json_schema"`` (constrained decoding: ``response_format`` in chat mode, TGI ``grammar`` in
        text mode), ``"function_calling"`` (a forced tool call), ``"json_mode"`` (JSON output, parsed).

        ``strict`` sets ``json_schema.strict`` in OpenAI-shaped ``response_format`` (default ``True``). TGI's
        grammar always constrains decoding to the schema, so it cannot be relaxed there.
        """
        return structured_output_runnable(self, schema, method=method, include_raw=include_raw, strict=strict, **kwargs)

    def _response_format(
        self, json_schema: dict[str, Any] | None, name: str, *, strict: bool | None = None
    ) -> dict[str, Any]:
        return response_format_for(json_schema, name, strict=strict, openai_shape=self._uses_openai_shape())


def _has_images(wire_messages: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        isinstance(m.get("content"), list) and any(b.get("type") == "image_url" for b in m["content"])
        for m in wire_messages
    )
