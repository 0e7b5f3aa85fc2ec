"""Router mode: the Inference Providers router's paths and errors, and the Hub's model-info route (README §9.3).

With ``TGIServer(router=True)`` the server answers like ``https://router.huggingface.co`` in front of providers
that all run the scripted (or real) backend:

* ``POST /v1/chat/completions``: ``model`` is required, a Hub id with an optional ``:<provider>`` or
  ``:fastest``/``:cheapest``/``:preferred`` suffix; it must be in the provider mapping, served for
  ``conversational`` by the named (or some) provider;
* ``POST /<provider>/v1/chat/completions`` (``model`` is the Hub id or the provider's own id) and
  ``POST /hf-inference/models/<id>/v1/chat/completions``;
* ``GET /api/models/<id>``: ``{"id", "inferenceProviderMapping"}`` as configured by the test.

Errors use the router's bodies: 400 "The requested model '<id>' is not supported by any provider you have
enabled.", ``{"error": "Model not supported by provider <p>"}``, 401 ``{"error": "Invalid credentials in
Authorization header"}``, 422 ``UNSUPPORTED_OPENAI_PARAMS`` when the mapping says a provider lacks tool calling or
structured output, and OpenAI-style ``{"error": {"message", "type", "code"}}`` for a missing ``model``. OpenAI
``response_format`` shapes are translated to TGI's before the request reaches the backend, as providers do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from langchain_hf_chat.testing import _openai
from langchain_hf_chat.testing._body import check_content_type, parse_and_check
from langchain_hf_chat.testing._context import Context
from langchain_hf_chat.testing._validation import CHAT_REQUEST
from langchain_hf_chat.testing._wire import json_response

__all__ = ["ROUTING_POLICIES", "chat", "default_mapping", "model_info", "provider_chat"]

ROUTING_POLICIES = frozenset({"fastest", "cheapest", "preferred", "auto"})
CHAT_TASK = "conversational"
_FEATURE_PARAMS = {"toolCalling": ("tools", "tool_choice"), "structuredOutput": ("response_format",)}


class RouterError(Exception):
    """A router answer that is not a generation."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body

    def response(self) -> Response:
        return json_response(dict(self.body), self.status)


def default_mapping(model_id: str) -> dict[str, dict[str, Any]]:
    """The mapping served when the test configured none: ``hf-inference`` serves the backend's model for chat."""
    return {"hf-inference": {"status": "live", "providerId": model_id, "task": CHAT_TASK}}


def _mappings(ctx: Context) -> Mapping[str, Mapping[str, Mapping[str, Any]]]:
    configured = ctx.config.provider_mappings
    if configured:
        return configured
    model_id = ctx.engine.backend.model_id
    return {model_id: default_mapping(model_id)}


def _not_supported(model: str) -> RouterError:
    message = f"The requested model '{model}' is not supported by any provider you have enabled."
    return RouterError(
        400, {"error": {"message": message, "type": "invalid_request_error", "code": "model_not_supported"}}
    )


def _not_by_provider(provider: str) -> RouterError:
    return RouterError(400, {"error": f"Model not supported by provider {provider}"})


def _authorize(ctx: Context, request: Request) -> None:
    key = ctx.config.api_key
    if key is not None and request.headers.get("authorization", "").lower() != f"bearer {key}".lower():
        raise RouterError(401, {"error": "Invalid credentials in Authorization header"})


def _resolve(ctx: Context, model: str, provider: str | None) -> tuple[str, str, Mapping[str, Any]]:
    """``(repo_id, provider, mapping entry)`` for a requested model and an optional provider from the path."""
    mappings = _mappings(ctx)
    repo_id, _, suffix = model.partition(":")
    if provider is not None:
        # Provider routes take the Hub id or the provider's own id.
        for hub_id, providers in mappings.items():
            entry = providers.get(provider)
            if entry is not None and model in (hub_id, entry.get("providerId")):
                repo_id = hub_id
                break
        else:
            raise _not_by_provider(provider)
        entry = mappings[repo_id][provider]
        if entry.get("task") != CHAT_TASK:
            raise _not_by_provider(provider)
        return repo_id, provider, entry
    served = mappings.get(repo_id)
    if not served:
        raise _not_supported(model)
    if suffix and suffix not in ROUTING_POLICIES:
        entry = served.get(suffix)
        if entry is None or entry.get("task") != CHAT_TASK:
            raise _not_by_provider(suffix)
        return repo_id, suffix, entry
    for name, entry in served.items():
        if entry.get("task") == CHAT_TASK and entry.get("status", "live") != "error":
            return repo_id, name, entry
    raise _not_supported(model)


