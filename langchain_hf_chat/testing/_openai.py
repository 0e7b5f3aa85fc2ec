"""The OpenAI-style routes: ``/v1/chat/completions``, ``/v1/completions``, ``/chat_tokenize`` (README §3)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from langchain_hf_chat.testing._chat import (
    PreparedChat,
    ToolStreamParser,
    next_tool_call_id,
    parse_tool_call,
    prepare_chat,
)
from langchain_hf_chat.testing._context import Context, fault_of
from langchain_hf_chat.testing._engine import NoResponse
from langchain_hf_chat.testing._errors import InferError
from langchain_hf_chat.testing._sse import SSEResponse
from langchain_hf_chat.testing._validation import (
    CHAT_REQUEST,
    COMPLETION_REQUEST,
    RequestParameters,
    Validated,
)
from langchain_hf_chat.testing._wire import (
    DONE,
    Generation,
    SSEItem,
    chat_logprobs_json,
    error_item,
    json_response,
    timing_headers,
    usage_json,
)
from langchain_hf_chat.testing.backends.base import Finish, FinishReason, Token

__all__ = ["chat_completions", "chat_tokenize", "completions"]


def _sampling(body: Mapping[str, Any]) -> tuple[bool, float | None]:
    # Chat and completions: temperature 0 is the only way to greedy decoding; otherwise TGI samples.
    temperature = body.get("temperature")
    if temperature == 0:
        return False, None
    return True, temperature


def _chat_parameters(body: Mapping[str, Any], grammar: dict[str, Any] | None) -> RequestParameters:
    do_sample, temperature = _sampling(body)
    presence = body.get("presence_penalty")
    model = body.get("model")
    return RequestParameters(
        do_sample=do_sample,
        temperature=temperature,
        top_p=body.get("top_p"),
        frequency_penalty=body.get("frequency_penalty"),
        repetition_penalty=presence + 2.0 if presence is not None else None,
        max_new_tokens=body.get("max_tokens", body.get("max_completion_tokens")),
        seed=body.get("seed"),
        stop=list(body.get("stop") or []),
        top_n_tokens=body.get("top_logprobs"),
        details=True,
        grammar=grammar,
        adapter_id=model if model not in (None, "tgi") else None,
    )


class _Chat:
    """One chat request: the shaping shared by the stream and non-stream paths."""

    def __init__(
        self, ctx: Context, request: Request, body: Mapping[str, Any], *, routed_model: str | None = None
    ) -> None:
        self.ctx = ctx
        self.request = request
        self.body = body
        self.version = ctx.config.version
        model = body.get("model")
        self.model = routed_model or (model if model not in (None, "tgi") else ctx.engine.backend.model_id)
        # TGI sends an empty id; the router (OpenAI style) a unique one, and extra keys such as service_tier.
        self.response_id = f"chatcmpl-{uuid.uuid4().hex[:24]}" if routed_model else ""
        self.extra: dict[str, Any] = {"service_tier": "default"} if routed_model else {}
        self.reasoning_field = ctx.config.reasoning_field
        self.created = int(time.time())
        label = ctx.config.docker_label or "native"
        self.fingerprint = f"{self.version.reported}-{label}"
        self.want_logprobs = bool(body.get("logprobs"))

    def finish_reason(self, reason: FinishReason) -> str:
        if reason == "eos_token" and self.version.eos_is_stop:
            return "stop"
        return reason

    def plain_message(self, text: str) -> dict[str, Any]:
        """The assistant message for a text answer; with a reasoning parser, ``<think>`` text in its own field."""
        if self.reasoning_field and "</think>" in text:
            reasoning, _, answer = text.partition("</think>")
            reasoning = reasoning.strip().removeprefix("<think>").strip()
            return {"role": "assistant", "content": answer.lstrip(), self.reasoning_field: reasoning}
        return {"role": "assistant", "content": text}

    def logprobs(self, tokens: list[Token]) -> dict[str, Any] | None:
        return chat_logprobs_json(tokens) if self.want_logprobs else None

    def validate(self, prepared: PreparedChat) -> Validated:
        params = _chat_parameters(self.body, prepared.grammar)
        return self.ctx.engine.validate(prepared.prompt, params)

    def gen_request(self, prepared: PreparedChat, validated: Validated) -> Any:
        return self.ctx.engine.request(
            validated,
            self.request.url.path,
            self.request.headers,
            messages=self.body["messages"],
            tools=prepared.tools,
        )

    # -- non-stream ----------------------------------------------------------------------------

    def completion(self, gen: Generation, message: dict[str, Any], finish: str) -> dict[str, Any]:
        return {
            "object": "chat.completion",
            "id": self.response_id,
            **self.extra,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": self.logprobs(gen.tokens),
                    "finish_reason": finish,
                }
            ],
            "usage": usage_json(gen.input_length, gen.generated_tokens),
        }

    def tool_message(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        style = self.version.tool_style
        if style == "3.2":
            args: Any = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
            function = {"description": None, "name": name, "arguments": args}
            return {"role": "assistant", "tool_calls": [{"id": "0", "type": "function", "function": function}]}
        call_id: Any = "0" if self.version.at_least(3, 0) else 0
        if style == "2.1":
            function = {"description": None, "name": name, "arguments": arguments}
        else:
            function = {"description": None, "name": "tools", "parameters": {"_name": name, **arguments}}
        return {"role": "assistant", "tool_calls": [{"id": call_id, "type": "function", "function": function}]}

    # -- stream --------------------------------------------------------------------------------

    def chunk(
        self,
        delta: dict[str, Any] | None,
        *,
        finish: str | None = None,
        tokens: list[Token] | None = None,
        usage: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        choices: list[dict[str, Any]] = []
        if delta is not None:
            logprobs = self.logprobs(tokens) if tokens else None
            choices.append({"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish})
        chunk: dict[str, Any] = {
            "object": "chat.completion.chunk",
            "id": self.response_id,
            **self.extra,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": choices,
        }
        if self.version.chunk_usage:
            chunk["usage"] = usage
        return chunk

    def error_item(self, error: InferError) -> SSEItem:
        return _stream_error(self.ctx, self.request, error)


def _stream_error(ctx: Context, request: Request, error: InferError) -> SSEItem:
    fault = fault_of(request)
    flavour = fault.error_flavour if fault is not None else "auto"
    if flavour == "auto":
        return error_item(error, openai=ctx.config.version.openai_stream_errors)
    return error_item(error, openai=flavour == "openai")


async def chat_completions(
    ctx: Context, request: Request, body: Mapping[str, Any] | None = None, *, routed_model: str | None = None
) -> Response:
    """``POST /v1/chat/completions``; router mode passes the checked ``body`` and the Hub id it routed to."""
    if body is None:
        body = await ctx.read_json(request, CHAT_REQUEST)
    chat = _Chat(ctx, request, body, routed_model=routed_model)
    prepared = prepare_chat(ctx.engine.backend, body)  # template and tool-setup errors: plain 422
    ctx.state.count("request")
    if body.get("stream", False):
        return SSEResponse(
            _chat_stream(chat, prepared),
            state=ctx.state,
            fault=fault_of(request),
            headers=ctx.base_headers(len(prepared.prompt)),
            space=ctx.config.version.sse_space,
        )
    fault = fault_of(request)
    if fault is not None and fault.disconnect_after is not None:
        await ctx.state.close_connection(request.scope.get("client"))
        return NoResponse()
    started = time.monotonic()
    engine = ctx.engine

    async def run() -> tuple[Generation, dict[str, Any], str]:
        with engine.permits():
            validated = chat.validate(prepared)
            gen = await engine.collect(chat.gen_request(prepared, validated), validated, fault, started=started)
            if not prepared.using_tools:
                return gen, chat.plain_message(gen.text), chat.finish_reason(gen.finish_reason)
            name, arguments = parse_tool_call(gen.text)
            if name == "no_tool" and chat.version.tool_style == "3.2":
                plain = prepare_chat(engine.backend, body, with_tools=False)
                validated = chat.validate(plain)
                gen = await engine.collect(chat.gen_request(plain, validated), validated, None, started=started)
                return gen, chat.plain_message(gen.text), chat.finish_reason(gen.finish_reason)
            if name == "no_tool":
                content = str(arguments.get("content", ""))
                return gen, {"role": "assistant", "content": content}, chat.finish_reason(gen.finish_reason)
            return gen, chat.tool_message(name, arguments), chat.finish_reason(gen.finish_reason)

    outcome = await engine.until_disconnect(request, run())
    if outcome is None:
        return NoResponse()
    gen, message, finish = outcome
    headers = timing_headers([gen], compute_type=ctx.config.compute_type, characters=len(prepared.prompt))
    return json_response(chat.completion(gen, message, finish), headers=headers)


async def _chat_stream(chat: _Chat, prepared: PreparedChat) -> AsyncIterator[SSEItem]:
    ctx = chat.ctx
    engine = ctx.engine
    fault = fault_of(chat.request)
    options = chat.body.get("stream_options") or {}
    try:
        with engine.permits():
            validated = chat.validate(prepared)
            tokens: list[Token] = []
            finish: Finish | None = None
            events = engine.events(chat.gen_request(prepared, validated), fault, stream=True)
            if prepared.using_tools and chat.version.tool_style == "3.2":
                second_pass = False
                async for item in _tool_chunks(chat, events, tokens):
                    if item is None:
                        second_pass = True
                        break
                    yield item
                with contextlib.suppress(Exception):
                    await events.aclose()  # type: ignore[attr-defined]
                if second_pass:
                    prepared = prepare_chat(engine.backend, chat.body, with_tools=False)
                    validated = chat.validate(prepared)
                    tokens = []
                    events = engine.events(chat.gen_request(prepared, validated), None, stream=True)
                    async for item in _content_chunks(chat, events, tokens, tool_deltas=False):
                        yield item
            else:
                async for item in _content_chunks(chat, events, tokens, tool_deltas=prepared.using_tools):
                    yield item
            ctx.state.count("success")
            if options.get("include_usage") and chat.version.chunk_usage:
                usage = usage_json(validated.input_length, len(tokens))
                yield SSEItem.of(chat.chunk(None, usage=usage), "final")
            del finish
    except InferError as exc:
        yield chat.error_item(exc)
    if chat.version.chat_done:
        yield DONE


async def _content_chunks(
    chat: _Chat, events: AsyncIterator[Token | Finish], tokens: list[Token], *, tool_deltas: bool
) -> AsyncIterator[SSEItem]:
    """One chunk per token; the last token's chunk carries the finish reason."""
    previous: Token | None = None

    thinking = closed = False

    def delta(token: Token) -> dict[str, Any]:
        nonlocal thinking, closed
        text = "" if token.special and not tool_deltas else token.text
        if tool_deltas:  # TGI 2.1-3.1: a single tool-call object with raw grammar fragments
            call = {"index": 0, "id": "", "type": "function", "function": {"name": None, "arguments": text}}
            return {"role": "assistant", "tool_calls": call}
        field = chat.reasoning_field
        if field and text.strip() in ("<think>", "</think>"):
            # A reasoning parser works on the tag tokens (vLLM): they open and close the reasoning field.
            thinking = text.strip() == "<think>"
            closed = not thinking
            return {"role": "assistant", "content": ""}
        if field and thinking:
            return {"role": "assistant", "content": None, field: text}
        if closed:  # the blank line after </think> is not part of the answer
            text = text.lstrip()
            closed = not text
        return {"role": "assistant", "content": text}

    async for event in events:
        if isinstance(event, Token):
            if previous is not None:
                yield SSEItem.of(chat.chunk(delta(previous), tokens=[previous]))
            previous = event
            tokens.append(event)
            continue
        last = previous or Token(id=0, text="", logprob=0.0, special=True)
        finish = chat.finish_reason(event.reason)
        yield SSEItem.of(chat.chunk(delta(last), finish=finish, tokens=[last]), "final")


