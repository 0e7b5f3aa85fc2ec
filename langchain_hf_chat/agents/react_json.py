r"""The classic ReAct-JSON agent in one call, built exactly as the ChatHuggingFace notebook wrote it.

The notebook's pipeline::

    prompt = hub.pull("hwchase17/react-json")
    prompt = prompt.partial(tools=render_text_description(tools), tool_names=", ".join([t.name for t in tools]))
    chat_model_with_stop = chat_model.bind(stop=["\nObservation"])
    agent = (
        {"input": lambda x: x["input"], "agent_scratchpad": lambda x: format_log_to_str(x["intermediate_steps"])}
        | prompt
        | chat_model_with_stop
        | ReActJsonSingleInputOutputParser()
    )
    agent_executor = AgentExecutor(agent=agent, tools=tools, verbose=True)

Only the imports moved: ``format_log_to_str``, ``ReActJsonSingleInputOutputParser`` and ``AgentExecutor`` live in
``langchain_classic.agents`` today, ``render_text_description`` in ``langchain_core.tools.render``, and the hub
prompt is :data:`~langchain_hf_chat.agents.REACT_JSON_PROMPT`. ``langchain_classic`` comes with the ``agents``
extra and is imported only when an agent is built.

LangChain 1.x agents need none of this: ``create_agent`` drives the model's native tool calling, which
``ChatHuggingFace.bind_tools`` provides (``tool_choice`` is passed as ``None``, or ``"any"`` when a
``response_format`` is given as tool strategy)::

    from langchain.agents import create_agent

    agent = create_agent(model=ChatHuggingFace(llm=llm), tools=demo_tools())
    agent.invoke({"messages": [("user", "What is 25 raised to the 0.43 power?")]})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.prompts import BasePromptTemplate
from langchain_core.tools import BaseTool
from langchain_core.tools.render import render_text_description

from langchain_hf_chat.agents.prompts import REACT_JSON_PROMPT

if TYPE_CHECKING:
    from langchain_classic.agents import AgentExecutor
    from langchain_core.agents import AgentAction, AgentFinish
    from langchain_core.language_models import BaseLanguageModel
    from langchain_core.runnables import Runnable

__all__ = ["DEFAULT_STOP", "create_react_json_agent", "create_react_json_executor"]

#: The stop sequence the notebook binds: the model must not write the tool's observation itself.
DEFAULT_STOP: tuple[str, ...] = ("\nObservation",)
_REQUIRED_VARIABLES = frozenset({"tools", "tool_names", "input", "agent_scratchpad"})


def create_react_json_agent(
    chat_model: BaseLanguageModel[Any],
    tools: Sequence[BaseTool],
    *,
    prompt: BasePromptTemplate[Any] | None = None,
    stop: Sequence[str] | None = DEFAULT_STOP,
) -> Runnable[dict[str, Any], AgentAction | AgentFinish]:
    r"""Build the classic ReAct-JSON agent runnable: scratchpad mapping | prompt | model with stop | parser.

    Args:
        chat_model: any LangChain chat model (or LLM), e.g. ``ChatHuggingFace(llm=...)``.
        tools: the tools the agent may call; their names and descriptions are rendered into the prompt.
        prompt: a prompt with the variables ``tools``, ``tool_names``, ``input`` and ``agent_scratchpad``;
            defaults to :data:`~langchain_hf_chat.agents.REACT_JSON_PROMPT` (``hwchase17/react-json``).
        stop: stop sequences bound to the model; ``None`` binds none.

    Returns:
        A runnable mapping ``{"input": ..., "intermediate_steps": [...]}`` to an ``AgentAction`` or
        ``AgentFinish``; run it with ``AgentExecutor`` (see :func:`create_react_json_executor`).

    Raises:
        ValueError: the prompt lacks one of the variables above.

    Example:
        >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
        >>> from langchain_hf_chat.agents import create_react_json_agent, demo_tools
        >>> model = FakeListChatModel(responses=["Thought: easy\nFinal Answer: 42"])
        >>> agent = create_react_json_agent(model, demo_tools())
        >>> agent.invoke({"input": "What is 6 * 7?", "intermediate_steps": []}).return_values
        {'output': '42'}
    """
    from langchain_classic.agents.format_scratchpad import format_log_to_str  # the `agents` extra, imported on use
    from langchain_classic.agents.output_parsers import (
        ReActJsonSingleInputOutputParser,
    )  # the `agents` extra, imported on use

    prompt = REACT_JSON_PROMPT if prompt is None else prompt
    missing = _REQUIRED_VARIABLES - {*prompt.input_variables, *prompt.partial_variables}
    if missing:
        raise ValueError(f"the ReAct-JSON prompt is missing the variables: {', '.join(sorted(missing))}")

    prompt = prompt.partial(
        tools=render_text_description(list(tools)),
        tool_names=", ".join(tool.name for tool in tools),
    )
    model: Runnable[Any, Any] = chat_model.bind(stop=list(stop)) if stop is not None else chat_model
    agent: Runnable[dict[str, Any], AgentAction | AgentFinish] = (
        {
            "input": lambda x: x["input"],
            "agent_scratchpad": lambda x: format_log_to_str(x["intermediate_steps"]),
        }
        | prompt
        | model
        | ReActJsonSingleInputOutputParser()
    )
    return agent


def create_react_json_executor(
    chat_model: BaseLanguageModel[Any],
    tools: Sequence[BaseTool],
    *,
    prompt: BasePromptTemplate[Any] | None = None,
    stop: Sequence[str] | None = DEFAULT_STOP,
    verbose: bool = True,
    handle_parsing_errors: bool | str = True,
    **executor_kwargs: Any,
) -> AgentExecutor:
    r"""The notebook's ``AgentExecutor(agent=agent, tools=tools, verbose=True)`` around :func:`create_react_json_agent`.

    Args:
        chat_model: the chat model driving the agent.
        tools: the tools it may call.
        prompt: see :func:`create_react_json_agent`.
        stop: see :func:`create_react_json_agent`.
        verbose: print the agent's trace, as the notebook did.
        handle_parsing_errors: ``True`` (default) feeds an unparsable model reply back to the model as an
            observation, which small open models need now and then; ``False`` raises instead; a string is
            used as the observation.
        **executor_kwargs: passed to ``AgentExecutor`` (``max_iterations``, ``return_intermediate_steps``, ...).

    Example:
        >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
        >>> from langchain_hf_chat.agents import create_react_json_executor, demo_tools
        >>> model = FakeListChatModel(responses=[
        ...     'Thought: use the calculator\nAction:\n```\n{"action": "Calculator", "action_input": "6*7"}\n```',
        ...     "Thought: I now know the final answer\nFinal Answer: 42",
        ... ])
        >>> executor = create_react_json_executor(model, demo_tools(), verbose=False)
        >>> executor.invoke({"input": "What is 6 * 7?"})["output"]
        '42'
    """
    from langchain_classic.agents import AgentExecutor  # the `agents` extra, imported on use

    agent = create_react_json_agent(chat_model, tools, prompt=prompt, stop=stop)
    return AgentExecutor(
        agent=agent,
        tools=list(tools),
        verbose=verbose,
        handle_parsing_errors=handle_parsing_errors,
        **executor_kwargs,
    )
