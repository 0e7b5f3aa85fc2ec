"""The Calculator tool: plain arithmetic works, anything else is refused before it runs."""

from __future__ import annotations

import time

import pytest

from langchain_hf_chat.agents import CalculatorError, calculator, evaluate_expression
from langchain_hf_chat.agents.tools import MAX_EXPRESSION_LENGTH


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 3 * 4", 14.0),
        ("(2 + 3) * 4", 20.0),
        ("7 / 2", 3.5),
        ("-3 + +5", 2.0),
        ("2 ** 10", 1024.0),
        ("2 ^ 10", 1024.0),
        ("sqrt(16) + abs(-2)", 6.0),
        ("log10(1000)", 3.0),
        ("arctan2(1, 1) * 4", pytest.approx(3.141592653589793)),
        ("2 * pi", pytest.approx(6.283185307179586)),
        ("log(e)", 1.0),
        ("1.5e3 + 0.5", 1500.5),
        ("  37593 * 67  ", 2518731.0),
    ],
)
def test_plain_arithmetic_is_evaluated(expression: str, expected: float) -> None:
    assert evaluate_expression(expression) == expected


def test_the_notebook_power_matches_llm_math() -> None:
    assert evaluate_expression("25**0.43") == pytest.approx(3.9913, abs=1e-4)
    assert evaluate_expression("25^0.43") == evaluate_expression("25**0.43") == 3.991298452658078


def test_the_tool_answers_like_llm_math() -> None:
    assert calculator.name == "Calculator"
    assert calculator.invoke("25^0.43") == "Answer: 3.991298452658078"
    assert calculator.invoke({"expression": "37593 * 67"}) == "Answer: 2518731"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("__import__('os')", "function '__import__' is not allowed: dunder names are never evaluated"),
        ("__import__('os').system('echo pwned')", "is not allowed"),
        ("().__class__", "attribute access (.__class__) is not allowed"),
        ("().__class__.__bases__[0].__subclasses__()", "is not allowed"),
        ("(1).real", "attribute access (.real) is not allowed"),
        ("'a'*10**9", "strings are not allowed"),
        ("b'x'", "strings are not allowed"),
        ('f"{1}"', "f-strings are not allowed"),
        ("__builtins__", "name '__builtins__' is not allowed: dunder names are never evaluated"),
        ("x + 1", "name 'x' is not allowed"),
        ("os", "name 'os' is not allowed"),
        ("open('/etc/passwd')", "function 'open' is not allowed"),
        ("eval('1')", "function 'eval' is not allowed"),
        ("sqrt(x=4)", "keyword arguments are not allowed"),
        ("sqrt", "function 'sqrt' must be called"),
        ("[1, 2][0]", "is not allowed"),
        ("{1: 2}", "tuples, lists, sets and dicts are not allowed"),
        ("[x for x in range(9)]", "comprehensions are not allowed"),
        ("(lambda: 1)()", "is not allowed"),
        ("1 if True else 2", "a conditional expression is not allowed"),
        ("1 < 2", "comparison is not allowed"),
        ("True + 1", "bool values are not allowed"),
        ("1j", "complex values are not allowed"),
        ("7 // 2", "operator '//' is not allowed"),
        ("7 % 2", "operator '%' is not allowed"),
        ("1 << 1000", "operator '<<' is not allowed"),
        ("~1", "operator '~' is not allowed"),
        ("(y := 2)", "assignment is not allowed"),
        ("import os", "not valid arithmetic"),
        ("1; 2", "not valid arithmetic"),
        ("1 +", "not valid arithmetic"),
        ("\x00", "not valid arithmetic"),
        ("", "expression is empty"),
        ("   ", "expression is empty"),
    ],
)
def test_hostile_or_non_numeric_input_is_refused(payload: str, reason: str) -> None:
    with pytest.raises(CalculatorError) as caught:
        evaluate_expression(payload)
    assert reason in str(caught.value)


def test_refusals_name_what_is_allowed() -> None:
    with pytest.raises(CalculatorError, match=r"allowed: numbers, \+ - \* / \*\* \^ \( \), pi, e"):
        evaluate_expression("x + 1")


def test_refused_input_never_reaches_the_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    import numexpr

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("numexpr.evaluate must not be called for refused input")

    monkeypatch.setattr(numexpr, "evaluate", boom)
    for payload in ("__import__('os')", "().__class__", "'a'*10**9", "x"):
        with pytest.raises(CalculatorError):
            evaluate_expression(payload)


@pytest.mark.parametrize("payload", ["9**9**9**9", "10**400", "2**1023*2", "99999**99999", "(9**9)**(9**9)"])
def test_huge_powers_fail_fast_instead_of_hanging(payload: str) -> None:
    started = time.perf_counter()
    with pytest.raises(CalculatorError, match="too large"):
        evaluate_expression(payload)
    assert time.perf_counter() - started < 1.0


def test_a_huge_literal_is_refused() -> None:
    with pytest.raises(CalculatorError, match="a number in the expression is too large"):
        evaluate_expression("1e999")


def test_long_input_is_refused_before_parsing() -> None:
    payload = "1+" * MAX_EXPRESSION_LENGTH + "1"
    with pytest.raises(CalculatorError, match=r"expression is too long \(401 characters; the limit is 200\)"):
        evaluate_expression(payload)


def test_deeply_nested_input_is_refused() -> None:
    with pytest.raises(CalculatorError, match="too long"):
        evaluate_expression("(" * 10_000 + "1" + ")" * 10_000)


def test_too_many_parts_are_refused() -> None:
    with pytest.raises(CalculatorError, match="too complex"):
        evaluate_expression("+".join(["1"] * 90))


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("1 / 0", "division by zero"),
        ("sqrt(-1)", "not a number"),
        ("log(0)", r"too large \(or infinite\)"),
        ("(-8) ** (1/3)", "not a real number"),
    ],
)
def test_results_without_a_finite_real_value_raise(expression: str, reason: str) -> None:
    with pytest.raises(CalculatorError, match=reason):
        evaluate_expression(expression)


def test_non_string_input_is_refused() -> None:
    with pytest.raises(CalculatorError, match="must be a string"):
        evaluate_expression(42)  # type: ignore[arg-type]


def test_the_tool_turns_refusals_into_an_observation() -> None:
    observation = calculator.invoke("__import__('os').system('id')")
    assert observation.startswith("Calculator error: ")
    assert "is not allowed" in observation


def test_calculator_error_is_a_value_error() -> None:
    assert issubclass(CalculatorError, ValueError)
