"""The Search tool: deterministic BM25 ranking over the bundled corpus."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from langchain_hf_chat.agents import demo_tools, search, search_corpus
from langchain_hf_chat.agents.tools import NO_RESULT


def test_the_corpus_is_small_and_well_formed() -> None:
    raw = json.loads(resources.files("langchain_hf_chat.agents").joinpath("corpus.json").read_text("utf-8"))
    entries = raw["entries"]
    assert 15 <= len(entries) <= 30
    assert all(set(entry) == {"title", "text"} and entry["title"] and entry["text"] for entry in entries)
    assert raw["as_of"] == "2023-11"


@pytest.mark.parametrize("query", ["leo dicaprio girlfriend", "Who is Leo DiCaprio's girlfriend?"])
def test_the_girlfriend_question_finds_vittoria_ceretti(query: str) -> None:
    top = search_corpus(query)[0]
    assert top.title == "Leonardo DiCaprio's girlfriend: Vittoria Ceretti"
    assert search.invoke(query).startswith("Leo DiCaprio's girlfriend is Vittoria Ceretti")


@pytest.mark.parametrize("query", ["vittoria ceretti age", "What is her current age?"])
def test_the_age_question_finds_25_years(query: str) -> None:
    assert search.invoke(query) == "Vittoria Ceretti's current age is 25 years. The Italian model was born in 1998."


def test_ranking_is_deterministic_and_sorted() -> None:
    first = search_corpus("leonardo dicaprio film", k=5)
    assert first == search_corpus("leonardo dicaprio film", k=5)
    scores = [hit.score for hit in first]
    assert scores == sorted(scores, reverse=True)
    assert {hit.title for hit in first} >= {"Leonardo DiCaprio", "Titanic (1997 film)"}


def test_k_limits_the_hits() -> None:
    assert len(search_corpus("the capital of France is Paris", k=2)) == 2


def test_only_matching_entries_are_returned() -> None:
    assert [hit.title for hit in search_corpus("everest height")] == ["Mount Everest"]


@pytest.mark.parametrize("query", ["zxqv wobble", "", "the of and is", "!!!"])
def test_no_overlap_means_no_result(query: str) -> None:
    assert search_corpus(query) == []
    assert search.invoke(query) == NO_RESULT


def test_demo_tools_are_the_classic_pair() -> None:
    tools = demo_tools()
    assert [tool.name for tool in tools] == ["Search", "Calculator"]
    assert all(tool.description for tool in tools)
    assert tools[0].args == {"query": {"title": "Query", "type": "string"}}
    assert tools[1].args == {"expression": {"title": "Expression", "type": "string"}}
