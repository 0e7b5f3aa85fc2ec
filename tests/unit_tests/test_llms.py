"""The three LLM classes against the scripted TGI-compatible server: what reaches the wire, and what comes back."""

from __future__ import annotations

import time
import warnings
from typing import Any

import pytest
from langchain_core.load import dumpd, dumps

from langchain_hf_chat import HuggingFaceEndpoint, HuggingFaceHub, HuggingFaceTextGenInference, errors
from langchain_hf_chat.testing import Fault, TGIServer


def tgi(server: TGIServer, **kwargs: Any) -> HuggingFaceTextGenInference:
    return HuggingFaceTextGenInference(inference_server_url=server.url, **kwargs)


def sent_parameters(server: TGIServer) -> dict[str, Any]:
    body = server.last_request.json
    assert isinstance(body, dict)
    return dict(body["parameters"])


# -- classic constructors ------------------------------------------------------------------------------------


def test_classic_constructors_work_verbatim_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HuggingFaceTextGenInference(
            inference_server_url="http://127.0.0.1:1",
            max_new_tokens=512,
            top_k=50,
            temperature=0.1,
            repetition_penalty=1.03,
            server_kwargs={"headers": {"Authorization": "Bearer hf_x", "Content-Type": "application/json"}},
        )
        HuggingFaceEndpoint(
            endpoint_url="http://127.0.0.1:1",
            task="text-generation",
            model_kwargs={"max_new_tokens": 512, "top_k": 50, "temperature": 0.1, "repetition_penalty": 1.03},
        )
        HuggingFaceHub(
            repo_id="HuggingFaceH4/zephyr-7b-beta",
            task="text-generation",
            model_kwargs={"max_new_tokens": 512, "top_k": 30, "temperature": 0.1, "repetition_penalty": 1.03},
        )


def test_construction_does_no_io() -> None:
    # Port 1 refuses connections: constructing must not try.
    llm = HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1")
    assert llm._transport is None and llm._backend_cache is None


# -- parameters on the wire ----------------------------------------------------------------------------------


def test_classic_tgi_parameters_reach_the_server_exactly(server: TGIServer) -> None:
    llm = tgi(server, max_new_tokens=512, top_k=50, temperature=0.1, repetition_penalty=1.03)
    llm.invoke("Hi")
    assert server.last_request.path == "/generate"
    assert sent_parameters(server) == {
        "max_new_tokens": 512,
        "top_k": 50,
        "top_p": 0.95,
        "typical_p": 0.95,
        "temperature": 0.1,
        "repetition_penalty": 1.03,
        "return_full_text": False,
        "do_sample": False,
        "watermark": False,
        "details": True,
    }


def test_unset_parameters_are_not_sent(server: TGIServer) -> None:
    HuggingFaceHub(repo_id="org/model", router_url=server.url, model_kwargs={"max_new_tokens": 5}).invoke("Hi")
    params = sent_parameters(server)
    assert "top_k" not in params and "seed" not in params and "temperature" not in params
    assert params["max_new_tokens"] == 5


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"seed": 42}, {"seed": 42}),
        ({"top_k": 7}, {"top_k": 7}),
        ({"typical_p": 0.5}, {"typical_p": 0.5}),
        ({"repetition_penalty": 1.2}, {"repetition_penalty": 1.2}),
        ({"frequency_penalty": 0.3}, {"frequency_penalty": 0.3}),
        ({"truncate": 100}, {"truncate": 100}),
        ({"watermark": True}, {"watermark": True}),
        ({"do_sample": True}, {"do_sample": True}),
        ({"max_new_tokens": 3}, {"max_new_tokens": 3}),
    ],
)
def test_each_parameter_is_sent(server: TGIServer, kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    tgi(server, **kwargs).invoke("Hi")
    params = sent_parameters(server)
    for key, value in expected.items():
        assert params[key] == value


def test_temperature_zero_is_greedy_not_dropped(server: TGIServer) -> None:
    tgi(server, temperature=0, top_k=50).invoke("Hi")
    params = sent_parameters(server)
    assert params["do_sample"] is False
    assert "temperature" not in params and "top_k" not in params and "top_p" not in params


def test_top_p_one_disables_nucleus_filtering(server: TGIServer) -> None:
    tgi(server, top_p=1.0).invoke("Hi")
    assert "top_p" not in sent_parameters(server)


def test_return_full_text_is_always_explicit(server: TGIServer) -> None:
    HuggingFaceEndpoint(endpoint_url=server.url).invoke("Hi")
    assert server.last_request.path == "/"
    assert sent_parameters(server)["return_full_text"] is False


def test_model_kwargs_are_merged_last(server: TGIServer) -> None:
    tgi(server, temperature=0.5, model_kwargs={"temperature": 0.2, "custom_flag": "x"}).invoke("Hi")
    params = sent_parameters(server)
    assert params["temperature"] == 0.2
    assert params["custom_flag"] == "x"


def test_per_call_kwargs_override(server: TGIServer) -> None:
    tgi(server, temperature=0.5).invoke("Hi", temperature=0.9, max_new_tokens=4)
    params = sent_parameters(server)
    assert params["temperature"] == 0.9 and params["max_new_tokens"] == 4


def test_unknown_call_argument_is_a_clear_error(server: TGIServer) -> None:
    with pytest.raises(ValueError, match="unknown call argument"):
        tgi(server).invoke("Hi", temprature=0.5)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.2}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"temprature": 0.1}, "temprature"),
    ],
)
def test_invalid_values_fail_at_construction_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1", **kwargs)


