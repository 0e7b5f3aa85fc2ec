"""The TGI-compatible ASGI application (Starlette): routes, recording and HTTP-level faults.

:func:`build_app` wires the routes of README §1 to a :class:`~langchain_hf_chat.testing._state.ServerState`.
The routes never know whether the backend is scripted or a real model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from langchain_hf_chat.testing import _openai, _router
from langchain_hf_chat.testing._context import Context, Handler, fault_of
from langchain_hf_chat.testing._engine import NoResponse
from langchain_hf_chat.testing._errors import BodyRejection, InferError
from langchain_hf_chat.testing._sse import SSEResponse
from langchain_hf_chat.testing._state import RecordedRequest, ServerState
from langchain_hf_chat.testing._validation import (
    COMPAT_REQUEST,
    GENERATE_REQUEST,
    RequestParameters,
    check_best_of,
    check_stream_parameters,
)
from langchain_hf_chat.testing._wire import (
    Generation,
    SSEItem,
    best_of_sequence_json,
    details_json,
    empty_response,
    error_item,
    error_response,
    json_response,
    stream_event_json,
    text_response,
    timing_headers,
)
from langchain_hf_chat.testing.backends.base import Finish, Token
from langchain_hf_chat.testing.faults import Fault, FaultSpecError, default_status_body

__all__ = ["FAULT_HEADER", "build_app"]

#: The request header that selects a fault for one request (see :mod:`langchain_hf_chat.testing.faults`).
FAULT_HEADER = "x-tgi-fault"


def _endpoint(ctx: Context, handler: Handler, *, protected: bool) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if protected and not _authorized(ctx, request):
            return empty_response(401)
        try:
            return await handler(ctx, request)
        except BodyRejection as exc:
            return text_response(exc.text, exc.status)
        except InferError as exc:
            return error_response(exc)

    return endpoint


def _authorized(ctx: Context, request: Request) -> bool:
    key = ctx.config.api_key
    if key is None:
        return True
    return request.headers.get("authorization", "").lower() == f"bearer {key}".lower()


# -- /generate, /generate_stream, POST / ---------------------------------------------------------


async def generate(ctx: Context, request: Request) -> Response:
    """``POST /generate``."""
    body = await ctx.read_json(request, GENERATE_REQUEST)
    params = RequestParameters.from_json(body.get("parameters"))
    return await _generate(ctx, request, body["inputs"], params, as_list=False)


async def generate_stream(ctx: Context, request: Request) -> Response:
    """``POST /generate_stream``."""
    body = await ctx.read_json(request, GENERATE_REQUEST)
    params = RequestParameters.from_json(body.get("parameters"))
    return _generate_stream(ctx, request, body["inputs"], params)


async def compat(ctx: Context, request: Request) -> Response:
    """``POST /``: ``/generate`` as a one-item list, or ``/generate_stream`` with ``stream: true``."""
    if request.method == "GET":
        return await health(ctx, request)
    body = await ctx.read_json(request, COMPAT_REQUEST)
    params = RequestParameters.from_json(body.get("parameters"))
    if params.return_full_text is None:
        params.return_full_text = ctx.engine.backend.model_pipeline_tag in (None, "text-generation")
    if body.get("stream", False):
        return _generate_stream(ctx, request, body["inputs"], params)
    return await _generate(ctx, request, body["inputs"], params, as_list=True)


async def _generate(
    ctx: Context, request: Request, inputs: str, params: RequestParameters, *, as_list: bool
) -> Response:
    fault = fault_of(request)
    if fault is not None and fault.disconnect_after is not None:
        await ctx.state.close_connection(request.scope.get("client"))
        return NoResponse()
    started = time.monotonic()
    engine = ctx.engine
    ctx.state.count("request")
    best_of = check_best_of(params, ctx.config.limits)

    async def run() -> list[Generation]:
        with engine.permits(best_of):
            validated = engine.validate(inputs, params, best_of=best_of)
            prefill = engine.prefill(validated, params)
            gen_request = engine.request(validated, request.url.path, request.headers)
            runs = [
                engine.collect(gen_request, validated, fault, started=started, prefill=prefill) for _ in range(best_of)
            ]
            return list(await asyncio.gather(*runs))

    gens = await engine.until_disconnect(request, run())
    if gens is None:
        return NoResponse()
    best = gens[0]
    prefix = inputs if params.return_full_text else ""
    response: dict[str, Any] = {"generated_text": prefix + best.text}
    if params.details or params.decoder_input_details:
        others = [best_of_sequence_json(g, prefix) for g in gens[1:]]
        response["details"] = details_json(best, best_of=others)
    headers = timing_headers(gens, compute_type=ctx.config.compute_type, characters=len(inputs))
    return json_response([response] if as_list else response, headers=headers)


def _generate_stream(ctx: Context, request: Request, inputs: str, params: RequestParameters) -> Response:
    fault = fault_of(request)
    engine = ctx.engine
    ctx.state.count("request")

    async def items() -> AsyncIterator[SSEItem]:
        try:
            check_stream_parameters(params)
            with engine.permits():
                validated = engine.validate(inputs, params)
                gen_request = engine.request(validated, request.url.path, request.headers)
                with_top = bool(params.top_n_tokens)
                index = 0
                previous: Token | None = None
                tokens: list[Token] = []
                async for event in engine.events(gen_request, fault, stream=True):
                    if isinstance(event, Token):
                        if previous is not None:
                            index += 1
                            yield SSEItem.of(stream_event_json(index, previous, with_top_tokens=with_top))
                        previous = event
                        tokens.append(event)
                        continue
                    yield _final_event(
                        event,
                        previous,
                        tokens,
                        index,
                        validated.input_length,
                        inputs if params.return_full_text else "",
                        params,
                        with_top,
                    )
                ctx.state.count("success")
        except InferError as exc:
            yield error_item(exc, openai=fault is not None and fault.error_flavour == "openai")

    return SSEResponse(
        items(),
        state=ctx.state,
        fault=fault,
        headers=ctx.base_headers(len(inputs)),
        space=ctx.config.version.sse_space,
    )


def _final_event(
    finish: Finish,
    last: Token | None,
    tokens: list[Token],
    index: int,
    input_length: int,
    prefix: str,
    params: RequestParameters,
    with_top: bool,
) -> SSEItem:
    token = last or Token(id=0, text="", logprob=0.0, special=True)
    text = prefix + "".join(t.text for t in tokens if not t.special)
    details = None
    if params.details:
        details = {
            "finish_reason": finish.reason,
            "generated_tokens": len(tokens),
            "seed": finish.seed,
            "input_length": input_length,
        }
    event = stream_event_json(index + 1, token, generated_text=text, details=details, with_top_tokens=with_top)
    return SSEItem.of(event, "final")


# -- tokenize, info, health, models, metrics -----------------------------------------------------


async def tokenize(ctx: Context, request: Request) -> Response:
    """``POST /tokenize``: ``[{"id","text","start","stop"}]``."""
    body = await ctx.read_json(request, GENERATE_REQUEST)
    params = RequestParameters.from_json(body.get("parameters"))
    pieces = ctx.engine.backend.tokenize(body["inputs"])
    if params.truncate is not None and params.truncate < len(pieces):
        pieces = pieces[len(pieces) - params.truncate :]
    return json_response([{"id": tid, "text": text, "start": start, "stop": stop} for tid, text, start, stop in pieces])


async def info(ctx: Context, request: Request) -> Response:
    """``GET /info`` in the configured version's shape."""
    config = ctx.config
    backend = ctx.engine.backend
    version = config.version
    body: dict[str, Any] = {
        "model_id": backend.model_id,
        "model_sha": backend.model_sha,
    }
    if not version.at_least(2, 3):
        body.update({"model_dtype": "torch.float16", "model_device_type": "cuda"})
    body["model_pipeline_tag"] = backend.model_pipeline_tag
    body.update(
        {
            "max_concurrent_requests": config.max_concurrent_requests,
            "max_best_of": config.max_best_of,
            "max_stop_sequences": config.max_stop_sequences,
        }
    )
    if version.at_least(2, 1):
        body["max_input_tokens"] = backend.max_input_tokens
    else:
        body["max_input_length"] = backend.max_input_tokens
    body["max_total_tokens"] = backend.max_total_tokens
    if not version.at_least(2, 3):
        body.update(
            {
                "waiting_served_ratio": 0.3,
                "max_batch_total_tokens": 16000,
                "max_waiting_tokens": 20,
                "max_batch_size": None,
            }
        )
    body.update(
        {
            "validation_workers": 2,
            "max_client_batch_size": config.max_client_batch_size,
            "router": "text-generation-router",
            "version": version.reported,
            "sha": config.sha,
            "docker_label": config.docker_label,
        }
    )
    return json_response(body)


