"""Chat-template rendering (equal to transformers' apply_chat_template) and template lookup."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from langchain_hf_chat._templates import ChatTemplate, RenderLimits, load_chat_template
from langchain_hf_chat.errors import TemplateError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "templates"
SOURCES = json.loads((FIXTURES / "sources.json").read_text(encoding="utf-8"))["templates"]
FIXTURE_IDS = [entry["file"].removesuffix(".jinja") for entry in SOURCES]

ZEPHYR = (FIXTURES / "zephyr-7b-beta.jinja").read_text(encoding="utf-8")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "The city, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    }
]
TOOL_CALL = {
    "id": "call12345",
    "type": "function",
    "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
}

# name -> (messages, render kwargs)
CONVERSATIONS: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "user": ([{"role": "user", "content": "Hello, how are you?"}], {}),
    "system+user": (
        [
            {"role": "system", "content": "You're a helpful assistant"},
            {"role": "user", "content": "What happens when an unstoppable force meets an immovable?"},
        ],
        {},
    ),
    "multi-turn": (
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "   Hello! How can I help?   "},
            {"role": "user", "content": "Tell me a joke ü 日本 \N{GRINNING FACE}"},
        ],
        {},
    ),
    "no generation prompt": (
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        {"add_generation_prompt": False},
    ),
    "continue final message": (
        [{"role": "user", "content": "Count to five"}, {"role": "assistant", "content": "1, 2,"}],
        {"add_generation_prompt": False, "continue_final_message": True},
    ),
    "tools": ([{"role": "user", "content": "Weather in Paris?"}], {"tools": TOOLS}),
    "tool call and result": (
        [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
            {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "22"},
        ],
        {"tools": TOOLS},
    ),
    "system+tools": (
        [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        {"tools": TOOLS},
    ),
}


def _fixture(entry: dict[str, Any]) -> ChatTemplate:
    source = (FIXTURES / entry["file"]).read_text(encoding="utf-8")
    return ChatTemplate.from_string(
        source,
        bos_token=entry["bos_token"] or "",
        eos_token=entry["eos_token"] or "",
        name=entry["model_id"],
    )


def _transformers_tokenizer(entry: dict[str, Any]) -> Any:
    """A real transformers tokenizer carrying the fixture's template, built offline."""
    transformers = pytest.importorskip("transformers", reason="transformers is an optional extra")
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tokens = {key: entry[key] for key in ("bos_token", "eos_token") if entry[key] is not None}
    source = (FIXTURES / entry["file"]).read_text(encoding="utf-8")
    return transformers.PreTrainedTokenizerFast(tokenizer_object=backend, chat_template=source, **tokens)


@pytest.fixture(scope="module")
def tokenizers_by_file() -> dict[str, Any]:
    return {entry["file"]: _transformers_tokenizer(entry) for entry in SOURCES}


@pytest.mark.parametrize("conversation", list(CONVERSATIONS))
@pytest.mark.parametrize("entry", SOURCES, ids=FIXTURE_IDS)
def test_rendering_equals_transformers_apply_chat_template(
    entry: dict[str, Any], conversation: str, tokenizers_by_file: dict[str, Any]
) -> None:
    messages, kwargs = CONVERSATIONS[conversation]
    kwargs = {"add_generation_prompt": True, **kwargs, "date_string": "26 Jul 2024"}
    tokenizer = tokenizers_by_file[entry["file"]]
    try:
        expected: str | None = tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)
        expected_error = ""
    except Exception as exc:  # the template itself refuses this conversation
        expected, expected_error = None, str(exc)
    template = _fixture(entry)

    if expected is None:
        with pytest.raises(TemplateError) as info:
            template.render(messages, **kwargs)
        assert entry["model_id"] in str(info.value)
        assert expected_error.split("!")[0] in str(info.value)
    else:
        assert template.render(messages, **kwargs) == expected


def test_zephyr_prompt_is_exact() -> None:
    template = ChatTemplate.from_string(ZEPHYR, bos_token="<s>", eos_token="</s>")
    messages = [
        {"role": "system", "content": "You're a helpful assistant"},
        {
            "role": "user",
            "content": "What happens when an unstoppable force meets an immovable object?",
        },
    ]
    assert template.render(messages) == (
        "<|system|>\nYou're a helpful assistant</s>\n<|user|>\nWhat happens when an unstoppable "
        "force meets an immovable object?</s>\n<|assistant|>\n"
    )


