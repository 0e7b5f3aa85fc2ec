"""Every contender, built the same way: ``build(name, url)`` returns a :class:`Contender`.

This module runs in two virtual environments (the project's, and ``benchmarks/.venv-hf`` for
``langchain-huggingface``), so each factory imports what it needs only when it is called.

A contender exposes up to four operations, all with the same short prompt and ``max_new_tokens``:

* ``invoke()``: one short, non-streaming call;
* ``stream()``: an iterator over the chunks of the 1,000-token reply (the request is sent lazily, on the
  first ``next``, so the time to first chunk includes it);
* ``ainvoke()``: an awaitable short call, for the async throughput row.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from _server import LONG_MARKER, LONG_TOKENS

SHORT_PROMPT = "Hi"
SHORT_TOKENS = 64
LONG_MAX_TOKENS = LONG_TOKENS + 100
MODEL_ID = "bench/scripted"
#: Zephyr's template (tests/fixtures/templates/zephyr-7b-beta.jinja), used by text mode.
ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)


@dataclass
class Contender:
    invoke: Callable[[], Any] | None = None
    stream: Callable[[], Iterator[Any]] | None = None
    ainvoke: Callable[[], Awaitable[Any]] | None = None
    #: Called once per event loop before ``ainvoke`` (clients bound to a loop are rebuilt here).
    async_setup: Callable[[], None] | None = None


def _lazy(make: Callable[[], Iterator[Any]]) -> Callable[[], Iterator[Any]]:
    """Wrap an eager stream call so the request is sent on the first ``next`` (fair time to first chunk)."""

    def gen() -> Iterator[Any]:
        yield from make()

    return gen


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# -- raw clients --------------------------------------------------------------------------------------------


def _httpx(url: str) -> Contender:
    import httpx

    client = httpx.Client()
    body = json.dumps({"inputs": SHORT_PROMPT, "parameters": {"max_new_tokens": SHORT_TOKENS}}).encode()
    headers = {"content-type": "application/json"}
    return Contender(invoke=lambda: json.loads(client.post(url + "/generate", content=body, headers=headers).content))


def _urllib3(url: str) -> Contender:
    import urllib3

    pool = urllib3.PoolManager()
    body = json.dumps({"inputs": SHORT_PROMPT, "parameters": {"max_new_tokens": SHORT_TOKENS}}).encode()
    headers = {"content-type": "application/json"}
    return Contender(
        invoke=lambda: json.loads(pool.request("POST", url + "/generate", body=body, headers=headers).data)
    )


def _raw_tg(url: str) -> Contender:
    from huggingface_hub import AsyncInferenceClient, InferenceClient

    client = InferenceClient(base_url=url)
    holder: dict[str, Any] = {}

    def async_setup() -> None:
        holder["a"] = AsyncInferenceClient(base_url=url)

    return Contender(
        invoke=lambda: client.text_generation(SHORT_PROMPT, max_new_tokens=SHORT_TOKENS),
        stream=_lazy(lambda: client.text_generation(LONG_MARKER, max_new_tokens=LONG_MAX_TOKENS, stream=True)),
        ainvoke=lambda: holder["a"].text_generation(SHORT_PROMPT, max_new_tokens=SHORT_TOKENS),
        async_setup=async_setup,
    )


def _raw_cc(url: str) -> Contender:
    from huggingface_hub import AsyncInferenceClient, InferenceClient

    client = InferenceClient(base_url=url)
    holder: dict[str, Any] = {}

    def async_setup() -> None:
        holder["a"] = AsyncInferenceClient(base_url=url)

    short, long = _messages(SHORT_PROMPT), _messages(LONG_MARKER)
    return Contender(
        invoke=lambda: client.chat_completion(short, max_tokens=SHORT_TOKENS),
        stream=_lazy(lambda: client.chat_completion(long, max_tokens=LONG_MAX_TOKENS, stream=True)),
        ainvoke=lambda: holder["a"].chat_completion(short, max_tokens=SHORT_TOKENS),
        async_setup=async_setup,
    )


# -- this package -------------------------------------------------------------------------------------------


def _from_model(model: Any, prompt_long: Any = LONG_MARKER) -> Contender:
    return Contender(
        invoke=lambda: model.invoke(SHORT_PROMPT),
        stream=lambda: model.stream(prompt_long),
        ainvoke=lambda: model.ainvoke(SHORT_PROMPT),
    )


def _ours_tgi(url: str) -> Contender:
    from langchain_hf_chat import HuggingFaceTextGenInference

    return _from_model(HuggingFaceTextGenInference(inference_server_url=url, max_new_tokens=LONG_MAX_TOKENS))


def _ours_endpoint(url: str) -> Contender:
    from langchain_hf_chat import HuggingFaceEndpoint

    return _from_model(HuggingFaceEndpoint(endpoint_url=url, max_new_tokens=LONG_MAX_TOKENS))


def _ours_chat(url: str) -> Contender:
    from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference

    llm = HuggingFaceTextGenInference(inference_server_url=url, max_new_tokens=LONG_MAX_TOKENS)
    return _from_model(ChatHuggingFace(llm=llm, model_id=MODEL_ID, mode="chat"))


def _ours_text(url: str) -> Contender:
    from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference

    llm = HuggingFaceTextGenInference(inference_server_url=url, max_new_tokens=LONG_MAX_TOKENS)
    chat = ChatHuggingFace(llm=llm, model_id=MODEL_ID, mode="text", chat_template=ZEPHYR, eos_token="</s>")
    return _from_model(chat)


# -- competitors ----------------------------------------------------------------------------------------------


def _lchf_llm(url: str) -> Contender:
    from langchain_huggingface import HuggingFaceEndpoint

    # max_new_tokens is per call so the short and long rows send the same values as the raw client.
    llm = HuggingFaceEndpoint(endpoint_url=url, max_new_tokens=LONG_MAX_TOKENS, task="text-generation")
    return _from_model(llm)


def _lchf_chat(url: str) -> Contender:
    from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint

    llm = HuggingFaceEndpoint(endpoint_url=url, max_new_tokens=LONG_MAX_TOKENS, task="text-generation")
    return _from_model(ChatHuggingFace(llm=llm, model_id=MODEL_ID, max_tokens=LONG_MAX_TOKENS))


def _openai_chat(url: str) -> Contender:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=url + "/v1", api_key="x", model=MODEL_ID, max_tokens=LONG_MAX_TOKENS, max_retries=0)
    return _from_model(chat)


FACTORIES: dict[str, Callable[[str], Contender]] = {
    "httpx": _httpx,
    "raw_tg": _raw_tg,
    "raw_cc": _raw_cc,
    "ours_tgi": _ours_tgi,
    "ours_endpoint": _ours_endpoint,
    "ours_chat": _ours_chat,
    "ours_text": _ours_text,
    "lchf_llm": _lchf_llm,
    "lchf_chat": _lchf_chat,
    "lchf_raw_tg": _raw_tg,
    "lchf_raw_cc": _raw_cc,
    "openai_chat": _openai_chat,
    "urllib3": _urllib3,
}


def build(name: str, url: str) -> Contender:
    return FACTORIES[name](url)