async def health(ctx: Context, request: Request) -> Response:
    """``GET /health``, ``/ping`` and ``GET /``: 200 empty, or 503 ``healthcheck``."""
    if ctx.state.healthy:
        return empty_response(200)
    return json_response({"error": "unhealthy", "error_type": "healthcheck"}, 503)


async def models(ctx: Context, request: Request) -> Response:
    """``GET /v1/models``."""
    model_id = ctx.engine.backend.model_id
    return json_response(
        {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": model_id}],
        }
    )


async def metrics(ctx: Context, request: Request) -> Response:
    """``GET /metrics``: a few Prometheus counters and gauges."""
    counts = dict(ctx.state.metrics)
    lines = [
        "# TYPE tgi_request_count counter",
        f"tgi_request_count {counts.get('request', 0)}",
        "# TYPE tgi_request_success counter",
        f"tgi_request_success {counts.get('success', 0)}",
        "# TYPE tgi_request_failure counter",
    ]
    lines += [
        f'tgi_request_failure{{err="{name.split(":", 1)[1]}"}} {value}'
        for name, value in sorted(counts.items())
        if name.startswith("failure:")
    ]
    lines += [
        "# TYPE tgi_queue_size gauge",
        "tgi_queue_size 0",
        "# TYPE tgi_batch_current_size gauge",
        f"tgi_batch_current_size {ctx.state.in_flight}",
    ]
    return Response(("\n".join(lines) + "\n").encode(), media_type="text/plain; version=0.0.4")


