"""Structured output for ``ChatHuggingFace``: the ``with_structured_output`` runnable and its request shapes.

`structured_output_runnable` binds a schema to the chat model (a forced tool call, or a ``response_format`` with a
JSON schema or JSON mode) and pipes the answer into the matching parser, with ``include_raw`` if asked.
`response_format_for` builds that ``response_format`` in TGI's or OpenAI's shape, and
`server_response_format_shape` tells which shape a backend accepts. The fallback chain when a server cannot
constrain the output (JSON schema -> JSON mode -> prompt) is planned in :mod:`langchain_hf_chat._response_format`;
`with_method` records the method that answered.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.pydantic import is_basemodel_subclass

from langchain_hf_chat import errors
from langchain_hf_chat._schema import schema_from

if TYPE_CHECKING:
    from langchain_hf_chat.chat_models import ChatHuggingFace

__all__ = ["response_format_for", "server_response_format_shape", "structured_output_runnable", "with_method"]


def structured_output_runnable(
    chat: ChatHuggingFace,
    schema: dict[str, Any] | type,
    *,
    method: Literal["function_calling", "json_mode", "json_schema"] = "json_schema",
    include_raw: bool = False,
    strict: bool | None = None,
    **kwargs: Any,
) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
    """What ``chat.with_structured_output(schema, ...)`` returns (see `ChatHuggingFace.with_structured_output`)."""
    if kwargs:
        raise ValueError(f"unexpected arguments: {sorted(kwargs)}")
    # Tracing gets the caller's schema: LangChain converts it for ls_structured_output_format itself.
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    json_schema = schema_from(schema)
    name = str(json_schema.get("title") or "output")
    parser: Runnable[Any, Any]
    if method == "function_calling":
        tool = {
            "type": "function",
            "function": {
                "name": name,
                "description": json_schema.get("description", ""),
                "parameters": json_schema,
            },
        }
        llm = chat.bind_tools(
            [tool],
            tool_choice=name,
            ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
        )
        if is_pydantic:
            parser = PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
        else:
            parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
    elif method in ("json_schema", "json_mode"):
        response_format = chat._response_format(json_schema if method == "json_schema" else None, name, strict=strict)
        llm = chat.bind(
            response_format=response_format,
            ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
        )
        if is_pydantic:
            parser = PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
        else:
            parser = JsonOutputParser()
    else:
        raise ValueError(f"unknown method {method!r}; use 'json_schema', 'function_calling' or 'json_mode'")
    if not include_raw:
        return llm | parser
    parser_assign = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
    parser_with_fallback = parser_assign.with_fallbacks([parser_none], exception_key="parsing_error")
    return RunnableMap(raw=llm) | parser_with_fallback


def response_format_for(
    json_schema: dict[str, Any] | None, name: str, *, strict: bool | None = None, openai_shape: bool
) -> dict[str, Any]:
    """The ``response_format`` for ``json_schema`` (``None``: JSON mode), in OpenAI's shape or TGI's."""
    if json_schema is None:
        # json_mode: TGI needs a schema with properties; any object is accepted.
        if openai_shape:
            return {"type": "json_object"}
        return {"type": "json_object", "value": {"type": "object", "properties": {}}}
    if openai_shape:
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": json_schema, "strict": strict is not False},
        }
    return {"type": "json_object", "value": json_schema}


def server_response_format_shape(backend: Any) -> str:
    """``"openai"`` or ``"tgi"``: the ``response_format`` shape ``backend``'s server accepts (may ask ``/info``)."""
    if getattr(backend, "chat_model", None) is not None:
        return "openai"  # the providers router
    # TGI answers /info; OpenAI-style servers (vLLM, SGLang) have none.
    try:
        info = backend.info() if backend is not None and hasattr(backend, "info") else {}
    except errors.HuggingFaceError:
        info = {}
    return "openai" if info is None else "tgi"


def with_method(result: ChatResult, method: str | None) -> ChatResult:
    """``result``, its messages tagged with the structured-output ``method`` that produced it (if any)."""
    if method is not None:
        for generation in result.generations:
            generation.message.response_metadata["structured_output_method"] = method
    return result
