"""Token hygiene, end to end, with ``HF_TOKEN`` set in the environment.

The token never shows in ``repr``/``str``, logs (DEBUG, every logger), exception messages, serialized output,
tracing metadata or callback payloads; it is not sent to hosts that are not Hugging Face's unless the user
configured it for them; and it is not forwarded when a server redirects to another host.
"""

from __future__ import annotations

import json
import logging
import pickle
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _redirects import RecordingRedirects
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from urllib3.util import parse_url

from langchain_hf_chat import (
    ChatHuggingFace,
    HuggingFaceEndpoint,
    HuggingFaceHub,
    HuggingFaceTextGenInference,
    errors,
)
from langchain_hf_chat._transport import HF_HOST_SUFFIXES, Transport, is_hf_host
from langchain_hf_chat.testing import Fault, TGIServer

ENV_TOKEN = "hf_envSECRETenvSECRETenvSECRET"
EXPLICIT_TOKEN = "hf_explicitSECRETexplicitSECRET"
HEADER_TOKEN = "hf_headerSECRETheaderSECRET"
SECRETS = (ENV_TOKEN, EXPLICIT_TOKEN, HEADER_TOKEN)
MODEL_ID = "HuggingFaceH4/zephyr-7b-beta"
ZEPHYR_LIKE = "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}</s>\n{% endfor %}<|assistant|>\n"


@pytest.fixture
def env_token(server: TGIServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    monkeypatch.setenv("HUGGINGFACEHUB_API_TOKEN", ENV_TOKEN)
    return ENV_TOKEN


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def authorizations(server: TGIServer) -> list[str | None]:
    return [request.headers.get("authorization") for request in server.requests]


def models_for(url: str, **llm_options: Any) -> dict[str, Any]:
    """Every way to reach a server at ``url``: the LLM classes and the chat model in both modes."""
    tgi = HuggingFaceTextGenInference(inference_server_url=url, max_retries=0, **llm_options)
    endpoint = HuggingFaceEndpoint(endpoint_url=url, max_retries=0, **llm_options)
    return {
        "tgi": tgi,
        "endpoint": endpoint,
        "chat": ChatHuggingFace(llm=tgi),  # model id looked up from /info
        "chat-text-remote-template": ChatHuggingFace(llm=endpoint, mode="text"),  # /chat_tokenize
        "chat-text": ChatHuggingFace(
            llm=HuggingFaceTextGenInference(inference_server_url=url, max_retries=0, **llm_options),
            chat_template=ZEPHYR_LIKE,
            bos_token="<s>",
            eos_token="</s>",
        ),
    }


STREAM_ROUTES = {
    "tgi": "/generate_stream",
    "endpoint": "/",
    "chat": "/v1/chat/completions",
    "chat-text-remote-template": "/",
    "chat-text": "/generate_stream",
}


async def exercise(model: Any) -> None:
    """invoke, stream, ainvoke, astream, batch."""
    model.invoke("Hi")
    list(model.stream("Hi"))
    await model.ainvoke("Hi")
    [chunk async for chunk in model.astream("Hi")]
    model.batch(["a", "b"])


# -- where the token goes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["tgi", "endpoint", "chat", "chat-text-remote-template", "chat-text"], ids=lambda name: name
)
async def test_env_token_never_reaches_a_self_hosted_server_on_any_route(
    server: TGIServer, env_token: str, name: str
) -> None:
    await exercise(models_for(server.url)[name])
    paths = {request.path for request in server.requests}
    assert len(paths) >= 1
    assert authorizations(server) == [None] * len(server.requests)


async def test_env_token_is_not_sent_to_a_router_url_that_is_not_hugging_face(
    server: TGIServer, env_token: str
) -> None:
    chat = ChatHuggingFace(llm=HuggingFaceHub(repo_id=MODEL_ID, router_url=server.url, max_retries=0))
    await exercise(chat)
    assert server.requests
    assert authorizations(server) == [None] * len(server.requests)


async def test_explicit_token_is_sent_to_the_server_it_was_given_for(server: TGIServer, env_token: str) -> None:
    for model in models_for(server.url, huggingfacehub_api_token=EXPLICIT_TOKEN).values():
        await exercise(model)
    assert set(authorizations(server)) == {f"Bearer {EXPLICIT_TOKEN}"}


async def test_token_policy_always_sends_the_env_token_anywhere(server: TGIServer, env_token: str) -> None:
    await exercise(models_for(server.url, token_policy="always")["chat"])
    assert set(authorizations(server)) == {f"Bearer {ENV_TOKEN}"}


