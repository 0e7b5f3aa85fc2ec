"""The LLM classes, one module per backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_hf_chat.llms.endpoint import HuggingFaceEndpoint
from langchain_hf_chat.llms.hub import HuggingFaceHub
from langchain_hf_chat.llms.text_gen_inference import HuggingFaceTextGenInference

if TYPE_CHECKING:
    from langchain_hf_chat.llms.pipeline import HuggingFacePipeline

__all__ = [
    "HuggingFaceEndpoint",
    "HuggingFaceHub",
    "HuggingFacePipeline",
    "HuggingFaceTextGenInference",
]


def __getattr__(name: str) -> Any:
    # HuggingFacePipeline needs transformers; import it only when asked for.
    if name == "HuggingFacePipeline":
        from langchain_hf_chat.llms.pipeline import HuggingFacePipeline

        return HuggingFacePipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
