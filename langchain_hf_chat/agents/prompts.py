"""The ReAct-JSON chat prompt, shipped so the classic agent works without ``hub.pull``.

Source: the LangChain Hub prompt ``hwchase17/react-json`` (https://smith.langchain.com/hub/hwchase17/react-json).
It is the prompt ``langchain.agents.ChatAgent.create_prompt`` builds, with ``{tools}`` and ``{tool_names}`` left
as variables: ``SYSTEM_MESSAGE_PREFIX``, ``FORMAT_INSTRUCTIONS`` and ``SYSTEM_MESSAGE_SUFFIX`` from
``langchain_classic/agents/chat/prompt.py`` joined by blank lines, and ``HUMAN_MESSAGE`` (the input, a blank
line, the scratchpad) as the human turn. A unit test checks the text against those constants.
"""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate

__all__ = ["REACT_JSON_HUMAN_MESSAGE", "REACT_JSON_PROMPT", "REACT_JSON_SYSTEM_MESSAGE"]

# Verbatim system message of hub prompt hwchase17/react-json (LangChain Hub, owner hwchase17); as a template,
# ``{{``/``}}`` render as the literal braces around the example $JSON_BLOB.
REACT_JSON_SYSTEM_MESSAGE = """Answer the following questions as best you can. You have access to the following tools:

{tools}

The way you use the tools is by specifying a json blob.
Specifically, this json should have a `action` key (with the name of the tool to use) and a `action_input` key (with the input to the tool going here).

The only values that should be in the "action" field are: {tool_names}

The $JSON_BLOB should only contain a SINGLE action, do NOT return a list of multiple actions. Here is an example of a valid $JSON_BLOB:

```
{{
  "action": $TOOL_NAME,
  "action_input": $INPUT
}}
```

ALWAYS use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action:
```
$JSON_BLOB
```
Observation: the result of the action
... (this Thought/Action/Observation can repeat N times)
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin! Reminder to always use the exact characters `Final Answer` when responding."""  # noqa: E501

REACT_JSON_HUMAN_MESSAGE = "{input}\n\n{agent_scratchpad}"

REACT_JSON_PROMPT: ChatPromptTemplate = ChatPromptTemplate.from_messages(
    [("system", REACT_JSON_SYSTEM_MESSAGE), ("human", REACT_JSON_HUMAN_MESSAGE)]
)
"""``hub.pull("hwchase17/react-json")``, offline.

Input variables: ``tools``, ``tool_names`` (fill them with :meth:`~ChatPromptTemplate.partial`), ``input`` and
``agent_scratchpad``.

Example:
    >>> from langchain_hf_chat.agents import REACT_JSON_PROMPT
    >>> sorted(REACT_JSON_PROMPT.input_variables)
    ['agent_scratchpad', 'input', 'tool_names', 'tools']
    >>> prompt = REACT_JSON_PROMPT.partial(tools="Search: look things up", tool_names="Search")
    >>> messages = prompt.format_messages(input="Who?", agent_scratchpad="")
    >>> [m.type for m in messages]
    ['system', 'human']
    >>> '"action": $TOOL_NAME' in messages[0].content
    True
"""