def test_zephyr_prompt_matches_transformers(tokenizers_by_file: dict[str, Any]) -> None:
    tokenizer = tokenizers_by_file["zephyr-7b-beta.jinja"]
    messages = [
        {"role": "system", "content": "You're a helpful assistant"},
        {
            "role": "user",
            "content": "What happens when an unstoppable force meets an immovable object?",
        },
    ]
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert ChatTemplate.from_string(ZEPHYR, eos_token="</s>").render(messages) == expected


@pytest.mark.parametrize(
    ("fixture", "role"),
    [("gemma-7b-it", "System role not supported"), ("mixtral-8x7b-instruct-v0.1", "alternate")],
)
def test_template_errors_keep_the_template_message_and_model(fixture: str, role: str) -> None:
    entry = next(e for e in SOURCES if e["file"] == f"{fixture}.jinja")
    messages = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]
    with pytest.raises(TemplateError, match=role) as info:
        _fixture(entry).render(messages)
    assert entry["model_id"] in str(info.value)


def test_non_alternating_roles_raise_template_error_for_mistral() -> None:
    entry = next(e for e in SOURCES if e["file"] == "mistral-7b-instruct-v0.1.jinja")
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(TemplateError, match="Conversation roles must alternate"):
        _fixture(entry).render(messages)


@pytest.mark.parametrize(
    ("fixture", "tools", "system"),
    [
        ("zephyr-7b-beta", False, True),
        ("llama-3.1-8b-instruct", True, True),
        ("llama-3.2-11b-vision-instruct", True, True),
        ("mistral-7b-instruct-v0.1", False, False),
        ("mistral-7b-instruct-v0.3", True, False),
        ("mixtral-8x7b-instruct-v0.1", False, False),
        ("qwen2.5-7b-instruct", True, True),
        ("smollm2-135m-instruct", False, True),
        ("gemma-7b-it", False, False),
    ],
)
def test_capabilities_are_detected(fixture: str, tools: bool, system: bool) -> None:
    template = _fixture(next(e for e in SOURCES if e["file"] == f"{fixture}.jinja"))
    assert template.supports_tools is tools
    assert template.supports_system_role is system


def test_fixture_list_names_every_template_file() -> None:
    listed = {entry["file"] for entry in SOURCES}
    assert listed == {path.name for path in FIXTURES.glob("*.jinja")}
    assert all(entry["source"]["repository"] for entry in SOURCES)


# --- rendering behaviour ---------------------------------------------------------------------


def test_compiled_templates_are_shared_by_source() -> None:
    first = ChatTemplate.from_string(ZEPHYR, eos_token="</s>")
    second = ChatTemplate.from_string(ZEPHYR, eos_token="<eos>")
    assert first._compiled is second._compiled
    assert first.render([{"role": "user", "content": "x"}]) != second.render([{"role": "user", "content": "x"}])


def test_repeated_renders_return_the_same_prompt_without_touching_inputs() -> None:
    template = ChatTemplate.from_string(ZEPHYR, eos_token="</s>")
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "1, 2,"}]
    snapshot = json.dumps(messages)
    first = template.render(messages, add_generation_prompt=False, continue_final_message=True)
    assert template.render(messages, continue_final_message=True) == first
    assert first.endswith("1, 2,")
    assert json.dumps(messages) == snapshot


def test_the_render_memo_is_bounded_and_skips_clock_reading_and_compiled_templates() -> None:
    # A macro keeps the template on the Jinja path, the only one with a memo.
    template = ChatTemplate.from_string("{% macro m(x) %}[{{ x }}]{% endmacro %}{{ m(messages[0].content) }}")
    assert template._compiled.fast is None
    for i in range(300):
        assert template.render([{"role": "user", "content": f"message {i}"}]) == f"[message {i}]"
    assert template._memo is not None
    assert len(template._memo) == 256  # filled, and no further
    assert template.render([{"role": "user", "content": "message 299"}]) == "[message 299]"  # a hit
    assert ChatTemplate.from_string("{% macro m() %}{% endmacro %}{{ strftime_now('%Y') }}")._memo is None
    compiled = ChatTemplate.from_string(ZEPHYR, eos_token="</s>")
    assert compiled._compiled.fast is not None and compiled._memo is None


