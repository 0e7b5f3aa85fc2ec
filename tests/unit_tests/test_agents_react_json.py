"""The classic ReAct-JSON agent: the notebook's pipeline, replayed with a scripted chat model."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from pydantic import Field

from langchain_hf_chat.agents import (
    DEFAULT_STOP,
    create_react_json_agent,
    create_react_json_executor,
    demo_tools,
)
from langchain_hf_chat.agents.transcripts import (
    NOTEBOOK_FINAL_ANSWER,
    NOTEBOOK_QUESTION,
    NOTEBOOK_TOOL_CALLS,
    NOTEBOOK_TRANSCRIPT,
)


class ReplayChatModel(BaseChatModel):
    """Answers with scripted replies in order, cut at the stop sequences it is given, as a server would."""

    replies: list[str]
    calls: list[tuple[list[BaseMessage], list[str] | None]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "replay"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.calls.append((messages, stop))
        text = self.replies[len(self.calls) - 1]
        cuts = [text.find(s) for s in stop or [] if s in text]
        if cuts:
            text = text[: min(cuts)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def action(tool: str, tool_input: str, thought: str = "I should use a tool.") -> str:
    return f'Thought: {thought}\nAction:\n```\n{{"action": "{tool}", "action_input": "{tool_input}"}}\n```'


@pytest.fixture
def notebook_model() -> ReplayChatModel:
    return ReplayChatModel(replies=list(NOTEBOOK_TRANSCRIPT))


def test_first_step_is_the_search_action(notebook_model: ReplayChatModel) -> None:
    agent = create_react_json_agent(notebook_model, demo_tools())
    step = agent.invoke({"input": NOTEBOOK_QUESTION, "intermediate_steps": []})
    assert isinstance(step, AgentAction)
    assert (step.tool, step.tool_input) == ("Search", "leo dicaprio girlfriend")


def test_the_model_gets_the_observation_stop_sequence(notebook_model: ReplayChatModel) -> None:
    agent = create_react_json_agent(notebook_model, demo_tools())
    step = agent.invoke({"input": NOTEBOOK_QUESTION, "intermediate_steps": []})
    assert notebook_model.calls[0][1] == ["\nObservation"] == list(DEFAULT_STOP)
    assert isinstance(step, AgentAction)
    assert "Camila" not in step.log  # the invented observation was cut off


def test_the_model_sees_the_react_json_prompt(notebook_model: ReplayChatModel) -> None:
    agent = create_react_json_agent(notebook_model, demo_tools())
    agent.invoke({"input": NOTEBOOK_QUESTION, "intermediate_steps": []})
    system, human = notebook_model.calls[0][0]
    assert system.type == "system"
    assert str(system.content).startswith("Answer the following questions as best you can.")
    assert "Search(query: str) -> str - A search engine" in str(system.content)
    assert 'should be in the "action" field are: Search, Calculator' in str(system.content)
    assert human.content == f"{NOTEBOOK_QUESTION}\n\n"


def test_the_executor_replays_the_notebook_run(
    notebook_model: ReplayChatModel, capsys: pytest.CaptureFixture[str]
) -> None:
    executor = create_react_json_executor(
        notebook_model, demo_tools(), handle_parsing_errors=False, return_intermediate_steps=True
    )
    result = executor.invoke({"input": NOTEBOOK_QUESTION})

    steps = result["intermediate_steps"]
    assert [(step.tool, step.tool_input) for step, _ in steps] == list(NOTEBOOK_TOOL_CALLS)
    assert [observation for _, observation in steps] == [
        "Leo DiCaprio's girlfriend is Vittoria Ceretti, an Italian fashion model. Leonardo DiCaprio and Vittoria "
        "Ceretti have been dating since 2023 and were seen together in Los Angeles.",
        "Vittoria Ceretti's current age is 25 years. The Italian model was born in 1998.",
        "Answer: 3.991298452658078",
    ]
    assert result["output"] == NOTEBOOK_FINAL_ANSWER
    assert len(notebook_model.calls) == 4

    trace = capsys.readouterr().out
    assert "> Entering new AgentExecutor chain..." in trace
    assert "Answer: 3.991298452658078" in trace
    assert "> Finished chain." in trace


def test_the_scratchpad_carries_every_observation(notebook_model: ReplayChatModel) -> None:
    executor = create_react_json_executor(notebook_model, demo_tools(), verbose=False)
    executor.invoke({"input": NOTEBOOK_QUESTION})
    last_human = notebook_model.calls[-1][0][-1]
    scratchpad = str(last_human.content)
    assert scratchpad.startswith(f"{NOTEBOOK_QUESTION}\n\n")
    assert "\nObservation: Leo DiCaprio's girlfriend is Vittoria Ceretti" in scratchpad
    assert "\nObservation: Vittoria Ceretti's current age is 25 years." in scratchpad
    assert scratchpad.endswith("\nObservation: Answer: 3.991298452658078\nThought: ")
    assert "31 years" not in scratchpad and "Answer: 4\n" not in scratchpad


def test_stop_none_binds_no_stop_sequence() -> None:
    model = ReplayChatModel(replies=["Final Answer: done"])
    create_react_json_agent(model, demo_tools(), stop=None).invoke({"input": "hi", "intermediate_steps": []})
    assert model.calls[0][1] is None


def test_a_custom_stop_sequence_is_bound() -> None:
    model = ReplayChatModel(replies=["Final Answer: done"])
    create_react_json_agent(model, demo_tools(), stop=["\nObs", "</s>"]).invoke(
        {"input": "hi", "intermediate_steps": []}
    )
    assert model.calls[0][1] == ["\nObs", "</s>"]


def test_a_custom_prompt_is_used() -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Tools: {tool_names}\n{tools}"), ("human", "{input}\n{agent_scratchpad}")]
    )
    model = ReplayChatModel(replies=["Final Answer: done"])
    step = create_react_json_agent(model, demo_tools(), prompt=prompt).invoke({"input": "hi", "intermediate_steps": []})
    assert isinstance(step, AgentFinish)
    assert str(model.calls[0][0][0].content).startswith("Tools: Search, Calculator\n")


def test_a_prompt_without_the_react_variables_is_refused() -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "{input}")])
    with pytest.raises(ValueError, match="missing the variables: agent_scratchpad, tool_names, tools"):
        create_react_json_agent(ReplayChatModel(replies=[]), demo_tools(), prompt=prompt)


def test_unparsable_replies_become_observations_by_default() -> None:
    model = ReplayChatModel(replies=["I am not sure what to do.", "Thought: got it\nFinal Answer: 42"])
    executor = create_react_json_executor(model, demo_tools(), verbose=False, return_intermediate_steps=True)
    result = executor.invoke({"input": "What is 6 * 7?"})
    assert result["output"] == "42"
    [(step, observation)] = result["intermediate_steps"]
    assert step.tool == "_Exception"
    assert "Invalid or incomplete response" in observation


def test_unparsable_replies_raise_when_parsing_errors_are_not_handled() -> None:
    model = ReplayChatModel(replies=["I am not sure what to do."])
    executor = create_react_json_executor(model, demo_tools(), verbose=False, handle_parsing_errors=False)
    with pytest.raises(ValueError, match=r"Could not parse LLM output: I am not sure what to do\."):
        executor.invoke({"input": "What is 6 * 7?"})


def test_a_hostile_calculator_input_comes_back_as_an_error_observation() -> None:
    model = ReplayChatModel(
        replies=[action("Calculator", "__import__('os').system('id')"), "Thought: refused\nFinal Answer: no"]
    )
    executor = create_react_json_executor(model, demo_tools(), verbose=False, return_intermediate_steps=True)
    result = executor.invoke({"input": "Run id"})
    [(_, observation)] = result["intermediate_steps"]
    assert observation.startswith("Calculator error: function ")
    assert "is not allowed" in observation
    assert result["output"] == "no"


def test_an_unknown_tool_is_reported_to_the_model() -> None:
    model = ReplayChatModel(replies=[action("Weather", "Paris"), "Final Answer: unknown"])
    executor = create_react_json_executor(model, demo_tools(), verbose=False, return_intermediate_steps=True)
    result = executor.invoke({"input": "Weather in Paris?"})
    [(_, observation)] = result["intermediate_steps"]
    assert "Weather is not a valid tool, try one of [Search, Calculator]." in observation


def test_executor_options_reach_agent_executor() -> None:
    model = ReplayChatModel(replies=[action("Search", "paris")] * 3)
    executor = create_react_json_executor(model, demo_tools(), verbose=False, max_iterations=2)
    assert executor.max_iterations == 2
    result = executor.invoke({"input": "loop"})
    assert result["output"] == "Agent stopped due to iteration limit or time limit."
    assert len(model.calls) == 2


def test_llm_math_from_langchain_community_works_with_a_langchain_llm() -> None:
    from langchain_community.agent_toolkits.load_tools import load_tools

    llm = FakeListLLM(responses=["```text\n25**0.43\n```"])
    [llm_math] = load_tools(["llm-math"], llm=llm)
    assert llm_math.name == "Calculator"
    answer = llm_math.invoke("What is 25 raised to the 0.43 power?")
    assert answer.startswith("Answer: 3.99")
    assert float(answer.removeprefix("Answer: ")) == pytest.approx(3.9913, abs=1e-4)


def test_llm_math_tools_plug_into_the_react_json_agent() -> None:
    from langchain_community.agent_toolkits.load_tools import load_tools

    tools: Sequence[Any] = [
        demo_tools()[0],
        *load_tools(["llm-math"], llm=FakeListLLM(responses=["```text\n2**5\n```"])),
    ]
    model = ReplayChatModel(replies=[action("Calculator", "2 to the 5th"), "Final Answer: 32"])
    result = create_react_json_executor(model, tools, verbose=False, return_intermediate_steps=True).invoke(
        {"input": "2^5?"}
    )
    assert result["intermediate_steps"][0][1] == "Answer: 32"
    assert result["output"] == "32"


def test_importing_the_package_and_agents_stays_light() -> None:
    code = (
        "import sys, langchain_hf_chat, langchain_hf_chat.agents\n"
        "heavy = ('langchain_classic', 'langchain_community', 'numexpr', 'langchain')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