async def _tool_chunks(
    chat: _Chat, events: AsyncIterator[Token | Finish], tokens: list[Token]
) -> AsyncIterator[SSEItem | None]:
    """TGI 3.2+ tool streaming; yields ``None`` when the model chose ``no_tool`` (second pass)."""
    parser = ToolStreamParser()
    call_id = next_tool_call_id(chat.body["messages"])

    def tool_delta(name: str | None, arguments: str) -> dict[str, Any]:
        call = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        return {"role": "assistant", "tool_calls": [call]}

    async for event in events:
        if isinstance(event, Finish):
            return
        tokens.append(event)
        if event.special:
            continue  # the trailing EOS is swallowed: no finish_reason chunk in tool streams
        step = parser.feed(event.text)
        if step is None:
            continue
        kind, value = step
        if kind == "name":
            if value == "no_tool":
                yield None
                return
            yield SSEItem.of(chat.chunk(tool_delta(value, "{"), tokens=[event]))
            if parser.done:  # the whole call came in one token
                _, arguments = parse_tool_call(parser.text)
                rest = json.dumps(arguments, ensure_ascii=False)[1:]
                yield SSEItem.of(chat.chunk(tool_delta(None, rest), tokens=[event]))
        else:
            yield SSEItem.of(chat.chunk(tool_delta(None, value or ""), tokens=[event]))


