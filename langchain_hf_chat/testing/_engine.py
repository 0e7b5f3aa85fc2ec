"""What every generating route shares: permits, validation, running the backend, fault-made errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from langchain_hf_chat.testing._errors import (
    InferError,
    generation_error,
    incomplete_error,
    overloaded_error,
    template_error,
    tool_error,
    validation_error,
)
from langchain_hf_chat.testing._state import ServerState
from langchain_hf_chat.testing._validation import RequestParameters, Validated, validate
from langchain_hf_chat.testing._wire import Generation
from langchain_hf_chat.testing.backends.base import (
    Backend,
    Finish,
    GenerationRequest,
    Token,
)
from langchain_hf_chat.testing.faults import Fault

__all__ = ["Engine", "NoResponse", "fault_error"]

T = TypeVar("T")
_NO_FAULT = Fault()
_DEFAULT_MESSAGES = {
    "validation": "`temperature` must be strictly positive",
    "generation": "CUDA out of memory. Tried to allocate 2.00 GiB",
}


def fault_error(fault: Fault, *, stream: bool) -> InferError:
    """The TGI error a :meth:`Fault.error_event` stands for."""
    kind = fault.error_type or "generation"
    message = fault.error_message or _DEFAULT_MESSAGES.get(kind)
    if kind == "validation":
        return validation_error(message or "")
    if kind == "generation":
        return generation_error(message or "")
    if kind == "overloaded":
        return overloaded_error()
    if kind in ("incomplete", "incomplete_generation", "incomplete_generation_stream"):
        return incomplete_error(stream=stream)
    if kind == "template_error":
        return template_error(message or "template not found")
    if kind == "tool_error":
        return tool_error(message or "Tool with name unknown not found")
    return InferError(message or kind, kind)


class NoResponse(Response):
    """Sends nothing: the connection was closed on purpose."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        return


class Engine:
    """Runs generations for the routes, applying the request's fault."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    @property
    def backend(self) -> Backend:
        """The configured backend."""
        return self.state.config.backend

    @contextmanager
    def permits(self, count: int = 1) -> Iterator[None]:
        """Hold ``count`` concurrency permits; 429 ``overloaded`` when none is free."""
        if not self.state.try_acquire(count):
            self.state.count("failure:overloaded")
            raise overloaded_error()
        try:
            yield
        finally:
            self.state.release(count)

    def validate(self, inputs: str, params: RequestParameters, *, best_of: int = 1) -> Validated:
        """TGI's validation with the server's limits and the backend's tokenizer."""
        try:
            return validate(inputs, params, self.state.config.limits, self.backend.tokenize, best_of=best_of)
        except InferError:
            self.state.count("failure:validation")
            raise

    def prefill(self, validated: Validated, params: RequestParameters) -> list[dict[str, Any]]:
        """``details.prefill``: empty unless asked for and enabled on the server (as in TGI)."""
        if not (params.decoder_input_details and self.state.config.enable_prefill_logprobs):
            return []
        pieces = self.backend.tokenize(validated.inputs)
        return [
            {"id": tid, "text": text, "logprob": None if i == 0 else -1.0} for i, (tid, text, _, _) in enumerate(pieces)
        ]

    async def events(
        self, request: GenerationRequest, fault: Fault | None, *, stream: bool
    ) -> AsyncIterator[Token | Finish]:
        """The backend's events with the fault applied; backend failures become TGI errors.

        Raises :class:`InferError` for a generation error (the server turns unhealthy) and for a backend
        that stops without a :class:`Finish` (incomplete generation).
        """
        fault = fault or _NO_FAULT
        count = 0
        finished = False
        generator = self.backend.generate(request)
        try:
            async for event in generator:
                if fault.error_type is not None and count >= fault.error_after:
                    raise fault_error(fault, stream=stream)
                if isinstance(event, Finish):
                    finished = True
                    yield event
                    break
                if fault.token_interval > 0:
                    await asyncio.sleep(fault.token_interval)
                count += 1
                yield event
        except InferError as exc:
            self._count_failure(exc)
            raise
        except Exception as exc:
            error = generation_error(str(exc) or type(exc).__name__)
            self._count_failure(error)
            raise error from exc
        finally:
            aclose = getattr(generator, "aclose", None)
            if aclose is not None:
                await aclose()
        if not finished:
            if fault.error_type is not None:
                raise fault_error(fault, stream=stream)
            error = incomplete_error(stream=stream)
            self._count_failure(error)
            raise error

    def _count_failure(self, error: InferError) -> None:
        if error.error_type == "generation":
            self.state.healthy = False
        self.state.count(f"failure:{error.error_type.split('_')[0]}")

    async def collect(
        self,
        request: GenerationRequest,
        validated: Validated,
        fault: Fault | None,
        *,
        started: float,
        prefill: list[dict[str, Any]] | None = None,
    ) -> Generation:
        """Run a whole (non-stream) generation."""
        begin = time.monotonic()
        tokens: list[Token] = []
        finish: Finish | None = None
        async for event in self.events(request, fault, stream=False):
            if isinstance(event, Finish):
                finish = event
            else:
                tokens.append(event)
        assert finish is not None
        self.state.count("success")
        return Generation(
            tokens=tokens,
            finish_reason=finish.reason,
            seed=finish.seed,
            input_length=validated.input_length,
            inputs=validated.inputs,
            prefill=prefill or [],
            started=started,
            validation_time=max(begin - started, 0.0),
            inference_time=time.monotonic() - begin,
        )

    def request(
        self,
        validated: Validated,
        route: str,
        headers: Mapping[str, str],
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> GenerationRequest:
        """The :class:`GenerationRequest` handed to the backend."""
        return GenerationRequest(
            inputs=validated.inputs,
            parameters=validated.parameters,
            route=route,
            messages=messages,
            tools=tools,
            headers=dict(headers),
        )

    async def until_disconnect(self, http: Request, work: Awaitable[T]) -> T | None:
        """Await ``work``, or cancel it and return ``None`` if the client disconnects first."""
        task = asyncio.ensure_future(work)
        watcher = asyncio.ensure_future(_wait_disconnect(http.receive))
        try:
            done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.state.count_disconnect()
            return None
        finally:
            watcher.cancel()


async def _wait_disconnect(receive: Callable[[], Awaitable[Any]]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
