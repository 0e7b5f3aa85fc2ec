"""Every example in ``examples/`` runs as a script against its local scripted server and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_hf_chat.agents.transcripts import NOTEBOOK_FINAL_ANSWER

EXAMPLES = Path(__file__).parents[2] / "examples"


def run_example(name: str, *args: str) -> str:
    """Run ``examples/<name>`` in a fresh interpreter and return its output (it must exit with 0)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    for secret in ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN"):
        env.pop(secret, None)
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=EXAMPLES.parent,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"{name} exited with {completed.returncode}:\n{completed.stderr[-3000:]}"
    return completed.stdout


@pytest.mark.parametrize(
    ("script", "expected_lines"),
    [
        pytest.param(
            "tools.py",
            [
                "tool call: get_weather({'city': 'Paris'}) -> Sunny, 21 degrees celsius in Paris.",
                "tool call: Calculator({'expression': '25**0.43'}) -> Answer: 3.991298452658078",
                "answer: It is sunny and 21 degrees Celsius in Paris, and 25 raised to the 0.43 power is about 3.99.",
            ],
            id="tools",
        ),
        pytest.param(
            "structured_output.py",
            [
                "json_schema: Person(name='Vittoria Ceretti', age=25, nationality='Italian')",
                "function_calling: Person(name='Vittoria Ceretti', age=25, nationality='Italian')",
            ],
            id="structured_output",
        ),
        pytest.param(
            "create_agent.py",
            [
                "    query: leo dicaprio girlfriend",
                "    query: vittoria ceretti age",
                "    expression: 25^0.43",
                "Answer: 3.991298452658078",
                NOTEBOOK_FINAL_ANSWER,
            ],
            id="create_agent",
        ),
    ],
)
def test_example_runs_against_its_scripted_server(script: str, expected_lines: list[str]) -> None:
    lines = run_example(script).splitlines()
    assert lines[0].startswith("(scripted TGI-compatible server at http://127.0.0.1:")
    for expected in expected_lines:
        assert expected in lines


def test_notebook_walkthrough_runs_scripted() -> None:
    output = run_example("notebook_walkthrough.py", "--scripted")

    for name in ("HuggingFaceTextGenInference", "HuggingFaceEndpoint", "HuggingFaceHub"):
        assert f"{name} -> ChatHuggingFace" in output
    assert output.count("chat_model.model_id = 'HuggingFaceH4/zephyr-7b-beta'") == 3
    assert "ReAct-JSON agent (free-form turns)" in output
    assert "> Finished chain." in output
    assert f"Final answer: {NOTEBOOK_FINAL_ANSWER}\n(3 tool steps, 0 parser errors" in output
    assert "Demo finished in" in output
