"""Agents driven by the real model (SmolLM2-135M-Instruct) behind the TGI-compatible server.

A 135M-parameter model answers badly, so these tests check the *mechanics*, which must hold whatever it writes:
grammar-forced ReAct-JSON turns always parse and the run ends with a final answer; a forced tool call always
carries valid arguments and ``create_agent``'s loop ends. Turns are kept short (about 2 s each here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.agents import AgentAction

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
from langchain_hf_chat.agents import ActionConstraints, create_react_json_executor, demo_tools
from langchain_hf_chat.agents.transcripts import NOTEBOOK_QUESTION
from langchain_hf_chat.testing import TGIServer

pytestmark = pytest.mark.real_model

TOOL_NAMES = {"Search", "Calculator"}


def short_turns(max_actions: int) -> ActionConstraints:
    """Short turns: the mechanics are the same at any length, and each token costs 60-150 ms here."""
    return ActionConstraints(
        final_answer_after=frozenset({"Calculator"}),
        max_actions=max_actions,
        max_thought_chars=40,
        max_input_chars=40,
        max_answer_chars=40,
        max_new_tokens=96,
    )


@pytest.fixture
def llm(real_model_server: TGIServer, monkeypatch: pytest.MonkeyPatch) -> HuggingFaceTextGenInference:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGINGFACEHUB_API_TOKEN", raising=False)
    return HuggingFaceTextGenInference(inference_server_url=real_model_server.url, max_new_tokens=48)


def _assert_clean_run(result: dict[str, Any], max_actions: int) -> None:
    steps: list[tuple[AgentAction, str]] = result["intermediate_steps"]
    # handle_parsing_errors=False: an unparsable turn would have raised OutputParserException already.
    assert 1 <= len(steps) <= max_actions
    for action, observation in steps:
        assert action.tool in TOOL_NAMES
        assert isinstance(action.tool_input, str) and action.tool_input
        assert "Could not parse" not in observation
    assert result["output"] and result["output"] != "Agent stopped due to iteration limit or time limit."


@pytest.mark.parametrize(
    ("mode", "max_actions"),
    [
        pytest.param("chat", 2, id="chat"),  # act; act or answer; answer
        pytest.param("text", 1, id="text"),  # act; answer (fewer turns: the grammar path is what differs)
    ],
)
def test_grammar_forced_react_json_agent_reaches_a_final_answer_without_parser_errors(
    llm: HuggingFaceTextGenInference, mode: str, max_actions: int
) -> None:
    # Chat mode sends the regex as `response_format`; text mode renders SmolLM2's template client-side and
    # sends it as TGI's `grammar` to /generate.
    chat_model = ChatHuggingFace(llm=llm, mode=mode)
    executor = create_react_json_executor(
        chat_model,
        demo_tools(),
        constrain_actions=short_turns(max_actions),
        verbose=False,
        handle_parsing_errors=False,
        max_iterations=max_actions + 1,
        return_intermediate_steps=True,
    )

    _assert_clean_run(executor.invoke({"input": NOTEBOOK_QUESTION}), max_actions)


def _force_then_answer(tool_name: str) -> Callable[..., Any]:
    """Middleware: the first model call must call ``tool_name``; once a tool answered, no tools are offered."""
    from langchain.agents.middleware import wrap_model_call
    from langchain_core.messages import ToolMessage

    @wrap_model_call  # type: ignore[arg-type]
    def force_then_answer(request: Any, handler: Callable[[Any], Any]) -> Any:
        if any(isinstance(message, ToolMessage) for message in request.messages):
            return handler(request.override(tools=[], tool_choice=None))
        return handler(request.override(tool_choice=tool_name))

    return force_then_answer  # type: ignore[no-any-return]


def test_create_agent_with_a_forced_tool_call_gets_valid_arguments_and_ends(llm: HuggingFaceTextGenInference) -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage, ToolMessage

    agent = create_agent(
        model=ChatHuggingFace(llm=llm),
        tools=demo_tools(),
        middleware=[_force_then_answer("Calculator")],
    )

    result = agent.invoke({"messages": [("user", "What is 25 raised to the 0.43 power?")]})

    _, call, tool_result, final = result["messages"]
    assert isinstance(call, AIMessage)
    [tool_call] = call.tool_calls
    assert tool_call["name"] == "Calculator"
    assert set(tool_call["args"]) == {"expression"} and isinstance(tool_call["args"]["expression"], str)
    assert isinstance(tool_result, ToolMessage) and tool_result.tool_call_id == tool_call["id"]
    assert str(tool_result.content).startswith(("Answer: ", "Calculator error: "))
    assert isinstance(final, AIMessage) and not final.tool_calls and final.content
