"""``HuggingFaceTextGenInference``: a self-hosted Text Generation Inference server."""

from __future__ import annotations

from pydantic import Field, field_validator

from langchain_hf_chat.llms._backend import RemoteBackend, tgi_backend
from langchain_hf_chat.llms._base import BaseHuggingFaceLLM

__all__ = ["HuggingFaceTextGenInference"]


class HuggingFaceTextGenInference(BaseHuggingFaceLLM):
    r"""A Text Generation Inference (TGI) server, through its ``/generate`` and ``/generate_stream`` routes.

    The classic constructor works unchanged, and the token in the environment is never sent to a self-hosted
    server unless you put it in ``server_kwargs["headers"]`` or pass ``huggingfacehub_api_token``.

    Setup:
        ``pip install langchain-hf-chat`` and run a TGI server (or ``python -m langchain_hf_chat.testing``).

    Key init args:
        inference_server_url: the server's base URL.
        max_new_tokens, top_k, top_p, typical_p, temperature, repetition_penalty, seed, stop_sequences:
            generation parameters, sent exactly as set (``temperature=0`` is greedy decoding).
        server_kwargs: ``headers``, ``cookies``, ``timeout`` for the HTTP client.
        model_kwargs: extra parameters merged last.

    Instantiate:
        >>> from langchain_hf_chat import HuggingFaceTextGenInference
        >>> llm = HuggingFaceTextGenInference(
        ...     inference_server_url="http://127.0.0.1:8080",
        ...     max_new_tokens=512, top_k=50, temperature=0.1, repetition_penalty=1.03,
        ...     server_kwargs={"headers": {"Authorization": "Bearer hf_xxx"}},
        ... )
        >>> llm
        HuggingFaceTextGenInference(...)

    Invoke (against a server):
        .. code-block:: python

            llm.invoke("What is Deep Learning?")
            for chunk in llm.stream("Tell me a story", stop=["\\n\\n"]):
                print(chunk, end="")
    """

    inference_server_url: str = Field(default="")
    """Base URL of the TGI server, e.g. ``http://127.0.0.1:8080``."""

    @field_validator("inference_server_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value:
            raise ValueError("`inference_server_url` is required, e.g. 'http://127.0.0.1:8080'")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"`inference_server_url` must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @property
    def _llm_type(self) -> str:
        return "huggingface_textgen_inference"

    def _target_description(self) -> str:
        return self.inference_server_url

    def _make_backend(self) -> RemoteBackend:
        return tgi_backend(self.transport, self.inference_server_url)
