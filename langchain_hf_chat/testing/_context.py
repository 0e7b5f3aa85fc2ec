"""The request context shared by the route modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from langchain_hf_chat.testing._body import Shape, check_content_type, parse_and_check
from langchain_hf_chat.testing._engine import Engine
from langchain_hf_chat.testing._errors import BodyRejection
from langchain_hf_chat.testing._state import ServerConfig, ServerState
from langchain_hf_chat.testing.faults import Fault

__all__ = ["Context", "Handler", "fault_of"]

Handler = Callable[["Context", Request], Awaitable[Response]]


class Context:
    """What a route needs: the state, the engine, and the request's fault."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.engine = Engine(state)

    @property
    def config(self) -> ServerConfig:
        """The server configuration."""
        return self.state.config

    async def read_json(self, request: Request, shape: Shape) -> Any:
        """Axum's ``Json`` extractor: 415, then 413, then 400/422 text rejections."""
        check_content_type(request.headers.get("content-type"))
        body = await request.body()
        if len(body) > self.config.payload_limit:
            raise BodyRejection(413, "Failed to buffer the request body: length limit exceeded")
        return parse_and_check(body, shape)

    def base_headers(self, characters: int) -> dict[str, str]:
        """Headers every stream carries."""
        return {"x-compute-type": self.config.compute_type, "x-compute-characters": str(characters)}


def fault_of(request: Request) -> Fault | None:
    """The fault chosen for this request by the middleware."""
    fault = request.scope.get("langchain_hf_chat.fault")
    return fault if isinstance(fault, Fault) else None
