"""``HuggingFaceHub``: the classic Hub LLM, on today's Inference Providers."""

from __future__ import annotations

from langchain_hf_chat.llms.endpoint import HuggingFaceEndpoint

__all__ = ["HuggingFaceHub"]


class HuggingFaceHub(HuggingFaceEndpoint):
    """A Hub model by ``repo_id`` (the classic constructor), served through Inference Providers.

    The removed ``InferenceApi`` is replaced by the providers router; generation parameters come from
    ``model_kwargs`` only, as in the classic class (its fields default to unset).

    Instantiate:
        >>> from langchain_hf_chat import HuggingFaceHub
        >>> llm = HuggingFaceHub(
        ...     repo_id="HuggingFaceH4/zephyr-7b-beta", task="text-generation",
        ...     model_kwargs={"max_new_tokens": 512, "top_k": 30, "temperature": 0.1,
        ...                   "repetition_penalty": 1.03},
        ... )
        >>> llm.repo_id
        'HuggingFaceH4/zephyr-7b-beta'
    """

    max_new_tokens: int | None = None
    top_p: float | None = None
    typical_p: float | None = None
    temperature: float | None = None

    @property
    def _llm_type(self) -> str:
        return "huggingface_hub"
