"""The scripted backend on its own: tokenizer, replies, stopping, templates, responder; and the CLI."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from langchain_hf_chat.testing import (
    Finish,
    GenerationParameters,
    GenerationRequest,
    Reply,
    ScriptedBackend,
    TemplateNotFoundError,
    TemplateRenderError,
    TGIServer,
    Token,
)
from langchain_hf_chat.testing.__main__ import build_backend, build_parser
from langchain_hf_chat.testing.backends.scripted import fake_tokenize


def _run(backend: ScriptedBackend, **parameters: Any) -> tuple[list[Token], Finish]:
    request = GenerationRequest(inputs="x", parameters=GenerationParameters(**parameters), route="/generate")

    async def collect() -> list[Token | Finish]:
        return [event async for event in backend.generate(request)]

    events = asyncio.run(collect())
    tokens = [e for e in events if isinstance(e, Token)]
    finish = events[-1]
    assert isinstance(finish, Finish)
    return tokens, finish


def test_tokenizer_splits_words_with_leading_space_and_is_deterministic() -> None:
    tokens = fake_tokenize("Hello  wide world\n")
    assert [t[1] for t in tokens] == ["Hello", "  wide", " world", "\n"]
    assert tokens == fake_tokenize("Hello  wide world\n")
    assert tokens[-1][3] == len(b"Hello  wide world\n")


def test_text_reply_ends_with_eos() -> None:
    backend = ScriptedBackend()
    backend.queue_reply("Hi there")
    tokens, finish = _run(backend)
    assert [(t.text, t.special) for t in tokens] == [("Hi", False), (" there", False), ("</s>", True)]
    assert finish.reason == "eos_token"


def test_explicit_tokens_and_finish_reason() -> None:
    backend = ScriptedBackend()
    backend.queue_reply(tokens=["Hel", "lo"], finish_reason="length")
    tokens, finish = _run(backend)
    assert [t.text for t in tokens] == ["Hel", "lo"]
    assert finish.reason == "length"


def test_max_new_tokens_wins_over_eos() -> None:
    backend = ScriptedBackend()
    backend.queue_reply("a b")
    tokens, finish = _run(backend, max_new_tokens=3)
    assert len(tokens) == 3 and finish.reason == "length"


def test_stop_sequence_must_end_the_output() -> None:
    backend = ScriptedBackend()
    backend.queue_reply("one two three")
    assert _run(backend, stop=(" two",))[1].reason == "stop_sequence"
    backend.queue_reply("one two three")
    assert _run(backend, stop=("tw",))[1].reason == "eos_token"  # TGI matches only at the end of the output


def test_queue_is_consumed_in_order_then_responder_then_default() -> None:
    backend = ScriptedBackend(default_reply="default", responder=lambda r: "answered" if "?" in r.inputs else None)
    backend.queue(Reply.from_text("queued"))
    assert backend.pending == 1
    texts = []
    for inputs in ("a", "why?", "b"):
        request = GenerationRequest(inputs=inputs, parameters=GenerationParameters(), route="/generate")

        async def collect(req: GenerationRequest = request) -> str:
            return "".join(
                e.text for e in [e async for e in backend.generate(req)] if isinstance(e, Token) and not e.special
            )

        texts.append(asyncio.run(collect()))
    assert texts == ["queued", "answered", "default"]


def test_queue_tool_call_and_json_text() -> None:
    backend = ScriptedBackend()
    backend.queue_tool_call("f", {"a": 1})
    backend.queue_json({"b": [1, 2]})
    first = "".join(t.text for t in _run(backend)[0] if not t.special)
    second = "".join(t.text for t in _run(backend)[0] if not t.special)
    assert json.loads(first) == {"function": {"_name": "f", "a": 1}}
    assert json.loads(second) == {"b": [1, 2]}


def test_sampling_reports_a_seed() -> None:
    backend = ScriptedBackend()
    assert _run(backend, do_sample=True, seed=7)[1].seed == 7
    assert _run(backend)[1].seed is None


def test_builtin_template_and_no_template() -> None:
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert ScriptedBackend().render_chat(messages) == "<|system|>\nS</s>\n<|user|>\nU</s>\n<|assistant|>\n"
    with pytest.raises(TemplateNotFoundError):
        ScriptedBackend(chat_template=False).render_chat(messages)


def test_jinja_template_is_sandboxed() -> None:
    backend = ScriptedBackend(chat_template="{{ messages.__class__.__mro__ }}")
    with pytest.raises(TemplateRenderError):
        backend.render_chat([{"role": "user", "content": "x"}])


def test_jinja_template_has_tojson_and_tools() -> None:
    template = "{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}"
    backend = ScriptedBackend(chat_template=template)
    assert backend.template_uses_tools()
    rendered = backend.render_chat([{"role": "user", "content": "é"}], tools=[{"name": "t"}])
    assert rendered == '[{"name": "t"}]é'


def test_cli_builds_a_scripted_backend_with_queued_replies() -> None:
    args = build_parser().parse_args(["--port", "0", "--model-id", "m/x", "--reply", "one", "--reply", "two"])
    backend = build_backend(args)
    assert isinstance(backend, ScriptedBackend)
    assert (backend.model_id, backend.pending) == ("m/x", 2)
    with TGIServer(backend=backend, port=args.port) as server:
        assert httpx.post(server.url + "/generate", json={"inputs": "x"}).json() == {"generated_text": "one"}