async def test_token_policy_never_sends_no_token_even_an_explicit_one(server: TGIServer, env_token: str) -> None:
    for model in models_for(server.url, huggingfacehub_api_token=EXPLICIT_TOKEN, token_policy="never").values():
        await exercise(model)
    assert authorizations(server) == [None] * len(server.requests)


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://router.huggingface.co/v1/chat/completions", True),
        ("https://huggingface.co/api/models", True),
        ("https://xyz.us-east-1.aws.endpoints.huggingface.cloud", True),
        ("https://someone-space.hf.space/generate", True),
        ("http://127.0.0.1:8080/generate", False),
        ("http://localhost:8080", False),
        ("https://huggingface.co.evil.example/v1", False),
        ("https://evilhuggingface.co/v1", False),
        ("https://evil.example/?next=https://huggingface.co", False),
        ("https://evil.example/#.huggingface.co", False),
        ("https://huggingface.co@evil.example/", False),
        ("https://huggingface.co:443@evil.example/", False),
        ("https://evil.example/huggingface.co", False),
        ("https://endpoints.huggingface.cloud.evil.example", False),
    ],
)
def test_env_token_is_attached_only_to_hugging_face_hosts(url: str, sent: bool) -> None:
    headers = Transport(token=ENV_TOKEN).request_headers(url)
    assert ("authorization" in headers) is sent


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example\\@huggingface.co/",
        "http://evil.example%2f@huggingface.co/",
        "http://evil.example;@huggingface.co/",
        "http://[::1]@huggingface.co/",
        "http://evil.example#@huggingface.co",
        "http://evil.example?@huggingface.co",
        "http://evil.example/\\@huggingface.co",
        "http://evil.example\\.huggingface.co/",
        "http://evil.example\u3002huggingface.co/",
        "http://HUGGINGFACE.CO./x",
        "http://huggingface.co%2eevil.example/",
        "https://huggingface.co:443@evil.example/",
        "https://huggingface.co@evil.example/",
    ],
)
def test_the_host_that_gets_the_token_is_the_host_both_http_layers_connect_to(url: str) -> None:
    # URL-parser confusion: whenever we judge a URL to be Hugging Face's, httpx (async) and urllib3 (sync) must
    # both connect to an HF host. (They disagree on a backslash in the authority: such URLs are not HF hosts.)
    if not is_hf_host(url):
        return
    for host in (httpx.URL(url).host, parse_url(url).host or ""):
        host = host.lower().rstrip(".")
        assert any(host == suffix or host.endswith("." + suffix) for suffix in HF_HOST_SUFFIXES)


def test_a_backslash_in_the_authority_is_not_a_hugging_face_host() -> None:
    # The standard library reads huggingface.co here; urllib3 connects to evil.example.
    assert not is_hf_host("http://evil.example\\@huggingface.co/")
    assert "authorization" not in Transport(token=ENV_TOKEN).request_headers("http://evil.example\\@huggingface.co/")


# -- redirects ------------------------------------------------------------------------------------------------


@pytest.fixture
def redirects() -> Iterator[RecordingRedirects]:
    with RecordingRedirects() as server:
        yield server


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
@pytest.mark.parametrize("kind", ["tgi", "chat"])
async def test_token_is_not_forwarded_across_a_redirect_to_another_host(
    server: TGIServer, redirects: RecordingRedirects, env_token: str, kind: str, how: str
) -> None:
    redirects.target = server.url  # another origin (another port)
    llm = HuggingFaceTextGenInference(
        inference_server_url=redirects.url, huggingfacehub_api_token=EXPLICIT_TOKEN, max_retries=0
    )
    model: Any = ChatHuggingFace(llm=llm, model_id=MODEL_ID, mode="chat") if kind == "chat" else llm
    if how == "invoke":
        model.invoke("Hi")
    elif how == "stream":
        list(model.stream("Hi"))
    elif how == "ainvoke":
        await model.ainvoke("Hi")
    else:
        [chunk async for chunk in model.astream("Hi")]
    assert redirects.seen and all(auth == f"Bearer {EXPLICIT_TOKEN}" for _, auth in redirects.seen)
    assert server.requests
    assert authorizations(server) == [None] * len(server.requests)


