"""A scripted backend: tests decide what the "model" answers.

Replies are queued (:meth:`ScriptedBackend.queue_reply`, :meth:`~ScriptedBackend.queue_tool_call`,
:meth:`~ScriptedBackend.queue_json`) and consumed one per generation, in order. When the queue is empty a
``responder`` callback is asked, then a default reply is used. Token ids, log-probabilities and the tokenizer
are deterministic fakes, so ``input_length``, usage and token-limit errors are stable across runs.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import random
import re
import threading
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_hf_chat.testing.backends.base import (
    Backend,
    BackendEvent,
    Finish,
    FinishReason,
    GenerationRequest,
    TemplateNotFoundError,
    TemplateRenderError,
    Token,
)

__all__ = ["EOS_TOKEN", "Reply", "ScriptedBackend", "fake_tokenize"]

BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
EOS_TOKEN_ID = 2
_VOCAB_OFFSET = 3
_VOCAB_SIZE = 32000
_PIECE = re.compile(r"\s*\S+|\s+")
# Alternatives offered in ``top_tokens`` after the chosen token.
_ALTERNATIVES = (" the", " a", " and", " of", " to", ",", ".")


def _token_id(text: str) -> int:
    return _VOCAB_OFFSET + zlib.crc32(text.encode("utf-8")) % _VOCAB_SIZE


def _logprob(text: str) -> float:
    # A stable, plausible-looking log-probability in [-2.0, -0.01].
    return -round(0.01 + (zlib.crc32(text.encode("utf-8"), 7) % 200) / 100, 2)


def split_words(text: str) -> list[str]:
    """Split ``text`` into pieces: each word with its leading whitespace; trailing whitespace alone.

    Example:
        >>> split_words("Hello world!  ")
        ['Hello', ' world!', '  ']
    """
    return _PIECE.findall(text)


def fake_tokenize(text: str) -> list[tuple[int, str, int, int]]:
    """The scripted backend's tokenizer: ``(id, text, start_byte, stop_byte)`` per word piece.

    Example:
        >>> [piece for _, piece, _, _ in fake_tokenize("Hi there")]
        ['Hi', ' there']
    """
    tokens: list[tuple[int, str, int, int]] = []
    offset = 0
    for piece in split_words(text):
        size = len(piece.encode("utf-8"))
        tokens.append((_token_id(piece), piece, offset, offset + size))
        offset += size
    return tokens


def make_token(text: str, *, special: bool = False, top_n: int = 0) -> Token:
    """A :class:`Token` with a fake id and log-probability (``top_n`` alternatives when asked)."""
    token_id = EOS_TOKEN_ID if special and text == EOS_TOKEN else _token_id(text)
    logprob = _logprob(text)
    top: tuple[Token, ...] = ()
    if top_n > 0:
        alternatives = [alt for alt in _ALTERNATIVES if alt != text][: top_n - 1]
        top = (
            Token(token_id, text, logprob, special),
            *(Token(_token_id(alt), alt, round(logprob - 0.5 * (i + 1), 2)) for i, alt in enumerate(alternatives)),
        )
    return Token(id=token_id, text=text, logprob=logprob, special=special, top_tokens=top)


@dataclass(frozen=True)
class Reply:
    """One scripted generation.

    Attributes:
        tokens: the token texts, in order (an EOS token is appended unless ``finish_reason`` says otherwise).
        delay: seconds to wait before each token.
        finish_reason: ``None`` or ``"eos_token"`` end with the special ``</s>`` token; ``"length"`` and
            ``"stop_sequence"`` end without it, with that reason. ``max_new_tokens`` and ``stop`` from the
            request can still end the reply earlier, as on a real server.

    Example:
        >>> Reply.from_text("Hi there").tokens
        ('Hi', ' there')
    """

    tokens: tuple[str, ...]
    delay: float = 0.0
    finish_reason: FinishReason | None = None

    @classmethod
    def from_text(cls, text: str, *, delay: float = 0.0, finish_reason: FinishReason | None = None) -> Reply:
        """Split ``text`` into word tokens (each word with its leading space)."""
        return cls(tuple(split_words(text)), delay, finish_reason)

    @property
    def text(self) -> str:
        """The reply's text (without the EOS token)."""
        return "".join(self.tokens)


Responder = Callable[[GenerationRequest], "str | Reply | None"]