async def chat_tokenize(ctx: Context, request: Request) -> Response:
    """``POST /chat_tokenize``: the rendered template and its tokens."""
    body = await ctx.read_json(request, CHAT_REQUEST)
    prepared = prepare_chat(ctx.engine.backend, body)
    pieces = ctx.engine.backend.tokenize(prepared.prompt)
    return json_response(
        {
            "tokenize_response": [
                {"id": tid, "text": text, "start": start, "stop": stop} for tid, text, start, stop in pieces
            ],
            "templated_text": prepared.prompt,
        }
    )


# -- /v1/completions -------------------------------------------------------------------------------


def _completion_parameters(body: Mapping[str, Any]) -> RequestParameters:
    do_sample, temperature = _sampling(body)
    return RequestParameters(
        do_sample=do_sample,
        temperature=temperature,
        top_p=body.get("top_p"),
        max_new_tokens=body.get("max_tokens"),
        seed=body.get("seed"),
        stop=list(body.get("stop") or []),
        repetition_penalty=body.get("repetition_penalty"),
        frequency_penalty=body.get("frequency_penalty"),
        details=True,
        adapter_id=body.get("model"),
    )


async def completions(ctx: Context, request: Request) -> Response:
    """``POST /v1/completions``."""
    body = await ctx.read_json(request, COMPLETION_REQUEST)
    if body.get("suffix") is not None:
        raise InferError(
            "Suffix is not supported and can be achieved by preprocessing the prompt.",
            "suffix not supported",
        )
    prompt = body["prompt"]
    prompts: list[str] = [prompt] if isinstance(prompt, str) else list(prompt)
    limit = ctx.config.max_client_batch_size
    if len(prompts) > limit:
        raise InferError(
            f"Number of prompts exceeds the maximum allowed batch size of {limit}",
            "batch size exceeded",
        )
    ctx.state.count("request")
    chat = _Chat(ctx, request, {**body, "model": None})
    params = _completion_parameters(body)
    fault = fault_of(request)
    characters = sum(len(p) for p in prompts)
    if body.get("stream", False):
        return SSEResponse(
            _completion_stream(chat, prompts, params),
            state=ctx.state,
            fault=fault,
            headers=ctx.base_headers(characters),
            space=ctx.config.version.sse_space,
        )
    if fault is not None and fault.disconnect_after is not None:
        await ctx.state.close_connection(request.scope.get("client"))
        return NoResponse()
    started = time.monotonic()
    engine = ctx.engine

    async def one(text: str) -> Generation:
        with engine.permits():
            validated = engine.validate(text, params)
            gen_request = engine.request(validated, request.url.path, request.headers)
            return await engine.collect(gen_request, validated, fault, started=started)

    gens = await engine.until_disconnect(request, asyncio.gather(*(one(p) for p in prompts)))
    if gens is None:
        return NoResponse()
    response = {
        "object": "text_completion",
        "id": "",
        "created": chat.created,
        "model": chat.model,
        "system_fingerprint": chat.fingerprint,
        "choices": [
            {"index": i, "text": g.text, "logprobs": None, "finish_reason": chat.finish_reason(g.finish_reason)}
            for i, g in enumerate(gens)
        ],
        "usage": usage_json(sum(g.input_length for g in gens), sum(g.generated_tokens for g in gens)),
    }
    headers = timing_headers(list(gens), compute_type=ctx.config.compute_type, characters=characters)
    return json_response(response, headers=headers)


