"""The error table: HTTP failures and in-stream error events mapped to :mod:`langchain_hf_chat.errors`.

One place decides which typed error a caller gets, for every route and backend: `error_from_response` reads a
failed HTTP response (status, body of any known shape, ``Retry-After`` / ``RateLimit`` headers, request id) and
adds a hint the caller can act on; `error_from_event` does the same for an error event inside a stream. URLs in
errors are redacted (no credentials, no query string). :mod:`langchain_hf_chat._transport` raises what this
module builds.
"""

from __future__ import annotations

import email.utils
import json
import sys
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from langchain_hf_chat import errors
from langchain_hf_chat._sync_http import is_timeout, transport_error_cause

__all__ = ["error_from_event", "error_from_response"]


_ERROR_TYPE_TABLE: dict[str, type[errors.HuggingFaceError]] = {
    "validation": errors.ValidationError,
    "generation": errors.GenerationError,
    "overloaded": errors.OverloadedError,
    "incomplete_generation": errors.IncompleteGenerationError,
    "incomplete_generation_stream": errors.IncompleteGenerationError,
    "template_error": errors.TemplateError,
    "missing_template_variable": errors.TemplateError,
    "tool_error": errors.ToolError,
    "healthcheck": errors.ServerError,
}

_STATUS_TABLE: dict[int, type[errors.HuggingFaceError]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    402: errors.InsufficientCreditsError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    413: errors.BadRequestError,
    415: errors.BadRequestError,
    422: errors.BadRequestError,
    424: errors.GenerationError,
    429: errors.RateLimitError,
    503: errors.ModelLoadingError,
}

_HINTS: dict[type[errors.HuggingFaceError], str] = {
    errors.AuthenticationError: "check your Hugging Face token (HF_TOKEN) or the server's API key",
    errors.PermissionDeniedError: (
        "the token lacks a permission (for Inference Providers: 'Make calls to Inference Providers'), "
        "or the model is gated and access was not granted"
    ),
    errors.InsufficientCreditsError: (
        "your Inference Providers credits are used up: add credits or a billing method, or use bill_to "
        "for an organization"
    ),
    errors.NotFoundError: "check the URL or model id; the model may not be deployed on this server/provider",
    errors.RateLimitError: (
        "rate limited: retried automatically (honouring Retry-After) up to max_retries; lower the request rate "
        "or raise max_retries"
    ),
}


def _provider_hint(status_code: int, error_type: str | None, lowered: str) -> str | None:
    """The hint for an Inference Providers refusal that names a provider or a parameter, else ``None``."""
    if status_code == 400 and "not supported by provider" in lowered:
        return (
            "this provider does not serve the model: pick a provider that does (the model page lists them) "
            "or use provider='auto'"
        )
    if status_code == 422 and (
        (error_type or "").upper() == "UNSUPPORTED_OPENAI_PARAMS" or "not supported for this model" in lowered
    ):
        return (
            "the provider the router chose does not support these parameters (often tools): pin one that does "
            "with provider='<name>'"
        )
    return None


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _parse_ratelimit_reset(value: str | None) -> float | None:
    # IETF RateLimit header: "api";r=0;t=55
    if not value:
        return None
    for part in value.split(";"):
        key, _, val = part.strip().partition("=")
        if key == "t":
            try:
                return max(0.0, float(val))
            except ValueError:
                return None
    return None