def test_values_that_render_differently_are_not_confused_by_the_memo() -> None:
    template = ChatTemplate.from_string("{{ messages[0].content }}")
    rendered = [template.render([{"role": "user", "content": v}]) for v in (1, 1.0, True)]
    assert rendered == ["1", "1.0", "True"]


def test_template_kwargs_override_special_tokens() -> None:
    template = ChatTemplate.from_string("{{ bos_token }}|{{ custom }}", bos_token="<s>")
    assert template.render([{"role": "user", "content": "x"}], custom="c") == "<s>|c"
    assert template.render([{"role": "user", "content": "x"}], bos_token="B") == "B|"


def test_none_values_are_dropped_like_transformers() -> None:
    template = ChatTemplate.from_string("{{ 'content' in messages[0] }}")
    assert template.render([{"role": "assistant", "content": None}]) == "False"


def test_message_objects_are_converted_to_plain_dicts() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Message(pydantic.BaseModel):
        role: str
        content: str

    template = ChatTemplate.from_string("{{ messages[0].role }}:{{ messages[0].content }}")
    assert template.render([Message(role="user", content="hi")]) == "user:hi"  # type: ignore[list-item]


def test_generation_tags_render_their_body() -> None:
    template = ChatTemplate.from_string("{% generation %}{{ messages[0].content }}{% endgeneration %}")
    assert template.render([{"role": "assistant", "content": "body"}]) == "body"


def test_tojson_matches_transformers_options() -> None:
    template = ChatTemplate.from_string(
        "{{ tools[0] | tojson }}|{{ tools[0] | tojson(indent=2, sort_keys=True) }}"
        "|{{ {'é': '<b>'} | tojson(ensure_ascii=True, separators=(',', ':')) }}"
    )
    out = template.render([{"role": "user", "content": "x"}], tools=[{"b": 1, "a": "é<"}])
    assert out == '{"b": 1, "a": "é<"}|{\n  "a": "é<",\n  "b": 1\n}|{"\\u00e9":"<b>"}'


