"""A real causal LM behind the TGI-compatible server: transformers + torch on the CPU.

:class:`ModelBackend` tokenizes with the model's tokenizer, renders the model's own chat template, and
generates token by token with TGI's semantics (README §2, §7): the same logits pipeline in the same order
(repetition penalty, frequency penalty, grammar, then temperature / top-k / top-p / typical-p), greedy
decoding unless sampling is asked for, a seeded sampler whose seed is reported, real log-probabilities
(of the processed distribution, as TGI reports them) and ``top_n_tokens``, and TGI's stopping criteria
in TGI's order (length, then EOS, then a stop sequence the output now ends with; the text keeps it).
Grammars (``json`` / ``json_object`` / ``json_schema`` / ``regex``, and the tool-call grammar the chat
route builds) are enforced by llguidance token masks (:mod:`._grammar`).

``torch`` and ``transformers`` are imported when the model is first needed, never at import time, and
constructing a backend touches neither the disk nor the network.

Example:
    >>> from langchain_hf_chat.testing.backends.model import ModelBackend
    >>> backend = ModelBackend()  # SmolLM2-135M-Instruct from the model store; nothing loaded yet
    >>> backend.model_id
    'HuggingFaceTB/SmolLM2-135M-Instruct'
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from langchain_hf_chat.testing.backends.base import (
    Backend,
    BackendEvent,
    Finish,
    FinishReason,
    GenerationParameters,
    GenerationRequest,
    TemplateNotFoundError,
    TemplateRenderError,
    Token,
)
from langchain_hf_chat.testing.model_store import MODEL_ID

__all__ = ["ModelBackend"]

#: Generated tokens when a request sets no ``max_new_tokens``. TGI fills the context (up to 8192 tokens
#: here); at 10-40 tokens/s on a laptop core that is minutes of CPU, so the default is bounded.
DEFAULT_MAX_NEW_TOKENS = 256

_DONE = object()


class ModelBackend(Backend):
    """Generations from a real model, for :class:`~langchain_hf_chat.testing.TGIServer`.

    Args:
        model_path: a ``transformers`` model folder or a ``.gguf`` file (dequantized in memory, slow: see
            :func:`~langchain_hf_chat.testing.model_store.convert_gguf`). ``None`` uses SmolLM2-135M-Instruct
            from the model store, downloading and converting it on first use.
        model_id: the id reported by ``/info`` and chat responses.
        num_threads: torch intra-op threads (process-wide). One is fastest on a 2-core machine.
        default_max_new_tokens: budget when a request sets no ``max_new_tokens`` (TGI would fill the
            context); always capped by ``max_total_tokens`` minus the prompt.
        max_input_tokens: ``/info`` ``max_input_tokens``.
        max_total_tokens: ``/info`` ``max_total_tokens`` (SmolLM2's context is 8192).
        quantization: ``"int8"`` quantizes the linear layers dynamically (about 3-5x faster on CPU, slightly
            different outputs); ``None`` keeps float32.
        json_closing_reserve: under a JSON grammar, the last this-many tokens of the budget (at most half
            of it) prefer tokens that close the JSON, so it always ends valid (TGI would cut it off).
            ``0`` turns this off.

    The model loads once, on first use or with :meth:`load`; generations run one at a time on a dedicated
    worker thread, so the event loop stays free while tokens are computed.
    """

    model_pipeline_tag = "text-generation"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        model_id: str = MODEL_ID,
        num_threads: int = 1,
        default_max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        max_input_tokens: int = 8191,
        max_total_tokens: int = 8192,
        quantization: Literal["int8"] | None = None,
        json_closing_reserve: int = 48,
    ) -> None:
        self.model_path = Path(model_path).expanduser() if model_path is not None else None
        self.model_id = model_id
        self.num_threads = num_threads
        self.default_max_new_tokens = default_max_new_tokens
        self.max_input_tokens = max_input_tokens
        self.max_total_tokens = max_total_tokens
        self.quantization = quantization
        self.json_closing_reserve = json_closing_reserve
        self._load_lock = threading.Lock()
        self._tokenizer: Any = None
        self._model: Any = None
        self._template: Any = None
        self._special_ids: frozenset[int] = frozenset()
        self._eos_ids: frozenset[int] = frozenset()
        self._cache_keyword = "past_key_values"
        self._accepts_logits_to_keep = False
        self._llg_tokenizer: Any = None
        self._closers: Any = None
        # One worker: generations are serialized, and torch always runs on the same thread.
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    # -- loading ------------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """Whether the model weights are in memory."""
        return self._model is not None

    def load(self) -> None:
        """Load the tokenizer and the model now (idempotent, thread-safe, blocking)."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            import torch

            from langchain_hf_chat.testing.model_store import load_model_and_tokenizer

            torch.set_num_threads(self.num_threads)
            model, tokenizer = load_model_and_tokenizer(self._resolved_path())
            if self.quantization == "int8":
                model = _quantize_int8(model)
            import inspect

            parameters = inspect.signature(model.forward).parameters
            self._cache_keyword = "cache" if "cache" in parameters else "past_key_values"
            self._accepts_logits_to_keep = "logits_to_keep" in parameters
            self._set_tokenizer(tokenizer, model)
            self._model = model

    def _resolved_path(self) -> Path:
        if self.model_path is None:
            from langchain_hf_chat.testing.model_store import ensure_model

            self.model_path = ensure_model()
        return self.model_path

    def _ensure_tokenizer(self) -> Any:
        """The tokenizer alone is enough to tokenize and render; for a folder it loads in a fraction of a second."""
        if self._tokenizer is not None:
            return self._tokenizer
        path = self._resolved_path()
        if not path.is_dir():  # a GGUF file: the tokenizer comes with the (slow) model load
            self.load()
            return self._tokenizer
        with self._load_lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                self._set_tokenizer(AutoTokenizer.from_pretrained(path, local_files_only=True), None)
        return self._tokenizer

    def _set_tokenizer(self, tokenizer: Any, model: Any) -> None:
        self._special_ids = frozenset(int(i) for i in tokenizer.all_special_ids)
        eos: set[int] = set()
        if tokenizer.eos_token_id is not None:
            eos.add(int(tokenizer.eos_token_id))
        configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        if isinstance(configured, int):
            eos.add(configured)
        elif isinstance(configured, list):
            eos.update(int(i) for i in configured)
        self._eos_ids = frozenset(eos)
        self._tokenizer = tokenizer

    async def aclose(self) -> None:
        """Drop the model and stop the worker thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._model = None
        self._llg_tokenizer = None

    # -- tokenizer and template --------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[tuple[int, str, int, int]]:
        """``(id, text, start_byte, stop_byte)`` per token, as TGI's ``/tokenize`` (byte offsets)."""
        tokenizer = self._ensure_tokenizer()
        encoding = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        byte_at = _char_to_byte_offsets(text)
        pieces: list[tuple[int, str, int, int]] = []
        for token_id, (start, stop) in zip(encoding["input_ids"], encoding["offset_mapping"], strict=True):
            if start == stop and int(token_id) in self._special_ids:
                pieces.append((int(token_id), "", 0, 0))  # an added special token (TGI: empty text)
                continue
            pieces.append((int(token_id), text[start:stop], byte_at[start], byte_at[stop]))
        return pieces

    def render_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """Render the model's chat template in a sandbox, as transformers' ``apply_chat_template`` does."""
        template = self._chat_template()
        try:
            return str(
                template.render(
                    [dict(m) for m in messages],
                    tools=[dict(t) for t in tools] if tools is not None else None,
                    add_generation_prompt=add_generation_prompt,
                )
            )
        except Exception as error:  # the template's own message is what TGI reports
            raise TemplateRenderError(str(error)) from error

    def template_uses_tools(self) -> bool:
        """Whether the chat template reads ``tools`` (SmolLM2's does not)."""
        source = self._chat_template_source()
        if source is None:
            return False
        import jinja2.meta
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        try:
            parsed = ImmutableSandboxedEnvironment().parse(source)
        except Exception:  # a template that does not parse will fail at render time instead
            return False
        return "tools" in jinja2.meta.find_undeclared_variables(parsed)

    def _chat_template_source(self) -> str | None:
        source = self._ensure_tokenizer().chat_template
        if isinstance(source, dict):  # named templates: TGI uses "default"
            source = source.get("default")
        return source if isinstance(source, str) else None

    def _chat_template(self) -> Any:
        if self._template is not None:
            return self._template
        source = self._chat_template_source()
        if source is None:
            raise TemplateNotFoundError("template not found")
        from langchain_hf_chat._templates import ChatTemplate

        tokenizer = self._ensure_tokenizer()
        specials = {
            key: value for key, value in getattr(tokenizer, "special_tokens_map", {}).items() if isinstance(value, str)
        }
        self._template = ChatTemplate.from_string(
            source,
            bos_token=tokenizer.bos_token or "",
            eos_token=tokenizer.eos_token or "",
            special_tokens=specials,
            name=self.model_id,
        )
        return self._template

    # -- generation ------------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> AsyncIterator[BackendEvent]:
        """Yield one :class:`Token` per generated token as it is computed, then a :class:`Finish`."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                cancelled.set()

        def work() -> None:
            try:
                self.load()
                self._decode(request, cancelled, emit)
            except BaseException as error:  # handed to the consumer, raised there
                emit(error)
            finally:
                emit(_DONE)

        loop.run_in_executor(self._executor, work)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, (Token, Finish))
                yield item
        finally:
            cancelled.set()  # the consumer left (or the generation ended): stop computing

    def _decode(self, request: GenerationRequest, cancelled: threading.Event, emit: Callable[[object], None]) -> None:
        import torch

        params = request.parameters
        tokenizer, model = self._tokenizer, self._model
        # Chat prompts are rendered templates: TGI does not add special tokens to them again.
        prompt_ids = [
            int(i) for i in tokenizer(request.inputs, add_special_tokens=request.messages is None)["input_ids"]
        ]
        budget = max(self.max_total_tokens - len(prompt_ids), 0)
        wanted = params.max_new_tokens if params.max_new_tokens is not None else self.default_max_new_tokens
        max_new_tokens = min(wanted, budget)
        constraint = self._constraint(params)
        chooser = _NextTokenChooser(params, constraint)
        closing_from = max_new_tokens + 1  # the step from which a JSON grammar closes the value
        if constraint is not None and params.grammar and params.grammar.get("type") != "regex":
            closing_from -= min(self.json_closing_reserve, max_new_tokens // 2)
        if max_new_tokens <= 0:
            emit(Finish("length", chooser.seed))
            return
        texts = _IncrementalDecoder(tokenizer, prompt_ids)
        stop_sequences = [s for s in params.stop if s]
        output = ""
        all_ids = torch.tensor([prompt_ids], dtype=torch.long)
        step_ids = all_ids
        cache = self._new_cache()
        with torch.inference_mode():
            for count in range(1, max_new_tokens + 1):
                if cancelled.is_set():
                    return
                kwargs: dict[str, Any] = {self._cache_keyword: cache, "use_cache": True}
                if self._accepts_logits_to_keep:
                    kwargs["logits_to_keep"] = 1
                outputs = model(input_ids=step_ids, **kwargs)
                scores = outputs.logits[:, -1, :].float()
                token_id, logprob, top = chooser.choose(all_ids, scores, closing=count >= closing_from)
                text = texts.push(token_id)
                special = token_id in self._special_ids
                top_tokens = tuple(Token(i, tokenizer.decode([i]), lp, i in self._special_ids) for i, lp in top)
                emit(Token(token_id, text, logprob, special, top_tokens))
                reason = self._stop_reason(count, max_new_tokens, token_id)
                if reason is None and stop_sequences:
                    output += text
                    if any(output.endswith(stop) for stop in stop_sequences):
                        reason = "stop_sequence"
                if reason is not None:
                    emit(Finish(reason, chooser.seed))
                    return
                step_ids = torch.tensor([[token_id]], dtype=torch.long)
                all_ids = torch.cat([all_ids, step_ids], dim=1)

    def _stop_reason(self, count: int, max_new_tokens: int, token_id: int) -> FinishReason | None:
        # TGI's order: the length limit wins over EOS.
        if count >= max_new_tokens:
            return "length"
        if token_id in self._eos_ids:
            return "eos_token"
        return None

    def _new_cache(self) -> Any:
        try:
            from transformers import DynamicCache
        except ImportError:  # pragma: no cover - every transformers 5 has it
            return None
        return DynamicCache(config=self._model.config)

    def _constraint(self, params: GenerationParameters) -> Any:
        if not params.grammar:
            return None
        from langchain_hf_chat.testing.backends._grammar import (
            GrammarConstraint,
            closing_tokens,
            compile_grammar,
            make_llg_tokenizer,
        )

        vocab_size = int(self._model.config.vocab_size)
        if self._llg_tokenizer is None:
            self._llg_tokenizer = make_llg_tokenizer(self._tokenizer, sorted(self._eos_ids), vocab_size)
        if self._closers is None and self.json_closing_reserve > 0:
            self._closers = closing_tokens(self._tokenizer, min(vocab_size, len(self._tokenizer)))
        compiled = compile_grammar(params.grammar, self._llg_tokenizer)
        return GrammarConstraint(self._llg_tokenizer, compiled, self._closers)


class _NextTokenChooser:
    """TGI's ``NextTokenChooser``: processors, grammar, warpers, then greedy or seeded sampling."""

    def __init__(self, params: GenerationParameters, constraint: Any) -> None:
        import torch
        from transformers.generation.logits_process import (
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
            TypicalLogitsWarper,
        )

        self._torch = torch
        self._constraint = constraint
        self._top_n = params.top_n_tokens or 0
        self._processors: list[Any] = []
        if params.repetition_penalty is not None and params.repetition_penalty != 1.0:
            self._processors.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
        self._frequency_penalty = params.frequency_penalty or 0.0
        self._warpers: list[Any] = []
        if params.temperature is not None and params.temperature != 1.0:
            self._warpers.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k is not None and params.top_k != 0:
            self._warpers.append(TopKLogitsWarper(top_k=params.top_k))
        if params.top_p is not None and params.top_p < 1.0:
            self._warpers.append(TopPLogitsWarper(top_p=params.top_p))
        if params.typical_p is not None and params.typical_p < 1.0:
            self._warpers.append(TypicalLogitsWarper(mass=params.typical_p))
        # TGI samples when asked to, or when any warper is active; the router always draws a seed.
        self.sampling = params.do_sample or bool(self._warpers)
        self.seed: int | None = None
        self._generator: Any = None
        if self.sampling:
            self.seed = params.seed if params.seed is not None else random.getrandbits(64)
            self._generator = torch.Generator().manual_seed(self.seed)

    def choose(self, all_ids: Any, scores: Any, *, closing: bool = False) -> tuple[int, float, list[tuple[int, float]]]:
        """The next token id, its log-probability, and the ``top_n_tokens`` best ``(id, logprob)``."""
        torch = self._torch
        for processor in self._processors:
            scores = processor(all_ids, scores)
        if self._frequency_penalty:
            # TGI's frequency penalty: each token's share of the sequence so far, times the penalty.
            frequency = torch.zeros_like(scores)
            frequency.scatter_add_(1, all_ids, torch.ones_like(all_ids, dtype=scores.dtype))
            scores = scores - frequency / all_ids.shape[1] * self._frequency_penalty
        if self._constraint is not None:
            self._constraint.mask_logits(scores, closing=closing)
        for warper in self._warpers:
            scores = warper(all_ids, scores)
        logprobs = torch.log_softmax(scores, dim=-1)
        if self.sampling:
            probabilities = torch.softmax(scores, dim=-1)
            token_id = int(torch.multinomial(probabilities[0], 1, generator=self._generator).item())
        else:
            token_id = int(torch.argmax(scores[0]).item())
        if self._constraint is not None:
            self._constraint.advance(token_id)
        top: list[tuple[int, float]] = []
        if self._top_n:
            values, indices = torch.topk(logprobs[0], self._top_n)
            top = [(int(i), float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]
        return token_id, float(logprobs[0, token_id].item()), top


class _IncrementalDecoder:
    """TGI's ``decode_token``: each token's text, holding back bytes of an unfinished UTF-8 character."""

    def __init__(self, tokenizer: Any, prompt_ids: Sequence[int]) -> None:
        self._tokenizer = tokenizer
        self._ids = list(prompt_ids[-5:])  # a little context, so leading spaces decode as in the sequence
        self._prefix = 0
        self._read = len(self._ids)

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        decode = self._tokenizer.decode
        prefix_text = decode(self._ids[self._prefix : self._read], skip_special_tokens=False)
        new_text = decode(self._ids[self._prefix :], skip_special_tokens=False)
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return str(new_text[len(prefix_text) :])
        return ""


def _char_to_byte_offsets(text: str) -> list[int]:
    """``offsets[i]`` is the UTF-8 byte offset of character ``i`` (one extra entry for the end)."""
    offsets = [0]
    for character in text:
        offsets.append(offsets[-1] + len(character.encode("utf-8", "surrogatepass")))
    return offsets


def _quantize_int8(model: Any) -> Any:
    import warnings

    import torch
    from torch.ao import quantization

    quantize_dynamic: Any = quantization.quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