async def _completion_stream(chat: _Chat, prompts: list[str], params: RequestParameters) -> AsyncIterator[SSEItem]:
    queue: asyncio.Queue[SSEItem | None] = asyncio.Queue()

    async def run(index: int, text: str) -> None:
        try:
            async for item in _one_completion_stream(chat, index, text, params):
                await queue.put(item)
        except InferError as exc:
            await queue.put(_stream_error(chat.ctx, chat.request, exc))
        finally:
            await queue.put(None)

    tasks = [asyncio.ensure_future(run(i, p)) for i, p in enumerate(prompts)]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
                continue
            yield item
            if item.kind == "error":
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    yield DONE


async def _one_completion_stream(
    chat: _Chat, index: int, text: str, params: RequestParameters
) -> AsyncIterator[SSEItem]:
    engine = chat.ctx.engine
    with engine.permits():
        validated = engine.validate(text, params)
        gen_request = engine.request(validated, chat.request.url.path, chat.request.headers)
        previous: Token | None = None
        count = 0
        async for event in engine.events(gen_request, fault_of(chat.request), stream=True):
            if isinstance(event, Token):
                if previous is not None:
                    yield SSEItem.of(
                        {
                            "object": "text_completion",
                            "id": "",
                            "created": chat.created,
                            "choices": [{"index": index, "text": previous.text, "logprobs": None, "finish_reason": ""}],
                            "model": chat.model,
                            "system_fingerprint": chat.fingerprint,
                        }
                    )
                previous = event
                count += 1
                continue
            last_text = previous.text if previous is not None else ""
            yield SSEItem.of(
                {
                    "object": "text_completion",
                    "id": "",
                    "created": chat.created,
                    "model": chat.model,
                    "system_fingerprint": chat.fingerprint,
                    "choices": [{"index": index, "text": last_text, "logprobs": None, "finish_reason": event.reason}],
                    "usage": usage_json(validated.input_length, count),
                },
                "final",
            )
        chat.ctx.state.count("success")
