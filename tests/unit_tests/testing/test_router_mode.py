"""Router mode of the test server: the Inference Providers router's paths, model rules and error bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from langchain_hf_chat.testing import ScriptedBackend, TGIServer

REPO = "org/chat-model"
MESSAGES = [{"role": "user", "content": "Hi"}]


def entry(task: str = "conversational", **extra: Any) -> dict[str, Any]:
    return {"status": "live", "providerId": f"{task}/{REPO}", "task": task, **extra}


@pytest.fixture(scope="module")
def _router_module() -> Iterator[TGIServer]:
    with TGIServer(backend=ScriptedBackend(model_id=REPO), router=True) as server:
        yield server


@pytest.fixture
def router(_router_module: TGIServer) -> Iterator[TGIServer]:
    _router_module.clear()
    _router_module.state.config.provider_mappings.clear()
    _router_module.set_provider_mapping(REPO, {"together": entry(), "groq": entry()})
    yield _router_module
    _router_module.state.config.provider_mappings.clear()


@pytest.fixture
def http(router: TGIServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=router.url, timeout=10) as client:
        yield client


def test_tgi_mode_has_no_model_info_route(tgi: TGIServer, client: httpx.Client) -> None:
    assert client.get(f"/api/models/{REPO}").status_code == 404


def test_tgi_mode_does_not_require_model(tgi: TGIServer, client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", json={"messages": MESSAGES})
    assert response.status_code == 200
    assert response.json()["id"] == ""


def test_model_is_required(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={"messages": MESSAGES})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "'model'" in response.json()["error"]["message"]


def test_model_with_provider_suffix_is_served(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={"model": f"{REPO}:groq", "messages": MESSAGES})
    assert response.status_code == 200
    assert response.json()["model"] == REPO


@pytest.mark.parametrize("policy", ["fastest", "cheapest", "preferred"])
def test_routing_policy_suffixes_are_accepted(http: httpx.Client, policy: str) -> None:
    response = http.post("/v1/chat/completions", json={"model": f"{REPO}:{policy}", "messages": MESSAGES})
    assert response.status_code == 200


def test_unknown_model_is_not_supported_by_any_provider(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={"model": "org/other", "messages": MESSAGES})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "The requested model 'org/other' is not supported by any provider you have enabled."
    )


def test_provider_suffix_not_in_mapping(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={"model": f"{REPO}:novita", "messages": MESSAGES})
    assert (response.status_code, response.json()) == (400, {"error": "Model not supported by provider novita"})


def test_model_served_for_another_task_only(router: TGIServer, http: httpx.Client) -> None:
    router.set_provider_mapping(REPO, {"fal-ai": entry(task="text-to-image")})
    response = http.post("/v1/chat/completions", json={"model": REPO, "messages": MESSAGES})
    assert response.status_code == 400


def test_provider_route_accepts_the_provider_model_id(http: httpx.Client) -> None:
    body = {"model": f"conversational/{REPO}", "messages": MESSAGES}
    response = http.post("/together/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.json()["model"] == REPO


def test_hf_inference_chat_route(router: TGIServer, http: httpx.Client) -> None:
    router.set_provider_mapping(REPO, {"hf-inference": entry()})
    response = http.post(f"/hf-inference/models/{REPO}/v1/chat/completions", json={"messages": MESSAGES})
    assert response.status_code == 200


def test_hf_inference_text_route_still_answers(http: httpx.Client) -> None:
    response = http.post(f"/hf-inference/models/{REPO}", json={"inputs": "Hi", "parameters": {}})
    assert response.status_code == 200
    assert "generated_text" in response.json()[0]


def test_responses_have_an_openai_id_and_extra_keys(http: httpx.Client) -> None:
    data = http.post("/v1/chat/completions", json={"model": REPO, "messages": MESSAGES}).json()
    assert data["id"].startswith("chatcmpl-")
    assert data["service_tier"] == "default"


def test_stream_chunks_have_a_non_empty_id(http: httpx.Client, sse: Any) -> None:
    response = http.post("/v1/chat/completions", json={"model": REPO, "messages": MESSAGES, "stream": True})
    chunks = [p for p in sse(response.text) if p != "[DONE]"]
    assert chunks
    assert all(c["id"].startswith("chatcmpl-") for c in chunks)
    assert len({c["id"] for c in chunks}) == 1


def test_openai_json_schema_response_format_is_accepted(router: TGIServer, http: httpx.Client) -> None:
    router.backend.queue_json({"name": "Ada"})  # type: ignore[attr-defined]
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    body = {
        "model": REPO,
        "messages": MESSAGES,
        "response_format": {"type": "json_schema", "json_schema": {"name": "Person", "schema": schema}},
    }
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert json.loads(response.json()["choices"][0]["message"]["content"]) == {"name": "Ada"}


def test_provider_without_tool_calling_rejects_tools(router: TGIServer, http: httpx.Client) -> None:
    router.set_provider_mapping(REPO, {"nscale": entry(features={"toolCalling": False})})
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    response = http.post("/v1/chat/completions", json={"model": REPO, "messages": MESSAGES, "tools": [tool]})
    assert response.status_code == 422
    assert response.json()["error_type"] == "UNSUPPORTED_OPENAI_PARAMS"
    assert response.json()["param"] == "tools"


def test_model_info_route_returns_the_mapping(http: httpx.Client) -> None:
    data = http.get(f"/api/models/{REPO}", params={"expand": "inferenceProviderMapping"}).json()
    assert data["id"] == REPO
    assert set(data["inferenceProviderMapping"]) == {"together", "groq"}


def test_model_info_for_an_unknown_model_is_404(http: httpx.Client) -> None:
    response = http.get("/api/models/org/unknown")
    assert (response.status_code, response.json()) == (404, {"error": "Repository not found"})


def test_default_mapping_serves_the_backend_model_on_hf_inference() -> None:
    with TGIServer(backend=ScriptedBackend(model_id=REPO), router=True) as server:
        data = httpx.get(f"{server.url}/api/models/{REPO}").json()
    assert list(data["inferenceProviderMapping"]) == ["hf-inference"]


def test_router_rejects_a_bad_token_with_a_json_body() -> None:
    with TGIServer(backend=ScriptedBackend(model_id=REPO), router=True, api_key="hf_good") as server:
        response = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"model": REPO, "messages": MESSAGES},
            headers={"authorization": "Bearer hf_bad"},
        )
    assert (response.status_code, response.json()) == (401, {"error": "Invalid credentials in Authorization header"})
