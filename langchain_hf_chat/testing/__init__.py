"""A TGI-compatible HTTP server for offline tests and demos.

:class:`TGIServer` speaks Text Generation Inference's protocol on 127.0.0.1 (``/generate``,
``/generate_stream``, ``POST /``, ``/v1/chat/completions``, ``/v1/completions``, ``/tokenize``, ``/info``,
``/health``, ...), errors and SSE framing included. Answers come from a backend: the
:class:`ScriptedBackend` replays replies queued by the test. :class:`Fault` injects failures.

Example:
    >>> import httpx
    >>> from langchain_hf_chat.testing import Fault, ScriptedBackend, TGIServer
    >>> backend = ScriptedBackend()
    >>> with TGIServer(backend=backend) as server:
    ...     backend.queue_reply("Bonjour !")
    ...     ok = httpx.post(server.url + "/generate", json={"inputs": "Hi"})
    ...     server.inject(Fault.loading(estimated_time=2))
    ...     loading = httpx.post(server.url + "/generate", json={"inputs": "Hi"})
    >>> ok.json(), loading.status_code
    ({'generated_text': 'Bonjour !'}, 503)
"""

from __future__ import annotations

from langchain_hf_chat.testing._state import RecordedRequest
from langchain_hf_chat.testing.app import FAULT_HEADER, build_app
from langchain_hf_chat.testing.backends.base import (
    Backend,
    Finish,
    GenerationParameters,
    GenerationRequest,
    TemplateNotFoundError,
    TemplateRenderError,
    Token,
)
from langchain_hf_chat.testing.backends.scripted import Reply, ScriptedBackend
from langchain_hf_chat.testing.faults import Fault, FaultSpecError
from langchain_hf_chat.testing.server import TGIServer

__all__ = [
    "FAULT_HEADER",
    "Backend",
    "Fault",
    "FaultSpecError",
    "Finish",
    "GenerationParameters",
    "GenerationRequest",
    "RecordedRequest",
    "Reply",
    "ScriptedBackend",
    "TGIServer",
    "TemplateNotFoundError",
    "TemplateRenderError",
    "Token",
    "build_app",
]