def _check_features(entry: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    features = entry.get("features") or {}
    unsupported = [
        param
        for feature, params in _FEATURE_PARAMS.items()
        if features.get(feature) is False
        for param in params
        if body.get(param) is not None
    ]
    if unsupported:
        names = ", ".join(unsupported)
        raise RouterError(
            422,
            {
                "code": "422",
                "error_type": "UNSUPPORTED_OPENAI_PARAMS",
                "message": f"The following parameters are not supported for this model: {names}",
                "param": names,
            },
        )


def tgi_response_format(response_format: Any) -> Any:
    """An OpenAI ``response_format`` in the shape TGI accepts (others unchanged).

    >>> tgi_response_format({"type": "json_schema", "json_schema": {"name": "A", "schema": {"properties": {}}}})
    {'type': 'json_schema', 'value': {'name': 'A', 'schema': {'properties': {}}}}
    >>> tgi_response_format({"type": "json_object"})
    {'type': 'json', 'value': {'type': 'object', 'properties': {}}}
    """
    if not isinstance(response_format, Mapping):
        return response_format
    kind = response_format.get("type")
    if kind == "json_schema" and isinstance(response_format.get("json_schema"), Mapping):
        spec = response_format["json_schema"]
        return {"type": "json_schema", "value": {"name": spec.get("name"), "schema": spec.get("schema") or {}}}
    if kind == "json_object" and "value" not in response_format:
        return {"type": "json", "value": {"type": "object", "properties": {}}}
    if kind == "text":
        return None
    return response_format


async def _read(request: Request) -> dict[str, Any]:
    check_content_type(request.headers.get("content-type"))
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RouterError(
            400, {"error": {"message": f"Invalid JSON body: {exc}", "type": "invalid_request_error", "code": None}}
        ) from exc
    if not isinstance(body, dict):
        raise RouterError(
            400, {"error": {"message": "The body must be a JSON object", "type": "invalid_request_error", "code": None}}
        )
    return body


async def _routed(ctx: Context, request: Request, body: dict[str, Any], model: str, provider: str | None) -> Response:
    repo_id, _, entry = _resolve(ctx, model, provider)
    _check_features(entry, body)
    rewritten = dict(body)
    rewritten.pop("model", None)  # the provider serves one model: no adapter
    if "response_format" in rewritten:
        translated = tgi_response_format(rewritten["response_format"])
        if translated is None:
            del rewritten["response_format"]
        else:
            rewritten["response_format"] = translated
    checked = parse_and_check(json.dumps(rewritten).encode("utf-8"), CHAT_REQUEST)
    return await _openai.chat_completions(ctx, request, body=checked, routed_model=repo_id)


async def chat(ctx: Context, request: Request) -> Response:
    """``POST /v1/chat/completions`` on the router: ``model`` required, ``:provider`` suffix accepted."""
    try:
        _authorize(ctx, request)
        body = await _read(request)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise RouterError(
                400,
                {
                    "error": {
                        "message": "Missing required parameter: 'model'.",
                        "type": "invalid_request_error",
                        "code": "missing_required_parameter",
                    }
                },
            )
        return await _routed(ctx, request, body, model, None)
    except RouterError as exc:
        return exc.response()


async def provider_chat(ctx: Context, request: Request) -> Response:
    """``POST /<provider>/v1/chat/completions`` and ``POST /hf-inference/models/<id>/v1/chat/completions``."""
    try:
        _authorize(ctx, request)
        body = await _read(request)
        provider = str(request.path_params.get("provider", "hf-inference"))
        model = request.path_params.get("model_id") or body.get("model")
        if not isinstance(model, str) or not model:
            raise _not_by_provider(provider)
        return await _routed(ctx, request, body, model, provider)
    except RouterError as exc:
        return exc.response()


async def model_info(ctx: Context, request: Request) -> Response:
    """``GET /api/models/<id>``: the model's ``inferenceProviderMapping`` (404 for a model not configured)."""
    repo_id = str(request.path_params["repo_id"])
    mapping = _mappings(ctx).get(repo_id)
    if mapping is None:
        return json_response({"error": "Repository not found"}, 404)
    return json_response({"_id": repo_id, "id": repo_id, "inferenceProviderMapping": dict(mapping)})