def _server_message(body: bytes) -> tuple[str, str | None, dict[str, Any] | None]:
    """Extract ``(message, error_type, parsed_json)`` from an error body of any known shape."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return text, None, None
    if not isinstance(data, dict):
        return text, None, None
    error = data.get("error")
    error_type = data.get("error_type")
    if isinstance(error, dict):  # OpenAI style: {"error": {"message", "type", "code"}}
        message = str(error.get("message") or error)
        error_type = error_type or error.get("type") or None
    elif isinstance(error, str):
        message = error
    elif "detail" in data:
        message = str(data["detail"])
    elif "message" in data:
        message = str(data["message"])
    else:
        message = text
    return message, (str(error_type) if error_type else None), data


def error_from_response(
    status_code: int,
    body: bytes,
    headers: Mapping[str, str],
    url: str,
) -> errors.HuggingFaceError:
    """Map an HTTP failure to the typed error a caller can act on (the one table for every route)."""
    message, error_type, data = _server_message(body)
    cls: type[errors.HuggingFaceError]
    if error_type in _ERROR_TYPE_TABLE:
        cls = _ERROR_TYPE_TABLE[error_type]
    elif status_code in _STATUS_TABLE:
        cls = _STATUS_TABLE[status_code]
    elif status_code >= 500:
        cls = errors.ServerError
    else:
        cls = errors.HuggingFaceError
    lowered = message.lower()
    if status_code == 400 and "not supported by any provider" in lowered:
        cls = errors.ProviderNotSupportedError
    provider_hint = _provider_hint(status_code, error_type, lowered)
    if provider_hint is not None:
        cls = errors.ProviderNotSupportedError
    if status_code == 422 and error_type is None and lowered.startswith("input validation error"):
        cls = errors.ValidationError
    retry_after = _parse_retry_after(headers.get("retry-after"))
    if retry_after is None:  # "Retry-After: 0" is a real hint: retry now
        retry_after = _parse_ratelimit_reset(headers.get("ratelimit"))
    if status_code == 503 and data is not None and isinstance(data.get("estimated_time"), (int, float)):
        retry_after = float(data["estimated_time"])
    if not message:
        message = {401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}.get(
            status_code, f"HTTP {status_code}"
        )
    full = message
    hint = _HINTS.get(cls)
    if provider_hint is not None:
        hint = provider_hint
    elif cls is errors.ProviderNotSupportedError:
        hint = (
            "this model is not served by any Inference Provider you enabled: pick another provider, "
            "enable one in your Hugging Face settings, or deploy an Inference Endpoint"
        )
    elif cls is errors.ModelLoadingError:
        hint = (
            "the model is loading, the endpoint is scaling up, or the provider is temporarily unavailable; "
            "it is retried automatically"
        )
    if hint:
        full = f"{message} ({hint})"
    request_id = headers.get("x-request-id") or headers.get("x-amzn-trace-id") or headers.get("x-amz-cf-id")
    return cls(
        full,
        status_code=status_code,
        error_type=error_type,
        server_message=message,
        request_id=request_id,
        url=_redact_url(url),
        retry_after=retry_after,
    )


def error_from_event(payload: Mapping[str, Any], url: str) -> errors.HuggingFaceError:
    """Map an in-stream error event (both TGI flavours, protocol §5.2) to a typed error."""
    error = payload.get("error")
    error_type = payload.get("error_type")
    status: int | None = None
    if isinstance(error, dict):
        message = str(error.get("message") or error)
        status = error.get("http_status_code") if isinstance(error.get("http_status_code"), int) else None
        error_type = error_type or error.get("type")
    else:
        message = str(error)
    cls = _ERROR_TYPE_TABLE.get(str(error_type)) if error_type else None
    if cls is None:
        lowered = message.lower()
        if lowered.startswith("input validation error"):
            cls = errors.ValidationError
        elif "overloaded" in lowered:
            cls = errors.OverloadedError
        elif "request failed during generation" in lowered:
            cls = errors.GenerationError
        elif "incomplete generation" in lowered:
            cls = errors.IncompleteGenerationError
        else:
            cls = errors.ServerError
    return cls(
        message,
        status_code=status,
        error_type=str(error_type) if error_type else None,
        server_message=message,
        url=_redact_url(url),
    )


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password or parts.query:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return f"{parts.scheme}://{netloc}{parts.path}"
    return url


def _timeout_kind(exc: BaseException) -> str | None:
    """``"connect"``/``"read"`` when ``exc`` is a timeout of either HTTP layer (httpx async, urllib3 sync)."""
    httpx = sys.modules.get("httpx")  # loaded only once an async client exists
    if httpx is not None and isinstance(exc, httpx.TimeoutException):
        return "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
    return is_timeout(exc)


def _connection_error(exc: Exception, url: str) -> errors.HuggingFaceError:
    cause = transport_error_cause(exc)
    kind = _timeout_kind(cause)
    if kind is not None:
        return errors.TimeoutError(
            f"timed out ({kind}) waiting for {_redact_url(url)}; raise `timeout` for slow models",
            url=_redact_url(url),
        )
    return errors.ConnectionError(
        f"could not connect to {_redact_url(url)}: {type(cause).__name__}: {cause}",
        url=_redact_url(url),
    )


def _cut_stream(exc: Exception, url: str) -> errors.IncompleteGenerationError:
    return errors.IncompleteGenerationError(
        f"the stream from {_redact_url(url)} was cut before it finished ({type(exc).__name__}: {exc})",
        url=_redact_url(url),
    )
