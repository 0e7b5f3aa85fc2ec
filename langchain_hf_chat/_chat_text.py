"""Text mode for ``ChatHuggingFace``: render the model's chat template here, generate text, parse tool calls."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

from langchain_hf_chat import errors
from langchain_hf_chat._messages import (
    messages_to_wire,
    normalize_finish_reason,
    template_dicts,
)
from langchain_hf_chat._params import to_tgi_parameters
from langchain_hf_chat._reasoning import (
    REASONING_KEY,
    ReasoningSplitter,
    extract_reasoning,
    prompt_opens_reasoning,
)
from langchain_hf_chat._stop import StopSequenceFilter, truncate_at_stop
from langchain_hf_chat._tools import parse_tool_calls, tool_call_grammar

if TYPE_CHECKING:
    from langchain_hf_chat._templates import ChatTemplate
    from langchain_hf_chat.chat_models import ChatHuggingFace
    from langchain_hf_chat.llms._backend import TextResult, TokenLogprob

__all__ = ["TextModeRunner"]


def _usage(result: TextResult) -> UsageMetadata | None:
    if result.prompt_tokens is None and result.generated_tokens is None:
        return None
    prompt = result.prompt_tokens or 0
    completion = result.generated_tokens or 0
    metadata: UsageMetadata = {  # type: ignore[typeddict-item]  # the details keys are NotRequired
        "input_tokens": prompt,
        "output_tokens": completion,
        "total_tokens": prompt + completion,
    }
    return metadata


class TextModeRunner:
    """Renders prompts with the chat template and runs text generation for one ``ChatHuggingFace``."""

    def __init__(self, chat: ChatHuggingFace) -> None:
        self.chat = chat
        self._template: ChatTemplate | None = None
        self._remote_render = False
        self._lock = threading.Lock()

    # -- template -------------------------------------------------------------------------------------------

    def template(self) -> ChatTemplate | None:
        """The chat template, loaded once; ``None`` when the server renders it (TGI ``/chat_tokenize``)."""
        if self._template is None and not self._remote_render:
            with self._lock:
                if self._template is None and not self._remote_render:
                    self._template = self._load_template()
        return self._template

    def _load_template(self) -> ChatTemplate | None:
        """Find the chat template, touching the network as late as possible.

        Order: explicit template, tokenizer, local path; then the HF cache (no network), the server's own
        template (TGI ``/chat_tokenize``), and only then a download from the Hub.
        """
        # Imported here: jinja2 and the sandbox cost ~20-40 ms at import, and chat mode never needs them.
        from langchain_hf_chat._templates import ChatTemplate, load_chat_template

        chat = self.chat
        if chat.chat_template is not None:
            return ChatTemplate.from_string(
                chat.chat_template, bos_token=chat.bos_token or "", eos_token=chat.eos_token or ""
            )
        tokenizer = chat.tokenizer if chat.tokenizer is not None else getattr(chat.llm, "tokenizer", None)
        path = chat.template_path or getattr(chat.llm, "template_path", None)
        if tokenizer is not None or path is not None:
            return load_chat_template(tokenizer=tokenizer, path=path)
        model_id = chat.model_id
        token_secret = getattr(chat.llm, "huggingfacehub_api_token", None)
        token = token_secret.get_secret_value() if token_secret is not None else None
        if model_id:
            try:
                return load_chat_template(repo_id=model_id, token=token, local_files_only=True)
            except errors.TemplateError:
                pass
        if self._server_can_render():
            self._remote_render = True
            return None
        if not model_id:
            raise errors.TemplateError(
                "no chat template: pass chat_template=, tokenizer= or template_path=, or a model_id whose "
                "template is on the Hugging Face Hub"
            )
        return load_chat_template(repo_id=model_id, token=token)

    def _server_can_render(self) -> bool:
        backend = getattr(self.chat.llm, "backend", None)
        return getattr(backend, "info_url", None) is not None

    def render(self, messages: Sequence[BaseMessage], *, tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        """The prompt for ``messages`` (with the generation prompt)."""
        template = self.template()
        if template is None:
            return self._render_remote(messages, tools)
        try:
            chat, plain = template_dicts(messages)
            if plain and chat:
                return template._render_plain_chat(chat, list(tools) if tools else None)
            return template.render(chat, tools=list(tools) if tools else None)
        except errors.TemplateError as exc:
            raise errors.TemplateError(
                f"the chat template of {self.chat.model_id or 'the model'} failed: {exc.server_message}"
            ) from None

    def _render_remote(self, messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]] | None) -> str:
        backend = self.chat.llm.backend
        assert backend.info_url is not None
        url = backend.info_url[: -len("/info")] + "/chat_tokenize"
        body: dict[str, Any] = {"model": "tgi", "messages": messages_to_wire(messages)}
        if tools:
            body["tools"] = list(tools)
        data = backend.transport.post_json(url, body)
        text = data.get("templated_text") if isinstance(data, Mapping) else None
        if not isinstance(text, str):
            raise errors.TemplateError(f"the server did not render the chat template: {str(data)[:200]!r}")
        return text

    # -- requests -------------------------------------------------------------------------------------------

    def _prepare(
        self,
        messages: Sequence[BaseMessage],
        settings: Mapping[str, Any],
        request: Mapping[str, Any],
    ) -> tuple[str, dict[str, Any], list[dict[str, Any]] | None]:
        tools = request.get("tools") or None
        tool_choice = request.get("tool_choice")
        if tool_choice == "none":
            tools = None
        prompt = self.render(messages, tools=tools)
        if settings.get("model"):
            # A per-call model names a LoRA adapter on TGI's text routes, as ``model`` does on its chat route.
            settings = {**{k: v for k, v in settings.items() if k != "model"}, "adapter_id": settings["model"]}
        wire = getattr(self.chat.llm, "_wire_parameters", None)
        if callable(wire):
            parameters: dict[str, Any] = wire(settings)
        else:
            parameters = to_tgi_parameters(settings)
        for key in ("logprobs", "top_logprobs", "presence_penalty"):
            parameters.pop(key, None)
        if settings.get("logprobs"):
            # TGI's text routes report token logprobs in ``details``, alternatives with ``top_n_tokens``.
            parameters["details"] = True
            if settings.get("top_logprobs"):
                parameters["top_n_tokens"] = settings["top_logprobs"]
        if tools and tool_choice not in (None, "auto", "none"):
            parameters["grammar"] = tool_call_grammar(list(tools), tool_choice)
        response_format = request.get("response_format")
        if response_format is not None:
            parameters["grammar"] = _grammar_from_response_format(response_format)
        return prompt, parameters, tools

    def _message(
        self,
        result: TextResult,
        settings: Mapping[str, Any],
        tools: list[dict[str, Any]] | None,
        *,
        opened: bool = False,
    ) -> AIMessage:
        output, additional = result.text, {}
        if not self.chat.keep_think_tags:
            split = extract_reasoning(output, opened=opened)
            if split is not None:
                additional = {REASONING_KEY: split[0]} if split[0] else {}
                output = split[1]
        text, matched = truncate_at_stop(output, settings.get("stop"))
        raw_reason = "stop_sequence" if matched is not None else result.finish_reason
        metadata: dict[str, Any] = {
            "model_name": settings.get("model") or self.chat.model_id,
            "model_provider": "huggingface",
            "finish_reason": normalize_finish_reason(raw_reason),
        }
        if raw_reason is not None:
            metadata["raw_finish_reason"] = raw_reason
        if result.seed is not None:
            metadata["seed"] = result.seed
        if settings.get("logprobs") and result.logprobs is not None:
            metadata["logprobs"] = {"content": result.logprobs}
        if tools:
            names = [t["function"]["name"] for t in tools]
            parsed = parse_tool_calls(text, tool_names=names, formats=self.chat.tool_call_formats)
            if parsed.tool_calls:
                metadata["finish_reason"] = "tool_calls"
            return AIMessage(
                content=parsed.content,
                tool_calls=parsed.tool_calls,
                invalid_tool_calls=parsed.invalid_tool_calls,
                usage_metadata=_usage(result),
                response_metadata=metadata,
                additional_kwargs=additional,
            )
        return AIMessage(
            content=text, usage_metadata=_usage(result), response_metadata=metadata, additional_kwargs=additional
        )

    def generate(
        self,
        messages: Sequence[BaseMessage],
        settings: Mapping[str, Any],
        request: Mapping[str, Any],
    ) -> AIMessage:
        """Render, generate, parse."""
        prompt, parameters, tools = self._prepare(messages, settings, request)
        result = self.chat.llm.backend.generate(prompt, parameters, timeout=request.get("timeout"))
        return self._message(result, settings, tools, opened=prompt_opens_reasoning(prompt))

    async def agenerate(
        self,
        messages: Sequence[BaseMessage],
        settings: Mapping[str, Any],
        request: Mapping[str, Any],
    ) -> AIMessage:
        """Async :meth:`generate`."""
        prompt, parameters, tools = self._prepare(messages, settings, request)
        result = await self.chat.llm.backend.agenerate(prompt, parameters, timeout=request.get("timeout"))
        return self._message(result, settings, tools, opened=prompt_opens_reasoning(prompt))

    def stream(
        self,
        messages: Sequence[BaseMessage],
        settings: Mapping[str, Any],
        request: Mapping[str, Any],
    ) -> Iterator[ChatGenerationChunk]:
        """Stream tokens; with tools bound, the calls are parsed at the end and sent as tool-call chunks."""
        prompt, parameters, tools = self._prepare(messages, settings, request)
        state = _TextStream(self, settings, tools, opened=prompt_opens_reasoning(prompt))
        events = self.chat.llm.backend.stream(prompt, parameters, timeout=request.get("timeout"))
        try:
            for event in events:
                yield from state.feed(event)
                if state.done:
                    break
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        yield from state.finish()

    async def astream(
        self,
        messages: Sequence[BaseMessage],
        settings: Mapping[str, Any],
        request: Mapping[str, Any],
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Async :meth:`stream`."""
        prompt, parameters, tools = self._prepare(messages, settings, request)
        state = _TextStream(self, settings, tools, opened=prompt_opens_reasoning(prompt))
        events = self.chat.llm.backend.astream(prompt, parameters, timeout=request.get("timeout"))
        try:
            async for event in events:
                for chunk in state.feed(event):
                    yield chunk
                if state.done:
                    break
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        for chunk in state.finish():
            yield chunk


