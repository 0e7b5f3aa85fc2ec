"""The package's public surface and import cost."""

from __future__ import annotations

import subprocess
import sys

import langchain_hf_chat

EXPECTED_ALL = [
    "ChatHuggingFace",
    "HuggingFaceEndpoint",
    "HuggingFaceHub",
    "HuggingFacePipeline",
    "HuggingFaceTextGenInference",
    "__version__",
]


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(langchain_hf_chat.__all__) == sorted(EXPECTED_ALL)


def test_every_name_in_all_resolves() -> None:
    for name in langchain_hf_chat.__all__:
        assert getattr(langchain_hf_chat, name) is not None


def test_import_pulls_in_no_heavy_packages() -> None:
    code = (
        "import sys, langchain_hf_chat; from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint;"
        "heavy = [m for m in ('torch', 'transformers', 'langchain_community', 'langchain_classic', 'uvicorn')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
