"""The happy paths of every route, in TGI 3.3's wire shapes (protocol README §2, §3)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from langchain_hf_chat.testing import ScriptedBackend, TGIServer

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a place",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["location"],
        },
    },
}
USER = [{"role": "user", "content": "What is the weather in Paris?"}]


# -- /generate -------------------------------------------------------------------------------------


def test_generate_returns_only_generated_text_without_details(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("Deep learning")
    response = client.post("/generate", json={"inputs": "What is"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b'{"generated_text":"Deep learning"}'


def test_generate_details_in_wire_order(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("Deep learning")
    body = client.post("/generate", json={"inputs": "What is", "parameters": {"details": True}}).json()
    assert list(body) == ["generated_text", "details"]
    assert list(body["details"]) == ["finish_reason", "generated_tokens", "seed", "prefill", "tokens"]
    assert body["details"]["finish_reason"] == "eos_token"
    assert [t["text"] for t in body["details"]["tokens"]] == ["Deep", " learning", "</s>"]
    assert body["details"]["tokens"][-1]["special"] is True
    assert list(body["details"]["tokens"][0]) == ["id", "text", "logprob", "special"]


def test_generate_headers_report_tokens_and_compute(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("one two")
    response = client.post("/generate", json={"inputs": "a b c"})
    assert response.headers["x-compute-type"] == "gpu+optimized"
    assert response.headers["x-compute-characters"] == "5"
    assert response.headers["x-prompt-tokens"] == "3"
    assert response.headers["x-generated-tokens"] == "3"
    for name in ("x-compute-time", "x-total-time", "x-validation-time", "x-queue-time", "x-inference-time"):
        assert name in response.headers


def test_generate_max_new_tokens_ends_with_length(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("one two three four")
    body = client.post("/generate", json={"inputs": "x", "parameters": {"max_new_tokens": 2, "details": True}}).json()
    assert body["generated_text"] == "one two"
    assert body["details"]["finish_reason"] == "length"


def test_generate_stop_sequence_is_kept_in_text(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("one two three")
    body = client.post("/generate", json={"inputs": "x", "parameters": {"stop": [" two"], "details": True}}).json()
    assert body["generated_text"] == "one two"
    assert body["details"]["finish_reason"] == "stop_sequence"


def test_generate_top_n_tokens_adds_top_tokens(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("one")
    body = client.post("/generate", json={"inputs": "x", "parameters": {"details": True, "top_n_tokens": 3}}).json()
    assert [len(alternatives) for alternatives in body["details"]["top_tokens"]] == [3, 3]


def test_generate_best_of_adds_best_of_sequences(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("first")
    backend.queue_reply("second")
    params = {"best_of": 2, "do_sample": True, "details": True}
    body = client.post("/generate", json={"inputs": "x", "parameters": params}).json()
    assert [s["generated_text"] for s in body["details"]["best_of_sequences"]] == ["second"]


def test_sampling_reports_the_seed(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("a")
    params = {"do_sample": True, "seed": 42, "details": True}
    assert client.post("/generate", json={"inputs": "x", "parameters": params}).json()["details"]["seed"] == 42


# -- /generate_stream ------------------------------------------------------------------------------


def test_generate_stream_frames_events_without_done(client: httpx.Client, backend: ScriptedBackend, sse: Any) -> None:
    backend.queue_reply("Deep learning")
    response = client.post("/generate_stream", json={"inputs": "What is", "parameters": {"details": True}})
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.text.startswith('data: {"index":1,"token":{')
    assert response.text.endswith("}\n\n")
    events = sse(response.text)
    assert [e["index"] for e in events] == [1, 2, 3]
    assert list(events[0]) == ["index", "token", "generated_text", "details"]
    assert events[0]["generated_text"] is None and events[0]["details"] is None
    assert events[-1]["generated_text"] == "Deep learning"
    assert events[-1]["token"] == {"id": 2, "text": "</s>", "logprob": events[-1]["token"]["logprob"], "special": True}
    assert events[-1]["details"] == {
        "finish_reason": "eos_token",
        "generated_tokens": 3,
        "seed": None,
        "input_length": 2,
    }


def test_generate_stream_details_null_when_not_requested(client: httpx.Client, sse: Any) -> None:
    events = sse(client.post("/generate_stream", json={"inputs": "x"}).text)
    assert events[-1]["details"] is None


# -- POST / ---------------------------------------------------------------------------------------


def test_compat_returns_a_list_with_prompt_prepended(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply(" world")
    response = client.post("/", json={"inputs": "Hello", "parameters": {}})
    assert response.json() == [{"generated_text": "Hello world"}]


def test_compat_return_full_text_false_is_honoured(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply(" world")
    response = client.post("/", json={"inputs": "Hello", "parameters": {"return_full_text": False}})
    assert response.json() == [{"generated_text": " world"}]


def test_compat_full_text_default_follows_pipeline_tag() -> None:
    backend = ScriptedBackend(model_pipeline_tag="text2text-generation")
    with TGIServer(backend=backend) as server:
        backend.queue_reply(" world")
        assert httpx.post(server.url, json={"inputs": "Hello"}).json() == [{"generated_text": " world"}]


def test_compat_stream_prepends_prompt_to_final_text_only(
    client: httpx.Client, backend: ScriptedBackend, sse: Any
) -> None:
    backend.queue_reply(" world")
    events = sse(client.post("/", json={"inputs": "Hello", "stream": True}).text)
    assert events[0]["token"]["text"] == " world"
    assert events[-1]["generated_text"] == "Hello world"
    assert "[DONE]" not in events


# -- /v1/chat/completions ------------------------------------------------------------------------


def test_chat_completion_shape(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("Sunny.")
    body = client.post("/v1/chat/completions", json={"model": "tgi", "messages": USER}).json()
    assert list(body) == ["object", "id", "created", "model", "system_fingerprint", "choices", "usage"]
    assert body["object"] == "chat.completion" and body["id"] == ""
    assert body["model"] == "tgi-test/scripted"
    assert body["system_fingerprint"] == "3.3.6-dev0-native"
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Sunny."}, "logprobs": None, "finish_reason": "stop"}
    ]
    assert body["usage"]["completion_tokens"] == 2
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 2


def test_chat_echoes_the_requested_model(client: httpx.Client) -> None:
    body = client.post("/v1/chat/completions", json={"model": "dummy", "messages": USER}).json()
    assert body["model"] == "dummy"


def test_chat_prompt_is_rendered_with_the_template(client: httpx.Client, tgi: TGIServer) -> None:
    client.post("/v1/chat/completions", json={"messages": USER})
    templated = client.post("/chat_tokenize", json={"messages": USER}).json()["templated_text"]
    assert templated == "<|user|>\nWhat is the weather in Paris?</s>\n<|assistant|>\n"


def test_chat_logprobs(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("Hi")
    body = client.post("/v1/chat/completions", json={"messages": USER, "logprobs": True, "top_logprobs": 2}).json()
    content = body["choices"][0]["logprobs"]["content"]
    assert [c["token"] for c in content] == ["Hi", "</s>"]
    assert len(content[0]["top_logprobs"]) == 2


def test_chat_stop_sequence_finish_reason_is_not_renamed(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("one two three")
    body = client.post("/v1/chat/completions", json={"messages": USER, "stop": [" two"]}).json()
    assert body["choices"][0]["message"]["content"] == "one two"
    assert body["choices"][0]["finish_reason"] == "stop_sequence"


def test_chat_stream_chunks_usage_and_done(client: httpx.Client, backend: ScriptedBackend, sse: Any) -> None:
    backend.queue_reply("OK")
    request = {"messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    events = sse(client.post("/v1/chat/completions", json=request).text)
    assert events[-1] == "[DONE]"
    first, last, usage = events[0], events[1], events[2]
    assert list(first) == ["object", "id", "created", "model", "system_fingerprint", "choices", "usage"]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "OK"}
    assert first["choices"][0]["finish_reason"] is None and first["usage"] is None
    assert last["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert last["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 2


def test_chat_stream_without_include_usage_has_no_usage_chunk(client: httpx.Client, sse: Any) -> None:
    events = sse(client.post("/v1/chat/completions", json={"messages": USER, "stream": True}).text)
    assert all(e == "[DONE]" or e["choices"] for e in events)


def test_chat_continues_a_final_assistant_message(client: httpx.Client) -> None:
    messages = [*USER, {"role": "assistant", "content": "It is"}]
    templated = client.post("/chat_tokenize", json={"messages": messages}).json()["templated_text"]
    assert templated.endswith("<|assistant|>\nIt is")


def test_chat_without_template_is_a_template_error() -> None:
    with TGIServer(backend=ScriptedBackend(chat_template=False)) as server:
        response = httpx.post(server.url + "/v1/chat/completions", json={"messages": USER, "stream": True})
    assert response.status_code == 422
    assert response.json() == {"error": "Template error: template not found", "error_type": "template_error"}


def test_chat_custom_template_and_raise_exception() -> None:
    template = (
        "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system') }}{% endif %}"
        "[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    with TGIServer(backend=ScriptedBackend(chat_template=template)) as server:
        ok = httpx.post(server.url + "/chat_tokenize", json={"messages": USER})
        bad = httpx.post(server.url + "/v1/chat/completions", json={"messages": [{"role": "system", "content": "x"}]})
    assert ok.json()["templated_text"] == "[user] What is the weather in Paris?</s>[assistant]"
    assert bad.status_code == 422
    assert bad.json()["error"].startswith("Template error: syntax error: no system")


# -- tools ---------------------------------------------------------------------------------------


def test_tool_call_non_stream(client: httpx.Client, backend: ScriptedBackend, tgi: TGIServer) -> None:
    backend.queue_tool_call("get_weather", {"location": "Paris", "unit": "celsius"})
    body = client.post("/v1/chat/completions", json={"messages": USER, "tools": [WEATHER_TOOL]}).json()
    message = body["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "0",
                "type": "function",
                "function": {
                    "description": None,
                    "name": "get_weather",
                    "arguments": '{"location":"Paris","unit":"celsius"}',
                },
            }
        ],
    }


def test_tool_grammar_and_prompt_reach_the_backend(client: httpx.Client, backend: ScriptedBackend) -> None:
    seen: list[Any] = []
    backend.responder = lambda request: seen.append(request) or None
    try:
        client.post("/v1/chat/completions", json={"messages": USER, "tools": [WEATHER_TOOL], "tool_choice": "required"})
    finally:
        backend.responder = None
    grammar = seen[0].parameters.grammar
    assert grammar["type"] == "json"
    assert grammar["value"]["properties"] == {"function": {"anyOf": [{"$ref": "#/$functions/get_weather"}]}}
    schema = grammar["value"]["$functions"]["get_weather"]
    assert schema["properties"]["_name"] == {"type": "string", "const": "get_weather"}
    assert schema["required"] == ["_name", "location"]
    assert '\n---\n[{"type":"function","function":{"description":"Weather for a place"' in seen[0].inputs


def test_tool_stream_emits_name_then_argument_fragments(
    client: httpx.Client, backend: ScriptedBackend, sse: Any
) -> None:
    backend.queue_tool_call("get_weather", {"location": "Paris, France"})
    request = {"messages": USER, "tools": [WEATHER_TOOL], "stream": True, "stream_options": {"include_usage": True}}
    events = sse(client.post("/v1/chat/completions", json=request).text)
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"] == []
    calls = [e["choices"][0]["delta"]["tool_calls"][0] for e in events[:-2]]
    assert calls[0] == {
        "index": 0,
        "id": "0",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{"},
    }
    assert all(c["function"]["name"] is None for c in calls[1:])
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(arguments) == {"location": "Paris, France"}
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-2])


def test_tool_stream_id_follows_earlier_tool_calls(client: httpx.Client, backend: ScriptedBackend, sse: Any) -> None:
    earlier = {
        "role": "assistant",
        "tool_calls": [{"id": "3", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
    }
    messages = [*USER, earlier, {"role": "tool", "content": "sunny", "tool_call_id": "3"}, *USER]
    backend.queue_tool_call("get_weather", {"location": "Paris"})
    events = sse(
        client.post("/v1/chat/completions", json={"messages": messages, "tools": [WEATHER_TOOL], "stream": True}).text
    )
    assert events[0]["choices"][0]["delta"]["tool_calls"][0]["id"] == "4"


def test_plain_reply_with_auto_tools_is_answered_by_the_second_pass(
    client: httpx.Client, backend: ScriptedBackend, sse: Any
) -> None:
    backend.queue_reply("No tool needed.")
    backend.queue_reply("No tool needed.")
    body = client.post("/v1/chat/completions", json={"messages": USER, "tools": [WEATHER_TOOL]}).json()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "No tool needed."}
    events = sse(
        client.post("/v1/chat/completions", json={"messages": USER, "tools": [WEATHER_TOOL], "stream": True}).text
    )
    assert "".join(e["choices"][0]["delta"]["content"] for e in events[:-1]) == "No tool needed."


def test_tool_choice_none_ignores_tools(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("plain")
    body = client.post(
        "/v1/chat/completions", json={"messages": USER, "tools": [WEATHER_TOOL], "tool_choice": "none"}
    ).json()
    assert body["choices"][0]["message"]["content"] == "plain"


def test_unknown_tool_choice_is_a_tool_error(client: httpx.Client) -> None:
    choice = {"type": "function", "function": {"name": "nope"}}
    response = client.post(
        "/v1/chat/completions", json={"messages": USER, "tools": [WEATHER_TOOL], "tool_choice": choice}
    )
    assert response.status_code == 422
    assert response.json() == {"error": "Tool error: Tool with name nope not found", "error_type": "tool_error"}


def test_unparsable_tool_output_is_a_tool_error(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("{not json")
    response = client.post("/v1/chat/completions", json={"messages": USER, "tools": [WEATHER_TOOL]})
    assert response.status_code == 422
    assert response.json()["error"].startswith("Tool error: Failed to parse generated text: ")


def test_tools_and_response_format_are_mutually_exclusive(client: httpx.Client) -> None:
    request = {
        "messages": USER,
        "tools": [WEATHER_TOOL],
        "response_format": {"type": "json", "value": {"properties": {}}},
    }
    response = client.post("/v1/chat/completions", json=request)
    assert response.status_code == 422
    assert response.json() == {
        "error": "Tool error: Grammar and tools are mutually exclusive",
        "error_type": "tool_error",
    }


def test_response_format_passes_the_schema_as_grammar(client: httpx.Client, backend: ScriptedBackend) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    backend.queue_json({"city": "Paris"})
    body = client.post(
        "/v1/chat/completions", json={"messages": USER, "response_format": {"type": "json_object", "value": schema}}
    ).json()
    assert json.loads(body["choices"][0]["message"]["content"]) == {"city": "Paris"}


def test_response_format_without_queued_reply_answers_a_minimal_instance(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["city", "n"],
    }
    request = {"messages": USER, "response_format": {"type": "json_schema", "value": {"name": "x", "schema": schema}}}
    body = client.post("/v1/chat/completions", json=request).json()
    assert json.loads(body["choices"][0]["message"]["content"]) == {"city": "", "n": 0}


# -- /v1/completions ------------------------------------------------------------------------------


def test_completions_non_stream(client: httpx.Client, backend: ScriptedBackend) -> None:
    backend.queue_reply("done")
    body = client.post("/v1/completions", json={"prompt": "Say", "model": "whatever"}).json()
    assert list(body) == ["object", "id", "created", "model", "system_fingerprint", "choices", "usage"]
    assert body["model"] == "tgi-test/scripted"
    assert body["choices"] == [{"index": 0, "text": "done", "logprobs": None, "finish_reason": "stop"}]


def test_completions_stream_chunks_and_final(client: httpx.Client, backend: ScriptedBackend, sse: Any) -> None:
    backend.queue_reply("a b")
    events = sse(client.post("/v1/completions", json={"prompt": "Say", "stream": True}).text)
    assert events[-1] == "[DONE]"
    chunk, final = events[0], events[-2]
    assert list(chunk) == ["object", "id", "created", "choices", "model", "system_fingerprint"]
    assert chunk["choices"][0]["finish_reason"] == ""
    assert final["choices"][0]["finish_reason"] == "eos_token"
    assert "usage" in final


def test_completions_suffix_and_batch_errors(client: httpx.Client) -> None:
    suffix = client.post("/v1/completions", json={"prompt": "a", "suffix": "b", "stream": True})
    assert suffix.status_code == 422 and suffix.json()["error_type"] == "suffix not supported"
    batch = client.post("/v1/completions", json={"prompt": ["a"] * 5})
    assert batch.json() == {
        "error": "Number of prompts exceeds the maximum allowed batch size of 4",
        "error_type": "batch size exceeded",
    }


# -- tokenize, info, health, models, metrics, routing ---------------------------------------------


def test_tokenize_returns_byte_offsets(client: httpx.Client) -> None:
    tokens = client.post("/tokenize", json={"inputs": "héllo world"}).json()
    assert [(t["text"], t["start"], t["stop"]) for t in tokens] == [("héllo", 0, 6), (" world", 6, 12)]


def test_info_fields_in_wire_order(client: httpx.Client) -> None:
    info = client.get("/info").json()
    assert list(info) == [
        "model_id", "model_sha", "model_pipeline_tag", "max_concurrent_requests", "max_best_of",
        "max_stop_sequences", "max_input_tokens", "max_total_tokens", "validation_workers",
        "max_client_batch_size", "router", "version", "sha", "docker_label",
    ]  # fmt: skip
    assert info["version"] == "3.3.6-dev0"


@pytest.mark.parametrize("path", ["/health", "/ping", "/"])
def test_health_routes_answer_empty_200(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert (response.status_code, response.content) == (200, b"")


def test_models_lists_the_served_model(client: httpx.Client) -> None:
    assert client.get("/v1/models").json() == {
        "object": "list",
        "data": [{"id": "tgi-test/scripted", "object": "model", "created": 0, "owned_by": "tgi-test/scripted"}],
    }


def test_metrics_are_prometheus_text(client: httpx.Client) -> None:
    client.post("/generate", json={"inputs": "x"})
    text = client.get("/metrics").text
    assert "tgi_request_count" in text and "tgi_request_success" in text


def test_unknown_route_is_an_empty_404_and_wrong_method_an_empty_405(client: httpx.Client) -> None:
    assert (client.get("/nope").status_code, client.get("/nope").content) == (404, b"")
    wrong = client.get("/generate")
    assert (wrong.status_code, wrong.content) == (405, b"")


def test_api_key_protects_generation_routes_only() -> None:
    with TGIServer(api_key="secret") as server, httpx.Client(base_url=server.url) as c:
        denied = c.post("/generate", json={"inputs": "x"})
        assert (denied.status_code, denied.content) == (401, b"")
        assert c.post("/generate", json={"inputs": "x"}, headers={"Authorization": "BEARER SECRET"}).status_code == 200
        assert c.get("/info").status_code == 200
        assert c.post("/chat_tokenize", json={"messages": USER}).status_code == 200
        assert c.post("/v1/chat/completions", json={"messages": USER}).status_code == 401


def test_text_generation_version_2_0_shapes(sse: Any) -> None:
    backend = ScriptedBackend()
    with TGIServer(backend=backend, version="2.0") as server, httpx.Client(base_url=server.url) as c:
        assert c.post("/generate_stream", json={"inputs": "x"}).text.startswith("data:{")
        info = c.get("/info").json()
        assert "max_input_length" in info and info["version"] == "2.0.4"
        chat = sse(c.post("/v1/chat/completions", json={"messages": USER, "stream": True}).text)
        assert chat[-1]["choices"][0]["finish_reason"] == "eos_token"
        assert "usage" not in chat[0] and "[DONE]" not in chat
        backend.queue_tool_call("get_weather", {"location": "Paris"})
        body = c.post("/v1/chat/completions", json={"messages": USER, "tools": [WEATHER_TOOL]}).json()
        call = body["choices"][0]["message"]["tool_calls"][0]
        assert call["id"] == 0 and call["function"]["name"] == "tools"


def test_version_3_1_tool_call_arguments_are_objects() -> None:
    backend = ScriptedBackend()
    with TGIServer(backend=backend, version="3.1") as server:
        backend.queue_tool_call("get_weather", {"location": "Paris"})
        body = httpx.post(server.url + "/v1/chat/completions", json={"messages": USER, "tools": [WEATHER_TOOL]}).json()
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert call == {
        "id": "0",
        "type": "function",
        "function": {"description": None, "name": "get_weather", "arguments": {"location": "Paris"}},
    }
