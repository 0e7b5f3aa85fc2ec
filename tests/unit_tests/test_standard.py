"""ChatHuggingFace against langchain-tests' standard chat-model unit suite."""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

import pytest
from _standard_capabilities import ChatHuggingFaceCapabilities
from langchain_core.load import dumpd, load
from langchain_core.runnables import RunnableBinding
from langchain_core.tools import BaseTool
from langchain_tests.unit_tests import ChatModelUnitTests
from pydantic import BaseModel, Field
from syrupy.assertion import SnapshotAssertion

from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint

REPO_ID = "HuggingFaceH4/zephyr-7b-beta"
TOKEN = "hf_standard_suite_token"
ENV = {"HF_TOKEN": TOKEN}


def _router_llm() -> HuggingFaceEndpoint:
    # Construction never touches the network, so a router-backed endpoint is safe without sockets.
    with mock.patch.dict(os.environ, ENV):
        return HuggingFaceEndpoint(repo_id=REPO_ID)


class Person(BaseModel):
    name: str = Field(description="The name of the person.")
    age: int = Field(description="The age of the person.")


class TestChatHuggingFaceStandard(ChatHuggingFaceCapabilities, ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatHuggingFace]:
        return ChatHuggingFace

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"llm": _router_llm()}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        # ChatHuggingFace reads no environment itself: its LLM reads HF_TOKEN when built (see the test below).
        # test_serdes loads the LLM's secret back from this environment.
        return ENV, {"llm": _router_llm()}, {"model_id": REPO_ID}

    @property
    def supports_image_inputs(self) -> bool:
        return False

    @pytest.mark.xfail(
        reason="The suite binds PersonA twice (as a Pydantic class and as its JSON schema). ChatHuggingFace "
        "rejects two tools with one name: TGI keys its tool grammar by name, so one would silently shadow the "
        "other. test_bind_tools_accepts_every_tool_kind covers the rest of this test.",
        raises=ValueError,
        strict=True,
    )
    def test_bind_tool_pydantic(self, model: ChatHuggingFace, my_adder_tool: BaseTool) -> None:
        super().test_bind_tool_pydantic(model, my_adder_tool)

    def test_bind_tools_accepts_every_tool_kind(self, model: ChatHuggingFace, my_adder_tool: BaseTool) -> None:
        def my_adder(a: int, b: int) -> int:
            """Return the sum of two integers."""
            return a + b

        schema = {**Person.model_json_schema(), "title": "PersonSchema"}
        bound = model.bind_tools([my_adder_tool, my_adder, Person, schema], tool_choice="any")
        assert isinstance(bound, RunnableBinding)
        names = [tool["function"]["name"] for tool in bound.kwargs["tools"]]
        assert names == ["my_adder_tool", "my_adder", "Person", "PersonSchema"]

    @pytest.mark.xfail(
        reason="load(allowed_objects='all') revives only the classes listed in langchain-core's own serialization "
        "mappings, which name no third-party package, so the round trip is refused before our code runs. The "
        "snapshot half runs first; test_serdes_with_an_explicit_allowlist covers the round trip.",
        raises=ValueError,
        strict=True,
    )
    def test_serdes(self, model: ChatHuggingFace, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)

    @pytest.mark.filterwarnings("ignore:The function `load` is in beta")
    def test_serdes_with_an_explicit_allowlist(self, model: ChatHuggingFace) -> None:
        with mock.patch.dict(os.environ, ENV):
            revived = load(
                dumpd(model),
                valid_namespaces=["langchain_hf_chat"],
                allowed_objects=[ChatHuggingFace, HuggingFaceEndpoint],
                secrets_from_env=True,
            )
        assert isinstance(revived, ChatHuggingFace)
        assert revived.model_dump() == model.model_dump()
        assert revived.llm.huggingfacehub_api_token.get_secret_value() == TOKEN

    def test_hf_token_from_env_reaches_the_llm_and_is_never_serialized(self) -> None:
        with mock.patch.dict(os.environ, ENV):
            chat = ChatHuggingFace(llm=HuggingFaceEndpoint(repo_id=REPO_ID))
        assert chat.llm.huggingfacehub_api_token.get_secret_value() == TOKEN
        assert TOKEN not in repr(chat)
        assert TOKEN not in str(dumpd(chat))
