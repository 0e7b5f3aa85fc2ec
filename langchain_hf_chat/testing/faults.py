"""Fault injection for the TGI test server (protocol README §11).

A :class:`Fault` describes how one request should go wrong. Faults are combined with ``|`` and are applied
either programmatically, to the next N requests (``server.inject(Fault.loading(), times=2)``), or per
request with the ``X-TGI-Fault`` header, whose value is one or more constructor calls separated by ``;``::

    X-TGI-Fault: loading(estimated_time=2)
    X-TGI-Fault: rate_limit(retry_after=1, ratelimit=True)
    X-TGI-Fault: delay(first_byte=0.5); slow_tokens(0.05); disconnect(after=3)
    X-TGI-Fault: status(502)
    X-TGI-Fault: error_event(after=2, error_type="generation")

Arguments are Python literals (numbers, strings, booleans, ``None``). Three families of faults exist:

* **HTTP faults** answer before any TGI logic, like a proxy or the HF router would: :meth:`Fault.status`,
  :meth:`Fault.loading`, :meth:`Fault.rate_limit`, :meth:`Fault.accept_then_close`, :meth:`Fault.delay`.
* **TGI errors** behave as TGI does: an HTTP status on non-stream routes, an in-stream error event (in the
  route's flavour, README §5.2) on stream routes: :meth:`Fault.overloaded`, :meth:`Fault.validation`,
  :meth:`Fault.generation_error`, :meth:`Fault.incomplete`, :meth:`Fault.error_event`.
* **Stream faults** damage the SSE wire: :meth:`Fault.disconnect`, :meth:`Fault.eof`,
  :meth:`Fault.missing_done`, :meth:`Fault.partial_line`, :meth:`Fault.malformed_sse`,
  :meth:`Fault.done_without_space`, :meth:`Fault.no_space`, :meth:`Fault.split_event`,
  :meth:`Fault.sse_fields`, :meth:`Fault.crlf`, :meth:`Fault.keep_alive`, :meth:`Fault.slow_tokens`.
"""

from __future__ import annotations

import ast
import datetime as _dt
import email.utils
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

__all__ = ["Fault", "FaultSpecError", "default_status_body"]

ErrorFlavour = Literal["auto", "tgi", "openai"]

#: ``eof_after`` value meaning "stop just before the final event".
BEFORE_FINAL = -1


class FaultSpecError(ValueError):
    """An ``X-TGI-Fault`` header that cannot be parsed."""


