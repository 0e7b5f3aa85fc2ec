r"""Reasoning ("thinking") text: split ``<think>...</think>`` from the visible answer, whole or as it streams.

Reasoning models served by TGI or rendered locally (DeepSeek-R1, Qwen3, SmolLM3, ...) write their reasoning
inline, between ``<think>`` and ``</think>`` at the start of the output; some chat templates already open the
``<think>`` in the prompt, so the output starts inside the reasoning. Servers with a reasoning parser (vLLM,
SGLang, most Inference Providers) send it in a separate ``reasoning_content`` / ``reasoning`` field instead.

Either way it ends up in ``additional_kwargs["reasoning_content"]``, as langchain-deepseek, -groq and -ollama do,
which LangChain turns into a standard ``{"type": "reasoning"}`` content block (``message.content_blocks``), and
the message's ``content`` holds the answer only.

Example:
    >>> split_reasoning("<think>2 + 2 is 4.</think>\n\nIt is 4.")
    ('2 + 2 is 4.', 'It is 4.')
    >>> splitter = ReasoningSplitter()
    >>> [splitter.feed(piece) for piece in ["<thi", "nk>Hm", "m</th", "ink>Yes"]]
    [('', ''), ('Hm', ''), ('m', ''), ('', 'Yes')]
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "REASONING_KEY",
    "THINK_CLOSE",
    "THINK_OPEN",
    "ReasoningSplitter",
    "add_reasoning",
    "extract_reasoning",
    "prompt_opens_reasoning",
    "split_reasoning",
]

#: Where reasoning goes on an ``AIMessage``: ``additional_kwargs[REASONING_KEY]`` (LangChain's convention).
REASONING_KEY = "reasoning_content"

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

_START, _REASONING, _AFTER_CLOSE, _ANSWER = range(4)


def prompt_opens_reasoning(prompt: str) -> bool:
    r"""Whether a rendered prompt ends inside an opened ``<think>`` (the output then starts with reasoning).

    >>> prompt_opens_reasoning("<|im_start|>assistant\n<think>\n"), prompt_opens_reasoning("assistant\n")
    (True, False)
    """
    return prompt.rstrip().endswith(THINK_OPEN)


def split_reasoning(text: str, *, opened: bool = False) -> tuple[str, str]:
    """``(reasoning, answer)`` of a whole output; ``opened``: the prompt already opened ``<think>``.

    Only a ``<think>`` at the very start of the output counts (whitespace aside). A ``</think>`` without an
    opening tag still ends the reasoning (templates that open it in the prompt). Unterminated reasoning (the
    model ran out of tokens while thinking) is all reasoning.

    >>> split_reasoning("No reasoning here.")
    ('', 'No reasoning here.')
    >>> split_reasoning("Thinking in the prompt.</think>Answer")
    ('Thinking in the prompt.', 'Answer')
    """
    if not opened and THINK_CLOSE in text and THINK_OPEN not in text.lstrip()[: len(THINK_OPEN)]:
        opened = True
    splitter = ReasoningSplitter(opened=opened)
    reasoning, answer = splitter.feed(text)
    tail_reasoning, tail_answer = splitter.flush()
    return (reasoning + tail_reasoning).strip(), answer + tail_answer


def extract_reasoning(text: str, *, opened: bool = False) -> tuple[str, str] | None:
    """:func:`split_reasoning` if ``text`` has reasoning tags (or ``opened``), else ``None`` (a cheap check).

    >>> extract_reasoning("Plain answer") is None
    True
    """
    if not opened and THINK_CLOSE not in text and not text.lstrip().startswith(THINK_OPEN):
        return None
    return split_reasoning(text, opened=opened)


def add_reasoning(additional_kwargs: dict[str, Any], reasoning: str) -> None:
    """Append ``reasoning`` to a message's ``additional_kwargs`` (after any reasoning field the server sent)."""
    if reasoning:
        previous = additional_kwargs.get(REASONING_KEY)
        additional_kwargs[REASONING_KEY] = (previous + reasoning) if isinstance(previous, str) else reasoning


class ReasoningSplitter:
    """Incremental :func:`split_reasoning` for streams: tags split across chunks are recognised.

    ``feed`` returns ``(reasoning_delta, answer_delta)``; text that could still be the start of a tag is held
    back until the next piece (or :meth:`flush`) decides.
    """

    def __init__(self, *, opened: bool = False) -> None:
        self._state = _REASONING if opened else _START
        self._held = ""
        self.saw_reasoning = opened

    def feed(self, piece: str) -> tuple[str, str]:
        """Consume ``piece``; return the reasoning and answer text it completes."""
        if self._state == _ANSWER:
            return "", piece
        text = self._held + piece
        self._held = ""
        reasoning = answer = ""
        if self._state == _START:
            stripped = text.lstrip()
            if not stripped or (len(stripped) < len(THINK_OPEN) and THINK_OPEN.startswith(stripped)):
                self._held = text
                return "", ""
            if not stripped.startswith(THINK_OPEN):
                self._state = _ANSWER
                return "", text
            self._state = _REASONING
            self.saw_reasoning = True
            text = stripped[len(THINK_OPEN) :]
        if self._state == _REASONING:
            end = text.find(THINK_CLOSE)
            if end < 0:
                keep = _partial_tag_length(text, THINK_CLOSE)
                self._held = text[len(text) - keep :] if keep else ""
                return text[: len(text) - keep], ""
            reasoning = text[:end]
            text = text[end + len(THINK_CLOSE) :]
            self._state = _AFTER_CLOSE
        if self._state == _AFTER_CLOSE:
            # The answer starts after the blank line models put behind </think>.
            text = text.lstrip()
            if not text:
                return reasoning, ""
            self._state = _ANSWER
            answer = text
        return reasoning, answer

    def flush(self) -> tuple[str, str]:
        """The held-back text at the end of the stream."""
        held, self._held = self._held, ""
        if self._state == _REASONING:
            return held, ""
        if self._state == _START:
            return "", held
        return "", ""


def _partial_tag_length(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