async def invocations(ctx: Context, request: Request) -> Response:
    """``POST /invocations`` (SageMaker): chat, completions or compat, by the body's keys."""
    try:
        peek = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        peek = None
    if isinstance(peek, dict) and "messages" in peek:
        return await _openai.chat_completions(ctx, request)
    if isinstance(peek, dict) and "prompt" in peek:
        return await _openai.completions(ctx, request)
    return await compat(ctx, request)


# -- the application -----------------------------------------------------------------------------


async def _empty_404(request: Request, exc: Exception) -> Response:
    return empty_response(404)


async def _empty_405(request: Request, exc: Exception) -> Response:
    headers = getattr(exc, "headers", None) or {}
    return Response(b"", status_code=405, headers=dict(headers))


def build_app(state: ServerState) -> Any:
    """The ASGI application for ``state``: the routes wrapped in the recording/fault middleware."""
    ctx = Context(state)

    def route(path: str, handler: Handler, methods: list[str], *, protected: bool) -> Route:
        return Route(path, _endpoint(ctx, handler, protected=protected), methods=methods)

    routes = [
        route("/", compat, ["GET", "POST"], protected=False),
        route("/generate", generate, ["POST"], protected=True),
        route("/generate_stream", generate_stream, ["POST"], protected=True),
        route("/v1/chat/completions", _openai.chat_completions, ["POST"], protected=True),
        route("/v1/completions", _openai.completions, ["POST"], protected=True),
        route("/tokenize", tokenize, ["POST"], protected=True),
        route("/chat_tokenize", _openai.chat_tokenize, ["POST"], protected=False),
        route("/invocations", invocations, ["POST"], protected=True),
        route("/info", info, ["GET"], protected=False),
        route("/health", health, ["GET"], protected=False),
        route("/ping", health, ["GET"], protected=False),
        route("/metrics", metrics, ["GET"], protected=False),
        route("/v1/models", models, ["GET"], protected=False),
        # The Inference Providers router's hf-inference text route: the compat route under a model path,
        # so HuggingFaceHub / HuggingFaceEndpoint(repo_id=..., router_url=server.url) work offline.
        route("/hf-inference/models/{model_id:path}", compat, ["POST"], protected=True),
    ]
    if state.config.router:
        # First match wins: the router's chat routes shadow TGI's, and the model-info route is added.
        routes = [
            route("/v1/chat/completions", _router.chat, ["POST"], protected=False),
            route(
                "/hf-inference/models/{model_id:path}/v1/chat/completions",
                _router.provider_chat,
                ["POST"],
                protected=False,
            ),
            route("/{provider}/v1/chat/completions", _router.provider_chat, ["POST"], protected=False),
            route("/api/models/{repo_id:path}", _router.model_info, ["GET"], protected=False),
            *routes,
        ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: _empty_404, 405: _empty_405, HTTPException: _empty_404},
    )
    return _RecordAndFault(app, state)


