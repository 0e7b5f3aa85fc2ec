"""LangChain 1.x ``create_agent`` with ChatHuggingFace: a native tool-calling loop over the offline demo tools.

    python examples/create_agent.py                      # a local scripted server (offline, instant)
    python examples/create_agent.py --url http://localhost:8080

The scripted server replays the tool calls a capable model makes for the classic notebook question: Search,
Search, Calculator, then the answer. Each message of the run is printed. ``--max-model-calls`` ends the loop
cleanly (``ModelCallLimitMiddleware``) when a small model keeps calling tools.
"""

from __future__ import annotations

from _local_server import parser, server_url
from langchain.agents import create_agent
from langchain.agents.middleware import ModelCallLimitMiddleware

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
from langchain_hf_chat.agents import demo_tools
from langchain_hf_chat.agents.transcripts import NOTEBOOK_FINAL_ANSWER, NOTEBOOK_QUESTION
from langchain_hf_chat.testing import ScriptedBackend


def scripted_replies(backend: ScriptedBackend) -> None:
    backend.queue_tool_call("Search", {"query": "leo dicaprio girlfriend"})
    backend.queue_tool_call("Search", {"query": "vittoria ceretti age"})
    backend.queue_tool_call("Calculator", {"expression": "25^0.43"})
    backend.queue_reply(NOTEBOOK_FINAL_ANSWER)


def main(argv: list[str] | None = None) -> int:
    arguments = parser(__doc__)
    arguments.add_argument("--question", default=NOTEBOOK_QUESTION)
    arguments.add_argument("--max-model-calls", type=int, default=5, help="end the loop after this many calls")
    args = arguments.parse_args(argv)
    with server_url(args.url, scripted_replies) as url:
        llm = HuggingFaceTextGenInference(inference_server_url=url, max_new_tokens=256)
        agent = create_agent(
            model=ChatHuggingFace(llm=llm),
            tools=demo_tools(),
            middleware=[ModelCallLimitMiddleware(run_limit=args.max_model_calls, exit_behavior="end")],
        )
        result = agent.invoke({"messages": [("user", args.question)]})
        for message in result["messages"]:
            message.pretty_print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
