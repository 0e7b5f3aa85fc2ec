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

Small open models often cannot keep to the ReAct-JSON format on their own. ``constrain_actions=True`` binds a
TGI grammar per turn (see :mod:`langchain_hf_chat.agents.grammar`) that lets the model write only a turn the
parser accepts; ``final_answer_after`` and ``max_actions`` also steer *when* it must finish.

LangChain 1.x agents need none of this: ``create_agent`` drives the model's native tool calling, which
``ChatHuggingFace.bind_tools`` provides (``tool_choice`` is passed as ``None``, or ``"any"`` when a
``response_format`` is given as tool strategy)::

    from langchain.agents import create_agent

    agent = create_agent(model=ChatHuggingFace(llm=llm), tools=demo_tools())
    agent.invoke({"messages": [("user", "What is 25 raised to the 0.43 power?")]})
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import BaseTool
from langchain_core.tools.render import render_text_description

from langchain_hf_chat.agents.grammar import (
    DEFAULT_MAX_ANSWER_CHARS,
    DEFAULT_MAX_INPUT_CHARS,
    DEFAULT_MAX_THOUGHT_CHARS,
    react_json_turn_pattern,
)
from langchain_hf_chat.agents.prompts import REACT_JSON_PROMPT

if TYPE_CHECKING:
    from langchain_classic.agents import AgentExecutor
    from langchain_core.agents import AgentAction, AgentFinish
    from langchain_core.language_models import BaseLanguageModel
    from langchain_core.runnables import Runnable

__all__ = [
    "CONSTRAINED_TURN_MAX_NEW_TOKENS",
    "DEFAULT_STOP",
    "ActionConstraints",
    "create_react_json_agent",
    "create_react_json_executor",
]

#: The stop sequence the notebook binds: the model must not write the tool's observation itself.
DEFAULT_STOP: tuple[str, ...] = ("\nObservation",)
_REQUIRED_VARIABLES = frozenset({"tools", "tool_names", "input", "agent_scratchpad"})
#: ``max_new_tokens`` bound with a grammar-forced turn: room for the longest turn the grammar allows in typical
#: tokens (about 4 characters each), so the turn ends by the grammar rather than being cut off mid-way.
CONSTRAINED_TURN_MAX_NEW_TOKENS = 256


@dataclass(frozen=True)
class ActionConstraints:
    """When a grammar-forced turn may act or must finish (see :func:`create_react_json_agent`).

    Attributes:
        final_answer_after: tool names whose observation must be followed by the final answer.
        max_actions: after this many actions the next turn must be the final answer (``None``: no limit).
        finish_on_repeat: when an action repeats the one before it (same tool and input), the next turn must
            be the final answer: the repeat observed nothing new, and small models tend to loop on it.
        max_thought_chars: longest thought per turn.
        max_input_chars: longest tool input per turn.
        max_answer_chars: longest final answer.
        max_new_tokens: token budget bound with each turn (``None`` binds none).
    """

    final_answer_after: frozenset[str] = frozenset()
    max_actions: int | None = None
    finish_on_repeat: bool = True
    max_thought_chars: int = DEFAULT_MAX_THOUGHT_CHARS
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS
    max_new_tokens: int | None = CONSTRAINED_TURN_MAX_NEW_TOKENS

    def turn_pattern(self, tool_names: Sequence[str], steps: Sequence[tuple[AgentAction, Any]]) -> str:
        """The grammar for the next turn after ``steps``.

        The first turn must call a tool (a ReAct agent that answers before observing anything is guessing);
        after a tool in ``final_answer_after``, after ``max_actions`` actions, or after a repeated action (with
        ``finish_on_repeat``) it must answer; otherwise the model chooses. Turns after the first start without
        ``Thought: ``, which the scratchpad already ends with.
        """
        actions = [action for action, _ in steps]
        repeated = len(actions) >= 2 and _same_action(actions[-1], actions[-2])
        must_finish = bool(actions) and (
            actions[-1].tool in self.final_answer_after
            or (self.max_actions is not None and len(actions) >= self.max_actions)
            or (self.finish_on_repeat and repeated)
        )
        return react_json_turn_pattern(
            tool_names,
            allow_action=not must_finish,
            allow_final_answer=bool(steps),
            thought_prefix=not steps,
            max_thought_chars=self.max_thought_chars,
            max_input_chars=self.max_input_chars,
            max_answer_chars=self.max_answer_chars,
        )