class _RecordAndFault:
    """Outer ASGI middleware: records every request, then applies HTTP-level faults."""

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.state.request_started()
        try:
            await self._handle(scope, receive, send)
        finally:
            self.state.request_finished()

    async def _handle(self, scope: Any, receive: Any, send: Any) -> None:
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        path = scope["path"]
        try:
            fault = self._fault(path, headers.get(FAULT_HEADER))
            spec_error = None
        except FaultSpecError as exc:
            fault, spec_error = None, str(exc)
        try:
            parsed = json.loads(body) if body else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
        self.state.record(
            RecordedRequest(
                method=scope["method"],
                path=path,
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
                json=parsed,
                fault=fault.name if fault is not None else None,
            )
        )
        if spec_error is not None:
            response: Response = text_response(f"Invalid {FAULT_HEADER} header: {spec_error}", 400)
            await response(scope, receive, send)
            return
        if fault is not None and await self._http_fault(fault, scope, receive, send):
            return
        scope["langchain_hf_chat.fault"] = fault
        await self.app(scope, _replay(body, receive), send)

    def _fault(self, path: str, header: str | None) -> Fault | None:
        injected = self.state.take_fault(path)
        from_header = Fault.parse(header) if header else None
        if injected is not None and from_header is not None:
            return injected | from_header
        return injected or from_header

    async def _http_fault(self, fault: Fault, scope: Any, receive: Any, send: Any) -> bool:
        """Apply the faults that answer before any route logic; ``True`` when the response is done."""
        if fault.first_byte_delay > 0 and await _client_left_during(fault.first_byte_delay, receive):
            # Like TGI, drop a request whose client went away: nothing is generated, no queued reply is used.
            self.state.disconnects += 1
            return True
        if fault.close_connection:
            await self.state.close_connection(scope.get("client"))
            return True
        if fault.status_code is None:
            return False
        model_id = self.state.config.backend.model_id
        if fault.body is None:
            body, content_type = default_status_body(fault.status_code, model_id)
        else:
            body = fault.body.replace(b"{model_id}", model_id.encode())
            content_type = fault.content_type or "application/octet-stream"
        response = Response(body, status_code=fault.status_code, headers=dict(fault.headers))
        response.headers["content-type"] = content_type
        await response(scope, receive, send)
        return True


async def _client_left_during(delay: float, receive: Any) -> bool:
    """Sleep ``delay`` seconds; return early with ``True`` if the client disconnects meanwhile."""
    sleeper = asyncio.ensure_future(asyncio.sleep(delay))
    listener = asyncio.ensure_future(receive())
    done, _ = await asyncio.wait({sleeper, listener}, return_when=asyncio.FIRST_COMPLETED)
    left = listener in done and not listener.cancelled() and listener.exception() is None
    if left and listener.result().get("type") == "http.disconnect":
        sleeper.cancel()
        return True
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    if not sleeper.done():
        await sleeper
    return False


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
