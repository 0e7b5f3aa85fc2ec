"""Agents end to end against the TGI-compatible scripted server: ChatHuggingFace over real HTTP.

The classic ReAct-JSON agent replays the notebook's zephyr-7b-beta run (Search, Search, Calculator, Final Answer)
in both chat-completions mode and text mode (zephyr's own chat template, ``/generate``); LangChain 1.x
``create_agent`` runs a native tool-calling loop; ``load_tools(["llm-math"])`` works over our LLM class.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
from langchain_hf_chat.agents import create_react_json_executor, demo_tools
from langchain_hf_chat.agents.transcripts import (
    NOTEBOOK_FINAL_ANSWER,
    NOTEBOOK_QUESTION,
    NOTEBOOK_TOOL_CALLS,
    NOTEBOOK_TRANSCRIPT,
)
from langchain_hf_chat.testing import ScriptedBackend, TGIServer

MODEL_ID = "HuggingFaceH4/zephyr-7b-beta"
ZEPHYR_TEMPLATE = Path(__file__).parents[1] / "fixtures" / "templates" / "zephyr-7b-beta.jinja"
NOTEBOOK_OBSERVATIONS = [
    "Leo DiCaprio's girlfriend is Vittoria Ceretti, an Italian fashion model. Leonardo DiCaprio and Vittoria "
    "Ceretti have been dating since 2023 and were seen together in Los Angeles.",
    "Vittoria Ceretti's current age is 25 years. The Italian model was born in 1998.",
    "Answer: 3.991298452658078",
]


@pytest.fixture(scope="module")
def _agents_server() -> Iterator[TGIServer]:
    with TGIServer(backend=ScriptedBackend(model_id=MODEL_ID)) as server:
        yield server


@pytest.fixture
def server(_agents_server: TGIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[TGIServer]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGINGFACEHUB_API_TOKEN", raising=False)
    _agents_server.clear()
    yield _agents_server
    _agents_server.clear()


@pytest.fixture
def backend(server: TGIServer) -> ScriptedBackend:
    assert isinstance(server.backend, ScriptedBackend)
    return server.backend


@pytest.fixture
def llm(server: TGIServer) -> HuggingFaceTextGenInference:
    return HuggingFaceTextGenInference(inference_server_url=server.url, max_new_tokens=512)


def _queue_notebook_run(backend: ScriptedBackend) -> None:
    for reply in NOTEBOOK_TRANSCRIPT:
        backend.queue_reply(reply)


def _assert_notebook_result(result: dict[str, Any]) -> None:
    steps = result["intermediate_steps"]
    assert [(step.tool, step.tool_input) for step, _ in steps] == list(NOTEBOOK_TOOL_CALLS)
    assert [observation for _, observation in steps] == NOTEBOOK_OBSERVATIONS
    assert result["output"] == NOTEBOOK_FINAL_ANSWER
    # The invented observations after each action were cut by the stop sequence, never fed back.
    for step, _ in steps:
        assert "Observation" not in step.log


# -- the classic ReAct-JSON agent --------------------------------------------------------------------------------


def test_react_json_agent_replays_the_notebook_over_chat_completions(
    server: TGIServer, backend: ScriptedBackend, llm: HuggingFaceTextGenInference, capsys: pytest.CaptureFixture[str]
) -> None:
    _queue_notebook_run(backend)
    chat_model = ChatHuggingFace(llm=llm, model_id=MODEL_ID)
    executor = create_react_json_executor(
        chat_model, demo_tools(), handle_parsing_errors=False, return_intermediate_steps=True
    )

    result = executor.invoke({"input": NOTEBOOK_QUESTION})

    _assert_notebook_result(result)
    requests = [r for r in server.requests if r.path == "/v1/chat/completions"]
    assert len(requests) == 4
    assert all(r.json is not None and r.json["stop"] == ["\nObservation"] for r in requests)
    last = requests[-1].json
    assert last is not None
    assert [m["role"] for m in last["messages"]] == ["system", "user"]
    assert 'should be in the "action" field are: Search, Calculator' in last["messages"][0]["content"]
    assert last["messages"][1]["content"].endswith("\nObservation: Answer: 3.991298452658078\nThought: ")
    assert "> Finished chain." in capsys.readouterr().out


def test_react_json_agent_replays_the_notebook_in_text_mode_with_zephyrs_template(
    server: TGIServer, backend: ScriptedBackend, llm: HuggingFaceTextGenInference
) -> None:
    _queue_notebook_run(backend)
    chat_model = ChatHuggingFace(
        llm=llm, model_id=MODEL_ID, chat_template=ZEPHYR_TEMPLATE.read_text(encoding="utf-8"), eos_token="</s>"
    )
    executor = create_react_json_executor(
        chat_model, demo_tools(), verbose=False, handle_parsing_errors=False, return_intermediate_steps=True
    )

    result = executor.invoke({"input": NOTEBOOK_QUESTION})

    _assert_notebook_result(result)
    generations = [r for r in server.requests if r.path in ("/generate", "/generate_stream", "/")]
    assert len(generations) == 4
    first = generations[0].json
    assert first is not None
    assert first["inputs"].startswith("<|system|>\nAnswer the following questions as best you can.")
    assert first["inputs"].endswith(f"<|user|>\n{NOTEBOOK_QUESTION}\n\n</s>\n<|assistant|>\n")
    assert "\nObservation" in first["parameters"]["stop"]


async def test_react_json_agent_runs_async(backend: ScriptedBackend, llm: HuggingFaceTextGenInference) -> None:
    _queue_notebook_run(backend)
    executor = create_react_json_executor(
        ChatHuggingFace(llm=llm, model_id=MODEL_ID),
        demo_tools(),
        verbose=False,
        handle_parsing_errors=False,
        return_intermediate_steps=True,
    )
    _assert_notebook_result(await executor.ainvoke({"input": NOTEBOOK_QUESTION}))


def test_llm_math_runs_over_our_llm_class(
    server: TGIServer, backend: ScriptedBackend, llm: HuggingFaceTextGenInference
) -> None:
    from langchain_community.agent_toolkits.load_tools import load_tools

    backend.queue_reply('```text\n25**0.43\n```\n...numexpr.evaluate("25**0.43")...\n```output\n4\n```')
    [llm_math] = load_tools(["llm-math"], llm=llm)

    answer = llm_math.invoke("What is 25 raised to the 0.43 power?")

    assert answer == "Answer: 3.991298452658078"
    request = server.last_request
    assert request is not None and request.json is not None
    assert request.json["inputs"].endswith("Question: What is 25 raised to the 0.43 power?\n")
    assert request.json["parameters"]["stop"] == ["```output"]


# -- LangChain 1.x create_agent ----------------------------------------------------------------------------------


def test_create_agent_runs_a_tool_loop_to_a_final_answer(
    server: TGIServer, backend: ScriptedBackend, llm: HuggingFaceTextGenInference
) -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage, ToolMessage

    backend.queue_tool_call("Calculator", {"expression": "25**0.43"})
    backend.queue_reply("25 raised to the 0.43 power is about 3.9913.")
    agent = create_agent(model=ChatHuggingFace(llm=llm, model_id=MODEL_ID), tools=demo_tools())

    result = agent.invoke({"messages": [("user", "What is 25 raised to the 0.43 power?")]})

    _, call, tool_result, final = result["messages"]
    assert isinstance(call, AIMessage)
    assert [(c["name"], c["args"]) for c in call.tool_calls] == [("Calculator", {"expression": "25**0.43"})]
    assert isinstance(tool_result, ToolMessage)
    assert tool_result.content == "Answer: 3.991298452658078"
    assert tool_result.tool_call_id == call.tool_calls[0]["id"]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert final.content == "25 raised to the 0.43 power is about 3.9913."

    first, second = (r.json for r in server.requests if r.path == "/v1/chat/completions")
    assert first is not None and second is not None
    assert [tool["function"]["name"] for tool in first["tools"]] == ["Search", "Calculator"]
    assert first["tools"][1]["function"]["parameters"]["properties"] == {"expression": {"type": "string"}}
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool"]
    assert second["messages"][2] == {
        "role": "tool",
        "content": "Answer: 3.991298452658078",
        "tool_call_id": call.tool_calls[0]["id"],
    }


async def test_create_agent_answers_the_notebook_question_async(
    backend: ScriptedBackend, llm: HuggingFaceTextGenInference
) -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import ToolMessage

    backend.queue_tool_call("Search", {"query": "leo dicaprio girlfriend"})
    backend.queue_tool_call("Search", {"query": "vittoria ceretti age"})
    backend.queue_tool_call("Calculator", {"expression": "25^0.43"})
    backend.queue_reply(NOTEBOOK_FINAL_ANSWER)
    agent = create_agent(model=ChatHuggingFace(llm=llm, model_id=MODEL_ID), tools=demo_tools())

    result = await agent.ainvoke({"messages": [("user", NOTEBOOK_QUESTION)]})

    observations = [m.content for m in result["messages"] if isinstance(m, ToolMessage)]
    assert observations == NOTEBOOK_OBSERVATIONS
    assert result["messages"][-1].content == NOTEBOOK_FINAL_ANSWER