@pytest.mark.parametrize(
    ("messages", "kwargs", "match"),
    [
        ([], {}, "empty conversation"),
        (["hello"], {}, "should be dicts"),
        ("hello", {}, "list of message dicts"),
        ([{"role": "user", "content": "x"}], {"tools": ["not a schema"]}, "JSON-schema"),
        ([{"role": "user", "content": "x"}], {"documents": [1]}, "documents"),
        (
            [{"role": "user", "content": "x"}],
            {"add_generation_prompt": True, "continue_final_message": True},
            "cannot be combined",
        ),
        ([{"role": "user"}], {"continue_final_message": True}, 'no "content"'),
    ],
)
def test_bad_inputs_raise_template_error(messages: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(TemplateError, match=match):
        ChatTemplate.from_string(ZEPHYR, name="zephyr").render(messages, **kwargs)


def test_syntax_errors_name_the_template_and_line() -> None:
    with pytest.raises(TemplateError, match=r"'my/model' is not valid Jinja \(line 2\)"):
        ChatTemplate.from_string("ok\n{% for %}", name="my/model")


def test_rendering_is_thread_safe() -> None:
    template = ChatTemplate.from_string(ZEPHYR, eos_token="</s>")
    results: dict[int, str] = {}

    def work(n: int) -> None:
        for i in range(50):
            out = template.render([{"role": "user", "content": f"{n}-{i}"}])
            assert f"{n}-{i}</s>" in out
        results[n] = out

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8


def test_importing_templates_does_not_import_transformers_or_torch() -> None:
    code = (
        "import sys, langchain_hf_chat._templates; "
        "print(any(m.split('.')[0] in ('transformers', 'torch') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


# --- lookup ----------------------------------------------------------------------------------

TOY = "{% for m in messages %}{{ bos_token }}{{ m.content }}{{ eos_token }}{% endfor %}"
MESSAGES = [{"role": "user", "content": "Hi"}]


def _write_config(folder: Path, **config: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def test_folder_with_tokenizer_config(tmp_path: Path) -> None:
    folder = _write_config(tmp_path, bos_token={"content": "<s>", "lstrip": False}, eos_token="</s>", chat_template=TOY)
    template = load_chat_template(path=folder)
    assert (template.bos_token, template.eos_token) == ("<s>", "</s>")
    assert template.render(MESSAGES) == "<s>Hi</s>"


def test_chat_template_jinja_file_wins_over_the_config(tmp_path: Path) -> None:
    folder = _write_config(tmp_path, eos_token="</s>", chat_template="from config")
    (folder / "chat_template.jinja").write_text("from jinja{{ eos_token }}", encoding="utf-8")
    assert load_chat_template(path=folder).render(MESSAGES) == "from jinja</s>"


def test_a_jinja_file_path_takes_tokens_from_its_folder(tmp_path: Path) -> None:
    folder = _write_config(tmp_path, eos_token="</s>")
    (folder / "chat_template.jinja").write_text("{{ eos_token }}", encoding="utf-8")
    assert load_chat_template(path=folder / "chat_template.jinja").render(MESSAGES) == "</s>"


def test_chat_template_json_is_read(tmp_path: Path) -> None:
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": "json"}))
    assert load_chat_template(path=tmp_path).render(MESSAGES) == "json"


def test_named_templates_use_default_or_the_requested_name(tmp_path: Path) -> None:
    folder = _write_config(
        tmp_path,
        chat_template=[
            {"name": "default", "template": "plain"},
            {"name": "tool_use", "template": "with tools"},
        ],
    )
    assert load_chat_template(path=folder).render(MESSAGES) == "plain"
    named = load_chat_template(chat_template="tool_use", path=folder)
    assert named.render(MESSAGES) == "with tools"
    with pytest.raises(TemplateError, match=r"no chat template named 'rag'.*tool_use"):
        load_chat_template(chat_template="rag", path=folder)


def test_an_explicit_template_string_keeps_the_folder_tokens(tmp_path: Path) -> None:
    folder = _write_config(tmp_path, bos_token="<s>", eos_token="</s>", chat_template="ignored")
    template = load_chat_template(chat_template=TOY, path=folder)
    assert template.render(MESSAGES) == "<s>Hi</s>"


def test_tokenizer_object_supplies_template_and_special_tokens() -> None:
    class FakeTokenizer:
        chat_template = TOY
        special_tokens_map = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}

    template = load_chat_template(tokenizer=FakeTokenizer())
    assert template.render(MESSAGES) == "<s>Hi</s>"
    assert template.special_tokens["pad_token"] == "<pad>"


def test_missing_template_names_the_model_and_what_was_missing(tmp_path: Path) -> None:
    folder = _write_config(tmp_path / "model", eos_token="</s>")
    with pytest.raises(TemplateError, match=r"no chat template found for .*model.*chat_template"):
        load_chat_template(path=folder)
    with pytest.raises(TemplateError, match="does not exist"):
        load_chat_template(path=tmp_path / "nowhere")
    with pytest.raises(TemplateError, match="nothing"):
        load_chat_template()


def _fake_hub_cache(cache: Path, repo_id: str, files: dict[str, str]) -> None:
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, text in files.items():
        (snapshot / name).write_text(text, encoding="utf-8")


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub

    def no_download(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("hf_hub_download must not run offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hub"


def test_hub_cache_works_offline(offline_hub: Path) -> None:
    config = {"bos_token": "<s>", "eos_token": {"content": "</s>"}, "chat_template": ZEPHYR}
    files = {"tokenizer_config.json": json.dumps(config)}
    _fake_hub_cache(offline_hub, "HuggingFaceH4/zephyr-7b-beta", files)
    template = load_chat_template(repo_id="HuggingFaceH4/zephyr-7b-beta")
    assert template.name == "HuggingFaceH4/zephyr-7b-beta"
    assert template.render(MESSAGES) == "<|user|>\nHi</s>\n<|assistant|>\n"


def test_hub_cache_prefers_chat_template_jinja(offline_hub: Path) -> None:
    files = {
        "tokenizer_config.json": json.dumps({"eos_token": "</s>"}),
        "chat_template.jinja": "jinja{{ eos_token }}",
    }
    _fake_hub_cache(offline_hub, "org/model", files)
    assert load_chat_template(repo_id="org/model").render(MESSAGES) == "jinja</s>"


def test_uncached_repo_offline_is_a_template_error(offline_hub: Path) -> None:
    with pytest.raises(TemplateError, match=r"org/absent.*offline"):
        load_chat_template(repo_id="org/absent")


def test_limits_are_configurable_through_the_loader(tmp_path: Path) -> None:
    folder = _write_config(tmp_path, chat_template="{{ 'x' * 50 }}")
    template = load_chat_template(path=folder, limits=RenderLimits(max_output_chars=10))
    with pytest.raises(TemplateError, match="limit 10"):
        template.render(MESSAGES)
