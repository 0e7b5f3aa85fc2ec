"""REACT_JSON_PROMPT: the hwchase17/react-json hub prompt, offline."""

from __future__ import annotations

from langchain_classic.agents.chat.prompt import (
    FORMAT_INSTRUCTIONS,
    HUMAN_MESSAGE,
    SYSTEM_MESSAGE_PREFIX,
    SYSTEM_MESSAGE_SUFFIX,
)
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools.render import render_text_description

from langchain_hf_chat.agents import REACT_JSON_PROMPT, demo_tools
from langchain_hf_chat.agents.prompts import REACT_JSON_HUMAN_MESSAGE, REACT_JSON_SYSTEM_MESSAGE


def test_it_is_a_system_then_human_chat_prompt() -> None:
    assert isinstance(REACT_JSON_PROMPT, ChatPromptTemplate)
    messages = REACT_JSON_PROMPT.format_messages(tools="T", tool_names="N", input="Q", agent_scratchpad="S")
    assert [message.type for message in messages] == ["system", "human"]


def test_variables_are_the_hub_prompts() -> None:
    assert sorted(REACT_JSON_PROMPT.input_variables) == ["agent_scratchpad", "input", "tool_names", "tools"]
    assert REACT_JSON_PROMPT.partial_variables == {}


def test_text_matches_langchains_chat_agent_prompt() -> None:
    # The hub prompt is ChatAgent.create_prompt's text with {tools} and {tool_names} kept as variables.
    format_instructions = FORMAT_INSTRUCTIONS.replace("{{{{", "{{").replace("}}}}", "}}")
    expected = f"{SYSTEM_MESSAGE_PREFIX}\n\n{{tools}}\n\n{format_instructions}\n\n{SYSTEM_MESSAGE_SUFFIX}"
    assert expected == REACT_JSON_SYSTEM_MESSAGE
    assert HUMAN_MESSAGE == REACT_JSON_HUMAN_MESSAGE == "{input}\n\n{agent_scratchpad}"


def test_partial_fills_tools_and_leaves_the_run_variables() -> None:
    tools = demo_tools()
    prompt = REACT_JSON_PROMPT.partial(
        tools=render_text_description(tools), tool_names=", ".join(tool.name for tool in tools)
    )
    assert sorted(prompt.input_variables) == ["agent_scratchpad", "input"]
    system, human = prompt.format_messages(input="Who?", agent_scratchpad="Thought: hmm")
    assert 'The only values that should be in the "action" field are: Search, Calculator' in system.content
    assert "Search(query: str) -> str - A search engine" in system.content
    assert "Calculator(expression: str) -> str - Useful for when you need to answer questions about math." in (
        system.content
    )
    assert human.content == "Who?\n\nThought: hmm"


def test_the_json_blob_example_renders_with_single_braces() -> None:
    system = REACT_JSON_PROMPT.format_messages(tools="", tool_names="", input="", agent_scratchpad="")[0]
    assert '```\n{\n  "action": $TOOL_NAME,\n  "action_input": $INPUT\n}\n```' in system.content
    assert system.content.endswith("Begin! Reminder to always use the exact characters `Final Answer` when responding.")
