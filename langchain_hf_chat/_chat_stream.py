"""Chat-completions stream bookkeeping for ``ChatHuggingFace``.

`ChatStream` turns the server's chat-completion chunks into LangChain chunks, one call to `ChatStream.feed` per
event, the same for sync and async streams: it enforces stop sequences, moves ``<think>`` reasoning out of the
answer, rebuilds the tool call of TGI 2.x-3.1 tool streams from its grammar fragments, fills in the finish reason
and model name, and raises when a stream ends before the server finished it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessageChunk, ToolCallChunk
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

from langchain_hf_chat import errors
from langchain_hf_chat._error_mapping import error_from_event
from langchain_hf_chat._messages import chunk_from_chat_chunk
from langchain_hf_chat._reasoning import ReasoningSplitter, add_reasoning
from langchain_hf_chat._sse import DONE
from langchain_hf_chat._stop import StopSequenceFilter
from langchain_hf_chat._tools import parse_streamed_grammar

if TYPE_CHECKING:
    from langchain_hf_chat.chat_models import ChatHuggingFace

__all__ = ["ChatStream"]


class ChatStream:
    """Turns chat-completion chunks into LangChain chunks: stop enforcement, finish and usage bookkeeping."""

    def __init__(self, chat: ChatHuggingFace, settings: Mapping[str, Any]) -> None:
        self.chat = chat
        self.filter = StopSequenceFilter(settings.get("stop"))
        self.done = False
        self.saw_finish = False
        self.saw_done = False
        self.saw_tool_calls = False
        self.saw_any = False
        self.partial: list[str] = []
        self.splitter = None if chat.keep_think_tags else ReasoningSplitter()
        #: TGI < 3.2 tool streams: the raw grammar fragments, parsed into one call when the stream ends.
        self.grammar_text: list[str] | None = None

    def feed(self, payload: Any) -> Iterator[ChatGenerationChunk]:
        """The LangChain chunks for one decoded stream event (none for ``[DONE]`` or an empty delta)."""
        if payload is DONE:
            self.saw_done = True
            self.done = True
            return
        if not isinstance(payload, Mapping):
            raise errors.StreamParseError(f"unexpected stream chunk: {str(payload)[:200]!r}")
        if payload.get("error") is not None:
            raise error_from_event(payload, "")
        chunk = chunk_from_chat_chunk(payload)
        if chunk is None:
            return
        self.saw_any = True
        if chunk.tool_call_chunks:
            if not self.saw_tool_calls and chunk.tool_call_chunks[0].get("name") is None:
                self.grammar_text = []  # TGI 2.x-3.1: no name in any delta, the call is in the fragments
            self.saw_tool_calls = True
            if self.grammar_text is not None:
                self.grammar_text.extend(c.get("args") or "" for c in chunk.tool_call_chunks)
                chunk = _rebuilt(chunk, [])
        if self.filter.stopped:
            # Stop already matched: only usage may still matter.
            if chunk.usage_metadata:
                yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=chunk.usage_metadata))
            return
        final = bool(chunk.response_metadata.get("finish_reason"))
        if isinstance(chunk.content, str) and (chunk.content or (final and self.splitter is not None)):
            text = self._split_reasoning(chunk, chunk.content, final=final)
            chunk.content = self.filter.feed(text) if text else ""
            self.partial.append(chunk.content)
        if final and self.grammar_text is not None:
            chunk = self._with_grammar_call(chunk)
        if final:
            self.saw_finish = True
            chunk.content = str(chunk.content or "") + self.filter.flush()
            chunk.response_metadata["model_name"] = self._model_name(chunk.response_metadata.get("model_name"))
            chunk.response_metadata["model_provider"] = "huggingface"
        if self.filter.stopped:
            chunk.response_metadata["finish_reason"] = "stop"
            chunk.response_metadata["model_name"] = self._model_name(chunk.response_metadata.get("model_name"))
            self.saw_finish = True
        if (
            chunk.content
            or chunk.tool_call_chunks
            or chunk.usage_metadata
            or chunk.response_metadata
            or chunk.additional_kwargs
        ):
            yield ChatGenerationChunk(message=chunk)

    def _with_grammar_call(self, chunk: AIMessageChunk) -> AIMessageChunk:
        """``chunk`` carrying the call parsed from a TGI 2.x-3.1 tool stream (or ``no_tool``'s answer as text)."""
        parsed = parse_streamed_grammar("".join(self.grammar_text or []))
        self.grammar_text = None
        calls = [
            tool_call_chunk(name=call["name"], args=json.dumps(call["args"]), id=call.get("id") or str(i), index=i)
            for i, call in enumerate(parsed.tool_calls)
        ] + [
            tool_call_chunk(name=bad.get("name"), args=bad.get("args"), id=bad.get("id"), index=len(parsed.tool_calls))
            for bad in parsed.invalid_tool_calls
        ]
        rebuilt = _rebuilt(chunk, calls, extra_content=self.filter.feed(parsed.content) if parsed.content else "")
        if calls:
            rebuilt.response_metadata["finish_reason"] = "tool_calls"
        else:
            self.saw_tool_calls = False  # no_tool: a plain answer
        return rebuilt

    def _split_reasoning(self, chunk: AIMessageChunk, text: str, *, final: bool) -> str:
        """Move ``<think>`` reasoning out of ``text`` into the chunk's ``reasoning_content``; return the answer."""
        if self.splitter is None:
            return text
        reasoning, answer = self.splitter.feed(text)
        if final:
            tail_reasoning, tail_answer = self.splitter.flush()
            reasoning, answer = reasoning + tail_reasoning, answer + tail_answer
        add_reasoning(chunk.additional_kwargs, reasoning)
        return answer

    def add_partial(self, exc: errors.HuggingFaceError) -> None:
        """Give a cut stream's error the text received before the cut (the transport only sees bytes)."""
        if isinstance(exc, errors.IncompleteGenerationError) and not exc.partial_text:
            exc.partial_text = "".join(self.partial)

    def _model_name(self, name: str | None) -> str | None:
        if name in (None, "", "tgi", "dummy"):
            return self.chat.model_id
        return name

    def finish(self) -> Iterator[ChatGenerationChunk]:
        """The closing chunk after the last event (held-back text, finish reason); raises if the stream was cut."""
        if not self.saw_done and not self.saw_finish and not self.filter.stopped:
            raise errors.IncompleteGenerationError(
                "the chat stream ended before the server finished it (no finish_reason and no [DONE])",
                partial_text="".join(self.partial),
            )
        carrier = AIMessageChunk(content="")
        tail = ""
        if not self.filter.stopped:
            if not self.saw_finish:
                answer = self._split_reasoning(carrier, "", final=True)
                tail = self.filter.feed(answer) if answer else ""
            tail += self.filter.flush()
        if tail or not self.saw_finish or carrier.additional_kwargs:
            metadata: dict[str, Any] = {}
            if not self.saw_finish:
                # TGI >= 3.2 tool streams carry no finish_reason.
                metadata = {
                    "finish_reason": "tool_calls" if self.saw_tool_calls else "stop",
                    "model_name": self.chat.model_id,
                    "model_provider": "huggingface",
                }
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=tail, response_metadata=metadata, additional_kwargs=carrier.additional_kwargs
                )
            )


def _rebuilt(chunk: AIMessageChunk, tool_chunks: list[ToolCallChunk], *, extra_content: str = "") -> AIMessageChunk:
    # Tool calls are derived from tool_call_chunks when a chunk is built: changing them needs a new chunk.
    return AIMessageChunk(
        content=str(chunk.content or "") + extra_content,
        tool_call_chunks=tool_chunks,
        usage_metadata=chunk.usage_metadata,
        response_metadata=dict(chunk.response_metadata),
        additional_kwargs=dict(chunk.additional_kwargs),
    )