class _TextStream:
    """Shared state of a text-mode stream (sync and async)."""

    def __init__(
        self,
        runner: TextModeRunner,
        settings: Mapping[str, Any],
        tools: list[dict[str, Any]] | None,
        *,
        opened: bool = False,
    ):
        self.runner = runner
        self.settings = settings
        self.tools = tools
        self.filter = StopSequenceFilter(settings.get("stop"))
        self.splitter = None if runner.chat.keep_think_tags else ReasoningSplitter(opened=opened)
        self.buffer: list[str] = []
        self.final: TextResult | None = None
        self.done = False
        self.want_logprobs = bool(settings.get("logprobs"))
        # Logprobs of tokens whose text is not out yet (held by the stop filter, or buffered for tools).
        self.pending_logprobs: list[TokenLogprob] = []

    def feed(self, event: Any) -> Iterator[ChatGenerationChunk]:
        raw = "" if event.special else event.text
        reasoning = ""
        if self.splitter is not None:
            # Reasoning is split off before stop sequences apply: they end the answer, not the thinking.
            reasoning, raw = self.splitter.feed(raw)
            if event.final is not None:
                tail_reasoning, tail_answer = self.splitter.flush()
                reasoning, raw = reasoning + tail_reasoning, raw + tail_answer
        if self.want_logprobs and event.logprob is not None:
            self.pending_logprobs.append(event.logprob)
        text = self.filter.feed(raw) if raw else ""
        if event.final is not None:
            self.final = event.final
            text += self.filter.flush()
            self.done = True
        if self.filter.stopped:
            self.done = True
        additional = {REASONING_KEY: reasoning} if reasoning else {}
        if self.tools is not None:
            self.buffer.append(text)  # tool calls are parsed once the whole text is known
            if additional:
                yield ChatGenerationChunk(message=AIMessageChunk(content="", additional_kwargs=additional))
            return
        if text or additional:
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=text, additional_kwargs=additional, response_metadata=self._take_logprobs()
                )
            )

    def _take_logprobs(self) -> dict[str, Any]:
        # Chunks merge ``{"content": [...]}`` by concatenation: the streamed total equals invoke's.
        if not self.pending_logprobs:
            return {}
        taken, self.pending_logprobs = self.pending_logprobs, []
        return {"logprobs": {"content": taken}}

    def finish(self) -> Iterator[ChatGenerationChunk]:
        from langchain_hf_chat.llms._backend import TextResult

        final = self.final or TextResult(text="".join(self.buffer))
        raw_reason = "stop_sequence" if self.filter.stopped else final.finish_reason
        metadata: dict[str, Any] = {
            "model_name": self.settings.get("model") or self.runner.chat.model_id,
            "model_provider": "huggingface",
            "finish_reason": normalize_finish_reason(raw_reason),
        }
        if raw_reason is not None:
            metadata["raw_finish_reason"] = raw_reason
        metadata.update(self._take_logprobs())
        if self.tools is not None:
            names = [t["function"]["name"] for t in self.tools]
            parsed = parse_tool_calls(
                "".join(self.buffer), tool_names=names, formats=self.runner.chat.tool_call_formats
            )
            chunks = [
                tool_call_chunk(name=c["name"], args=_dumps(c["args"]), id=c.get("id"), index=i)
                for i, c in enumerate(parsed.tool_calls)
            ]
            if parsed.tool_calls:
                metadata["finish_reason"] = "tool_calls"
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=parsed.content,
                    tool_call_chunks=chunks,
                    invalid_tool_calls=parsed.invalid_tool_calls,
                    usage_metadata=_usage(final),
                    response_metadata=metadata,
                )
            )
            return
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=_usage(final), response_metadata=metadata)
        )


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _grammar_from_response_format(response_format: Mapping[str, Any]) -> dict[str, Any]:
    """TGI grammar for a ``response_format`` in either TGI or OpenAI shape."""
    kind = response_format.get("type")
    if kind == "json_schema" and isinstance(response_format.get("json_schema"), Mapping):
        schema = response_format["json_schema"].get("schema") or {}
        return {"type": "json", "value": schema}
    if kind in ("json_object", "json") and "value" in response_format:
        return {"type": "json", "value": response_format["value"]}
    if kind in ("json_object", "json"):
        return {"type": "json", "value": {"type": "object", "properties": {}}}
    if kind == "regex":
        return {"type": "regex", "value": response_format.get("value")}
    raise ValueError(f"unsupported response_format {dict(response_format)!r}")
