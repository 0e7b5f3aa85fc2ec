"""Tool calling with ChatHuggingFace: bind tools, read the model's tool calls, run them, send the results back.

    python examples/tools.py                      # a local scripted server (offline, instant)
    python examples/tools.py --url http://localhost:8080 --tool-choice Calculator

``--tool-choice`` forces a call (TGI's tool grammar guarantees valid arguments); small models often need it.
"""

from __future__ import annotations

from _local_server import parser, server_url
from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
from langchain_hf_chat.agents import calculator
from langchain_hf_chat.testing import ScriptedBackend

MAX_TOOL_ROUNDS = 3
QUESTION = "What is the weather in Paris, and what is 25 raised to the 0.43 power?"


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather in a city."""
    return f"Sunny, 21 degrees {unit} in {city}."  # a stand-in: no network


def scripted_replies(backend: ScriptedBackend) -> None:
    backend.queue_tool_call("get_weather", {"city": "Paris"})
    backend.queue_tool_call("Calculator", {"expression": "25**0.43"})
    backend.queue_reply("It is sunny and 21 degrees Celsius in Paris, and 25 raised to the 0.43 power is about 3.99.")


def main(argv: list[str] | None = None) -> int:
    arguments = parser(__doc__)
    arguments.add_argument("--tool-choice", default=None, help="auto (default), any, or a tool name")
    args = arguments.parse_args(argv)
    tools = {t.name: t for t in (get_weather, calculator)}
    with server_url(args.url, scripted_replies) as url:
        chat = ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url=url, max_new_tokens=128))
        model = chat.bind_tools(list(tools.values()), tool_choice=args.tool_choice)
        messages: list[BaseMessage] = [HumanMessage(QUESTION)]
        reply = model.invoke(messages)
        for _ in range(MAX_TOOL_ROUNDS):
            if not reply.tool_calls:
                break
            messages.append(reply)
            for call in reply.tool_calls:
                result = tools[call["name"]].invoke(call["args"])
                print(f"tool call: {call['name']}({call['args']}) -> {result}")
                messages.append(ToolMessage(content=str(result), tool_call_id=call["id"]))
            # After a forced call, let the model choose; it answers when it has what it needs.
            reply = chat.bind_tools(list(tools.values())).invoke(messages)
        if reply.tool_calls:  # still calling tools after MAX_TOOL_ROUNDS: ask for an answer without tools
            reply = chat.invoke(messages)
        messages.append(reply)
        print(f"answer: {messages[-1].content}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