def create_react_json_agent(
    chat_model: BaseLanguageModel[Any],
    tools: Sequence[BaseTool],
    *,
    prompt: BasePromptTemplate[Any] | None = None,
    stop: Sequence[str] | None = DEFAULT_STOP,
    constrain_actions: bool | ActionConstraints = False,
    final_answer_after: Collection[str] = (),
    max_actions: int | None = None,
) -> Runnable[dict[str, Any], AgentAction | AgentFinish]:
    r"""Build the classic ReAct-JSON agent runnable: scratchpad mapping | prompt | model with stop | parser.

    Args:
        chat_model: any LangChain chat model (or LLM), e.g. ``ChatHuggingFace(llm=...)``.
        tools: the tools the agent may call; their names and descriptions are rendered into the prompt.
        prompt: a prompt with the variables ``tools``, ``tool_names``, ``input`` and ``agent_scratchpad``;
            defaults to :data:`~langchain_hf_chat.agents.REACT_JSON_PROMPT` (``hwchase17/react-json``).
        stop: stop sequences bound to the model; ``None`` binds none.
        constrain_actions: force each turn into the format the parser accepts with a TGI regex grammar
            (bound as ``response_format={"type": "regex", "value": ...}``, which ``ChatHuggingFace`` sends in
            chat mode and maps to TGI's ``grammar`` in text mode), plus ``max_new_tokens`` to fit the longest
            turn. ``True`` uses the default bounds; an :class:`ActionConstraints` sets them. The model needs a
            server with grammar support (TGI, or the test server's real-model backend).
        final_answer_after: with ``constrain_actions``: tool names whose observation must be followed by the
            final answer (e.g. ``["Calculator"]`` when the calculation is the last step of every question).
        max_actions: with ``constrain_actions``: after this many actions the next turn must be the final
            answer, so a model that keeps searching ends with an answer instead of the executor's iteration limit.

    Returns:
        A runnable mapping ``{"input": ..., "intermediate_steps": [...]}`` to an ``AgentAction`` or
        ``AgentFinish``; run it with ``AgentExecutor`` (see :func:`create_react_json_executor`).

    Raises:
        ValueError: the prompt lacks one of the variables above, or ``final_answer_after``/``max_actions`` is
            given without ``constrain_actions``.

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
    constraints = _action_constraints(constrain_actions, final_answer_after, max_actions)
    stop_kwargs: dict[str, Any] = {"stop": list(stop)} if stop is not None else {}
    head: Runnable[dict[str, Any], Any] = {
        "input": lambda x: x["input"],
        "agent_scratchpad": lambda x: format_log_to_str(x["intermediate_steps"]),
    } | prompt
    parser = ReActJsonSingleInputOutputParser()
    if constraints is None:
        model: Runnable[Any, Any] = chat_model.bind(**stop_kwargs) if stop_kwargs else chat_model
        return head | model | parser

    tool_names = [tool.name for tool in tools]
    chains: dict[str, Runnable[dict[str, Any], AgentAction | AgentFinish]] = {}

    def constrained_turn(inputs: dict[str, Any]) -> Runnable[dict[str, Any], AgentAction | AgentFinish]:
        # One chain per distinct grammar (a handful), so each turn reuses its bound model.
        pattern = constraints.turn_pattern(tool_names, inputs["intermediate_steps"])
        if pattern not in chains:
            bound = dict(stop_kwargs, response_format={"type": "regex", "value": pattern})
            if constraints.max_new_tokens is not None:
                bound["max_new_tokens"] = constraints.max_new_tokens
            chains[pattern] = head | chat_model.bind(**bound) | parser
        return chains[pattern]

    return RunnableLambda(constrained_turn, name="ReActJsonConstrainedTurn")


def _same_action(first: AgentAction, second: AgentAction) -> bool:
    return (first.tool, first.tool_input) == (second.tool, second.tool_input)


def _action_constraints(
    constrain_actions: bool | ActionConstraints, final_answer_after: Collection[str], max_actions: int | None
) -> ActionConstraints | None:
    if isinstance(constrain_actions, ActionConstraints):
        if final_answer_after or max_actions is not None:
            raise ValueError("give final_answer_after and max_actions inside the ActionConstraints")
        return constrain_actions
    if not constrain_actions:
        if final_answer_after or max_actions is not None:
            raise ValueError("final_answer_after and max_actions need constrain_actions=True")
        return None
    if max_actions is not None and max_actions < 1:
        raise ValueError(f"max_actions must be at least 1, not {max_actions}")
    return ActionConstraints(final_answer_after=frozenset(final_answer_after), max_actions=max_actions)


def create_react_json_executor(
    chat_model: BaseLanguageModel[Any],
    tools: Sequence[BaseTool],
    *,
    prompt: BasePromptTemplate[Any] | None = None,
    stop: Sequence[str] | None = DEFAULT_STOP,
    constrain_actions: bool | ActionConstraints = False,
    final_answer_after: Collection[str] = (),
    max_actions: int | None = None,
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
        constrain_actions: see :func:`create_react_json_agent`.
        final_answer_after: see :func:`create_react_json_agent`.
        max_actions: see :func:`create_react_json_agent`.
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

    agent = create_react_json_agent(
        chat_model,
        tools,
        prompt=prompt,
        stop=stop,
        constrain_actions=constrain_actions,
        final_answer_after=final_answer_after,
        max_actions=max_actions,
    )
    return AgentExecutor(
        agent=agent,
        tools=list(tools),
        verbose=verbose,
        handle_parsing_errors=handle_parsing_errors,
        **executor_kwargs,
    )
