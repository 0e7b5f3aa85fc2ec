"""Generation settings: precedence, validation and the wire mapping."""

from __future__ import annotations

import pytest

from langchain_hf_chat._params import merge_settings, to_chat_fields, to_tgi_parameters, validate_settings


def test_later_layers_win_and_none_does_not_override() -> None:
    merged = merge_settings({"temperature": 0.8, "top_k": 5}, {"temperature": 0.1}, {"top_k": None})
    assert merged == {"temperature": 0.1, "top_k": 5}


def test_aliases_fold_to_one_name() -> None:
    assert merge_settings({"max_new_tokens": 5}, {"max_tokens": 7}) == {"max_new_tokens": 7}
    assert merge_settings({"stop_sequences": ["a"]}) == {"stop": ["a"]}


def test_stop_lists_from_every_layer_are_merged_in_order() -> None:
    assert merge_settings({"stop": ["a", "b"]}, {"stop": ["b", "c"]}, {"stop": "d"}) == {"stop": ["a", "b", "c", "d"]}


def test_temperature_zero_is_greedy_on_tgi_routes() -> None:
    params = to_tgi_parameters({"temperature": 0, "top_k": 50, "top_p": 0.9, "typical_p": 0.9, "seed": 1})
    assert params == {"seed": 1, "do_sample": False}


def test_temperature_zero_is_sent_as_zero_on_chat_route() -> None:
    fields, leftovers = to_chat_fields({"temperature": 0.0, "top_p": 0.5})
    assert fields == {"temperature": 0}
    assert leftovers == {}


@pytest.mark.parametrize("name", ["top_p", "typical_p"])
def test_one_disables_nucleus_and_typical_filtering(name: str) -> None:
    assert name not in to_tgi_parameters({name: 1.0, "temperature": 0.5})


def test_every_set_parameter_is_sent_exactly() -> None:
    settings = {
        "max_new_tokens": 7,
        "temperature": 0.1,
        "top_k": 50,
        "top_p": 0.95,
        "typical_p": 0.9,
        "repetition_penalty": 1.03,
        "frequency_penalty": 0.5,
        "seed": 42,
        "truncate": 100,
        "watermark": True,
        "do_sample": True,
        "return_full_text": False,
        "stop": ["\n"],
    }
    assert to_tgi_parameters(settings) == settings


def test_extra_stop_sequences_are_capped_for_the_server() -> None:
    assert to_tgi_parameters({"stop": ["a", "b", "c", "d", "e"]}, max_stop_sequences=4)["stop"] == ["a", "b", "c", "d"]


def test_chat_fields_keep_tgi_only_settings_as_leftovers() -> None:
    fields, leftovers = to_chat_fields({"max_new_tokens": 3, "top_k": 4, "repetition_penalty": 1.1, "seed": 2})
    assert fields == {"max_tokens": 3, "seed": 2}
    assert leftovers == {"top_k": 4, "repetition_penalty": 1.1}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"temperature": -0.1}, "`temperature` must be >= 0"),
        ({"top_p": 0}, "`top_p` must be in (0, 1]"),
        ({"top_p": 1.5}, "`top_p` must be in (0, 1]"),
        ({"typical_p": 2}, "`typical_p` must be in (0, 1]"),
        ({"top_k": 0}, "`top_k` must be a positive integer"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be a positive integer"),
        ({"max_new_tokens": -3}, "`max_new_tokens` must be a positive integer"),
        ({"repetition_penalty": 0}, "`repetition_penalty` must be > 0"),
        ({"frequency_penalty": 3}, "`frequency_penalty` must be in [-2, 2]"),
        ({"seed": -1}, "`seed` must be a non-negative integer"),
        ({"temperature": "hot"}, "`temperature` must be a number"),
        ({"temperature": float("nan")}, "`temperature` must be a finite number"),
        ({"top_k": 2.5}, "`top_k` must be an integer"),
        ({"do_sample": "yes"}, "`do_sample` must be a boolean"),
    ],
)
def test_out_of_range_values_name_the_field(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        validate_settings(settings)


def test_too_many_stop_sequences_names_the_limit() -> None:
    with pytest.raises(ValueError, match="up to 4 stop sequences"):
        validate_settings({"stop": list("abcde")}, max_stop_sequences=4)
