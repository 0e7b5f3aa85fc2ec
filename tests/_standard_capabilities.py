"""What ChatHuggingFace supports, declared once for LangChain's standard unit and integration suites."""

from __future__ import annotations


class ChatHuggingFaceCapabilities:
    """Capability flags read by ``langchain_tests``; list this mixin before the suite's base class."""

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True
