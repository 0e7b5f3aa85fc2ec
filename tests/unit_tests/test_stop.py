"""Specification of client-side stop-sequence enforcement (`langchain_hf_chat._stop`)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_hf_chat._stop import StopSequenceFilter, normalize_stop, truncate_at_stop


def run_filter(chunks: Iterable[str], stop: list[str] | str | None) -> tuple[str, str | None]:
    stop_filter = StopSequenceFilter(stop)
    out = "".join(stop_filter.feed(chunk) for chunk in chunks) + stop_filter.flush()
    return out, stop_filter.matched


def split_at(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


# --- truncate_at_stop -------------------------------------------------------------------


def test_truncate_cuts_before_the_stop_sequence() -> None:
    assert truncate_at_stop("hello###world", ["###"]) == ("hello", "###")


def test_truncate_without_a_match_returns_text_unchanged() -> None:
    assert truncate_at_stop("hello world", ["###"]) == ("hello world", None)


def test_truncate_earliest_occurrence_wins_regardless_of_list_order() -> None:
    assert truncate_at_stop("a-b+c-d", ["-", "+"]) == ("a", "-")
    assert truncate_at_stop("a+b-c", ["-", "+"]) == ("a", "+")


def test_truncate_overlapping_stops_earliest_start_wins() -> None:
    assert truncate_at_stop("xabcd", ["bcd", "abc"]) == ("x", "abc")


def test_truncate_same_start_reports_the_shorter_stop() -> None:
    assert truncate_at_stop("hi ab", ["ab", "a"]) == ("hi ", "a")


def test_truncate_ignores_empty_stop_strings() -> None:
    assert truncate_at_stop("text", ["", "x"]) == ("te", "x")
    assert truncate_at_stop("text", [""]) == ("text", None)


def test_truncate_with_no_stops_returns_text_unchanged() -> None:
    assert truncate_at_stop("text", None) == ("text", None)
    assert truncate_at_stop("text", []) == ("text", None)


def test_truncate_treats_a_bare_string_as_one_stop_sequence() -> None:
    assert truncate_at_stop("a b\n\nc", "\n\n") == ("a b", "\n\n")


def test_truncate_stop_at_the_start_gives_empty_text() -> None:
    assert truncate_at_stop("###rest", ["###"]) == ("", "###")


def test_normalize_stop_drops_empty_and_duplicate_sequences() -> None:
    assert normalize_stop(["b", "", "a", "b"]) == ("b", "a")


# --- StopSequenceFilter ---------------------------------------------------------------


def test_filter_without_stops_passes_chunks_through_immediately() -> None:
    stop_filter = StopSequenceFilter(None)
    assert stop_filter.feed("abc") == "abc"
    assert stop_filter.flush() == ""
    assert not stop_filter.stopped


def test_filter_emits_text_that_cannot_start_a_stop_sequence() -> None:
    stop_filter = StopSequenceFilter(["###"])
    assert stop_filter.feed("hello ") == "hello "


def test_filter_holds_back_a_possible_stop_prefix() -> None:
    stop_filter = StopSequenceFilter(["###"])
    assert stop_filter.feed("hello #") == "hello "
    assert stop_filter.feed("#") == ""


def test_filter_releases_held_text_when_the_prefix_does_not_continue() -> None:
    stop_filter = StopSequenceFilter(["###"])
    stop_filter.feed("a##")
    assert stop_filter.feed("b") == "##b"


def test_filter_stop_split_across_many_chunks_is_not_leaked() -> None:
    out, matched = run_filter(["Answer", "<", "/", "ans", "wer", ">", "junk"], ["</answer>"])
    assert (out, matched) == ("Answer", "</answer>")


def test_filter_returns_empty_forever_after_a_match() -> None:
    stop_filter = StopSequenceFilter(["STOP"])
    stop_filter.feed("go STOP")
    assert stop_filter.feed("more text") == ""
    assert stop_filter.flush() == ""


def test_filter_reports_stopped_and_matched_sequence() -> None:
    stop_filter = StopSequenceFilter(["x", "STOP"])
    stop_filter.feed("go STOP now")
    assert stop_filter.stopped
    assert stop_filter.matched == "STOP"


def test_filter_flush_releases_the_tail_when_nothing_matched() -> None:
    stop_filter = StopSequenceFilter(["###"])
    assert stop_filter.feed("end ##") == "end "
    assert stop_filter.flush() == "##"
    assert not stop_filter.stopped
    assert stop_filter.matched is None


def test_filter_waits_for_a_longer_stop_that_starts_earlier() -> None:
    # "bc" is complete in the first chunk, but "abcd" starts earlier and may still complete.
    stop_filter = StopSequenceFilter(["abcd", "bc"])
    assert stop_filter.feed("xabc") == "x"
    assert not stop_filter.stopped
    assert stop_filter.feed("d") == ""
    assert stop_filter.matched == "abcd"


def test_filter_falls_back_to_the_later_stop_when_the_longer_one_fails() -> None:
    stop_filter = StopSequenceFilter(["abcd", "bc"])
    assert stop_filter.feed("xabc") == "x"
    assert stop_filter.feed("e") == "a"
    assert stop_filter.matched == "bc"


def test_filter_flush_applies_a_pending_match() -> None:
    stop_filter = StopSequenceFilter(["abcd", "bc"])
    stop_filter.feed("xabc")
    assert stop_filter.flush() == "a"
    assert stop_filter.matched == "bc"


def test_filter_holds_back_at_most_the_longest_stop_minus_one() -> None:
    stop_filter = StopSequenceFilter(["<|im_end|>"])
    emitted = stop_filter.feed("x" * 1000 + "<|im_end")
    assert emitted == "x" * 1000
    assert stop_filter.flush() == "<|im_end"


def test_filter_handles_self_overlapping_stop_sequence() -> None:
    assert run_filter(["aa", "aa", "b"], ["aab"]) == ("aa", "aab")


def test_filter_emits_text_before_a_stop_in_the_first_chunk() -> None:
    stop_filter = StopSequenceFilter(["\n"])
    assert stop_filter.feed("line one\nline two") == "line one"


def test_filter_empty_chunks_are_harmless() -> None:
    assert run_filter(["", "ab", "", "#", "", "##", ""], ["###"]) == ("ab", "###")


def test_filter_treats_a_bare_string_as_one_stop_sequence() -> None:
    assert run_filter(["ab", "c"], "bc") == ("a", "bc")


def test_filter_works_the_same_inside_an_async_stream() -> None:
    async def tokens() -> AsyncIterator[str]:
        for token in ["Hel", "lo", " Us", "er:", " hi"]:
            yield token

    async def collect() -> str:
        stop_filter = StopSequenceFilter([" User:"])
        parts = [stop_filter.feed(token) async for token in tokens()]
        return "".join(parts) + stop_filter.flush()

    assert asyncio.run(collect()) == "Hello"


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7])
def test_filter_matches_truncate_for_fixed_chunk_sizes(chunk_size: int) -> None:
    text = "The answer: 42.\n\nQuestion: next?\n\nAnswer:"
    stops = ["\n\nQuestion:", "Question", "\n\n\n"]
    chunks = [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]
    assert run_filter(chunks, stops) == truncate_at_stop(text, stops)


_ALPHABET = st.sampled_from("ab#\n")
_texts = st.text(alphabet=_ALPHABET, max_size=40)
_stops = st.lists(st.text(alphabet=_ALPHABET, max_size=5), max_size=4)
_cuts = st.lists(st.integers(min_value=0, max_value=40), max_size=12)


@settings(max_examples=250, deadline=None)
@given(text=_texts, stops=_stops, cuts=_cuts)
def test_filter_output_equals_truncate_for_any_chunking(text: str, stops: list[str], cuts: list[int]) -> None:
    assert run_filter(split_at(text, cuts), stops) == truncate_at_stop(text, stops)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=60), stops=st.lists(st.text(max_size=4), max_size=3), cuts=_cuts)
def test_filter_equals_truncate_for_arbitrary_unicode(text: str, stops: list[str], cuts: list[int]) -> None:
    assert run_filter(split_at(text, cuts), stops) == truncate_at_stop(text, stops)


@settings(max_examples=200, deadline=None)
@given(text=_texts, stops=_stops)
def test_truncate_result_contains_no_stop_sequence(text: str, stops: list[str]) -> None:
    result, matched = truncate_at_stop(text, stops)
    assert not any(stop and stop in result for stop in stops)
    assert text.startswith(result)
    if matched is not None:
        assert text[len(result) :].startswith(matched)


@settings(max_examples=200, deadline=None)
@given(text=_texts, stops=_stops, cuts=_cuts)
def test_filter_never_holds_back_more_than_the_longest_stop_minus_one(
    text: str, stops: list[str], cuts: list[int]
) -> None:
    stop_filter = StopSequenceFilter(stops)
    longest = max((len(s) for s in stops), default=0)
    consumed = emitted = 0
    for chunk in split_at(text, cuts):
        emitted += len(stop_filter.feed(chunk))
        consumed += len(chunk)
        if stop_filter.stopped:
            break
        assert consumed - emitted <= max(longest - 1, 0)