@dataclass(frozen=True)
class Fault:
    """How one request goes wrong. Build faults with the constructors, not the fields.

    Example:
        >>> fault = Fault.delay(first_byte=0.2) | Fault.disconnect(after=3)
        >>> fault.first_byte_delay, fault.disconnect_after
        (0.2, 3)
        >>> Fault.parse("rate_limit(retry_after=1)").status_code
        429
    """

    name: str = ""
    # HTTP faults
    status_code: int | None = None
    body: bytes | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    first_byte_delay: float = 0.0
    close_connection: bool = False
    # TGI errors
    error_type: str | None = None
    error_message: str | None = None
    error_after: int = 0
    error_flavour: ErrorFlavour = "auto"
    # stream faults
    token_interval: float = 0.0
    disconnect_after: int | None = None
    eof_after: int | None = None
    partial_after: int | None = None
    malformed_after: int | None = None
    split_after: int | None = None
    omit_done: bool = False
    done_no_space: bool = False
    data_no_space: bool = False
    crlf_endings: bool = False
    extra_sse_fields: bool = False
    keep_alive_comments: int = 0

    def __or__(self, other: Fault) -> Fault:
        """Combine two faults; fields set on ``other`` win."""
        changes: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(other, f.name)
            if f.name != "name" and value != f.default:
                changes[f.name] = value
        name = "|".join(n for n in (self.name, other.name) if n)
        return replace(self, name=name, **changes)

    # -- HTTP faults ---------------------------------------------------------------------------

    @classmethod
    def status(
        cls,
        code: int,
        body: str | bytes | Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> Fault:
        """Answer with ``code`` before any TGI logic.

        ``body``: a mapping is sent as JSON, a string as ``text/plain`` (or ``content_type``), ``None``
        picks the body TGI or the HF router sends for that status (see :func:`default_status_body`).

        Example:
            >>> Fault.status(502).status_code
            502
        """
        raw: bytes | None
        if body is None:
            raw = None
        elif isinstance(body, Mapping):
            raw = json.dumps(dict(body), ensure_ascii=False, separators=(",", ":")).encode()
            content_type = content_type or "application/json"
        elif isinstance(body, str):
            raw = body.encode("utf-8")
            content_type = content_type or "text/plain; charset=utf-8"
        else:
            raw = bytes(body)
        return cls(
            name=f"status({code})",
            status_code=code,
            body=raw,
            content_type=content_type,
            headers=tuple((headers or {}).items()),
        )

    @classmethod
    def loading(
        cls,
        estimated_time: float = 20.0,
        *,
        retry_after: float | None = None,
        model_id: str | None = None,
    ) -> Fault:
        """503 ``{"error":"Model <id> is currently loading","estimated_time":<float>}``.

        Example:
            >>> Fault.loading(estimated_time=2, retry_after=2).headers
            (('retry-after', '2'),)
        """
        body: dict[str, Any] = {
            "error": f"Model {model_id or '{model_id}'} is currently loading",
            "estimated_time": float(estimated_time),
        }
        headers = {"retry-after": _retry_after(retry_after)} if retry_after is not None else {}
        fault = cls.status(503, body, headers=headers)
        return replace(fault, name="loading")

    @classmethod
    def rate_limit(
        cls,
        retry_after: float | str | _dt.datetime | None = 1,
        *,
        http_date: bool = False,
        ratelimit: bool = False,
        limit: int = 100,
        window: int = 60,
        message: str = "Rate limit reached. Please slow down.",
    ) -> Fault:
        """429 with ``Retry-After`` (seconds, or an HTTP-date with ``http_date=True`` or a datetime).

        ``ratelimit=True`` adds the IETF headers ``RateLimit: "api";r=0;t=<s>`` and
        ``RateLimit-Policy: "fixed window";"api";q=<limit>;w=<window>`` the HF router may send.

        Example:
            >>> dict(Fault.rate_limit(retry_after=3).headers)["retry-after"]
            '3'
        """
        headers: dict[str, str] = {}
        if retry_after is not None:
            if http_date and isinstance(retry_after, int | float):
                retry_after = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=math.ceil(retry_after))
            headers["retry-after"] = _retry_after(retry_after)
        if ratelimit:
            reset = retry_after if isinstance(retry_after, int | float) else window
            headers["ratelimit"] = f'"api";r=0;t={math.ceil(reset)}'
            headers["ratelimit-policy"] = f'"fixed window";"api";q={limit};w={window}'
        return replace(cls.status(429, {"error": message}, headers=headers), name="rate_limit")

    @classmethod
    def accept_then_close(cls) -> Fault:
        """Close the connection without sending any HTTP response (``httpx.RemoteProtocolError``)."""
        return cls(name="accept_then_close", close_connection=True)

    @classmethod
    def delay(cls, first_byte: float = 0.5) -> Fault:
        """Wait ``first_byte`` seconds before sending the response headers (client read timeouts)."""
        return cls(name="delay", first_byte_delay=float(first_byte))

    # -- TGI errors ----------------------------------------------------------------------------

    @classmethod
    def error_event(
        cls,
        after: int = 0,
        error_type: str = "generation",
        message: str | None = None,
        *,
        flavour: ErrorFlavour = "auto",
    ) -> Fault:
        """A TGI error after ``after`` generated tokens.

        On stream routes: the tokens, then an error event (``{"error","error_type"}`` on
        ``/generate_stream``; ``{"error":{"message","http_status_code":422}}`` then ``[DONE]`` on chat and
        completions; ``flavour`` forces one). On other routes: the matching HTTP status and JSON envelope.
        ``message`` is the text after TGI's prefix (e.g. the shard message of a generation error).

        Example:
            >>> Fault.error_event(after=2, error_type="generation").error_after
            2
        """
        return cls(
            name=f"error_event({error_type})",
            error_type=error_type,
            error_message=message,
            error_after=int(after),
            error_flavour=flavour,
        )

    @classmethod
    def overloaded(cls) -> Fault:
        """TGI's 429 ``Model is overloaded`` (no ``Retry-After``); an error event on streams."""
        return replace(cls.error_event(0, "overloaded"), name="overloaded")

    @classmethod
    def validation(cls, message: str = "`temperature` must be strictly positive") -> Fault:
        """422 ``Input validation error: <message>``; an error event on streams."""
        return replace(cls.error_event(0, "validation", message), name="validation")

    @classmethod
    def generation_error(cls, after: int = 0, message: str = "CUDA out of memory. Tried to allocate 2.00 GiB") -> Fault:
        """424 ``Request failed during generation: Server error: <message>``, after ``after`` tokens.

        Also marks the server unhealthy (``GET /health`` → 503) until ``server.healthy = True``.
        """
        return replace(cls.error_event(after, "generation", message), name="generation_error")

    @classmethod
    def incomplete(cls, after: int = 0) -> Fault:
        """The backend stops without a final token: 500 ``incomplete_generation`` or the stream event."""
        return replace(cls.error_event(after, "incomplete_generation"), name="incomplete")

    # -- stream faults -------------------------------------------------------------------------

    @classmethod
    def slow_tokens(cls, interval: float = 0.05) -> Fault:
        """Wait ``interval`` seconds before each generated token (streams and non-stream bodies)."""
        return cls(name="slow_tokens", token_interval=float(interval))

    @classmethod
    def disconnect(cls, after: int = 1) -> Fault:
        """Close the socket after ``after`` events, without ending the chunked body.

        httpx raises ``RemoteProtocolError``. On non-stream routes the connection closes before any
        response.
        """
        return cls(name="disconnect", disconnect_after=int(after))

    @classmethod
    def eof(cls, after: int | None = None) -> Fault:
        """End the body cleanly after ``after`` events (default: just before the final event).

        No final event and no ``[DONE]`` are sent; clients see a stream that simply stops.
        """
        return cls(name="eof", eof_after=BEFORE_FINAL if after is None else int(after))

    @classmethod
    def missing_done(cls) -> Fault:
        """Leave out ``data: [DONE]`` (chat and completions streams)."""
        return cls(name="missing_done", omit_done=True)

    @classmethod
    def partial_line(cls, after: int = 1) -> Fault:
        """After ``after`` events, send half of the next ``data:`` line and end the body."""
        return cls(name="partial_line", partial_after=int(after))

    @classmethod
    def malformed_sse(cls, after: int = 1) -> Fault:
        """Insert a ``data:`` line with invalid JSON after ``after`` events, then go on."""
        return cls(name="malformed_sse", malformed_after=int(after))

    @classmethod
    def done_without_space(cls) -> Fault:
        """Send ``data:[DONE]`` instead of ``data: [DONE]``."""
        return cls(name="done_without_space", done_no_space=True)

    @classmethod
    def no_space(cls) -> Fault:
        """Frame every event as ``data:{json}`` (TGI ≤ 2.0, axum 0.6)."""
        return cls(name="no_space", data_no_space=True)

    @classmethod
    def split_event(cls, after: int = 0) -> Fault:
        """Split the JSON of event number ``after`` over two ``data:`` lines (legal SSE, never TGI)."""
        return cls(name="split_event", split_after=int(after))

    @classmethod
    def sse_fields(cls) -> Fault:
        """Precede every event with ``event:``, ``id:`` and ``retry:`` lines."""
        return cls(name="sse_fields", extra_sse_fields=True)

    @classmethod
    def crlf(cls) -> Fault:
        r"""Use ``\r\n`` line endings."""
        return cls(name="crlf", crlf_endings=True)

    @classmethod
    def keep_alive(cls, comments: int = 1) -> Fault:
        """Send ``comments`` keep-alive ``:`` comments before every event."""
        return cls(name="keep_alive", keep_alive_comments=int(comments))

    # -- header spec ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Parse an ``X-TGI-Fault`` header value (see the module docstring).

        Example:
            >>> Fault.parse("status(503); delay(first_byte=0.1)").first_byte_delay
            0.1
        """
        result: Fault | None = None
        for item in _split_top_level(spec):
            fault = _parse_call(item)
            result = fault if result is None else result | fault
        if result is None:
            raise FaultSpecError("empty fault spec")
        return result


_CONSTRUCTORS: dict[str, Callable[..., Fault]] = {
    name: getattr(Fault, name)
    for name in (
        "status",
        "loading",
        "rate_limit",
        "accept_then_close",
        "delay",
        "error_event",
        "overloaded",
        "validation",
        "generation_error",
        "incomplete",
        "slow_tokens",
        "disconnect",
        "eof",
        "missing_done",
        "partial_line",
        "malformed_sse",
        "done_without_space",
        "no_space",
        "split_event",
        "sse_fields",
        "crlf",
        "keep_alive",
    )
}


def _split_top_level(spec: str) -> list[str]:
    items: list[str] = []
    depth = 0
    quote: str | None = None
    current = ""
    for char in spec:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == ";" and depth == 0:
            items.append(current.strip())
            current = ""
            continue
        current += char
    items.append(current.strip())
    return [item for item in items if item]


def _parse_call(item: str) -> Fault:
    try:
        node = ast.parse(item if "(" in item else f"{item}()", mode="eval").body
    except SyntaxError as exc:
        raise FaultSpecError(f"cannot parse {item!r}") from exc
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise FaultSpecError(f"expected name(args), got {item!r}")
    constructor = _CONSTRUCTORS.get(node.func.id)
    if constructor is None:
        raise FaultSpecError(f"unknown fault {node.func.id!r}; known: {', '.join(_CONSTRUCTORS)}")
    try:
        args = [ast.literal_eval(arg) for arg in node.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
        return constructor(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise FaultSpecError(f"bad arguments in {item!r}: {exc}") from exc


def _retry_after(value: float | str | _dt.datetime) -> str:
    if isinstance(value, _dt.datetime):
        return email.utils.format_datetime(value.astimezone(_dt.timezone.utc), usegmt=True)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def default_status_body(code: int, model_id: str) -> tuple[bytes, str]:
    """The body (and content type) TGI or the HF router sends for ``code``, for :meth:`Fault.status`."""
    json_bodies: dict[int, dict[str, Any]] = {
        400: {"error": f"The requested model '{model_id}' is not supported by any provider you have enabled."},
        401: {"error": "Invalid credentials in Authorization header"},
        402: {
            "error": "You have exceeded your monthly included credits for Inference Providers. "
            "Subscribe to PRO to get 20x more monthly included credits."
        },
        403: {
            "error": "This authentication method does not have sufficient permissions to call "
            "Inference Providers on behalf of user"
        },
        404: {"error": f"Model {model_id} does not exist"},
        422: {
            "error": "Input validation error: `temperature` must be strictly positive",
            "error_type": "validation",
        },
        424: {
            "error": "Request failed during generation: Server error: CUDA out of memory. Tried to allocate 2.00 GiB",
            "error_type": "generation",
        },
        429: {"error": "Rate limit reached. Please slow down."},
        500: {"error": "Incomplete generation", "error_type": "incomplete_generation"},
        503: {"error": f"Model {model_id} is currently loading", "estimated_time": 20.0},
    }
    if code in json_bodies:
        return json.dumps(json_bodies[code], separators=(",", ":")).encode(), "application/json"
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    if code in (502, 504):
        html = f"<html><head><title>{code} {phrase}</title></head><body><h1>{code} {phrase}</h1></body></html>"
        return html.encode(), "text/html"
    return json.dumps({"error": phrase}).encode(), "application/json"
