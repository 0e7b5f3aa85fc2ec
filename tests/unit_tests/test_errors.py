"""The error table: every status and error body maps to the typed error a caller can act on."""

from __future__ import annotations

import pickle

import pytest

from langchain_hf_chat import errors
from langchain_hf_chat._transport import error_from_event, error_from_response, is_hf_host


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            422,
            b'{"error":"Input validation error: `top_k` must be strictly positive","error_type":"validation"}',
            errors.ValidationError,
        ),
        (
            424,
            b'{"error":"Request failed during generation: Server error: CUDA OOM","error_type":"generation"}',
            errors.GenerationError,
        ),
        (429, b'{"error":"Model is overloaded","error_type":"overloaded"}', errors.OverloadedError),
        (429, b'{"error":"Rate limit reached"}', errors.RateLimitError),
        (503, b'{"error":"Model x is currently loading","estimated_time":12.5}', errors.ModelLoadingError),
        (
            500,
            b'{"error":"Incomplete generation","error_type":"incomplete_generation"}',
            errors.IncompleteGenerationError,
        ),
        (422, b'{"error":"Template error: template not found","error_type":"template_error"}', errors.TemplateError),
        (422, b'{"error":"Tool error: Tool with name x not found","error_type":"tool_error"}', errors.ToolError),
        (
            422,
            b"Failed to deserialize the JSON body into the target type: missing field `inputs`",
            errors.BadRequestError,
        ),
        (401, b"", errors.AuthenticationError),
        (403, b'{"error":"gated"}', errors.PermissionDeniedError),
        (402, b'{"error":"You have exceeded your monthly included credits"}', errors.InsufficientCreditsError),
        (404, b"", errors.NotFoundError),
        (
            400,
            b'{"error":"The requested model \'x\' is not supported by any provider you have enabled."}',
            errors.ProviderNotSupportedError,
        ),
        (502, b"<html>bad gateway</html>", errors.ServerError),
        (504, b"", errors.ServerError),
    ],
)
def test_status_and_body_map_to_typed_errors(status: int, body: bytes, expected: type[Exception]) -> None:
    err = error_from_response(status, body, {}, "http://127.0.0.1:1/generate")
    assert type(err) is expected
    assert err.status_code == status


def test_server_message_and_error_type_are_kept() -> None:
    err = error_from_response(422, b'{"error":"Input validation error: bad","error_type":"validation"}', {}, "u")
    assert err.server_message == "Input validation error: bad"
    assert err.error_type == "validation"


def test_openai_style_error_object_is_understood() -> None:
    err = error_from_response(400, b'{"error":{"message":"bad model","type":"invalid_request_error"}}', {}, "u")
    assert err.server_message == "bad model"


def test_retry_after_seconds_and_estimated_time_are_parsed() -> None:
    assert error_from_response(429, b"{}", {"retry-after": "3"}, "u").retry_after == 3
    assert error_from_response(503, b'{"error":"loading","estimated_time":7.5}', {}, "u").retry_after == 7.5
    assert error_from_response(429, b"{}", {"ratelimit": '"api";r=0;t=55'}, "u").retry_after == 55


def test_retry_after_zero_is_kept_over_the_ratelimit_header() -> None:
    err = error_from_response(429, b"{}", {"retry-after": "0", "ratelimit": '"api";r=0;t=55'}, "u")
    assert err.retry_after == 0


def test_retry_after_http_date_is_parsed() -> None:
    err = error_from_response(429, b"{}", {"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"}, "u")
    assert err.retry_after is not None and err.retry_after > 0


def test_request_id_is_reported_and_url_credentials_are_not() -> None:
    err = error_from_response(500, b"{}", {"x-request-id": "abc"}, "https://user:pw@host/x?token=hf_secret")
    assert err.request_id == "abc"
    assert "pw" not in str(err) and "hf_secret" not in str(err)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"error": "Input validation error: x", "error_type": "validation"}, errors.ValidationError),
        ({"error": "Request failed during generation: boom", "error_type": "generation"}, errors.GenerationError),
        ({"error": {"message": "Input validation error: x", "http_status_code": 422}}, errors.ValidationError),
        ({"error": {"message": "Model is overloaded", "http_status_code": 422}}, errors.OverloadedError),
        (
            {"error": "Incomplete generation stream", "error_type": "incomplete_generation_stream"},
            errors.IncompleteGenerationError,
        ),
    ],
)
def test_in_stream_error_events_map_to_typed_errors(payload: dict[str, object], expected: type[Exception]) -> None:
    assert type(error_from_event(payload, "u")) is expected


def test_errors_pickle_with_their_attributes() -> None:
    err = errors.ValidationError("bad", status_code=422, error_type="validation")
    clone = pickle.loads(pickle.dumps(err))
    assert clone.status_code == 422 and clone.error_type == "validation"


def test_connection_and_timeout_errors_are_builtin_subclasses() -> None:
    assert issubclass(errors.ConnectionError, ConnectionError)
    assert issubclass(errors.TimeoutError, TimeoutError)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://router.huggingface.co/v1", True),
        ("https://huggingface.co", True),
        ("https://abc.us-east-1.aws.endpoints.huggingface.cloud", True),
        ("https://me-space.hf.space", True),
        ("http://127.0.0.1:8080", False),
        ("https://huggingface.co.evil.example", False),
        ("https://evilhuggingface.co", False),
        ("https://my-tgi.internal", False),
    ],
)
def test_hf_hosts(url: str, expected: bool) -> None:
    assert is_hf_host(url) is expected