def test_a_prebuilt_text_generation_client_is_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="does not accept a prebuilt `client`"):
        HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1", client=object())


def test_unknown_task_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="`task` must be one of"):
        HuggingFaceEndpoint(endpoint_url="http://127.0.0.1:1", task="image-classification")


def test_endpoint_needs_exactly_one_target() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        HuggingFaceEndpoint(endpoint_url="http://127.0.0.1:1", repo_id="a/b")
    with pytest.raises(ValueError, match="exactly one of"):
        HuggingFaceEndpoint()


# -- outputs --------------------------------------------------------------------------------------------------


def test_invoke_returns_the_generated_text(server: TGIServer) -> None:
    server.backend.queue_reply("Deep learning is a subset of machine learning.")
    assert tgi(server).invoke("What is deep learning?") == "Deep learning is a subset of machine learning."


def test_generation_info_carries_details(server: TGIServer) -> None:
    server.backend.queue_reply("One two three")
    result = tgi(server, seed=7).generate(["Count"])
    info = result.generations[0][0].generation_info
    assert info is not None
    assert info["finish_reason"] == "eos_token"
    assert info["generated_tokens"] >= 3
    assert info["seed"] == 7


def test_stop_is_sent_and_enforced_client_side(server: TGIServer) -> None:
    server.backend.queue_reply("Thought: go\nObservation: done")
    out = tgi(server).invoke("Q", stop=["\nObservation"])
    assert out == "Thought: go"
    assert sent_parameters(server)["stop"] == ["\nObservation"]


def test_stop_text_is_cut_even_if_the_server_ignores_stop(server: TGIServer) -> None:
    # More stops than TGI accepts: the fifth is enforced by the client only.
    server.backend.queue_reply("alpha beta END gamma")
    out = tgi(server).invoke("Q", stop=["w", "x", "y", "z", " END"])
    assert out == "alpha beta"
    assert sent_parameters(server)["stop"] == ["w", "x", "y", "z"]


def test_stream_yields_one_chunk_per_token_and_stops_at_stop(server: TGIServer) -> None:
    server.backend.queue_reply("a b c STOP d e")
    chunks = list(tgi(server).stream("Q", stop=[" STOP"]))
    assert "".join(chunks) == "a b c"
    assert len(chunks) >= 3


async def test_async_invoke_and_stream(server: TGIServer) -> None:
    llm = tgi(server)
    server.backend.queue_reply("hello async")
    assert await llm.ainvoke("Q") == "hello async"
    server.backend.queue_reply("one two")
    assert "".join([c async for c in llm.astream("Q")]) == "one two"


def _echo_slowly(server: TGIServer, monkeypatch: pytest.MonkeyPatch, delay: float) -> None:
    """Every request is answered with its own prompt, after ``delay`` seconds (one token)."""
    from langchain_hf_chat.testing import Reply

    monkeypatch.setattr(server.backend, "responder", lambda request: Reply((request.inputs,), delay))


