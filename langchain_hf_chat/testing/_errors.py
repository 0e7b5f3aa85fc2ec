"""The failures the test server reports, with TGI's messages, error types and statuses."""

from __future__ import annotations

__all__ = [
    "BodyRejection",
    "InferError",
    "generation_error",
    "incomplete_error",
    "overloaded_error",
    "template_error",
    "tool_error",
    "validation_error",
]

#: HTTP status for each TGI ``error_type`` when the error is not inside a stream.
ERROR_STATUS: dict[str, int] = {
    "validation": 422,
    "generation": 424,
    "overloaded": 429,
    "incomplete_generation": 500,
    "incomplete_generation_stream": 500,
    "template_error": 422,
    "tool_error": 422,
    "missing_template_variable": 422,
    "stream_serialization_error": 500,
    "healthcheck": 503,
    "suffix not supported": 422,
    "batch size exceeded": 422,
}


class InferError(Exception):
    """A TGI error with a JSON envelope ``{"error": message, "error_type": error_type}``."""

    def __init__(self, message: str, error_type: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.status = status if status is not None else ERROR_STATUS.get(error_type, 422)

    def envelope(self) -> dict[str, str]:
        """The JSON body TGI sends."""
        return {"error": self.message, "error_type": self.error_type}


class BodyRejection(Exception):  # noqa: N818 - a response, not a bug
    """A request body refused before any TGI logic: a ``text/plain`` response (axum's ``Json`` extractor)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def validation_error(message: str) -> InferError:
    """``Input validation error: <message>`` (422 ``validation``)."""
    return InferError(f"Input validation error: {message}", "validation")


def overloaded_error() -> InferError:
    """429 ``Model is overloaded``."""
    return InferError("Model is overloaded", "overloaded")


def generation_error(message: str) -> InferError:
    """424 ``Request failed during generation: Server error: <message>``."""
    return InferError(f"Request failed during generation: Server error: {message}", "generation")


def incomplete_error(*, stream: bool) -> InferError:
    """The backend ended without a final event."""
    if stream:
        return InferError("Incomplete generation stream", "incomplete_generation_stream")
    return InferError("Incomplete generation", "incomplete_generation")


def template_error(message: str) -> InferError:
    """422 ``Template error: <message>``."""
    return InferError(f"Template error: {message}", "template_error")


def tool_error(message: str) -> InferError:
    """422 ``Tool error: <message>``."""
    return InferError(f"Tool error: {message}", "tool_error")
