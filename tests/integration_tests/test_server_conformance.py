"""Real clients nobody here wrote work against the TGI test server, and its JSON matches TGI's OpenAPI schemas.

Clients: ``huggingface_hub.InferenceClient`` / ``AsyncInferenceClient`` and the ``openai`` SDK. Schemas:
``tests/fixtures/tgi-openapi.json`` (TGI 3.3's ``docs/openapi.json``, copied unchanged).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from huggingface_hub import AsyncInferenceClient, InferenceClient
from huggingface_hub.errors import (
    GenerationError,
    HfHubHTTPError,
    IncompleteGenerationError,
    OverloadedError,
    UnknownError,
    ValidationError,
)

from langchain_hf_chat.testing import Fault, ScriptedBackend, TGIServer

OPENAPI = json.loads((Path(__file__).parent.parent / "fixtures" / "tgi-openapi.json").read_text())
USER = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a place",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable`` → JSON Schema ``null`` alternatives."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if k not in ("nullable", "example", "discriminator")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


COMPONENTS = _to_json_schema(OPENAPI["components"])


def assert_matches(name: str, value: Any) -> None:
    """Validate ``value`` against ``#/components/schemas/<name>``."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": COMPONENTS}
    jsonschema.Draft202012Validator(schema).validate(value)


def sse_payloads(text: str) -> list[Any]:
    return [json.loads(b[6:]) for b in text.split("\n\n") if b.startswith("data: {")]


@pytest.fixture(scope="module")
def _module_server() -> Iterator[TGIServer]:
    with TGIServer(backend=ScriptedBackend(model_id="tgi-test/conformance")) as server:
        yield server


@pytest.fixture
def server(_module_server: TGIServer) -> Iterator[TGIServer]:
    _module_server.clear()
    yield _module_server
    _module_server.clear()


@pytest.fixture
def backend(server: TGIServer) -> ScriptedBackend:
    assert isinstance(server.backend, ScriptedBackend)
    return server.backend


@pytest.fixture
def hub(server: TGIServer) -> InferenceClient:
    return InferenceClient(model=server.url, token="hf_test_token")


@pytest.fixture
def oai(server: TGIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)


# -- huggingface_hub.InferenceClient ---------------------------------------------------------------


def test_hub_text_generation_with_details(hub: InferenceClient, backend: ScriptedBackend, server: TGIServer) -> None:
    backend.queue_reply(" Deep learning")
    output = hub.text_generation("What is", details=True, max_new_tokens=10, return_full_text=False)
    assert output.generated_text == " Deep learning"
    assert output.details is not None and output.details.finish_reason == "eos_token"
    assert [t.text for t in output.details.tokens] == [" Deep", " learning", "</s>"]
    assert server.last_request is not None and server.last_request.path == "/"


def test_hub_text_generation_echoes_the_prompt_like_tgi(hub: InferenceClient, backend: ScriptedBackend) -> None:
    backend.queue_reply(" world")
    assert hub.text_generation("Hello") == "Hello world"


def test_hub_text_generation_stream(hub: InferenceClient, backend: ScriptedBackend) -> None:
    backend.queue_reply("Deep learning")
    assert list(hub.text_generation("What is", stream=True)) == ["Deep", " learning", "</s>"]
    backend.queue_reply("Deep learning")
    events = list(hub.text_generation("What is", stream=True, details=True))
    assert events[-1].details is not None and events[-1].details.generated_tokens == 3


def test_hub_chat_completion(hub: InferenceClient, backend: ScriptedBackend) -> None:
    backend.queue_reply("Sunny.")
    output = hub.chat_completion(USER, max_tokens=20)
    assert output.choices[0].message.content == "Sunny."
    assert output.choices[0].finish_reason == "stop"
    assert output.model == "dummy"
    assert output.usage.completion_tokens == 2


