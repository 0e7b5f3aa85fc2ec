"""LangChain chat and LLM integrations for Hugging Face text-generation servers and models.

Example:
    >>> from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
    >>> llm = HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:8080")
    >>> chat = ChatHuggingFace(llm=llm, model_id="HuggingFaceH4/zephyr-7b-beta")
    >>> chat.model_id
    'HuggingFaceH4/zephyr-7b-beta'
"""

from __future__ import annotations

from importlib import metadata

from langchain_hf_chat.chat_models import ChatHuggingFace
from langchain_hf_chat.llms import (
    HuggingFaceEndpoint,
    HuggingFaceHub,
    HuggingFacePipeline,
    HuggingFaceTextGenInference,
)

try:
    __version__ = metadata.version("langchain-hf-chat")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "ChatHuggingFace",
    "HuggingFaceEndpoint",
    "HuggingFaceHub",
    "HuggingFacePipeline",
    "HuggingFaceTextGenInference",
    "__version__",
]
