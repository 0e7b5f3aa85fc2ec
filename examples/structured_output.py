"""Structured output with ChatHuggingFace: a Pydantic model back from the model, two ways.

    python examples/structured_output.py                      # a local scripted server (offline, instant)
    python examples/structured_output.py --url http://localhost:8080

``method="json_schema"`` (the default) constrains decoding to the schema (TGI's grammar / ``response_format``);
``method="function_calling"`` forces a tool call whose arguments are the object.
"""

from __future__ import annotations

from _local_server import parser, server_url
from pydantic import BaseModel, Field

from langchain_hf_chat import ChatHuggingFace, HuggingFaceTextGenInference
from langchain_hf_chat.testing import ScriptedBackend

TEXT = "Vittoria Ceretti is an Italian fashion model. She was born in 1998 and is 25 years old."


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="the person's full name")
    age: int = Field(description="age in years")
    nationality: str = Field(description="nationality, as an adjective")


def scripted_replies(backend: ScriptedBackend) -> None:
    person = {"name": "Vittoria Ceretti", "age": 25, "nationality": "Italian"}
    backend.queue_json(person)  # what the JSON-schema grammar makes the model write
    backend.queue_tool_call("Person", person)  # what the forced tool call makes it write


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    with server_url(args.url, scripted_replies) as url:
        chat = ChatHuggingFace(llm=HuggingFaceTextGenInference(inference_server_url=url, max_new_tokens=96))
        prompt = f"Extract the person from this text: {TEXT}"
        for method in ("json_schema", "function_calling"):
            person = chat.with_structured_output(Person, method=method).invoke(prompt)
            print(f"{method}: {person!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
