"""Agents: the classic ReAct-JSON agent (offline ``hwchase17/react-json`` prompt) and offline demo tools.

Needs the ``agents`` extra (``pip install "langchain-hf-chat[agents]"``) for ``langchain_classic`` and
``numexpr``; both are imported only when an agent is built or the calculator runs.

Example (the classic notebook's agent, offline):
    >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
    >>> from langchain_hf_chat.agents import create_react_json_executor, demo_tools
    >>> chat_model = FakeListChatModel(responses=["Final Answer: hello"])  # e.g. ChatHuggingFace(llm=...)
    >>> executor = create_react_json_executor(chat_model, demo_tools(), verbose=False)
    >>> executor.invoke({"input": "Say hello"})["output"]
    'hello'

Small models (grammar-forced turns on a TGI-compatible server; see :mod:`langchain_hf_chat.agents.grammar`)::

    executor = create_react_json_executor(chat_model, demo_tools(), constrain_actions=True, max_actions=4)

LangChain 1.x (native tool calling through ``ChatHuggingFace.bind_tools``)::

    from langchain.agents import create_agent
    agent = create_agent(model=ChatHuggingFace(llm=llm), tools=demo_tools())
"""

from langchain_hf_chat.agents.grammar import react_json_turn_pattern
from langchain_hf_chat.agents.prompts import REACT_JSON_PROMPT
from langchain_hf_chat.agents.react_json import (
    DEFAULT_STOP,
    ActionConstraints,
    create_react_json_agent,
    create_react_json_executor,
)
from langchain_hf_chat.agents.tools import (
    CalculatorError,
    SearchHit,
    calculator,
    demo_tools,
    evaluate_expression,
    search,
    search_corpus,
)

__all__ = [
    "DEFAULT_STOP",
    "REACT_JSON_PROMPT",
    "ActionConstraints",
    "CalculatorError",
    "SearchHit",
    "calculator",
    "create_react_json_agent",
    "create_react_json_executor",
    "demo_tools",
    "evaluate_expression",
    "react_json_turn_pattern",
    "search",
    "search_corpus",
]
