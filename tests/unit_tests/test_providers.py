"""Inference Providers: routing, the cached capability check, and the router's errors (against router mode)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, errors
from langchain_hf_chat._providers import DEFAULT_HUB_URL, ProviderMapping, parse_provider_mapping
from langchain_hf_chat.testing import Fault, ScriptedBackend, TGIServer

REPO = "org/chat-model"


def live(task: str = "conversational", **extra: Any) -> dict[str, Any]:
    return {"status": "live", "providerId": f"provider/{REPO}", "task": task, **extra}


def get_weather(city: str) -> str:
    """Weather in a city."""
    return "sunny"


@pytest.fixture(scope="module")
def _router_module() -> Iterator[TGIServer]:
    with TGIServer(backend=ScriptedBackend(model_id=REPO), router=True) as server:
        yield server


@pytest.fixture
def router(_router_module: TGIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[TGIServer]:
    """A router-mode server with no provider mapping, request log or queued reply; no HF token in the env."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGINGFACEHUB_API_TOKEN", raising=False)
    _router_module.clear()
    _router_module.state.config.provider_mappings.clear()
    yield _router_module
    _router_module.clear()
    _router_module.state.config.provider_mappings.clear()


def endpoint(router: TGIServer, **kwargs: Any) -> HuggingFaceEndpoint:
    return HuggingFaceEndpoint(repo_id=REPO, router_url=router.url, max_retries=0, **kwargs)


def chat_over(router: TGIServer, **kwargs: Any) -> ChatHuggingFace:
    return ChatHuggingFace(llm=endpoint(router, **kwargs))


def posts(router: TGIServer) -> list[str]:
    return [r.path for r in router.requests if r.method == "POST"]


def info_requests(router: TGIServer) -> int:
    return sum(1 for r in router.requests if r.path.startswith("/api/models/"))


# -- the mapping -------------------------------------------------------------------------------------------


def test_mapping_parses_the_hub_dict_form() -> None:
    data = {"inferenceProviderMapping": {"together": live(features={"toolCalling": False})}}
    assert parse_provider_mapping(data) == [
        ProviderMapping("together", f"provider/{REPO}", "conversational", "live", {"tools": False})
    ]


def test_mapping_parses_the_list_form() -> None:
    data = {"inferenceProviderMapping": [{"provider": "groq", **live(supports_tools=True)}]}
    mapping = parse_provider_mapping(data)[0]
    assert (mapping.provider, mapping.supports("tools"), mapping.supports("structured_output")) == ("groq", True, None)


def test_model_without_mapping_has_no_providers() -> None:
    assert parse_provider_mapping({"id": REPO}) == []


# -- routing -----------------------------------------------------------------------------------------------


def test_construction_sends_nothing(router: TGIServer) -> None:
    ChatHuggingFace(llm=endpoint(router, provider="auto", bill_to="my-org"))
    assert router.requests == []


def test_auto_provider_sends_the_bare_model_id_to_the_router(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    chat_over(router, provider="auto").invoke("Hi")
    sent = router.requests[-1]
    assert (sent.path, sent.json["model"]) == ("/v1/chat/completions", REPO)


def test_named_provider_is_a_model_suffix(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live(), "groq": live()})
    chat_over(router, provider="groq").invoke("Hi")
    assert router.requests[-1].json["model"] == f"{REPO}:groq"


