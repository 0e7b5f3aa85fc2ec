"""Body rejections (README §1.1) and TGI's validation, in TGI's order with TGI's messages (README §4)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from langchain_hf_chat.testing import ScriptedBackend, TGIServer

USER = [{"role": "user", "content": "hi"}]
PREFIX = "Failed to deserialize the JSON body into the target type: "


def _post_raw(
    client: httpx.Client, path: str, body: bytes, content_type: str | None = "application/json"
) -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    return client.post(path, content=body, headers=headers)


# -- body rejections: text/plain -------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_missing_json_content_type_is_415(client: httpx.Client, content_type: str | None) -> None:
    response = _post_raw(client, "/generate", b'{"inputs":"x"}', content_type)
    assert response.status_code == 415
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "Expected request with `Content-Type: application/json`"


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.api+json"])
def test_json_content_type_variants_are_accepted(client: httpx.Client, content_type: str) -> None:
    assert _post_raw(client, "/generate", b'{"inputs":"x"}', content_type).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "EOF while parsing a value at line 1 column 0"),
        (b'{"inputs": ', "EOF while parsing a value at line 1 column 11"),
        (b"{inputs}", "key must be a string at line 1 column 2"),
        (b'{"inputs": "x"} x', "trailing characters at line 1 column 17"),
    ],
)
def test_invalid_json_is_400_text(client: httpx.Client, body: bytes, message: str) -> None:
    response = _post_raw(client, "/generate", body)
    assert response.status_code == 400
    assert response.text == f"Failed to parse the request body as JSON: {message}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "missing field `inputs` at line 1 column 2"),
        (b'{"inputs": 5}', "inputs: invalid type: integer `5`, expected a string at line 1 column 12"),
        (
            b'{"inputs": "x", "parameters": {"max_new_tokens": -1}}',
            "parameters.max_new_tokens: invalid value: integer `-1`, expected u32 at line 1 column 51",
        ),
        (
            b'{"inputs": "x", "parameters": {"stop": "end"}}',
            'parameters.stop: invalid type: string "end", expected a sequence at line 1 column 44',
        ),
        (
            b'{"inputs": "x", "parameters": {"do_sample": null}}',
            "parameters.do_sample: invalid type: null, expected a boolean at line 1 column 48",
        ),
        (
            b'{"inputs": "x", "parameters": {"temperature": "hot"}}',
            'parameters.temperature: invalid type: string "hot", expected f32 at line 1 column 51',
        ),
        (
            b'{"inputs": "x", "parameters": {"grammar": {"type": "xml", "value": 1}}}',
            "parameters.grammar.type: unknown variant `xml`, expected one of `json`, `regex`, `json_schema`"
            " at line 1 column 56",
        ),
    ],
)
def test_wrong_shape_is_422_text(client: httpx.Client, body: bytes, message: str) -> None:
    response = _post_raw(client, "/generate", body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == PREFIX + message


def test_unknown_fields_are_ignored(client: httpx.Client) -> None:
    body = {"inputs": "x", "extra": 1, "parameters": {"nonsense": True}}
    assert client.post("/generate", json=body).status_code == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"messages": USER, "stream": None}, "stream: invalid type: null, expected a boolean"),
        ({"messages": USER, "stream_options": None}, "stream_options: invalid type: null"),
        ({"messages": USER, "stop": "x"}, 'stop: invalid type: string "x", expected a sequence'),
        ({"messages": [{"role": "user"}]}, "messages[0]: data did not match any variant of untagged enum MessageBody"),
        ({"messages": USER, "response_format": {"type": "json_object"}}, "response_format: missing field `value`"),
        (
            {"messages": USER, "tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools[0].function: missing field `arguments`",
        ),
    ],
)
def test_chat_shape_errors(client: httpx.Client, body: dict[str, Any], fragment: str) -> None:
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 422
    assert response.text.startswith(PREFIX + fragment)


def test_empty_prompt_array_is_rejected(client: httpx.Client) -> None:
    response = client.post("/v1/completions", json={"prompt": []})
    assert response.status_code == 422
    assert "Empty array detected. Do not use an empty array for the prompt." in response.text


def test_body_over_the_payload_limit_is_413() -> None:
    with TGIServer(payload_limit=100) as server:
        response = httpx.post(server.url + "/generate", json={"inputs": "x" * 200})
    assert response.status_code == 413
    assert response.text == "Failed to buffer the request body: length limit exceeded"


# -- validation: 422 JSON in TGI's order ------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"temperature": 0}, "`temperature` must be strictly positive"),
        ({"repetition_penalty": 0}, "`repetition_penalty` must be strictly positive"),
        ({"frequency_penalty": 3}, "`frequency_penalty` must be >= -2.0 and <= 2.0"),
        ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"typical_p": 0}, "`typical_p` must be > 0.0 and < 1.0"),
        ({"top_k": 0}, "`top_k` must be strictly positive"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences. Given: 5"),
        ({"top_n_tokens": 7}, "`top_n_tokens` must be >= 0 and <= 5. Given: 7"),
        ({"truncate": 0}, "`truncate` must be strictly positive and less than 8191. Given: 0"),
        ({"best_of": 2}, "you must use sampling when `best_of` is > 1"),
        ({"best_of": 2, "do_sample": True, "seed": 1}, "`seed` must not be set when `best_of` > 1"),
        ({"best_of": 3, "do_sample": True}, "`best_of` must be > 0 and <= 2. Given: 3"),
        (
            {"grammar": {"type": "json", "value": "{bad"}},
            "grammar is not valid: key must be a string at line 1 column 2",
        ),
        ({"grammar": {"type": "json", "value": 5}}, "grammar is not supported"),
        (
            {"grammar": {"type": "json", "value": {"type": "object"}}},
            "grammar is not valid: Grammar must have a 'properties' field",
        ),
        ({"grammar": {"type": "json", "value": {"properties": {}, "type": 5}}}, "grammar is not valid: "),
    ],
)
def test_validation_messages(client: httpx.Client, parameters: dict[str, Any], message: str) -> None:
    response = client.post("/generate", json={"inputs": "x", "parameters": parameters})
    assert response.status_code == 422
    body = response.json()
    assert body["error_type"] == "validation"
    assert body["error"].startswith("Input validation error: " + message)


def test_first_failing_check_wins(client: httpx.Client) -> None:
    parameters = {"top_k": 0, "temperature": -1, "max_new_tokens": 0}
    body = client.post("/generate", json={"inputs": "x", "parameters": parameters}).json()
    assert body["error"] == "Input validation error: `temperature` must be strictly positive"


def test_empty_inputs(client: httpx.Client) -> None:
    body = client.post("/generate", json={"inputs": ""}).json()
    assert body["error"] == "Input validation error: `inputs` cannot be empty"


def test_token_limits() -> None:
    backend = ScriptedBackend(max_input_tokens=5, max_total_tokens=8)
    with TGIServer(backend=backend) as server, httpx.Client(base_url=server.url) as c:
        too_long = c.post("/generate", json={"inputs": "a b c d e f g h i"}).json()
        assert too_long["error"] == (
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8. "
            "Given: 9 `inputs` tokens and 0 `max_new_tokens`"
        )
        over_input = c.post("/generate", json={"inputs": "a b c d e f", "parameters": {"max_new_tokens": 1}}).json()
        assert over_input["error"] == "Input validation error: `inputs` must have less than 5 tokens. Given: 6"
        truncated = c.post("/generate", json={"inputs": "a b c d e f", "parameters": {"truncate": 2, "details": True}})
        assert truncated.status_code == 200


def test_stream_only_checks(client: httpx.Client, sse: Any) -> None:
    best_of = sse(client.post("/generate_stream", json={"inputs": "x", "parameters": {"best_of": 2}}).text)
    assert best_of == [
        {
            "error": "Input validation error: `best_of` != 1 is not supported when streaming tokens",
            "error_type": "validation",
        }
    ]
    details = sse(
        client.post("/generate_stream", json={"inputs": "x", "parameters": {"decoder_input_details": True}}).text
    )
    assert details[0]["error"].endswith("`decoder_input_details` == true is not supported when streaming tokens")


def test_stream_validation_errors_are_events_after_200(client: httpx.Client) -> None:
    response = client.post("/generate_stream", json={"inputs": "x", "parameters": {"temperature": -1}})
    assert response.status_code == 200
    assert response.text == (
        'data: {"error":"Input validation error: `temperature` must be strictly positive",'
        '"error_type":"validation"}\n\n'
    )


def test_chat_stream_validation_error_is_openai_flavoured_then_done(client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", json={"messages": USER, "top_p": 1, "stream": True})
    assert response.status_code == 200
    assert response.text == (
        'data: {"error":{"message":"Input validation error: `top_p` must be > 0.0 and < 1.0",'
        '"http_status_code":422}}\n\ndata: [DONE]\n\n'
    )


def test_chat_temperature_zero_is_greedy_and_presence_penalty_maps_to_repetition(
    client: httpx.Client, backend: ScriptedBackend
) -> None:
    seen: list[Any] = []
    backend.responder = lambda request: seen.append(request.parameters) or None
    try:
        client.post("/v1/chat/completions", json={"messages": USER, "temperature": 0, "presence_penalty": 0.5})
        bad = client.post("/v1/chat/completions", json={"messages": USER, "presence_penalty": -2})
    finally:
        backend.responder = None
    assert (seen[0].do_sample, seen[0].temperature, seen[0].repetition_penalty) == (False, None, 2.5)
    assert bad.json()["error"] == "Input validation error: `repetition_penalty` must be strictly positive"


def test_overload_when_no_permit_is_free(sse: Any) -> None:
    backend = ScriptedBackend()
    with TGIServer(backend=backend, max_concurrent_requests=1) as server:
        backend.queue_reply("slow reply", delay=0.1)
        with httpx.Client(base_url=server.url) as c, c.stream("POST", "/generate_stream", json={"inputs": "x"}) as held:
            lines = held.iter_lines()  # keep a reference: closing the iterator closes the connection
            assert next(lines).startswith("data: ")
            overloaded = c.post("/generate", json={"inputs": "x"})
            streamed = sse(c.post("/generate_stream", json={"inputs": "x"}).text)
    assert overloaded.status_code == 429
    assert overloaded.json() == {"error": "Model is overloaded", "error_type": "overloaded"}
    assert "retry-after" not in overloaded.headers
    assert streamed == [{"error": "Model is overloaded", "error_type": "overloaded"}]


def test_truncate_keeps_the_last_tokens(client: httpx.Client, backend: ScriptedBackend) -> None:
    seen: list[str] = []
    backend.responder = lambda request: seen.append(request.inputs) or None
    try:
        response = client.post("/generate", json={"inputs": "héllo wörld again", "parameters": {"truncate": 2}})
    finally:
        backend.responder = None
    assert response.status_code == 200
    assert seen == [" wörld again"]