def test_hub_chat_completion_stream_with_usage(hub: InferenceClient, backend: ScriptedBackend) -> None:
    backend.queue_reply("Sunny today.")
    chunks = list(hub.chat_completion(USER, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Sunny today."
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_hub_chat_completion_tools(hub: InferenceClient, backend: ScriptedBackend) -> None:
    backend.queue_tool_call("get_weather", {"location": "Paris"})
    output = hub.chat_completion(USER, tools=[WEATHER_TOOL], tool_choice="auto")
    call = output.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}


def test_hub_chat_completion_tools_stream(hub: InferenceClient, backend: ScriptedBackend) -> None:
    backend.queue_tool_call("get_weather", {"location": "Paris, France"})
    chunks = list(hub.chat_completion(USER, tools=[WEATHER_TOOL], stream=True))
    calls = [c.choices[0].delta.tool_calls[0] for c in chunks]
    assert calls[0].function.name == "get_weather"
    assert json.loads("".join(c.function.arguments for c in calls)) == {"location": "Paris, France"}


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.validation(), ValidationError),
        (Fault.generation_error(), GenerationError),
        (Fault.overloaded(), OverloadedError),
        (Fault.incomplete(), IncompleteGenerationError),
        (Fault.loading(estimated_time=2), HfHubHTTPError),
        (Fault.rate_limit(retry_after=1), HfHubHTTPError),
        (Fault.status(502), HfHubHTTPError),
    ],
)
def test_hub_text_generation_error_classes(
    hub: InferenceClient, server: TGIServer, fault: Fault, error: type[Exception]
) -> None:
    server.inject(fault)
    with pytest.raises(error):
        hub.text_generation("x")


def test_hub_in_stream_errors(hub: InferenceClient, server: TGIServer, backend: ScriptedBackend) -> None:
    backend.queue_reply("one two three")
    server.inject(Fault.error_event(after=2, error_type="generation"))
    with pytest.raises(GenerationError):
        list(hub.text_generation("x", stream=True))
    server.inject(Fault.error_event(after=1, error_type="generation"))
    with pytest.raises(UnknownError):
        list(hub.chat_completion(USER, stream=True))


def test_hub_chat_errors_are_http_errors(hub: InferenceClient, server: TGIServer) -> None:
    server.inject(Fault.validation())
    with pytest.raises(HfHubHTTPError) as raised:
        hub.chat_completion(USER)
    assert raised.value.response is not None and raised.value.response.status_code == 422


def test_hub_sees_an_abrupt_disconnect(hub: InferenceClient, server: TGIServer) -> None:
    server.inject(Fault.disconnect(after=1))
    with pytest.raises(Exception) as raised:
        list(hub.text_generation("x", stream=True))
    assert type(raised.value).__name__ == "RemoteProtocolError"


async def test_async_hub_client(server: TGIServer, backend: ScriptedBackend) -> None:
    client = AsyncInferenceClient(model=server.url, token="hf_test_token")
    backend.queue_reply(" there")
    assert await client.text_generation("Hi", return_full_text=False) == " there"
    backend.queue_reply("Sunny.")
    chunks = [c async for c in await client.chat_completion(USER, stream=True)]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Sunny."
    backend.queue_tool_call("get_weather", {"location": "Paris"})
    output = await client.chat_completion(USER, tools=[WEATHER_TOOL])
    assert output.choices[0].message.tool_calls[0].function.name == "get_weather"
    server.inject(Fault.overloaded())
    with pytest.raises(OverloadedError):
        await client.text_generation("x")


# -- openai SDK ----------------------------------------------------------------------------------