def test_bill_to_sends_the_billing_header(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    chat_over(router, bill_to="my-org").invoke("Hi")
    assert router.requests[-1].headers["x-hf-bill-to"] == "my-org"


def test_router_response_keeps_its_id_and_model(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    message = chat_over(router).invoke("Hi")
    assert isinstance(message, AIMessage)
    assert message.id and message.id.startswith("chatcmpl-")
    assert message.response_metadata["model_name"] == REPO


def test_router_stream_aggregates(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    router.backend.queue_reply("Bonjour tout le monde")  # type: ignore[attr-defined]
    chunks = list(chat_over(router).stream("Hi"))
    assert "".join(str(c.content) for c in chunks) == "Bonjour tout le monde"


# -- the capability check ----------------------------------------------------------------------------------


def test_capability_check_reads_the_mapping_once_per_instance(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    chat = chat_over(router)
    chat.invoke("one")
    chat.invoke("two")
    assert info_requests(router) == 1
    assert router.requests[0].path == f"/api/models/{REPO}"
    assert router.requests[0].query == "expand=inferenceProviderMapping"


async def test_async_calls_are_checked_too(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    with pytest.raises(errors.ProviderNotSupportedError, match="'groq'"):
        await chat_over(router, provider="groq").ainvoke("Hi")
    assert posts(router) == []


async def test_async_stream_is_checked_and_streams(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    chunks = [c async for c in chat_over(router).astream("Hi")]
    assert chunks
    assert info_requests(router) == 1


def test_provider_that_does_not_serve_the_model_fails_before_the_request(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    with pytest.raises(errors.ProviderNotSupportedError) as caught:
        chat_over(router, provider="groq").invoke("Hi")
    message = str(caught.value)
    assert "'groq'" in message
    assert REPO in message
    assert "together" in message
    assert posts(router) == []


def test_model_served_by_no_provider_for_chat_fails_early(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"fal-ai": live(task="text-to-image")})
    with pytest.raises(errors.ProviderNotSupportedError, match="no Inference Provider serves model"):
        chat_over(router).invoke("Hi")
    assert posts(router) == []


def test_text_generation_on_a_chat_only_model_says_to_use_chat(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"hf-inference": live()})
    with pytest.raises(errors.ProviderNotSupportedError) as caught:
        endpoint(router).invoke("Hi")
    assert "'text-generation'" in str(caught.value)
    assert "ChatHuggingFace" in str(caught.value)
    assert posts(router) == []


def test_text_generation_goes_to_hf_inference_when_mapped(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"hf-inference": live(task="text-generation")})
    endpoint(router).invoke("Hi")
    assert posts(router) == [f"/hf-inference/models/{REPO}"]


def test_text_generation_with_another_provider_fails_early(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live(task="text-generation")})
    with pytest.raises(errors.ProviderNotSupportedError, match="hf-inference"):
        endpoint(router, provider="together").invoke("Hi")
    assert posts(router) == []


def test_tools_on_a_provider_without_tool_calling_fail_early(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"nscale": live(features={"toolCalling": False}), "together": live()})
    with pytest.raises(errors.ProviderNotSupportedError) as caught:
        chat_over(router, provider="nscale").bind_tools([get_weather]).invoke("Weather?")
    message = str(caught.value)
    assert "'nscale'" in message
    assert "tool calling" in message
    assert "together" in message
    assert posts(router) == []


def test_auto_with_tools_pins_a_provider_that_supports_them(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"nscale": live(features={"toolCalling": False}), "together": live()})
    router.backend.queue_tool_call("get_weather", {"city": "Paris"})  # type: ignore[attr-defined]
    message = chat_over(router).bind_tools([get_weather]).invoke("Weather?")
    assert isinstance(message, AIMessage)
    assert message.tool_calls[0]["args"] == {"city": "Paris"}
    assert router.requests[-1].json["model"] == f"{REPO}:together"


def test_auto_without_tools_leaves_the_choice_to_the_router(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"nscale": live(features={"toolCalling": False}), "together": live()})
    chat_over(router).invoke("Hi")
    assert router.requests[-1].json["model"] == REPO


def test_no_provider_with_tool_calling_fails_early(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"nscale": live(features={"toolCalling": False})})
    with pytest.raises(errors.ProviderNotSupportedError, match="supports tool calling"):
        chat_over(router).bind_tools([get_weather]).invoke("Weather?")


