"""LangChain chat and LLM integrations for Hugging Face text-generation servers and models.

Names are imported on first access, so ``import langchain_hf_chat`` stays light and
``HuggingFacePipeline`` (which needs ``transformers``) costs nothing until used.

Example:
    >>> from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
    >>> llm = HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:8080")
    >>> chat = ChatHuggingFace(llm=llm, model_id="HuggingFaceH4/zephyr-7b-beta")
    >>> chat.model_id
    'HuggingFaceH4/zephyr-7b-beta'
"""

from __future__ import annotations

from importlib import import_module, metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_hf_chat.chat_models import ChatHuggingFace
    from langchain_hf_chat.llms.endpoint import HuggingFaceEndpoint
    from langchain_hf_chat.llms.hub import HuggingFaceHub
    from langchain_hf_chat.llms.pipeline import HuggingFacePipeline
    from langchain_hf_chat.llms.text_gen_inference import HuggingFaceTextGenInference

try:
    __version__ = metadata.version("langchain-hf-chat")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

_EXPORTS: dict[str, str] = {
    "ChatHuggingFace": "langchain_hf_chat.chat_models",
    "HuggingFaceEndpoint": "langchain_hf_chat.llms.endpoint",
    "HuggingFaceHub": "langchain_hf_chat.llms.hub",
    "HuggingFacePipeline": "langchain_hf_chat.llms.pipeline",
    "HuggingFaceTextGenInference": "langchain_hf_chat.llms.text_gen_inference",
}

__all__ = [
    "ChatHuggingFace",
    "HuggingFaceEndpoint",
    "HuggingFaceHub",
    "HuggingFacePipeline",
    "HuggingFaceTextGenInference",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