def _raise_exception(message: str) -> None:
    raise TemplateRenderError(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return _dt.datetime.now().strftime(fmt)


def _template_line(exc: BaseException) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _minimal_instance(schema: Any) -> Any:
    """The smallest value that satisfies a (simple) JSON schema: used when nothing was scripted."""
    if not isinstance(schema, Mapping):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _minimal_instance(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    defaults: dict[str, Any] = {
        "string": "",
        "integer": 0,
        "number": 0,
        "boolean": False,
        "array": [],
        "null": None,
    }
    if kind in defaults:
        return defaults[kind]
    properties = schema.get("properties") or {}
    required = schema.get("required") or []
    return {name: _minimal_instance(properties.get(name, {})) for name in required}


def _tool_functions(grammar: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``$functions`` map of a TGI tool grammar, or ``None`` for any other grammar."""
    if not grammar:
        return None
    value = grammar.get("value")
    if isinstance(value, Mapping) and isinstance(value.get("$functions"), Mapping):
        return dict(value["$functions"])
    return None


def _tool_call_text(name: str, arguments: Mapping[str, Any]) -> str:
    # The shape TGI's tool grammar forces: {"function": {"_name": ..., <arguments>}}.
    return json.dumps({"function": {"_name": name, **arguments}}, ensure_ascii=False)


class ScriptedBackend(Backend):
    r"""A backend whose answers are scripted by the test.

    Args:
        model_id: the served model id (``/info``, chat ``model``).
        default_reply: the answer when nothing is queued and the responder returns ``None``.
        chat_template: a Jinja chat template (rendered in a sandbox with ``raise_exception``, ``tojson``,
            ``strftime_now``, ``bos_token``, ``eos_token``); ``None`` for a simple built-in template
            (``<|role|>\ncontent</s>\n`` per message, then ``<|assistant|>\n``); ``False`` for "no
            template", so chat routes answer 422 ``Template error: template not found``.
        responder: called with the :class:`GenerationRequest` when the queue is empty; returns text, a
            :class:`Reply`, or ``None`` for the default.

    Example:
        >>> backend = ScriptedBackend()
        >>> backend.queue_reply("Paris is the capital of France.")
        >>> backend.queue_tool_call("get_weather", {"location": "Paris"})
        >>> backend.pending
        2
    """

    def __init__(
        self,
        model_id: str = "tgi-test/scripted",
        default_reply: str = "Hello! How can I help?",
        chat_template: str | bool | None = None,
        responder: Responder | None = None,
        *,
        max_input_tokens: int = 8191,
        max_total_tokens: int = 8192,
        model_pipeline_tag: str | None = "text-generation",
    ) -> None:
        if chat_template is True:
            raise ValueError("chat_template must be a template string, None or False")
        self.model_id = model_id
        self.default_reply = default_reply
        self.chat_template = chat_template
        self.responder = responder
        self.max_input_tokens = max_input_tokens
        self.max_total_tokens = max_total_tokens
        self.model_pipeline_tag = model_pipeline_tag
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._compiled: Any = None

    # -- scripting -------------------------------------------------------------------------------

    def queue_reply(
        self,
        text: str | None = None,
        *,
        tokens: Sequence[str] | None = None,
        delay: float = 0.0,
        finish_reason: FinishReason | None = None,
        reasoning: str | None = None,
    ) -> None:
        """Queue the next answer, as ``text`` (split into word tokens) or as explicit ``tokens``.

        ``reasoning``: a reasoning model's thinking, emitted first as ``<think>``, its words, ``</think>`` and a
        blank line (inline, as TGI streams it; ``TGIServer(reasoning_field=...)`` moves it to a field).

        Example:
            >>> backend = ScriptedBackend()
            >>> backend.queue_reply(tokens=["Hel", "lo"], delay=0.01)
        """
        if (text is None) == (tokens is None):
            raise ValueError("pass exactly one of text or tokens")
        if tokens is not None:
            reply = Reply(tuple(tokens), delay, finish_reason)
        else:
            reply = Reply.from_text(text or "", delay=delay, finish_reason=finish_reason)
        if reasoning is not None:
            thinking = ("<think>", *split_words(reasoning), "</think>", "\n\n")
            reply = Reply((*thinking, *reply.tokens), reply.delay, reply.finish_reason)
        self.queue(reply)

    def queue_tool_call(self, name: str, arguments: Mapping[str, Any] | None = None, *, delay: float = 0.0) -> None:
        """Queue a tool call, emitted as the text TGI's tool grammar forces.

        The chat route parses it into ``tool_calls`` exactly as it would parse a real model's output.

        Example:
            >>> backend = ScriptedBackend()
            >>> backend.queue_tool_call("get_weather", {"location": "Paris"})
        """
        self.queue(Reply.from_text(_tool_call_text(name, arguments or {}), delay=delay))

    def queue_json(self, value: Any, *, delay: float = 0.0) -> None:
        """Queue a structured-output answer (``response_format`` / ``grammar``): ``value`` as JSON text."""
        self.queue(Reply.from_text(json.dumps(value, ensure_ascii=False), delay=delay))

    def queue(self, reply: Reply) -> None:
        """Queue a prepared :class:`Reply`."""
        with self._lock:
            self._queue.append(reply)

    def clear(self) -> None:
        """Drop every queued reply."""
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        """How many queued replies are left."""
        with self._lock:
            return len(self._queue)

    # -- Backend ---------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[tuple[int, str, int, int]]:
        """Word-piece fake tokenizer (see :func:`fake_tokenize`)."""
        return fake_tokenize(text)

    def template_uses_tools(self) -> bool:
        """True when a custom template mentions ``tools``."""
        return isinstance(self.chat_template, str) and "tools" in self.chat_template

    def render_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """Render the configured chat template (or the built-in one)."""
        if self.chat_template is False:
            raise TemplateNotFoundError("template not found")
        if not isinstance(self.chat_template, str):
            parts = [f"<|{m.get('role')}|>\n{m.get('content') or ''}{EOS_TOKEN}\n" for m in messages]
            if add_generation_prompt:
                parts.append("<|assistant|>\n")
            return "".join(parts)
        return self._render_jinja(self.chat_template, messages, tools, add_generation_prompt)

    def _render_jinja(
        self,
        source: str,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None,
        add_generation_prompt: bool,
    ) -> str:
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        try:
            if self._compiled is None or self._compiled[0] != source:
                env = ImmutableSandboxedEnvironment(
                    trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
                )
                env.filters["tojson"] = _tojson
                env.globals["raise_exception"] = _raise_exception
                env.globals["strftime_now"] = _strftime_now
                self._compiled = (source, env.from_string(source))
            template = self._compiled[1]
            return str(
                template.render(
                    messages=list(messages),
                    tools=list(tools) if tools is not None else None,
                    bos_token=BOS_TOKEN,
                    eos_token=EOS_TOKEN,
                    add_generation_prompt=add_generation_prompt,
                )
            )
        except TemplateRenderError as exc:
            line = _template_line(exc)
            where = f" (in <string>:{line})" if line is not None else ""
            raise TemplateRenderError(f"syntax error: {exc}{where}") from exc
        except jinja2.TemplateError as exc:
            raise TemplateRenderError(f"{type(exc).__name__}: {exc}") from exc

    def _next_reply(self, request: GenerationRequest) -> Reply:
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        if reply is None and self.responder is not None:
            answer = self.responder(request)
            reply = Reply.from_text(answer) if isinstance(answer, str) else answer
        functions = _tool_functions(request.parameters.grammar)
        if reply is None:
            return self._default_reply(request, functions)
        if functions is not None and "no_tool" in functions and not reply.text.lstrip().startswith("{"):
            # A plain answer to a tool request: the "model" picks no_tool, and the server's second pass
            # (without tools) gets this same reply back.
            with self._lock:
                self._queue.appendleft(reply)
            return Reply.from_text(_tool_call_text("no_tool", {"content": reply.text}))
        return reply

    def _default_reply(self, request: GenerationRequest, functions: dict[str, Any] | None) -> Reply:
        grammar = request.parameters.grammar
        if functions is not None:
            if "no_tool" in functions:
                return Reply.from_text(_tool_call_text("no_tool", {"content": self.default_reply}))
            name, schema = next(iter(functions.items()))
            arguments = _minimal_instance(schema)
            arguments.pop("_name", None)
            return Reply.from_text(_tool_call_text(name, arguments))
        if grammar and grammar.get("type") in ("json", "json_object", "json_schema"):
            schema = grammar.get("value")
            if isinstance(schema, str):
                schema = json.loads(schema)
            if grammar.get("type") == "json_schema" and isinstance(schema, Mapping):
                schema = schema.get("schema")
            return Reply.from_text(json.dumps(_minimal_instance(schema), ensure_ascii=False))
        return Reply.from_text(self.default_reply)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[BackendEvent]:
        """Replay the next reply token by token, honouring ``max_new_tokens`` and ``stop``."""
        reply = self._next_reply(request)
        params = request.parameters
        top_n = params.top_n_tokens or 0
        pieces: list[tuple[str, bool]] = [(text, False) for text in reply.tokens]
        natural_end = reply.finish_reason in (None, "eos_token")
        if natural_end:
            pieces.append((EOS_TOKEN, True))
        sampling = params.do_sample or any(
            v is not None for v in (params.temperature, params.top_k, params.top_p, params.typical_p)
        )
        seed = (params.seed if params.seed is not None else random.getrandbits(63)) if sampling else None
        output = ""
        reason: FinishReason = "eos_token" if natural_end else (reply.finish_reason or "eos_token")
        for count, (text, special) in enumerate(pieces, start=1):
            if reply.delay > 0:
                await asyncio.sleep(reply.delay)
            yield make_token(text, special=special, top_n=top_n)
            if not special:
                output += text
            # TGI's stopping criteria, in TGI's order: length, then EOS, then a stop sequence that the
            # output now ends with.
            if params.max_new_tokens is not None and count >= params.max_new_tokens:
                reason = "length"
                break
            if special:
                reason = "eos_token"
                break
            if any(stop and output.endswith(stop) for stop in params.stop):
                reason = "stop_sequence"
                break
        yield Finish(reason=reason, seed=seed)
