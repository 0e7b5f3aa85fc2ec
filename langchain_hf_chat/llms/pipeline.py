"""``HuggingFacePipeline``: a local ``transformers`` model, in process, loaded on first use."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.outputs import Generation, LLMResult
from pydantic import Field, PrivateAttr

from langchain_hf_chat import errors
from langchain_hf_chat._params import merge_settings
from langchain_hf_chat.llms._backend import TextResult, TokenEvent
from langchain_hf_chat.llms._base import BaseHuggingFaceLLM

__all__ = ["HuggingFacePipeline", "LocalBackend"]

_SUPPORTED_TASKS = ("text-generation",)


def _generate_kwargs(parameters: Mapping[str, Any], eos_token_id: Any) -> dict[str, Any]:
    """``model.generate`` keyword arguments for TGI-style parameters (the same meaning as on TGI)."""
    kwargs: dict[str, Any] = {"max_new_tokens": parameters.get("max_new_tokens") or 256}
    warpers = {k: parameters[k] for k in ("temperature", "top_k", "top_p", "typical_p") if k in parameters}
    do_sample = bool(parameters.get("do_sample")) or bool(warpers)
    kwargs["do_sample"] = do_sample
    if do_sample:
        kwargs.update(warpers)
    else:
        # Greedy: reset the model's own sampling defaults so transformers does not warn or sample.
        kwargs.update({"temperature": None, "top_k": None, "top_p": None})
    if "repetition_penalty" in parameters:
        kwargs["repetition_penalty"] = parameters["repetition_penalty"]
    if eos_token_id is not None:
        kwargs["pad_token_id"] = eos_token_id if isinstance(eos_token_id, int) else eos_token_id[0]
    return kwargs


class LocalBackend:
    """Runs a causal LM in this process; same interface as the remote backends (text in, tokens out)."""

    chat_url = None
    info_url = None
    chat_model = None

    def __init__(self, owner: HuggingFacePipeline) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    # -- loading --------------------------------------------------------------------------------------------

    def load(self) -> tuple[Any, Any]:
        """Load (once) and return ``(model, tokenizer)``."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model, self._tokenizer = self._owner._load()
        return self._model, self._tokenizer

    @property
    def tokenizer(self) -> Any:
        """The tokenizer (loads the model on first access)."""
        return self.load()[1]

    # -- generation -----------------------------------------------------------------------------------------

    def _inputs(self, prompt: str) -> Any:
        _, tokenizer = self.load()
        return tokenizer(prompt, return_tensors="pt", add_special_tokens=False)

    def _check(self, parameters: Mapping[str, Any]) -> None:
        if parameters.get("grammar") is not None:
            raise errors.BadRequestError(
                "constrained decoding (grammar, forced tool calls, json_schema output) needs a TGI server; "
                "with HuggingFacePipeline use tool_choice='auto' or method='json_mode'"
            )

    def generate(self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None) -> TextResult:
        """Generate text for ``prompt``; ``timeout`` is ignored (a local run is not bounded)."""
        parts: list[str] = []
        final: TextResult | None = None
        for event in self.stream(prompt, parameters):
            if event.final is not None:
                final = event.final
            elif not event.special:
                parts.append(event.text)
        assert final is not None
        return final

    async def agenerate(
        self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None
    ) -> TextResult:
        """Generate in a worker thread so the event loop is never blocked."""
        return await asyncio.to_thread(self.generate, prompt, parameters)

    def stream(
        self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None
    ) -> Iterator[TokenEvent]:
        """Yield tokens as the model produces them (transformers' ``TextIteratorStreamer``)."""
        self._check(parameters)
        model, tokenizer = self.load()
        import torch
        from transformers import TextIteratorStreamer

        inputs = self._inputs(prompt)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = _generate_kwargs(parameters, tokenizer.eos_token_id)
        stop = [s for s in parameters.get("stop") or [] if s]
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                with self._lock:
                    if parameters.get("seed") is not None:
                        torch.manual_seed(int(parameters["seed"]))
                    with torch.inference_mode():
                        result["output"] = model.generate(
                            **inputs, streamer=streamer, stop_strings=stop or None, tokenizer=tokenizer, **kwargs
                        )
            except BaseException as exc:
                result["error"] = exc
                streamer.on_finalized_text("", stream_end=True)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        text_parts: list[str] = []
        for piece in streamer:
            if piece:
                text_parts.append(piece)
                yield TokenEvent(text=piece)
        thread.join()
        if "error" in result:
            raise errors.GenerationError(f"local generation failed: {result['error']}") from result["error"]
        output = result["output"]
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        new_ids = output[0][prompt_tokens:]
        generated = int(new_ids.shape[-1])
        text = "".join(text_parts)
        eos = tokenizer.eos_token_id
        eos_ids = set(eos) if isinstance(eos, list) else {eos}
        last = int(new_ids[-1]) if generated else None
        if any(s in text for s in stop):
            reason = "stop_sequence"
        elif last is not None and last in eos_ids:
            reason = "eos_token"
        else:
            reason = "length"
        yield TokenEvent(
            text="",
            special=True,
            final=TextResult(
                text=text,
                finish_reason=reason,
                generated_tokens=generated,
                prompt_tokens=prompt_tokens,
                seed=parameters.get("seed"),
            ),
        )

    async def astream(
        self, prompt: str, parameters: Mapping[str, Any], *, timeout: float | None = None
    ) -> AsyncIterator[TokenEvent]:
        """Async :meth:`stream`: the model runs in a thread, tokens cross over an asyncio queue."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[TokenEvent | BaseException | None] = asyncio.Queue()

        def produce() -> None:
            try:
                for event in self.stream(prompt, parameters):
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, produce)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            await worker

    def generate_batch(self, prompts: list[str], parameters: Mapping[str, Any]) -> list[TextResult]:
        """Generate for several prompts in one padded batch."""
        self._check(parameters)
        model, tokenizer = self.load()
        import torch

        kwargs = _generate_kwargs(parameters, tokenizer.eos_token_id)
        previous_side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        try:
            batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            tokenizer.padding_side = previous_side
        with self._lock:
            if parameters.get("seed") is not None:
                torch.manual_seed(int(parameters["seed"]))
            with torch.inference_mode():
                output = model.generate(**batch, **kwargs)
        width = batch["input_ids"].shape[-1]
        results = []
        for row, mask in zip(output, batch["attention_mask"], strict=True):
            new_ids = row[width:]
            text = tokenizer.decode(new_ids, skip_special_tokens=True)
            generated = int((new_ids != tokenizer.pad_token_id).sum())
            results.append(
                TextResult(
                    text=text,
                    generated_tokens=generated,
                    prompt_tokens=int(mask.sum()),
                    finish_reason="length" if generated >= kwargs["max_new_tokens"] else "eos_token",
                )
            )
        return results


class HuggingFacePipeline(BaseHuggingFaceLLM):
    """A local ``transformers`` causal LM, run in this process.

    Build it with :meth:`from_model_id` (a Hub id already in the local cache, a local folder, or a ``.gguf``
    file), or pass an existing ``transformers`` pipeline. Nothing loads until the first call.

    Instantiate:
        >>> from langchain_hf_chat.llms.pipeline import HuggingFacePipeline
        >>> llm = HuggingFacePipeline.from_model_id(
        ...     "HuggingFaceTB/SmolLM2-135M-Instruct", task="text-generation",
        ...     pipeline_kwargs={"max_new_tokens": 32},
        ... )
        >>> llm.model_id
        'HuggingFaceTB/SmolLM2-135M-Instruct'

    Use with ``ChatHuggingFace(llm=llm)``: the model's own chat template is applied (text mode).
    """

    model_id: str | None = None
    """Hub id, local folder, or ``.gguf`` file of the model."""
    task: str = "text-generation"
    pipeline: Any = Field(default=None, exclude=True)
    """An existing ``transformers`` pipeline to use instead of loading ``model_id``."""
    pipeline_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Generation parameters (``max_new_tokens``, ``temperature``, ...)."""
    loader_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for ``from_pretrained`` (``torch_dtype``, ``revision``, ...)."""
    num_threads: int | None = None
    """``torch.set_num_threads`` before loading (1 is fastest for small models on 2 cores)."""
    batch_size: int = 4

    # Prompts the pipeline cannot batch (stop sequences, streaming) run one at a time: one in-process model.
    _PARALLEL_PROMPTS: ClassVar[bool] = False

    max_new_tokens: int | None = None
    top_p: float | None = None
    typical_p: float | None = None
    temperature: float | None = None
    details: bool = False

    _local: LocalBackend | None = PrivateAttr(default=None)

    @classmethod
    def from_model_id(
        cls,
        model_id: str,
        task: str = "text-generation",
        *,
        device: int | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        pipeline_kwargs: dict[str, Any] | None = None,
        batch_size: int = 4,
        **kwargs: Any,
    ) -> HuggingFacePipeline:
        """Describe a model to load on first use (the anchors' constructor; nothing is loaded here)."""
        if task not in _SUPPORTED_TASKS:
            raise ValueError(f"`task` must be one of {list(_SUPPORTED_TASKS)}, got {task!r}")
        if device not in (None, -1, "cpu"):
            raise ValueError(f"only the CPU is supported here (device=-1 or 'cpu'), got {device!r}")
        return cls(
            model_id=model_id,
            task=task,
            loader_kwargs=dict(model_kwargs or {}),
            pipeline_kwargs=dict(pipeline_kwargs or {}),
            batch_size=batch_size,
            **kwargs,
        )

    @property
    def _llm_type(self) -> str:
        return "huggingface_pipeline"

    def _target_description(self) -> str:
        return f"local:{self.model_id or type(self.pipeline).__name__}"

    def _default_settings(self) -> dict[str, Any]:
        # Generation parameters come from pipeline_kwargs here (model_kwargs are loader arguments in
        # the anchors' API and are merged into loader_kwargs).
        return merge_settings(self._field_settings(), self.pipeline_kwargs)

    @property
    def backend(self) -> LocalBackend:  # type: ignore[override]
        """The in-process backend (loads the model on first generation)."""
        if self._local is None:
            self._local = LocalBackend(self)
        return self._local

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (loads it on first access); ``ChatHuggingFace`` reads its chat template."""
        if self.pipeline is not None:
            return self.pipeline.tokenizer
        return self.backend.tokenizer

    def _wire_parameters(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        params = super()._wire_parameters(settings)
        for key in ("details", "return_full_text", "watermark", "do_sample"):
            if key == "do_sample" and params.get("do_sample"):
                continue
            params.pop(key, None)
        return params

    def _load(self) -> tuple[Any, Any]:
        if self.pipeline is not None:
            return self.pipeline.model, self.pipeline.tokenizer
        if not self.model_id:
            raise ValueError("HuggingFacePipeline needs `model_id` or `pipeline`")
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on extras
            raise ImportError(
                'HuggingFacePipeline needs transformers and torch: pip install "langchain-hf-chat[local]"'
            ) from exc
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        path = Path(self.model_id)
        kwargs = dict(self.model_kwargs)
        kwargs.update(self.loader_kwargs)
        if path.suffix == ".gguf" and path.is_file():
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, **kwargs)
        else:
            tokenizer = AutoTokenizer.from_pretrained(self.model_id)
            model = AutoModelForCausalLM.from_pretrained(self.model_id, **kwargs)
        model.eval()  # type: ignore[no-untyped-call]
        return model, tokenizer

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        settings = self._call_settings(stop, kwargs)
        stops = settings.get("stop", [])
        if len(prompts) == 1 or stops or self.streaming:
            return super()._generate(prompts, stop, run_manager, **kwargs)
        parameters = self._wire_parameters(settings)
        generations: list[list[Generation]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            generations.extend([self._finish(r, stops)] for r in self.backend.generate_batch(batch, parameters))
        return LLMResult(generations=generations)

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        return await asyncio.to_thread(self._generate, prompts, stop, None, **kwargs)
