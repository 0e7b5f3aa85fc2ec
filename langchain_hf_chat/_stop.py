"""Client-side stop-sequence enforcement, shared by invoke and stream, sync and async.

Servers disagree about stop sequences: TGI includes the stop text in the output, some routes ignore
``stop`` altogether, and local pipelines have no notion of it. This module applies one rule
everywhere: the text is cut at the *earliest* occurrence of any stop sequence, and the stop
sequence itself is not returned.

`truncate_at_stop` does this for a complete text; `StopSequenceFilter` does the same for a stream
of chunks, holding back only a tail that could still turn into a stop sequence. For every
chunking of a text, the concatenation of what the filter emits equals what `truncate_at_stop`
returns for the whole text.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["StopSequenceFilter", "normalize_stop", "truncate_at_stop"]


def normalize_stop(stop: Sequence[str] | str | None) -> tuple[str, ...]:
    r"""Return the distinct, non-empty stop sequences, in their original order.

    A bare string counts as one stop sequence, not as a sequence of characters.

    Example:
        >>> normalize_stop(["###", "", "User:", "###"])
        ('###', 'User:')
        >>> normalize_stop("\n\n")
        ('\n\n',)
        >>> normalize_stop(None)
        ()
    """
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    return tuple(dict.fromkeys(s for s in stop if s))


def _earliest_match(text: str, stops: Sequence[str]) -> tuple[int, str] | None:
    """Find the earliest occurrence of any stop; at equal positions the shortest wins."""
    best: tuple[int, str] | None = None
    for stop in stops:
        end = len(text) if best is None else best[0] + len(stop)
        pos = text.find(stop, 0, end)
        if pos < 0:
            continue
        if best is None or (pos, len(stop)) < (best[0], len(best[1])):
            best = (pos, stop)
    return best


def truncate_at_stop(text: str, stop: Sequence[str] | str | None) -> tuple[str, str | None]:
    r"""Cut ``text`` at the earliest occurrence of any stop sequence.

    The stop sequence is not included. When two stop sequences start at the same position (one
    is a prefix of the other), the shorter one is reported, because it is the one a stream sees
    complete first. Empty stop sequences are ignored.

    Returns:
        ``(text_before_the_stop, matched_stop)``, or ``(text, None)`` when nothing matched.

    Example:
        >>> truncate_at_stop("Answer: 42\nUser: next", ["\nUser:", "###"])
        ('Answer: 42', '\nUser:')
        >>> truncate_at_stop("abcd", ["cd", "b"])
        ('a', 'b')
        >>> truncate_at_stop("no stop here", ["###"])
        ('no stop here', None)
    """
    match = _earliest_match(text, normalize_stop(stop))
    if match is None:
        return text, None
    pos, matched = match
    return text[:pos], matched


def _failure_function(pattern: str) -> list[int]:
    """KMP failure function: ``f[i]`` is the longest proper border of ``pattern[: i + 1]``."""
    failure = [0] * len(pattern)
    k = 0
    for i in range(1, len(pattern)):
        while k and pattern[i] != pattern[k]:
            k = failure[k - 1]
        if pattern[i] == pattern[k]:
            k += 1
        failure[i] = k
    return failure


class _StopPattern:
    """One stop sequence with its KMP table, to find partial matches at the end of a text."""

    __slots__ = ("failure", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.failure = _failure_function(text)

    def partial_suffix_length(self, buffer: str) -> int:
        """Length of the longest suffix of ``buffer`` that is a proper prefix of this stop.

        Only the last ``len(stop) - 1`` characters can take part, so the cost is
        O(len(stop)) whatever the size of ``buffer``.
        """
        pattern, failure = self.text, self.failure
        tail = buffer[-(len(pattern) - 1) :] if len(pattern) > 1 else ""
        state = 0
        for char in tail:
            while state and char != pattern[state]:
                state = failure[state - 1]
            if char == pattern[state]:
                state += 1
        return state


class StopSequenceFilter:
    """Incremental stop-sequence enforcement for streams.

    Feed it chunks as they arrive; it returns the text that is safe to emit and holds back the
    shortest tail that could still grow into a stop sequence. Once a stop sequence is complete,
    the text before it is released and every later call returns ``""``. Call `flush` at the end
    of the stream to release what is still held back.

    Each `feed` costs O(len(chunk) + longest stop) per stop sequence; the text already emitted
    is never scanned again. The same object works from sync and async code (it does no I/O).

    Example:
        >>> f = StopSequenceFilter(["</answer>"])
        >>> f.feed("The answer is 4")
        'The answer is 4'
        >>> f.feed("2</ans")
        '2'
        >>> f.feed("wer> trailing text")
        ''
        >>> f.stopped, f.matched
        (True, '</answer>')
        >>> f.feed("more"), f.flush()
        ('', '')

        Without a match, `flush` releases the held-back tail:

        >>> f = StopSequenceFilter(["###"])
        >>> f.feed("a#"), f.feed("#"), f.flush()
        ('a', '', '##')
    """

    __slots__ = ("_buffer", "_matched", "_patterns", "_stops")

    def __init__(self, stop: Sequence[str] | str | None) -> None:
        self._stops = normalize_stop(stop)
        self._patterns = tuple(_StopPattern(s) for s in self._stops)
        self._buffer = ""
        self._matched: str | None = None

    @property
    def stop(self) -> tuple[str, ...]:
        """The stop sequences in force (distinct, non-empty)."""
        return self._stops

    @property
    def stopped(self) -> bool:
        """Whether a stop sequence has matched; from then on `feed` returns ``""``."""
        return self._matched is not None

    @property
    def matched(self) -> str | None:
        """The stop sequence that matched, or ``None``."""
        return self._matched

    def feed(self, text: str) -> str:
        """Take the next chunk and return the text that can be emitted now."""
        if self._matched is not None:
            return ""
        if not self._stops:
            return text
        buffer = self._buffer + text
        # The earliest position where a stop sequence could still be starting (incomplete).
        hold = len(buffer) - max(p.partial_suffix_length(buffer) for p in self._patterns)
        match = _earliest_match(buffer, self._stops)
        # A complete match is final only if no other stop could still be starting before it.
        if match is not None and match[0] <= hold:
            pos, self._matched = match
            self._buffer = ""
            return buffer[:pos]
        self._buffer = buffer[hold:]
        return buffer[:hold]

    def flush(self) -> str:
        """End of stream: return the held-back tail, cut at a stop sequence if one is in it."""
        if self._matched is not None:
            return ""
        buffer, self._buffer = self._buffer, ""
        text, self._matched = truncate_at_stop(buffer, self._stops)
        return text
