"""HuggingFacePipeline: the real SmolLM2 model in process, alone and under ChatHuggingFace."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_hf_chat import ChatHuggingFace
from langchain_hf_chat.llms.pipeline import HuggingFacePipeline

pytestmark = pytest.mark.real_model

PROMPT = "<|im_start|>user\nName three colors.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def pipeline() -> HuggingFacePipeline:
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
        pytest.skip("HuggingFacePipeline needs the `local` extra (transformers, torch)")
    from langchain_hf_chat.testing.model_store import ensure_model

    return HuggingFacePipeline.from_model_id(
        str(ensure_model()), task="text-generation", pipeline_kwargs={"max_new_tokens": 16}, num_threads=1
    )


def test_construction_loads_nothing() -> None:
    llm = HuggingFacePipeline.from_model_id("/nowhere/model", pipeline_kwargs={"max_new_tokens": 4})
    assert llm._local is None


def test_unsupported_task_and_device_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="`task` must be one of"):
        HuggingFacePipeline.from_model_id("m", task="summarization")
    with pytest.raises(ValueError, match="only the CPU"):
        HuggingFacePipeline.from_model_id("m", device=0)


def test_invoke_is_greedy_and_reports_generation_info(pipeline: HuggingFacePipeline) -> None:
    first = pipeline.generate([PROMPT])
    second = pipeline.invoke(PROMPT)
    text = first.generations[0][0].text
    assert text
    assert text == second
    info = first.generations[0][0].generation_info
    assert info is not None
    assert info["finish_reason"] in ("length", "eos_token")
    assert 0 < info["generated_tokens"] <= 16


def test_stream_yields_tokens_that_join_to_invoke(pipeline: HuggingFacePipeline) -> None:
    chunks = list(pipeline.stream(PROMPT))
    assert len(chunks) > 2
    assert "".join(chunks) == pipeline.invoke(PROMPT)


def test_stop_sequence_cuts_invoke_and_stream(pipeline: HuggingFacePipeline) -> None:
    full = pipeline.invoke(PROMPT)
    assert len(full) >= 12, full
    stop = full[len(full) // 2 : len(full) // 2 + 4]  # text the model is known to produce greedily
    expected = full[: full.index(stop)]
    assert pipeline.invoke(PROMPT, stop=[stop]) == expected
    assert "".join(pipeline.stream(PROMPT, stop=[stop])) == expected


def test_batch_runs_several_prompts(pipeline: HuggingFacePipeline) -> None:
    prompts = [PROMPT, PROMPT.replace("three colors", "two animals"), PROMPT.replace("three colors", "a city")]
    results = pipeline.batch(prompts)
    assert len(results) == 3
    assert all(isinstance(r, str) and r for r in results)


async def test_async_generation_does_not_block_the_event_loop(pipeline: HuggingFacePipeline) -> None:
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    text = await pipeline.ainvoke(PROMPT)
    streamed = "".join([c async for c in pipeline.astream(PROMPT)])
    done.set()
    await task
    assert text
    assert streamed == text
    assert ticks > 5  # the loop kept running while the model generated


def test_chat_model_uses_the_models_own_template(pipeline: HuggingFacePipeline) -> None:
    chat = ChatHuggingFace(llm=pipeline)
    messages = [SystemMessage("You are brief."), HumanMessage("Name three colors.")]
    expected = pipeline.tokenizer.apply_chat_template(
        [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Name three colors."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert chat._to_chat_prompt(messages) == expected
    assert chat.resolved_mode == "text"
    result = chat.invoke(messages)
    assert isinstance(result.content, str)
    assert result.content
    assert result.usage_metadata is not None
    assert result.usage_metadata["output_tokens"] > 0
    assert "".join(str(c.content) for c in chat.stream(messages)) == result.content


def test_a_batch_the_pipeline_cannot_batch_runs_one_prompt_at_a_time(
    pipeline: HuggingFacePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With stop sequences the prompts go one by one through the shared path, which sends a server's prompts side
    # by side; an in-process model must not run several generations at once.
    backend = pipeline.backend
    original = backend.generate
    in_flight = peak = 0
    lock = threading.Lock()

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(backend, "generate", counting)
    prompts = [PROMPT, PROMPT.replace("three colors", "two animals"), PROMPT.replace("three colors", "a city")]
    results = pipeline.batch(prompts, stop=["\n\n\n"])
    assert len(results) == 3 and all(isinstance(r, str) and r for r in results)
    assert peak == 1
