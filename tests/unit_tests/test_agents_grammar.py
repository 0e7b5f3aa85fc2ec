"""Grammar-forced ReAct-JSON turns: the regex admits only turns the classic parser accepts, picked per turn."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_classic.agents.output_parsers import ReActJsonSingleInputOutputParser
from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from langchain_hf_chat.agents import (
    ActionConstraints,
    create_react_json_agent,
    create_react_json_executor,
    demo_tools,
    react_json_turn_pattern,
)
from langchain_hf_chat.agents.react_json import CONSTRAINED_TURN_MAX_NEW_TOKENS

TOOLS = ["Search", "Calculator"]
PATTERN = react_json_turn_pattern(TOOLS)
ACTION = 'Thought: look it up\nAction:\n```\n{"action": "Search", "action_input": "leo dicaprio girlfriend"}\n```'


class RecordingChatModel(BaseChatModel):
    """Answers with scripted replies in order and records the keyword arguments of each call."""

    replies: list[str]
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.calls.append({"messages": messages, "stop": stop, **kwargs})
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.replies[len(self.calls) - 1]))])


def action_step(tool: str, tool_input: str) -> tuple[AgentAction, str]:
    return AgentAction(tool, tool_input, f"log of {tool}"), "observation"


def matches(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None


# -- the pattern ----------------------------------------------------------------------------------------------


def test_an_action_turn_matches() -> None:
    assert matches(PATTERN, ACTION)


def test_a_final_answer_turn_matches() -> None:
    assert matches(PATTERN, "Thought: I now know the final answer\nFinal Answer: 3.99, roughly")


@pytest.mark.parametrize(
    "turn",
    [
        pytest.param(ACTION.replace('"Search"', '"Browse"'), id="unknown-tool"),
        pytest.param(ACTION.replace('"Search"', '"Final Answer"'), id="final-answer-as-a-json-action"),
        pytest.param(ACTION.replace("look it up", "Final Answer: 4"), id="final-answer-inside-the-thought"),
        pytest.param(ACTION.replace("look it up", "look\nit up"), id="newline-in-the-thought"),
        pytest.param(ACTION.replace("leo dicaprio", "leo `x`"), id="backtick-in-the-input"),
        pytest.param(ACTION.replace("leo dicaprio", 'leo "x"'), id="unescaped-quote-in-the-input"),
        pytest.param(ACTION.replace("leo dicaprio", "leo\\nx"), id="escape-other-than-quote-or-backslash"),
        pytest.param(ACTION + "\nObservation: invented", id="invented-observation"),
        pytest.param("Thought: x\nFinal Answer: ", id="empty-final-answer"),
        pytest.param("Final Answer: 4", id="no-thought"),
    ],
)
def test_turns_the_parser_would_misread_do_not_match(turn: str) -> None:
    assert not matches(PATTERN, turn)


def test_escaped_quotes_and_backslashes_are_allowed_in_the_input() -> None:
    assert matches(PATTERN, ACTION.replace("leo dicaprio", 'leo \\"x\\" \\\\'))


def test_lengths_are_bounded() -> None:
    pattern = react_json_turn_pattern(TOOLS, max_thought_chars=5, max_input_chars=3, max_answer_chars=4)
    assert matches(pattern, "Thought: abcde\nFinal Answer: abcd")
    assert not matches(pattern, "Thought: abcdef\nFinal Answer: abcd")
    assert not matches(pattern, "Thought: abc\nFinal Answer: abcde")
    assert matches(pattern, 'Thought: a\nAction:\n```\n{"action": "Search", "action_input": "abc"}\n```')
    assert not matches(pattern, 'Thought: a\nAction:\n```\n{"action": "Search", "action_input": "abcd"}\n```')


def test_an_action_only_turn_refuses_a_final_answer() -> None:
    pattern = react_json_turn_pattern(TOOLS, allow_final_answer=False)
    assert matches(pattern, ACTION)
    assert not matches(pattern, "Thought: done\nFinal Answer: 4")


def test_a_final_answer_only_turn_refuses_an_action() -> None:
    pattern = react_json_turn_pattern(TOOLS, allow_action=False)
    assert not matches(pattern, ACTION)
    assert matches(pattern, "Thought: done\nFinal Answer: 4")


def test_without_the_thought_prefix_the_turn_continues_the_scratchpad() -> None:
    pattern = react_json_turn_pattern(TOOLS, thought_prefix=False)
    assert matches(pattern, ACTION.removeprefix("Thought: "))
    assert not matches(pattern, ACTION)  # "Thought:" holds a colon, which thoughts never do


def test_tool_names_with_regex_metacharacters_are_literal() -> None:
    pattern = react_json_turn_pattern(["web.search (beta)"])
    turn = 'Thought: t\nAction:\n```\n{"action": "web.search (beta)", "action_input": "q"}\n```'
    assert matches(pattern, turn)
    assert not matches(pattern, turn.replace("web.search", "webXsearch"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allow_action": False, "allow_final_answer": False}, "must allow"),
        ({"tool_names": []}, "at least one tool"),
        ({"max_thought_chars": 0}, "max_thought_chars must be at least 1"),
    ],
)
def test_impossible_turns_are_refused(kwargs: dict[str, Any], message: str) -> None:
    kwargs = {"tool_names": TOOLS, **kwargs}
    with pytest.raises(ValueError, match=message):
        react_json_turn_pattern(**kwargs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(react_json_turn_pattern(TOOLS, max_thought_chars=40, max_input_chars=30), fullmatch=True))
def test_every_turn_the_grammar_allows_parses_into_a_known_tool_or_a_final_answer(turn: str) -> None:
    step = ReActJsonSingleInputOutputParser().parse(turn)
    if isinstance(step, AgentAction):
        assert step.tool in TOOLS
        assert isinstance(step.tool_input, str) and step.tool_input
    else:
        assert isinstance(step, AgentFinish)
        assert step.return_values["output"] == turn.rsplit("Final Answer:", 1)[1].strip()


# -- choosing the grammar per turn -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraints", "steps", "action", "final", "prefix"),
    [
        pytest.param(ActionConstraints(), [], True, False, True, id="first-turn-must-act"),
        pytest.param(ActionConstraints(), [action_step("Search", "a")], True, True, False, id="then-either"),
        pytest.param(
            ActionConstraints(final_answer_after=frozenset({"Calculator"})),
            [action_step("Search", "a"), action_step("Calculator", "2*3")],
            False,
            True,
            False,
            id="after-a-finishing-tool",
        ),
        pytest.param(
            ActionConstraints(max_actions=2),
            [action_step("Search", "a"), action_step("Search", "b")],
            False,
            True,
            False,
            id="after-max-actions",
        ),
        pytest.param(
            ActionConstraints(),
            [action_step("Search", "a"), action_step("Search", "a")],
            False,
            True,
            False,
            id="after-a-repeated-action",
        ),
        pytest.param(
            ActionConstraints(finish_on_repeat=False),
            [action_step("Search", "a"), action_step("Search", "a")],
            True,
            True,
            False,
            id="repeats-allowed",
        ),
    ],
)
def test_the_turn_grammar_follows_the_steps_so_far(
    constraints: ActionConstraints,
    steps: list[tuple[AgentAction, str]],
    action: bool,
    final: bool,
    prefix: bool,
) -> None:
    pattern = constraints.turn_pattern(TOOLS, steps)
    body = ACTION if prefix else ACTION.removeprefix("Thought: ")
    assert matches(pattern, body) is action
    assert matches(pattern, body.split("\nAction:")[0] + "\nFinal Answer: 4") is final


def test_constrained_agent_binds_a_regex_response_format_and_a_token_budget() -> None:
    model = RecordingChatModel(replies=[ACTION])
    agent = create_react_json_agent(model, demo_tools(), constrain_actions=True)

    step = agent.invoke({"input": "Who?", "intermediate_steps": []})

    assert isinstance(step, AgentAction) and step.tool == "Search"
    [call] = model.calls
    assert call["stop"] == ["\nObservation"]
    assert call["response_format"] == {
        "type": "regex",
        "value": react_json_turn_pattern(TOOLS, allow_final_answer=False),
    }
    assert call["max_new_tokens"] == CONSTRAINED_TURN_MAX_NEW_TOKENS


def test_unconstrained_agent_binds_no_grammar() -> None:
    model = RecordingChatModel(replies=[ACTION])
    create_react_json_agent(model, demo_tools()).invoke({"input": "Who?", "intermediate_steps": []})
    assert "response_format" not in model.calls[0]
    assert "max_new_tokens" not in model.calls[0]


def test_constrained_executor_finishes_after_the_calculator() -> None:
    model = RecordingChatModel(
        replies=[
            'Thought: compute\nAction:\n```\n{"action": "Calculator", "action_input": "25^0.43"}\n```',
            "I now know the final answer\nFinal Answer: 3.99",
        ]
    )
    executor = create_react_json_executor(
        model,
        demo_tools(),
        constrain_actions=True,
        final_answer_after=["Calculator"],
        verbose=False,
        handle_parsing_errors=False,
    )

    assert executor.invoke({"input": "What is 25^0.43?"})["output"] == "3.99"
    second = model.calls[1]["response_format"]["value"]
    assert second == react_json_turn_pattern(TOOLS, allow_action=False, thought_prefix=False)
    assert str(model.calls[1]["messages"][-1].content).endswith("Observation: Answer: 3.991298452658078\nThought: ")


def test_action_constraints_can_be_given_whole() -> None:
    model = RecordingChatModel(replies=[ACTION])
    constraints = ActionConstraints(max_thought_chars=50, max_new_tokens=None)
    create_react_json_agent(model, demo_tools(), constrain_actions=constraints).invoke(
        {"input": "Who?", "intermediate_steps": []}
    )
    assert "{1,50}" in model.calls[0]["response_format"]["value"]
    assert "max_new_tokens" not in model.calls[0]


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"final_answer_after": ["Calculator"]}, id="final_answer_after-unconstrained"),
        pytest.param({"max_actions": 3}, id="max_actions-unconstrained"),
        pytest.param({"constrain_actions": True, "max_actions": 0}, id="max_actions-zero"),
        pytest.param({"constrain_actions": ActionConstraints(), "max_actions": 3}, id="both-forms"),
    ],
)
def test_inconsistent_constraint_options_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        create_react_json_agent(RecordingChatModel(replies=[]), demo_tools(), **kwargs)


async def test_constrained_executor_runs_async() -> None:
    model = RecordingChatModel(
        replies=[
            'Thought: compute\nAction:\n```\n{"action": "Calculator", "action_input": "2*3"}\n```',
            "done\nFinal Answer: 6",
        ]
    )
    executor = create_react_json_executor(
        model, demo_tools(), constrain_actions=True, final_answer_after=["Calculator"], verbose=False
    )

    assert (await executor.ainvoke({"input": "2*3?"}))["output"] == "6"
    assert [call["response_format"]["type"] for call in model.calls] == ["regex", "regex"]