def test_a_same_origin_redirect_keeps_the_token(redirects: RecordingRedirects) -> None:
    # The control for the test above: the recording server does see a forwarded header when one is sent.
    llm = HuggingFaceEndpoint(endpoint_url=redirects.url + "/start", huggingfacehub_api_token=EXPLICIT_TOKEN)
    assert llm.invoke("Hi") == "same-origin"
    assert [path for path, _ in redirects.seen] == ["/start", "/final/start"]
    assert {auth for _, auth in redirects.seen} == {f"Bearer {EXPLICIT_TOKEN}"}


# -- where the token must never show --------------------------------------------------------------------------


class _Recorder(BaseCallbackHandler):
    """Keeps every callback payload (serialized model, invocation params, metadata, errors) as text."""

    def __init__(self) -> None:
        self.payloads: list[str] = []

    def _keep(self, *args: Any, **kwargs: Any) -> None:
        self.payloads.append(repr(args) + repr(kwargs))

    on_llm_start = on_chat_model_start = on_llm_new_token = on_llm_end = _keep
    on_chain_start = on_chain_end = _keep

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.payloads.append(repr(error) + str(error) + repr(kwargs))


class _AsyncRecorder(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.payloads: list[str] = []

    async def _keep(self, *args: Any, **kwargs: Any) -> None:
        self.payloads.append(repr(args) + repr(kwargs))

    on_llm_start = on_chat_model_start = on_llm_new_token = on_llm_end = on_llm_error = _keep


async def test_no_token_in_logs_errors_callbacks_tracing_or_serialized_output(
    server: TGIServer, env_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    texts: list[str] = []
    recorder, arecorder = _Recorder(), _AsyncRecorder()
    config: Any = {"callbacks": [recorder, arecorder]}
    variants = [
        {},  # env token only
        {"huggingfacehub_api_token": EXPLICIT_TOKEN},
        {"server_kwargs": {"headers": {"Authorization": f"Bearer {HEADER_TOKEN}"}}},
    ]
    with caplog.at_level(logging.DEBUG):
        for options in variants:
            for name, model in models_for(server.url, **options).items():
                model.invoke("Hi", config=config)
                texts.append(str(list(model.stream("Hi", config=config))))
                await model.ainvoke("Hi", config=config)
                texts.append(str([c async for c in model.astream("Hi", config=config)]))
                for fault in (Fault.status(401), Fault.disconnect(after=1), Fault.validation()):
                    server.inject(fault, route=STREAM_ROUTES[name])
                    with pytest.raises(errors.HuggingFaceError) as info:
                        list(model.stream("Hi", config=config))
                    texts += [str(info.value), repr(info.value), repr(info.value.__dict__), repr(info.value.args)]
                    texts.append(repr(pickle.loads(pickle.dumps(info.value)).__dict__))
                texts += [repr(model), str(model), dumps(model), json.dumps(dumpd(model))]
                texts += [dumps(model, pretty=True), str(model.model_dump()), str(model.model_dump(mode="json"))]
                texts += [str(model._get_ls_params()), str(model._identifying_params)]
                if hasattr(model, "_get_invocation_params"):
                    texts.append(str(model._get_invocation_params()))
                if hasattr(model, "transport"):
                    texts += [repr(model.transport), str(model.transport.retry)]
    texts += recorder.payloads + arecorder.payloads
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    assert any("HTTP Request" in record.getMessage() for record in caplog.records)  # DEBUG/INFO logs were on
    assert recorder.payloads and arecorder.payloads
    assert_no_secret("\n".join(texts))


def test_errors_never_show_credentials_put_in_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://user:{EXPLICIT_TOKEN}@127.0.0.1:{port}/v1?api_key={HEADER_TOKEN}"
    with pytest.raises(errors.ConnectionError) as info:
        HuggingFaceEndpoint(endpoint_url=url, max_retries=0).invoke("Hi")
    assert_no_secret(str(info.value) + repr(info.value) + str(info.value.url))


def test_secret_fields_are_secret_references_in_serialized_output(env_token: str) -> None:
    llm = HuggingFaceTextGenInference(
        inference_server_url="http://127.0.0.1:1",
        huggingfacehub_api_token=EXPLICIT_TOKEN,
        server_kwargs={"headers": {"Authorization": f"Bearer {HEADER_TOKEN}", "X-Api-Key": HEADER_TOKEN}},
    )
    data = dumpd(ChatHuggingFace(llm=llm))
    llm_kwargs = data["kwargs"]["llm"]["kwargs"]
    assert llm_kwargs["huggingfacehub_api_token"] == {"lc": 1, "type": "secret", "id": ["HF_TOKEN"]}
    assert_no_secret(json.dumps(data))
