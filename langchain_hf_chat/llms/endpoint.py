"""``HuggingFaceEndpoint``: an Inference Endpoint URL, or a Hub model through Inference Providers."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from langchain_hf_chat._providers import DEFAULT_HUB_URL
from langchain_hf_chat.llms._backend import RemoteBackend, endpoint_backend
from langchain_hf_chat.llms._base import BaseHuggingFaceLLM
from langchain_hf_chat.llms._router import gated_router_backend

__all__ = ["DEFAULT_ROUTER_URL", "SUPPORTED_TASKS", "HuggingFaceEndpoint"]

DEFAULT_ROUTER_URL = "https://router.huggingface.co"
SUPPORTED_TASKS: tuple[str, ...] = ("text-generation", "text2text-generation", "summarization")


class HuggingFaceEndpoint(BaseHuggingFaceLLM):
    """A Hugging Face Inference Endpoint (``endpoint_url``) or a Hub model (``repo_id``) via Inference Providers.

    Give exactly one of ``endpoint_url`` and ``repo_id`` (alias ``model``). With ``repo_id``, requests go to the
    Inference Providers router (``router_url``); ``provider`` picks one (``"auto"`` lets the router choose).

    Instantiate:
        >>> from langchain_hf_chat import HuggingFaceEndpoint
        >>> llm = HuggingFaceEndpoint(
        ...     endpoint_url="http://127.0.0.1:8080", task="text-generation",
        ...     model_kwargs={"max_new_tokens": 512, "top_k": 50, "temperature": 0.1,
        ...                   "repetition_penalty": 1.03},
        ... )
        >>> llm.task
        'text-generation'
        >>> HuggingFaceEndpoint(repo_id="HuggingFaceH4/zephyr-7b-beta").repo_id
        'HuggingFaceH4/zephyr-7b-beta'
    """

    endpoint_url: str | None = None
    """The endpoint URL (a TGI server, an Inference Endpoint, or a custom handler)."""
    repo_id: str | None = None
    """A Hub model id, served through Inference Providers."""
    task: str = "text-generation"
    """One of ``text-generation``, ``text2text-generation``, ``summarization``."""
    provider: str | None = None
    """Inference Provider for ``repo_id`` (``"auto"``, ``"hf-inference"``, ``"together"``, ...)."""
    bill_to: str | None = None
    """Bill requests to this Hugging Face organization (``X-HF-Bill-To``)."""
    router_url: str = DEFAULT_ROUTER_URL
    """Base URL of the Inference Providers router."""
    hub_url: str | None = None
    """Where to read the model's provider mapping (``/api/models/<id>``) for the capability check. Default: the
    Hub (``https://huggingface.co``) for the default router, else ``router_url`` (a proxy or the test server)."""
    check_provider: bool = True
    """With ``repo_id``: before the first request, check (once, cached) that the provider serves the model for the
    task and the features asked (tools, ``response_format``), failing early with ``ProviderNotSupportedError``."""

    _CLASSIC_ALIASES: ClassVar[dict[str, str]] = {"model": "repo_id"}

    @model_validator(mode="after")
    def _check_target(self) -> HuggingFaceEndpoint:
        if (self.endpoint_url is None) == (self.repo_id is None):
            raise ValueError(
                f"{type(self).__name__} needs exactly one of `endpoint_url` and `repo_id` (alias `model`); "
                f"got endpoint_url={self.endpoint_url!r}, repo_id={self.repo_id!r}"
            )
        if self.task not in SUPPORTED_TASKS:
            raise ValueError(f"`task` must be one of {list(SUPPORTED_TASKS)}, got {self.task!r}")
        if self.endpoint_url is not None and not self.endpoint_url.startswith(("http://", "https://")):
            raise ValueError(f"`endpoint_url` must be an http(s) URL, got {self.endpoint_url!r}")
        if self.repo_id is not None and (self.repo_id.startswith(("http://", "https://")) or " " in self.repo_id):
            raise ValueError(
                f"`repo_id` must be a Hub model id such as 'HuggingFaceH4/zephyr-7b-beta', got {self.repo_id!r}; "
                "pass URLs as `endpoint_url`"
            )
        return self

    @property
    def model(self) -> str | None:
        """The Hub model id (alias of ``repo_id``)."""
        return self.repo_id

    @property
    def _llm_type(self) -> str:
        return "huggingface_endpoint"

    def _target_description(self) -> str:
        if self.endpoint_url is not None:
            return self.endpoint_url
        return f"{self.router_url}#{self.repo_id}:{self.provider or 'auto'}:{self.task}"

    def _make_backend(self) -> RemoteBackend:
        transport = self.transport
        if self.bill_to:
            transport.headers = {**transport.headers, "X-HF-Bill-To": self.bill_to}
        if self.endpoint_url is not None:
            return endpoint_backend(transport, self.endpoint_url)
        assert self.repo_id is not None
        return gated_router_backend(transport, self.router_url, self.repo_id, self.provider, hub_url=self._hub_url())

    def _hub_url(self) -> str | None:
        if not self.check_provider:
            return None
        if self.hub_url is not None:
            return self.hub_url
        return DEFAULT_HUB_URL if self.router_url.rstrip("/") == DEFAULT_ROUTER_URL else self.router_url

    def _wire_parameters(self, settings: Any) -> dict[str, Any]:
        params = super()._wire_parameters(settings)
        if self.task != "text-generation":
            # Seq2seq pipelines do not echo the prompt and reject TGI-only flags.
            for key in (
                "return_full_text",
                "details",
                "stop",
                "watermark",
                "top_n_tokens",
                "grammar",
            ):
                params.pop(key, None)
        return params
