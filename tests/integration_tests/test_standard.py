"""ChatHuggingFace against langchain-tests' standard chat-model integration suite.

The "model" is the TGI-compatible test server with a scripted backend whose responder answers the suite's
prompts (see ``_standard_responder``); everything between LangChain and the server is real: HTTP, SSE, the
chat-completions route in chat mode, and zephyr's own chat template over ``/generate`` in text mode.

``test_stream_time`` benchmarks streaming from a recorded exchange in ``cassettes/``; when the request body
changes on purpose, delete the class's cassette and run the suite once to record it again.

Not run (the suite skips them for these feature flags): image, PDF and audio inputs and tool messages. Each of
those tests downloads its fixture from the internet, which this suite never uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _standard_capabilities import ChatHuggingFaceCapabilities
from _standard_responder import respond
from langchain_tests.conftest import base_vcr_config
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
from langchain_hf_chat.testing import ScriptedBackend, TGIServer

MODEL_ID = "HuggingFaceH4/zephyr-7b-beta"
CASSETTES = Path(__file__).parent / "cassettes"
ZEPHYR_TEMPLATE = (Path(__file__).parents[1] / "fixtures" / "templates" / "zephyr-7b-beta.jinja").read_text()


class TestChatHuggingFaceChatMode(ChatHuggingFaceCapabilities, ChatModelIntegrationTests):
    """Chat-completions mode: the server renders the template; tools and ``response_format`` are native."""

    server_url: str = ""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _server(cls) -> Iterator[TGIServer]:
        # One server per class; chat_model_params (read by the suite's fixtures) points at it.
        with TGIServer(backend=ScriptedBackend(model_id=MODEL_ID, responder=respond)) as server:
            cls.server_url = server.url
            yield server

    @pytest.fixture(scope="class")
    @classmethod
    def vcr_config(cls) -> dict[str, Any]:
        # test_stream_time replays a recorded stream: match on the path, not the server's ephemeral port.
        return {**base_vcr_config(), "match_on": ["method", "path", "body"], "cassette_library_dir": str(CASSETTES)}

    @property
    def chat_model_class(self) -> type[ChatHuggingFace]:
        return ChatHuggingFace

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"llm": HuggingFaceTextGenInference(inference_server_url=self.server_url), "mode": "chat"}

    @property
    def enable_vcr_tests(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        # TGI serves one base model; a chat request's `model` names a LoRA adapter, and the reply reports it.
        return "my-org/zephyr-lora-adapter"


class TestChatHuggingFaceTextMode(TestChatHuggingFaceChatMode):
    """Text mode: zephyr's template is rendered here, tool calls are parsed from text, grammar forces them."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "llm": HuggingFaceTextGenInference(inference_server_url=self.server_url),
            "chat_template": ZEPHYR_TEMPLATE,
            "bos_token": "<s>",
            "eos_token": "</s>",
        }
