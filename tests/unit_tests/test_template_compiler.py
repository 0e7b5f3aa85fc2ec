"""The compiled render path renders exactly what the sandboxed Jinja path renders, errors included."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_hf_chat._templates import ChatTemplate, RenderLimits
from langchain_hf_chat.errors import TemplateError

FOLDER = Path(__file__).parents[1] / "fixtures" / "templates"
FIXTURES = sorted(path.stem for path in FOLDER.glob("*.jinja"))
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def _pair(source: str, **kwargs: Any) -> tuple[ChatTemplate, ChatTemplate]:
    """The same template twice: compiled (and spied on), and forced onto the Jinja path."""
    fast = ChatTemplate.from_string(source, bos_token="<s>", eos_token="</s>", **kwargs)
    if fast._compiled.fast is not None:
        _FastPathSpy(fast)
    jinja = ChatTemplate.from_string(source, bos_token="<s>", eos_token="</s>", **kwargs)
    jinja._compiled = dataclasses.replace(jinja._compiled, fast=None)
    jinja._memo = None
    return fast, jinja


def _outcome(template: ChatTemplate, messages: Any, **kwargs: Any) -> tuple[str, str]:
    spy = template._compiled.fast
    gave_up = len(spy.gave_up) if isinstance(spy, _FastPathSpy) else 0
    try:
        rendered = template.render(messages, **kwargs)
        if isinstance(spy, _FastPathSpy):  # a render Jinja completes, the compiled path completes too
            assert len(spy.gave_up) == gave_up, spy.gave_up[-1]
        return ("rendered", rendered)
    except TemplateError as exc:
        return ("TemplateError", str(exc))
    except (TypeError, ValueError) as exc:
        return (type(exc).__name__, str(exc))


class _FastPathSpy:
    """Wraps a compiled render function and records whether it gave up."""

    def __init__(self, template: ChatTemplate) -> None:
        self.inner = template._compiled.fast
        self.gave_up: list[BaseException] = []
        template._compiled = dataclasses.replace(template._compiled, fast=self)

    def __call__(self, *args: Any) -> Any:
        assert self.inner is not None
        try:
            return self.inner(*args)
        except Exception as exc:
            self.gave_up.append(exc)
            raise


TEXT = st.one_of(
    st.sampled_from(["", "hi", " spaced \n", "ünïcödé ✓", "{{ x }}", "{% if %}", "a\nb", "</s>"]),
    st.text(max_size=12),
)
TOOL_CALL = st.fixed_dictionaries(
    {
        "id": st.text(max_size=6),
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {
                "name": st.sampled_from(["get_weather", "search"]),
                "arguments": st.one_of(st.dictionaries(st.text(max_size=4), st.integers(), max_size=2), TEXT),
            }
        ),
    }
)
MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": TEXT}),
    st.fixed_dictionaries(
        {"role": st.just("assistant"), "content": TEXT, "tool_calls": st.lists(TOOL_CALL, min_size=1, max_size=2)}
    ),
    st.fixed_dictionaries({"role": st.just("tool"), "content": TEXT, "tool_call_id": st.text(max_size=6)}),
    st.fixed_dictionaries(
        {"role": st.just("user"), "content": st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}))}
    ),
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"])}),  # no content at all
)
CONVERSATION = st.lists(MESSAGE, min_size=1, max_size=7)


@pytest.fixture(scope="module", params=FIXTURES)
def fixture_pair(request: pytest.FixtureRequest) -> tuple[ChatTemplate, ChatTemplate]:
    return _pair((FOLDER / f"{request.param}.jinja").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_template_compiles_to_the_fast_path(name: str) -> None:
    template = ChatTemplate.from_string((FOLDER / f"{name}.jinja").read_text(encoding="utf-8"))
    assert template._compiled.fast is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    messages=CONVERSATION,
    tools=st.one_of(st.none(), st.just(TOOLS)),
    add_generation_prompt=st.booleans(),
    continue_final_message=st.booleans(),
)
def test_fixture_templates_render_as_jinja(
    fixture_pair: tuple[ChatTemplate, ChatTemplate],
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    add_generation_prompt: bool,
    continue_final_message: bool,
) -> None:
    fast, jinja = fixture_pair
    kwargs: dict[str, Any] = {"tools": tools, "continue_final_message": continue_final_message}
    if not continue_final_message:
        kwargs["add_generation_prompt"] = add_generation_prompt
    assert _outcome(fast, messages, **kwargs) == _outcome(jinja, messages, **kwargs)


def test_successful_renders_do_not_leave_the_fast_path(fixture_pair: tuple[ChatTemplate, ChatTemplate]) -> None:
    fast, _ = fixture_pair
    fresh = ChatTemplate.from_string(fast.source, bos_token="<s>", eos_token="</s>")
    spy = _FastPathSpy(fresh)
    assert spy.inner is not None
    conversations = [
        [{"role": "user", "content": "Hi"}],
        [
            {"role": "user", "content": " Hi "},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "?"},
        ],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ '{%' }}"}],
    ]
    for messages in conversations:
        try:
            fresh.render(messages)
        except TemplateError:
            continue  # the template refuses this conversation (e.g. no system role): Jinja's error
        assert not spy.gave_up, spy.gave_up


RAISING = (
    "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system: ' ~ m.content) }}"
    "{% endif %}{{ m.content }}{% endfor %}"
)


def test_raise_exception_gives_the_same_error() -> None:
    fast, jinja = _pair(RAISING)
    messages = [{"role": "system", "content": "x"}]
    assert _outcome(fast, messages) == _outcome(jinja, messages)
    assert _outcome(fast, messages)[1].endswith("raised: no system: x")


@pytest.mark.parametrize(
    "source",
    [
        "{{ messages[0].missing }}|{{ messages[0].missing is defined }}|{{ nothing }}|{{ nothing is undefined }}",
        "{{ messages[0].missing + 'x' }}",
        "{{ messages[0]['content'].upper() }}{{ messages[0].content.split('i') }}{{ messages[0].items() | list }}",
        "{{ messages[-1].content }}{{ messages[5] }}{{ messages[1:] | length }}{{ messages[::-1][0].role }}",
        "{% for m in messages %}{{ loop.index }}/{{ loop.length }}{{ loop.revindex0 }}{{ loop.previtem }}"
        "{{ loop.nextitem.role if not loop.last else '.' }}{% endfor %}",
        "{% for m in messages if m.role != 'assistant' %}{{ loop.index0 }}{{ m.role }}{% endfor %}",
        "{% for k, v in messages[0] | items %}{{ k }}={{ v }};{% endfor %}{{ k }}",
        "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% set x = 1 %}{% endfor %}"
        "{{ ns.n }}{{ x }}",
        "{% set x %}{{ messages | length }} messages{% endset %}{{ x | upper }}",
        "{% for m in messages %}{% if loop.index0 == 1 %}{% break %}{% endif %}{{ m.role }}{% endfor %}",
        "{{ messages | map(attribute='role') | join(', ') }}"
        "{{ messages | selectattr('role', 'equalto', 'user') | list }}",
        "{{ (messages | first).content ~ 1 ~ none }}{{ 7 % 3 }}{{ 'ab' * 2 }}{{ 2 ** 3 }}{{ 7 // 2 }}{{ -1 }}",
        "{{ {'a': [1, 2.5, true, none]} | tojson }}{{ messages[0] | tojson(indent=2) }}{{ range(3) | list }}",
        "{{ 'x' if messages else 'y' }}{{ 1 < 2 < 3 }}{{ 'u' in messages[0].role }}{{ 'u' not in 'abc' }}",
        "{{ messages[0].content | trim | capitalize }}{{ messages[0].content is string }}{{ 1 is number }}",
        "{{ messages.append }}",
        "{{ ''.__class__ }}",
        "{{ messages[0].content.replace('', 'xx') }}",
    ],
)
def test_constructs_render_as_jinja(source: str) -> None:
    fast, jinja = _pair(source)
    assert fast._compiled.fast is not None
    for messages in (
        [{"role": "user", "content": " hi "}],
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
    ):
        assert _outcome(fast, messages) == _outcome(jinja, messages)


@pytest.mark.parametrize(
    "source",
    [
        "{% macro f(x) %}[{{ x }}]{% endmacro %}{{ f(messages[0].content) }}",
        "{% generation %}{{ messages[0].content }}{% endgeneration %}",
        "{% for m in messages recursive %}{{ m.role }}{% endfor %}",
        "{{ self }}",
        "{% for m in messages %}{{ loop.cycle('a', 'b') }}{% endfor %}",
    ],
)
def test_unsupported_constructs_render_with_jinja(source: str) -> None:
    fast, jinja = _pair(source)
    assert fast._compiled.fast is None
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert _outcome(fast, messages) == _outcome(jinja, messages)


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(
        st.one_of(
            st.fixed_dictionaries({"role": st.sampled_from(["user", "tool"]), "content": TEXT}),
            st.dictionaries(st.sampled_from(["role", "x", "items"]), TEXT, max_size=2),
            TEXT,
            st.lists(st.integers(), max_size=2),
            st.none(),
            st.integers(),
        ),
        max_size=5,
    )
)
def test_lookups_on_loop_items_of_any_type_render_as_jinja(items: list[Any]) -> None:
    # A loop variable's dict-ness is checked once per iteration: items that are not dicts, or dicts without
    # the key, must still get Jinja's (sandboxed) answer, in output, conditions and filter tests.
    source = (
        "{% for m in extra if m.role != 'tool' %}<{{ m.role }}|{{ m['x'] }}|{{ m.content | default('-') }}"
        "{% if m.role %}R{% endif %}{% if not m['x'] %}N{% endif %}{{ m.items is defined }}>"
        "{% for n in extra %}{{ n.role is defined }}{% endfor %}{% endfor %}"
    )
    fast, jinja = _pair(source)
    assert fast._compiled.fast is not None
    messages = [{"role": "user", "content": "hi"}]
    assert _outcome(fast, messages, extra=items) == _outcome(jinja, messages, extra=items)


def test_a_macro_template_still_renders() -> None:
    template = ChatTemplate.from_string("{% macro f(x) %}[{{ x }}]{% endmacro %}{{ f(messages[0].content) }}")
    assert template.render([{"role": "user", "content": "hi"}]) == "[hi]"


def test_output_limit_error_is_jinjas() -> None:
    source = "{% for m in messages %}{% for i in range(50) %}{{ m.content }}{% endfor %}{% endfor %}"
    fast, jinja = _pair(source, limits=RenderLimits(max_output_chars=1000))
    messages = [{"role": "user", "content": "x" * 30}] * 3
    assert _outcome(fast, messages) == _outcome(jinja, messages)
    assert "limit 1000" in _outcome(fast, messages)[1]


# --- random small templates from a grammar of supported constructs ------------------------------------------

EXPRESSIONS = st.sampled_from(
    [
        "m.role",
        "m['content']",
        "m.content | trim",
        "m.missing",
        "m.tool_calls | length",
        "loop.index",
        "loop.last",
        "messages[0].role",
        "messages[loop.index0 - 1].role",
        "m.content ~ '!'",
        "'<' + m.role + '>'",
        "(m.content | length) % 3",
        "m.content[:2]",
        "m.role | upper",
        "m | tojson",
        "ns.count",
        "extra",
        "m.role == 'user'",
        "m.tool_calls is defined",
        "'x' in m.content",
    ]
)
CONDITIONS = st.sampled_from(
    [
        "m.role == 'user'",
        "not m.tool_calls",
        "m.content",
        "loop.first",
        "m.missing is defined",
        "m.role in ['assistant', 'tool'] and not loop.last",
        "(loop.index0 % 2 == 0) != (m.role == 'user')",
        "extra is none",
    ]
)


@st.composite
def _templates(draw: st.DrawFn) -> str:
    body = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["out", "if", "set", "ns", "raise"]))
        if kind == "out":
            body.append(f"{{{{ {draw(EXPRESSIONS)} }}}}")
        elif kind == "if":
            body.append(f"{{% if {draw(CONDITIONS)} %}}[{{{{ {draw(EXPRESSIONS)} }}}}]{{% else %}}-{{% endif %}}")
        elif kind == "set":
            body.append(f"{{% set v = {draw(EXPRESSIONS)} %}}{{{{ v }}}}")
        elif kind == "ns":
            body.append("{% set ns.count = ns.count + 1 %}")
        else:
            body.append(f"{{% if {draw(CONDITIONS)} %}}{{{{ raise_exception('bad ' ~ m.role) }}}}{{% endif %}}")
    return (
        "{% set ns = namespace(count=0) %}{{ bos_token }}{% for m in messages %}"
        + "".join(body)
        + "{% endfor %}{{ v }}{{ ns.count }}{% if add_generation_prompt %}<a>{% endif %}"
    )


@settings(max_examples=200, deadline=None)
@given(
    source=_templates(),
    messages=CONVERSATION,
    extra=st.one_of(st.none(), st.integers(), st.text(max_size=3)),
)
def test_random_templates_render_as_jinja(source: str, messages: list[dict[str, Any]], extra: Any) -> None:
    fast, jinja = _pair(source)
    assert fast._compiled.fast is not None
    assert _outcome(fast, messages, extra=extra) == _outcome(jinja, messages, extra=extra)


# --- the text-mode shortcut: plain LangChain messages skip re-normalising -------------------------------------


def test_plain_langchain_messages_are_flagged_plain_and_others_are_not() -> None:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    from langchain_hf_chat._messages import messages_to_template, template_dicts

    plain = [SystemMessage("s"), HumanMessage("h"), AIMessage("a"), HumanMessage([{"type": "text", "text": "t"}])]
    assert template_dicts(plain) == (messages_to_template(plain), True)
    calling = AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "1"}])
    assert template_dicts([*plain, calling])[1] is False
    assert template_dicts([*plain, ToolMessage("r", tool_call_id="1")])[1] is False


@pytest.mark.parametrize("name", FIXTURES)
def test_plain_chat_shortcut_renders_as_render(name: str) -> None:
    template = ChatTemplate.from_string((FOLDER / f"{name}.jinja").read_text(encoding="utf-8"), eos_token="</s>")
    for chat in (
        [{"role": "user", "content": "Hi"}],
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
    ):
        expected = _outcome(template, [dict(message) for message in chat])
        try:
            actual: tuple[str, str] = ("rendered", template._render_plain_chat(chat, None))
        except TemplateError as exc:
            actual = ("TemplateError", str(exc))
        assert actual == expected


def test_docstring_examples_run() -> None:
    import doctest

    from langchain_hf_chat import _messages
    from langchain_hf_chat._templates import _compiler

    for module in (_compiler, _messages):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
        assert result.attempted > 0