def test_staging_mapping_warns_once(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": {**live(), "status": "staging"}})
    chat = chat_over(router, provider="together")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chat.invoke("one")
        chat.invoke("two")
    assert len([w for w in caught if "staging" in str(w.message)]) == 1


def test_live_mapping_does_not_warn(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chat_over(router, provider="together").invoke("Hi")
    assert [w for w in caught if issubclass(w.category, UserWarning)] == []


def test_unknown_model_on_the_hub_is_not_found(router: TGIServer) -> None:
    llm = HuggingFaceEndpoint(repo_id="org/no-such-model", router_url=router.url, max_retries=0)
    with pytest.raises(errors.NotFoundError, match="not found on the Hugging Face Hub"):
        ChatHuggingFace(llm=llm).invoke("Hi")
    assert posts(router) == []


def test_unreachable_hub_skips_the_check(router: TGIServer, caplog: pytest.LogCaptureFixture) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    chat = chat_over(router, hub_url="http://127.0.0.1:9")
    with caplog.at_level(logging.WARNING, logger="langchain_hf_chat"):
        chat.invoke("Hi")
    assert "skipping the capability check" in caplog.text
    assert posts(router) == ["/v1/chat/completions"]


def test_check_can_be_switched_off(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    chat_over(router, check_provider=False).invoke("Hi")
    assert info_requests(router) == 0


def test_hub_url_defaults_to_the_hub_for_the_public_router() -> None:
    llm = HuggingFaceEndpoint(repo_id=REPO)
    assert llm._hub_url() == DEFAULT_HUB_URL


def test_hub_url_defaults_to_a_custom_router() -> None:
    assert HuggingFaceEndpoint(repo_id=REPO, router_url="http://127.0.0.1:1")._hub_url() == "http://127.0.0.1:1"


# -- the router's own errors -------------------------------------------------------------------------------


def unchecked(router: TGIServer) -> ChatHuggingFace:
    return chat_over(router, check_provider=False)


def test_model_not_served_by_any_enabled_provider(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"fal-ai": live(task="text-to-image")})
    with pytest.raises(errors.ProviderNotSupportedError) as caught:
        unchecked(router).invoke("Hi")
    assert caught.value.status_code == 400
    assert "not served by any Inference Provider you enabled" in str(caught.value)


def test_model_not_supported_by_the_named_provider(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    with pytest.raises(errors.ProviderNotSupportedError, match="pick a provider that does"):
        chat_over(router, provider="groq", check_provider=False).invoke("Hi")


def test_unsupported_parameters_say_to_pin_a_provider(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"nscale": live(features={"toolCalling": False})})
    with pytest.raises(errors.ProviderNotSupportedError) as caught:
        unchecked(router).bind_tools([get_weather]).invoke("Weather?")
    assert caught.value.status_code == 422
    assert caught.value.error_type == "UNSUPPORTED_OPENAI_PARAMS"
    assert "provider='<name>'" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "error_class", "advice"),
    [
        (401, errors.AuthenticationError, "HF_TOKEN"),
        (402, errors.InsufficientCreditsError, "bill_to"),
        (403, errors.PermissionDeniedError, "Make calls to Inference Providers"),
        (404, errors.NotFoundError, "model id"),
        (429, errors.RateLimitError, "Retry-After"),
        (503, errors.ModelLoadingError, "retried automatically"),
    ],
)
def test_router_errors_map_to_typed_errors_with_advice(
    router: TGIServer, status: int, error_class: type[errors.HuggingFaceError], advice: str
) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    router.inject(Fault.status(status), route="/v1/chat/completions")
    with pytest.raises(error_class) as caught:
        unchecked(router).invoke("Hi")
    assert caught.value.status_code == status
    assert advice in str(caught.value)


def test_openai_style_error_body_keeps_the_message(router: TGIServer) -> None:
    router.set_provider_mapping(REPO, {"together": live()})
    body = {"error": {"message": "Rate limit exceeded for org", "type": "rate_limit", "code": "429"}}
    router.inject(Fault.status(429, body, headers={"retry-after": "7"}), times=1)
    with pytest.raises(errors.RateLimitError) as caught:
        unchecked(router).invoke("Hi")
    assert caught.value.server_message == "Rate limit exceeded for org"
    assert caught.value.retry_after == 7