async def test_abatch_runs_concurrently_and_keeps_order(server: TGIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _echo_slowly(server, monkeypatch, 0.2)
    llm = tgi(server)
    started = time.perf_counter()
    await llm.ainvoke("one")
    one = time.perf_counter() - started
    prompts = [f"p{i}" for i in range(8)]
    started = time.perf_counter()
    assert await llm.abatch(prompts) == prompts
    assert time.perf_counter() - started < 8 * one / 2  # side by side, not one after another


@pytest.mark.parametrize("max_concurrency", [None, 4])
def test_batch_runs_concurrently_and_keeps_order(
    server: TGIServer, monkeypatch: pytest.MonkeyPatch, max_concurrency: int | None
) -> None:
    _echo_slowly(server, monkeypatch, 0.2)
    llm = tgi(server)
    started = time.perf_counter()
    llm.invoke("one")
    one = time.perf_counter() - started
    prompts = [f"p{i}" for i in range(8)]
    started = time.perf_counter()
    assert llm.batch(prompts, config={"max_concurrency": max_concurrency}) == prompts
    # One after another this takes 8 x one; side by side (4 at a time: two rounds) at most a quarter of that.
    assert time.perf_counter() - started < 8 * one / 2


def test_a_failing_prompt_in_a_sync_batch_raises_its_error(server: TGIServer) -> None:
    server.backend.queue_reply("fine")
    server.inject(Fault.validation("Input validation error: boom"))
    with pytest.raises(errors.BadRequestError, match="boom"):
        tgi(server).batch(["a", "b"])


def test_streaming_batch_still_streams_each_prompt(server: TGIServer) -> None:
    server.backend.queue_reply("one")
    server.backend.queue_reply("two")
    assert sorted(tgi(server, streaming=True).batch(["a", "b"])) == ["one", "two"]
    assert {request.path for request in server.requests} == {"/generate_stream"}


def test_streaming_flag_uses_the_stream_route(server: TGIServer) -> None:
    server.backend.queue_reply("x y z")
    assert tgi(server, streaming=True).invoke("Q") == "x y z"
    assert server.last_request.path == "/generate_stream"


def test_endpoint_streams_through_the_compat_route(server: TGIServer) -> None:
    server.backend.queue_reply("p q")
    assert "".join(HuggingFaceEndpoint(endpoint_url=server.url).stream("Q")) == "p q"
    assert server.last_request.path == "/" and server.last_request.json["stream"] is True


def test_identifying_params_differ_per_configuration(server: TGIServer) -> None:
    a = tgi(server, temperature=0.1)._identifying_params
    b = tgi(server, temperature=0.2)._identifying_params
    assert a != b
    assert a["endpoint"] == server.url


def test_llm_types_differ() -> None:
    types = {
        HuggingFaceTextGenInference(inference_server_url="http://h")._llm_type,
        HuggingFaceEndpoint(endpoint_url="http://h")._llm_type,
        HuggingFaceHub(repo_id="a/b")._llm_type,
    }
    assert len(types) == 3


# -- errors ---------------------------------------------------------------------------------------------------


def test_validation_error_is_typed(server: TGIServer) -> None:
    # The server's limit is not known to the client: TGI's 422 comes back as a typed error, not retried.
    with pytest.raises(errors.ValidationError, match="truncate"):
        tgi(server, truncate=100000).invoke("Q")
    assert len(server.requests) == 1


def test_connection_refused_is_typed() -> None:
    llm = HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1", max_retries=0)
    with pytest.raises(errors.ConnectionError):
        llm.invoke("Q")


# -- token hygiene --------------------------------------------------------------------------------------------


def test_env_token_is_not_sent_to_a_self_hosted_server(server: TGIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_env_secret")
    tgi(server).invoke("Hi")
    assert "authorization" not in server.last_request.headers


def test_header_the_user_set_is_sent(server: TGIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_env_secret")
    tgi(server, server_kwargs={"headers": {"Authorization": "Bearer mine"}}).invoke("Hi")
    assert server.last_request.headers["authorization"] == "Bearer mine"


def test_explicit_token_is_sent_where_the_user_pointed_it(server: TGIServer) -> None:
    tgi(server, huggingfacehub_api_token="hf_explicit").invoke("Hi")
    assert server.last_request.headers["authorization"] == "Bearer hf_explicit"


def test_token_policy_never_blocks_even_an_explicit_token(server: TGIServer) -> None:
    tgi(server, huggingfacehub_api_token="hf_explicit", token_policy="never").invoke("Hi")
    assert "authorization" not in server.last_request.headers


def test_token_never_in_repr_str_or_serialized_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_env_secret")
    llm = HuggingFaceTextGenInference(
        inference_server_url="http://127.0.0.1:1",
        huggingfacehub_api_token="hf_explicit_secret",
        server_kwargs={"headers": {"Authorization": "Bearer hf_header_secret"}},
    )
    for text in (repr(llm), str(llm), dumps(llm), str(dumpd(llm))):
        assert "hf_explicit_secret" not in text
        assert "hf_header_secret" not in text
        assert "hf_env_secret" not in text
