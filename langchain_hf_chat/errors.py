"""Typed errors raised by langchain-hf-chat.

Every failure a caller can act on has its own class. All derive from :class:`HuggingFaceError`, and those that
come from an HTTP response carry ``status_code``, ``error_type`` (TGI's, when the server sent one), the server's
``server_message`` and, when known, the ``request_id``. Tokens never appear in any of them.

Example:
    >>> from langchain_hf_chat.errors import ValidationError, HuggingFaceError
    >>> err = ValidationError("Input validation error: `top_k` must be strictly positive",
    ...                       status_code=422, error_type="validation")
    >>> isinstance(err, HuggingFaceError), err.status_code
    (True, 422)
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConnectionError",
    "GenerationError",
    "HuggingFaceError",
    "IncompleteGenerationError",
    "InsufficientCreditsError",
    "ModelLoadingError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "ProviderNotSupportedError",
    "RateLimitError",
    "ServerError",
    "StreamParseError",
    "TemplateError",
    "TimeoutError",
    "ToolError",
    "ValidationError",
]

import builtins


class HuggingFaceError(Exception):
    """Base class of every error this package raises about a model call."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        server_message: str | None = None,
        request_id: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_type = error_type
        self.server_message = server_message if server_message is not None else message
        self.request_id = request_id
        self.url = url
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code is not None:
            parts.append(f"(status {self.status_code}")
            if self.error_type:
                parts[-1] += f", error_type {self.error_type!r}"
            parts[-1] += ")"
        if self.url:
            parts.append(f"[{self.url}]")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return " ".join(parts)

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword attributes when pickled (multiprocessing, caches).
        return (_rebuild_error, (type(self), self.message, self.__dict__.copy()))


def _rebuild_error(cls: type[HuggingFaceError], message: str, state: dict[str, object]) -> HuggingFaceError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class BadRequestError(HuggingFaceError):
    """The server rejected the request as malformed (400, 413, 415, or a 422 that is not TGI validation)."""


class ValidationError(BadRequestError):
    """TGI refused a parameter or input (422 ``validation``). Not retried."""


class TemplateError(BadRequestError):
    """The chat template is missing or failed to render (server ``template_error`` or client-side render)."""


class ToolError(BadRequestError):
    """The server could not set up or parse a tool call (422 ``tool_error``)."""


class AuthenticationError(HuggingFaceError):
    """The token is missing or invalid (401)."""


class PermissionDeniedError(HuggingFaceError):
    """The token lacks a permission, or the model is gated (403)."""


class InsufficientCreditsError(HuggingFaceError):
    """The account has no credits left for Inference Providers (402)."""


class NotFoundError(HuggingFaceError):
    """The URL, model or route does not exist (404)."""


class ProviderNotSupportedError(BadRequestError):
    """No enabled Inference Provider serves this model, task or feature."""


class RateLimitError(HuggingFaceError):
    """Too many requests (429 with a rate-limit body). ``retry_after`` holds the server's hint."""


class OverloadedError(RateLimitError):
    """TGI has no free concurrency slot (429 ``overloaded``)."""


class ModelLoadingError(HuggingFaceError):
    """The model or endpoint is still starting (503). ``retry_after`` holds ``estimated_time``."""


class GenerationError(HuggingFaceError):
    """The model failed while generating (424 ``generation``), e.g. out of memory on the server."""


class IncompleteGenerationError(HuggingFaceError):
    """A generation ended before its end: a stream cut, or TGI's ``incomplete_generation``.

    ``partial_text`` holds what was received before the cut.
    """

    def __init__(self, message: str, *, partial_text: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.partial_text = partial_text


class StreamParseError(HuggingFaceError):
    """A server-sent event could not be parsed. ``line`` is the offending line (shortened)."""

    def __init__(self, message: str, *, line: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.line = line


class ServerError(HuggingFaceError):
    """Any other server-side failure (5xx)."""


class ConnectionError(HuggingFaceError, builtins.ConnectionError):
    """The server could not be reached (refused, reset before any response, DNS)."""


class TimeoutError(HuggingFaceError, builtins.TimeoutError):
    """The server did not answer in time (connect or read timeout)."""