def test_openai_chat_completion(oai: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.queue_reply("Sunny.")
    completion = oai.chat.completions.create(model="tgi", messages=USER)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "Sunny."
    assert completion.model == "tgi-test/conformance"
    assert completion.usage is not None and completion.usage.completion_tokens == 2


def test_openai_chat_completion_stream(oai: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.queue_reply("Sunny today.")
    stream = oai.chat.completions.create(
        model="tgi",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Sunny today."
    assert chunks[-1].usage is not None


def test_openai_tool_calls(oai: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.queue_tool_call("get_weather", {"location": "Paris"})
    completion = oai.chat.completions.create(model="tgi", messages=USER, tools=[WEATHER_TOOL])  # type: ignore[arg-type, list-item]
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"location": "Paris"})  # type: ignore[union-attr]
    backend.queue_tool_call("get_weather", {"location": "Paris"})
    stream = oai.chat.completions.create(model="tgi", messages=USER, tools=[WEATHER_TOOL], stream=True)  # type: ignore[arg-type, list-item]
    arguments = "".join(c.choices[0].delta.tool_calls[0].function.arguments for c in stream)  # type: ignore[index, union-attr, misc]
    assert json.loads(arguments) == {"location": "Paris"}


def test_openai_status_errors(oai: openai.OpenAI, server: TGIServer) -> None:
    server.inject(Fault.rate_limit(retry_after=1))
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model="tgi", messages=USER)  # type: ignore[arg-type]


# -- OpenAPI schemas -------------------------------------------------------------------------------


def test_generate_responses_match_the_schema(server: TGIServer, backend: ScriptedBackend) -> None:
    backend.queue_reply("a b")
    backend.queue_reply("c")
    params = {"details": True, "top_n_tokens": 2, "best_of": 2, "do_sample": True}
    assert_matches(
        "GenerateResponse", httpx.post(server.url + "/generate", json={"inputs": "x", "parameters": params}).json()
    )
    compat = httpx.post(server.url, json={"inputs": "x"}).json()
    assert isinstance(compat, list)
    for item in compat:
        assert_matches("GenerateResponse", item)


def test_stream_events_match_the_schema(server: TGIServer) -> None:
    events = sse_payloads(
        httpx.post(server.url + "/generate_stream", json={"inputs": "x", "parameters": {"details": True}}).text
    )
    for event in events:
        assert_matches("StreamResponse", event)


def test_chat_responses_match_the_schema(server: TGIServer, backend: ScriptedBackend) -> None:
    url = server.url + "/v1/chat/completions"
    assert_matches(
        "ChatCompletion", httpx.post(url, json={"messages": USER, "logprobs": True, "top_logprobs": 2}).json()
    )
    backend.queue_tool_call("get_weather", {"location": "Paris"})
    assert_matches("ChatCompletion", httpx.post(url, json={"messages": USER, "tools": [WEATHER_TOOL]}).json())
    request = {"messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    for chunk in sse_payloads(httpx.post(url, json=request).text):
        assert_matches("ChatCompletionChunk", chunk)
    backend.queue_tool_call("get_weather", {"location": "Paris"})
    for chunk in sse_payloads(httpx.post(url, json={**request, "tools": [WEATHER_TOOL]}).text):
        assert_matches("ChatCompletionChunk", chunk)


def test_completions_match_the_schema(server: TGIServer) -> None:
    url = server.url + "/v1/completions"
    assert_matches("CompletionFinal", httpx.post(url, json={"prompt": "x"}).json())
    # ``Completion`` is a oneOf whose two branches both accept a final event: check each branch directly.
    for event in sse_payloads(httpx.post(url, json={"prompt": ["x", "y"], "stream": True}).text):
        assert_matches("CompletionFinal" if "usage" in event else "Chunk", event)


def test_other_routes_match_the_schema(server: TGIServer) -> None:
    assert_matches("Info", httpx.get(server.url + "/info").json())
    assert_matches("TokenizeResponse", httpx.post(server.url + "/tokenize", json={"inputs": "a b"}).json())
    assert_matches("ChatTokenizeResponse", httpx.post(server.url + "/chat_tokenize", json={"messages": USER}).json())
    for model in httpx.get(server.url + "/v1/models").json()["data"]:
        assert_matches("ModelInfo", model)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate", {"inputs": "x", "parameters": {"temperature": -1}}),
        ("/v1/chat/completions", {"messages": USER, "tools": [WEATHER_TOOL], "tool_choice": "nope"}),
    ],
)
def test_error_envelopes_match_the_schema(server: TGIServer, path: str, body: dict[str, Any]) -> None:
    response = httpx.post(server.url + path, json=body)
    assert response.status_code == 422
    assert_matches("ErrorResponse", response.json())
