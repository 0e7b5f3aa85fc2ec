"""Chat templates are untrusted code: the sandbox, the render limits and hostile inputs."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_hf_chat._templates import ChatTemplate, RenderLimits
from langchain_hf_chat.errors import TemplateError

MESSAGES = [{"role": "user", "content": "hi"}]
FAST_LIMITS = RenderLimits(max_seconds=0.3)
# Thirteen `set`s, each doubling the last with `~`: 8 MB without a size check, 2**40 with more.
DOUBLING_CONCAT = (
    "{% set a0 = 'x' * 1000 %}"
    + "".join(f"{{% set a{i} = a{i - 1} ~ a{i - 1} %}}" for i in range(1, 14))
    + "{{ a13|length }}"
)

# Classic Jinja2 server-side template injection payloads, adapted to what a chat template can see.
ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__ }}",
    "{{ ().__class__.__bases__[0].__subclasses__()[59].__init__.__globals__.sys }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ lipsum|attr('__globals__') }}",
    "{{ request.application.__globals__.__builtins__.__import__('os').popen('id').read() }}",
    "{{ config.items() }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ '{a.__class__}'.format_map({'a': ''}) }}",
    "{{ raise_exception.__globals__ }}",
    "{{ strftime_now.__globals__['datetime'] }}",
    "{{ dict.__call__.__globals__ }}",
    "{{ (messages|first).__class__ }}",
    "{% set ns = namespace() %}{% set ns.__class__ = 1 %}",
    "{{ namespace(__class__=1) }}",
]


@pytest.mark.parametrize("payload", ESCAPES)
def test_sandbox_escape_payloads_fail_with_a_clear_error(payload: str) -> None:
    template = ChatTemplate.from_string(payload, name="evil/model")
    with pytest.raises(TemplateError) as info:
        template.render(MESSAGES)
    message = str(info.value)
    assert "'evil/model'" in message
    assert any(word in message for word in ("unsafe", "undefined", "underscore"))


@pytest.mark.parametrize(
    "payload",
    ["{{ messages.append(1) }}", "{{ messages[0].update({'role': 'x'}) }}", "{{ messages.clear() }}"],
)
def test_inputs_cannot_be_mutated(payload: str) -> None:
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(TemplateError, match="unsafe"):
        ChatTemplate.from_string(payload).render(messages)
    assert messages == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "payload",
    ["{% include '/etc/passwd' %}", "{% import 'os' as os %}", "{% extends 'base.html' %}"],
)
def test_templates_cannot_load_files(payload: str) -> None:
    with pytest.raises(TemplateError, match="no loader"):
        ChatTemplate.from_string(payload).render(MESSAGES)


def test_framework_globals_are_not_there() -> None:
    assert ChatTemplate.from_string("{{ config }}{{ request }}{{ os }}").render(MESSAGES) == ""


def test_rich_input_objects_reach_the_template_as_inert_placeholders() -> None:
    class Dangerous:
        def delete_everything(self) -> str:
            raise AssertionError("must not be callable from a template")

    template = ChatTemplate.from_string("{{ messages[0].content }}|{{ extra }}")
    out = template.render([{"role": "user", "content": Dangerous()}], extra=Dangerous())
    assert out == "<Dangerous>|<Dangerous>"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("{% for i in range(10**9) %}x{% endfor %}", "range"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "longer than|loop iterations",
        ),
        ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "limit"),
        ("{{ 'x' * 10**9 }}", "limit"),
        ("{{ ['x'] * 10**8 }}", "limit"),
        ("{{ 2 ** 10000000 }}", "power"),
        ("{{ '%0999999999d' % 1 }}", "width"),
        ("{{ 'x'.center(10**9) }}", "limit"),
        ("{{ 'x'|center(10**9) }}", "limit"),
        ("{{ 'a'|indent(10**9) }}", "limit"),
        (
            "{% set s = 'ab' %}" + "{% set s = s.replace('', s) %}" * 6 + "{{ s|length }}",
            "limit",
        ),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
            "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
            "limit",
        ),
        (DOUBLING_CONCAT, "limit"),
        (
            "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}x{% endmacro %}{{ f(40) }}",
            "longer than|loop iterations|limit",
        ),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursed"),
        ("{% for x in messages recursive %}{{ loop(messages) }}{% endfor %}", "recursed"),
    ],
)
def test_render_time_and_size_are_bounded(payload: str, match: str) -> None:
    template = ChatTemplate.from_string(payload, name="slow/model", limits=FAST_LIMITS)
    started = time.monotonic()
    with pytest.raises(TemplateError, match=match) as info:
        template.render(MESSAGES)
    assert time.monotonic() - started < 3
    assert "'slow/model'" in str(info.value)


def test_output_limit_is_configurable() -> None:
    template = ChatTemplate.from_string(
        "{% for i in range(20) %}{{ 'x' * 10 }}{% endfor %}",
        limits=RenderLimits(max_output_chars=100),
    )
    with pytest.raises(TemplateError, match="limit 100"):
        template.render(MESSAGES)


def test_loop_iterations_are_capped() -> None:
    template = ChatTemplate.from_string(
        "{% for i in range(1000) %}{% endfor %}", limits=RenderLimits(max_loop_iterations=500)
    )
    with pytest.raises(TemplateError, match="500 loop iterations"):
        template.render(MESSAGES)


def test_a_limit_hit_does_not_poison_later_renders() -> None:
    template = ChatTemplate.from_string(
        "{{ messages[0].content * messages[0].n }}", limits=RenderLimits(max_output_chars=10)
    )
    with pytest.raises(TemplateError):
        template.render([{"role": "user", "content": "x", "n": 100}])
    assert template.render([{"role": "user", "content": "x", "n": 3}]) == "xxx"


# --- property: any input either renders or raises TemplateError -------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.binary(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)
ROLES = st.one_of(st.sampled_from(["system", "user", "assistant", "tool", "ipython"]), st.text())
MESSAGE = st.one_of(
    st.fixed_dictionaries(
        {"role": ROLES, "content": st.one_of(st.text(), VALUES)},
        optional={
            "tool_calls": VALUES,
            "tool_call_id": st.text(max_size=12),
            "reasoning_content": st.text(max_size=20),
        },
    ),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), VALUES, max_size=4),
    VALUES,
)
CONVERSATION = st.one_of(st.lists(MESSAGE, max_size=6), VALUES)

FIXTURE_TEMPLATES = [
    "zephyr-7b-beta",
    "llama-3.1-8b-instruct",
    "mistral-7b-instruct-v0.3",
    "qwen2.5-7b-instruct",
    "gemma-7b-it",
]


@pytest.fixture(scope="module")
def fixture_templates() -> list[ChatTemplate]:
    from pathlib import Path

    folder = Path(__file__).parents[1] / "fixtures" / "templates"
    return [
        ChatTemplate.from_string(
            (folder / f"{name}.jinja").read_text(encoding="utf-8"), bos_token="<s>", eos_token="</s>"
        )
        for name in FIXTURE_TEMPLATES
    ]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    messages=CONVERSATION,
    tools=st.one_of(st.none(), st.lists(VALUES, max_size=2)),
    add_generation_prompt=st.booleans(),
    continue_final_message=st.one_of(st.booleans(), st.text(max_size=10)),
    extra=VALUES,
)
def test_any_input_renders_or_raises_template_error(
    fixture_templates: list[ChatTemplate],
    messages: Any,
    tools: Any,
    add_generation_prompt: bool,
    continue_final_message: Any,
    extra: Any,
) -> None:
    for template in fixture_templates:
        try:
            out = template.render(
                messages,
                tools=tools,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final_message,
                extra=extra,
            )
        except TemplateError:
            continue
        assert isinstance(out, str)
