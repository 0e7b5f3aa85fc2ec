"""Measurements that need a fresh interpreter or no server round trips; each prints one JSON line.

``python _oneshot.py import STATEMENT``
    Seconds to execute ``STATEMENT`` (an import) in a fresh interpreter, RSS after it, and which heavy
    packages it pulled in.
``python _oneshot.py memory URL NAME``
    RSS after importing and building contender ``NAME``, then after 1,000 ``invoke`` calls.
``python _oneshot.py construct ROUNDS NAME...``
    Microseconds to construct each class (interleaved rounds; medians and quartiles).
``python _oneshot.py render ROUNDS``
    ``ChatHuggingFace._to_chat_prompt`` vs ``transformers``' ``apply_chat_template`` on the same templates.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
HEAVY = ("transformers", "torch", "langchain_community", "numpy", "jinja2", "tokenizers", "openai", "tiktoken")


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure_import(statement: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    exec(statement, {})  # the orchestrator passes fixed import statements
    seconds = time.perf_counter() - t0
    pulled = sorted(name for name in HEAVY if name in sys.modules)
    return {"seconds": seconds, "rss_mib": _rss_mib(), "heavy": pulled, "modules": len(sys.modules)}


def measure_memory(url: str, name: str, calls: int = 1000) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from _contenders import build

    contender = build(name, url)
    assert contender.invoke is not None
    contender.invoke()
    gc.collect()
    after_import = _rss_mib()
    for _ in range(calls):
        contender.invoke()
    gc.collect()
    return {"after_import_mib": after_import, "after_calls_mib": _rss_mib()}


def _quartiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {"median": statistics.median(values), "q1": q[0], "q3": q[2], "n": len(values)}


def _interleave(builders: dict[str, Callable[[], Any]], rounds: int, per_round: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in builders}
    for build in builders.values():
        build()  # first construction pays one-time costs (pydantic schema, imports); not what is measured
    for _ in range(rounds):
        for name, build in builders.items():
            t0 = time.perf_counter()
            for _ in range(per_round):
                build()
            samples[name].append((time.perf_counter() - t0) / per_round * 1e6)
    return {name: _quartiles(values) for name, values in samples.items()}


def _constructors(url: str) -> dict[str, Callable[[], Any]]:
    sys.path.insert(0, str(HERE))
    from _contenders import MODEL_ID, ZEPHYR

    out: dict[str, Callable[[], Any]] = {}
    try:
        from huggingface_hub import InferenceClient

        out["raw InferenceClient"] = lambda: InferenceClient(base_url=url)
    except ImportError:
        pass
    try:
        from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceTextGenInference

        tgi = HuggingFaceTextGenInference(inference_server_url=url)
        out["ours HuggingFaceTextGenInference"] = lambda: HuggingFaceTextGenInference(inference_server_url=url)
        out["ours HuggingFaceEndpoint"] = lambda: HuggingFaceEndpoint(endpoint_url=url)
        out["ours ChatHuggingFace (chat)"] = lambda: ChatHuggingFace(llm=tgi, model_id=MODEL_ID)
        out["ours ChatHuggingFace (text)"] = lambda: ChatHuggingFace(
            llm=tgi, model_id=MODEL_ID, mode="text", chat_template=ZEPHYR
        )
    except ImportError:
        pass
    try:
        from langchain_huggingface import ChatHuggingFace as LCChat
        from langchain_huggingface import HuggingFaceEndpoint as LCEndpoint

        endpoint = LCEndpoint(endpoint_url=url, task="text-generation")
        out["langchain-huggingface HuggingFaceEndpoint"] = lambda: LCEndpoint(endpoint_url=url, task="text-generation")
        out["langchain-huggingface ChatHuggingFace"] = lambda: LCChat(llm=endpoint, model_id=MODEL_ID)
    except ImportError:
        pass
    try:
        from langchain_openai import ChatOpenAI

        out["ChatOpenAI"] = lambda: ChatOpenAI(base_url=url + "/v1", api_key="x", model=MODEL_ID)
    except ImportError:
        pass
    return out


def measure_construct(rounds: int) -> dict[str, Any]:
    # A URL nobody listens on: construction must not touch the network.
    return _interleave(_constructors("http://127.0.0.1:9"), rounds, per_round=50)


def _conversation(tag: str, size: int = 10) -> list[tuple[str, str]]:
    turns = [("system", f"You are a helpful assistant. Session {tag}.")]
    for i in range(1, size):
        role = "user" if i % 2 else "assistant"
        turns.append((role, f"Message {i} of conversation {tag}: some words about the weather and the sea."))
    return turns


def measure_render(rounds: int) -> dict[str, Any]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    folder = HERE.parent / "tests" / "fixtures" / "templates"
    sources = {t["file"]: t for t in json.loads((folder / "sources.json").read_text())["templates"]}
    llm = HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:9")
    results: dict[str, Any] = {}
    per_round = 20
    for file in ("zephyr-7b-beta.jinja", "llama-3.1-8b-instruct.jinja", "qwen2.5-7b-instruct.jinja"):
        source = (folder / file).read_text()
        bos, eos = sources[file].get("bos_token") or "", sources[file].get("eos_token") or ""
        chat = ChatHuggingFace(llm=llm, model_id="x", mode="text", chat_template=source, bos_token=bos, eos_token=eos)
        vocab = {"<unk>": 0, bos or "<bos>": 1, eos or "<eos>": 2}
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")),
            bos_token=bos or None,
            eos_token=eos or None,
            chat_template=source,
        )
        counter = iter(range(10**9))

        def fresh_lc(counter: Any = counter) -> list[Any]:
            return [kinds[role](content) for role, content in _conversation(str(next(counter)))]

        def fresh_dicts(counter: Any = counter) -> list[dict[str, str]]:
            return [{"role": role, "content": content} for role, content in _conversation(str(next(counter)))]

        same_lc = [kinds[role](content) for role, content in _conversation("same")]
        same_dicts = [{"role": role, "content": content} for role, content in _conversation("same")]
        ours = chat._to_chat_prompt(same_lc)
        theirs = tokenizer.apply_chat_template(same_dicts, tokenize=False, add_generation_prompt=True)
        if ours != theirs:
            results[file] = {"error": "renders differ", "ours": ours[:300], "theirs": theirs[:300]}
            continue
        # Distinct conversations are built outside the timed region, in batches, so only rendering is timed.
        samples: dict[str, list[float]] = {k: [] for k in ("ours_first", "hf_first", "ours_repeat", "hf_repeat")}
        for _ in range(rounds):
            batch_lc = [fresh_lc() for _ in range(per_round)]
            batch_dicts = [fresh_dicts() for _ in range(per_round)]
            t0 = time.perf_counter()
            for messages in batch_lc:
                chat._to_chat_prompt(messages)
            samples["ours_first"].append((time.perf_counter() - t0) / per_round * 1e6)
            t0 = time.perf_counter()
            for dicts in batch_dicts:
                tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=True)
            samples["hf_first"].append((time.perf_counter() - t0) / per_round * 1e6)
            t0 = time.perf_counter()
            for _ in range(per_round):
                chat._to_chat_prompt(same_lc)
            samples["ours_repeat"].append((time.perf_counter() - t0) / per_round * 1e6)
            t0 = time.perf_counter()
            for _ in range(per_round):
                tokenizer.apply_chat_template(same_dicts, tokenize=False, add_generation_prompt=True)
            samples["hf_repeat"].append((time.perf_counter() - t0) / per_round * 1e6)
        results[file] = {k: _quartiles(v) for k, v in samples.items()}
    return results


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "import":
        answer = measure_import(args[0])
    elif command == "memory":
        answer = measure_memory(args[0], args[1])
    elif command == "construct":
        answer = measure_construct(int(args[0]))
    elif command == "render":
        answer = measure_render(int(args[0]))
    else:
        raise SystemExit(f"unknown command {command!r}")
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
