"""Offline demo tools: a safe ``Calculator`` and a ``Search`` over a small bundled corpus.

They stand in for the classic notebook's ``load_tools(["serpapi", "llm-math"], llm=llm)`` pair, with the same
names, so the notebook's question can be answered with no network and no API key:

    >>> from langchain_hf_chat.agents import demo_tools
    >>> search, calculator = demo_tools()
    >>> search.invoke("leo dicaprio girlfriend")[:45]
    "Leo DiCaprio's girlfriend is Vittoria Ceretti"
    >>> calculator.invoke("25^0.43")
    'Answer: 3.991298452658078'

Model output is untrusted, so the calculator never hands its input to ``eval``: the expression is parsed with
:mod:`ast`, checked against a whitelist (numbers, ``+ - * / **``, parentheses, a few functions and the constants
``pi`` and ``e``), every number is made a float (so no exponent can start an unbounded integer computation), and
only then is it evaluated by ``numexpr``.
"""

# No `from __future__ import annotations`: the tools' signatures are rendered into the agent's prompt, and
# string annotations would read `query: 'str'` there.
import ast
import json
import math
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException

__all__ = [
    "ALLOWED_FUNCTIONS",
    "MAX_EXPRESSION_LENGTH",
    "CalculatorError",
    "SearchHit",
    "calculator",
    "demo_tools",
    "evaluate_expression",
    "search",
    "search_corpus",
]

#: Longest expression the calculator accepts, in characters.
MAX_EXPRESSION_LENGTH = 200
#: Most syntax-tree nodes an expression may have (bounds parsing and evaluation work).
_MAX_NODES = 100
#: Functions the calculator evaluates (all numexpr built-ins on real numbers).
ALLOWED_FUNCTIONS = frozenset(
    {
        "abs",
        "arccos",
        "arcsin",
        "arctan",
        "arctan2",
        "ceil",
        "cos",
        "cosh",
        "exp",
        "expm1",
        "floor",
        "log",
        "log10",
        "log1p",
        "sin",
        "sinh",
        "sqrt",
        "tan",
        "tanh",
    }
)
_CONSTANTS = {"pi": math.pi, "e": math.e}
_BINARY_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_UNARY_OPERATORS = (ast.UAdd, ast.USub)
_WHAT_IS_ALLOWED = "allowed: numbers, + - * / ** ^ ( ), pi, e and functions such as sqrt, log, exp, sin, abs"


class CalculatorError(ValueError):
    """The calculator refused an expression, or it has no finite real value. The message says why."""


# -- calculator ---------------------------------------------------------------------------------------------------


def evaluate_expression(expression: str) -> float:
    """Evaluate a numeric expression safely and return its value.

    ``^`` means power, as people (and models) write it. Anything that is not plain arithmetic (names,
    attribute access, strings, subscripts, comprehensions, dunder tricks) is refused before evaluation, as are
    inputs longer than :data:`MAX_EXPRESSION_LENGTH` characters; results that overflow, divide by zero, or are
    not finite real numbers raise too.

    Raises:
        CalculatorError: the expression is refused or has no finite real value.

    Example:
        >>> evaluate_expression("25**0.43")
        3.991298452658078
        >>> evaluate_expression("2 * (3 + sqrt(16))")
        14.0
        >>> evaluate_expression("__import__('os')")
        Traceback (most recent call last):
        ...
        langchain_hf_chat.agents.tools.CalculatorError: function '__import__' is not allowed: dunder names are ...
    """
    source = _checked_source(expression)
    tree = _parse(source)
    _check_tree(tree)
    return _evaluate(ast.unparse(_FloatLiterals().visit(tree)))


def _checked_source(expression: str) -> str:
    if not isinstance(expression, str):
        raise CalculatorError(f"expression must be a string, not {type(expression).__name__}")
    source = expression.strip()
    if not source:
        raise CalculatorError("expression is empty")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise CalculatorError(
            f"expression is too long ({len(source)} characters; the limit is {MAX_EXPRESSION_LENGTH})"
        )
    return source.replace("^", "**")


def _parse(source: str) -> ast.Expression:
    try:
        return ast.parse(source, mode="eval")
    except (SyntaxError, ValueError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise CalculatorError(f"expression is not valid arithmetic ({reason}); {_WHAT_IS_ALLOWED}") from None


def _check_tree(tree: ast.Expression) -> None:
    nodes = list(ast.walk(tree))
    if len(nodes) > _MAX_NODES:
        raise CalculatorError(f"expression is too complex ({len(nodes)} parts; the limit is {_MAX_NODES})")
    called = {id(node.func) for node in nodes if isinstance(node, ast.Call)}
    for node in nodes:
        if id(node) not in called:  # a call's function name is checked with the call
            _check_node(node)


def _check_node(node: ast.AST) -> None:
    if isinstance(node, (ast.Expression, ast.Load, *_BINARY_OPERATORS, *_UNARY_OPERATORS)):
        return
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, _BINARY_OPERATORS):
            raise CalculatorError(f"operator {_symbol(node.op)} is not allowed; {_WHAT_IS_ALLOWED}")
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, _UNARY_OPERATORS):
            raise CalculatorError(f"operator {_symbol(node.op)} is not allowed; {_WHAT_IS_ALLOWED}")
        return
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "strings are" if isinstance(value, (str, bytes)) else f"{type(value).__name__} values are"
            raise CalculatorError(f"{kind} not allowed; {_WHAT_IS_ALLOWED}")
        return
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return
        if node.id in ALLOWED_FUNCTIONS:
            raise CalculatorError(f"function {node.id!r} must be called with an argument, as in {node.id}(2)")
        raise CalculatorError(f"name {node.id!r} is not allowed{_dunder_note(node.id)}; {_WHAT_IS_ALLOWED}")
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in ALLOWED_FUNCTIONS:
            shown = repr(name) if name else ast.unparse(node.func)[:40]
            raise CalculatorError(f"function {shown} is not allowed{_dunder_note(shown)}; {_WHAT_IS_ALLOWED}")
        if node.keywords:
            raise CalculatorError("keyword arguments are not allowed")
        return
    if isinstance(node, ast.Attribute):
        raise CalculatorError(f"attribute access ({'.' + node.attr!s}) is not allowed; {_WHAT_IS_ALLOWED}")
    raise CalculatorError(f"{_describe(node)} not allowed; {_WHAT_IS_ALLOWED}")


def _dunder_note(name: str) -> str:
    return ": dunder names are never evaluated" if "__" in name else ""


def _symbol(op: ast.AST) -> str:
    symbols = {
        ast.FloorDiv: "//",
        ast.Mod: "%",
        ast.BitXor: "^",
        ast.BitAnd: "&",
        ast.BitOr: "|",
        ast.LShift: "<<",
        ast.RShift: ">>",
        ast.MatMult: "@",
        ast.Invert: "~",
        ast.Not: "not",
    }
    return repr(symbols.get(type(op), type(op).__name__))


def _describe(node: ast.AST) -> str:
    names = {
        ast.Subscript: "indexing is",
        ast.Compare: "comparison is",
        ast.BoolOp: "boolean logic is",
        ast.Lambda: "lambda is",
        ast.IfExp: "a conditional expression is",
        ast.NamedExpr: "assignment is",
        ast.Starred: "unpacking is",
        ast.JoinedStr: "f-strings are",
    }
    if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
        return "tuples, lists, sets and dicts are"
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return "comprehensions are"
    return names.get(type(node), f"syntax {type(node).__name__!r} is")


class _FloatLiterals(ast.NodeTransformer):
    """Make every literal a float: integer powers such as ``9**9**9**9`` would otherwise run for ever."""

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        assert isinstance(node.value, (int, float))  # _check_node let nothing else through
        try:
            value = float(node.value)
        except OverflowError:
            raise CalculatorError("a number in the expression is too large") from None
        if not math.isfinite(value):
            raise CalculatorError("a number in the expression is too large")
        return ast.copy_location(ast.Constant(value), node)


def _evaluate(source: str) -> float:
    import numexpr  # the `agents` extra, imported on use

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result: Any = numexpr.evaluate(source, local_dict=dict(_CONSTANTS), global_dict={}).item()
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("the result is too large") from None
    except (TypeError, ValueError, KeyError, SyntaxError) as exc:
        raise CalculatorError(f"expression could not be evaluated ({exc}); {_WHAT_IS_ALLOWED}") from None
    if isinstance(result, complex):
        raise CalculatorError("the result is not a real number")
    value = float(result)
    if math.isnan(value):
        raise CalculatorError("the result is not a number (for example sqrt or log of a negative number)")
    if math.isinf(value):
        raise CalculatorError("the result is too large (or infinite)")
    return value


def _format_number(value: float) -> str:
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _calculate(expression: str) -> str:
    try:
        return f"Answer: {_format_number(evaluate_expression(expression))}"
    except CalculatorError as exc:
        # handle_tool_error turns this into the observation, so an agent can correct its input.
        raise ToolException(f"Calculator error: {exc}") from exc


# -- search -------------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_POSSESSIVE = re.compile(r"['’]s\b")
_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be by do does for from has have he her him his how i in is it its me of on or she that the "
        "their them they this to was were what when where which who whom why will with you your",
    )
)
_BM25_K1 = 1.5
_BM25_B = 0.75
NO_RESULT = "No good search result found"


@dataclass(frozen=True)
class SearchHit:
    """One corpus entry and its score for a query."""

    title: str
    text: str
    score: float


def _tokens(text: str) -> list[str]:
    lowered = _POSSESSIVE.sub("", text.lower())
    return [token for token in _TOKEN.findall(lowered) if token not in _STOPWORDS]


@dataclass(frozen=True)
class _Index:
    titles: tuple[str, ...]
    texts: tuple[str, ...]
    term_counts: tuple[Counter[str], ...]
    lengths: tuple[int, ...]
    document_frequency: Counter[str]

    @classmethod
    def build(cls, entries: Sequence[dict[str, str]]) -> "_Index":
        titles = tuple(entry["title"] for entry in entries)
        texts = tuple(entry["text"] for entry in entries)
        term_counts = tuple(Counter(_tokens(f"{title} {text}")) for title, text in zip(titles, texts, strict=True))
        document_frequency: Counter[str] = Counter()
        for counts in term_counts:
            document_frequency.update(counts.keys())
        lengths = tuple(sum(counts.values()) for counts in term_counts)
        return cls(titles, texts, term_counts, lengths, document_frequency)

    def score(self, query_terms: Sequence[str], position: int) -> float:
        counts, length = self.term_counts[position], self.lengths[position]
        average = sum(self.lengths) / len(self.lengths)
        total = 0.0
        for term in set(query_terms):
            frequency = counts.get(term, 0)
            if not frequency:
                continue
            documents = self.document_frequency[term]
            idf = math.log(1 + (len(self.texts) - documents + 0.5) / (documents + 0.5))
            saturation = frequency + _BM25_K1 * (1 - _BM25_B + _BM25_B * length / average)
            total += idf * frequency * (_BM25_K1 + 1) / saturation
        return total


@cache
def _corpus_index() -> _Index:
    raw = resources.files("langchain_hf_chat.agents").joinpath("corpus.json").read_text(encoding="utf-8")
    return _Index.build(json.loads(raw)["entries"])


def search_corpus(query: str, k: int = 3) -> list[SearchHit]:
    """Rank the bundled corpus for ``query`` (BM25 over title and text) and return the best ``k`` hits.

    Deterministic: ties keep corpus order; entries sharing no word with the query are never returned.

    Example:
        >>> [hit.title for hit in search_corpus("vittoria ceretti age", k=2)]
        ['Vittoria Ceretti age', "Leonardo DiCaprio's girlfriend: Vittoria Ceretti"]
    """
    index = _corpus_index()
    terms = _tokens(query)
    scored = [(index.score(terms, position), position) for position in range(len(index.texts))]
    ranked = sorted((pair for pair in scored if pair[0] > 0), key=lambda pair: (-pair[0], pair[1]))
    return [SearchHit(index.titles[position], index.texts[position], score) for score, position in ranked[:k]]


def _search(query: str) -> str:
    hits = search_corpus(query, k=1)
    return hits[0].text if hits else NO_RESULT


# -- the tools ----------------------------------------------------------------------------------------------------

calculator: BaseTool = StructuredTool.from_function(
    func=_calculate,
    name="Calculator",
    description=(
        "Useful for when you need to answer questions about math. Input should be a numeric expression such as "
        "25**0.43 or (3 + 4) * sqrt(2)."
    ),
    handle_tool_error=True,
)
"""``Calculator``: evaluates a numeric expression (see :func:`evaluate_expression`) and answers ``"Answer: <value>"``.

Refused input comes back as a ``"Calculator error: ..."`` observation instead of an exception, so an agent can
fix its input.

Example:
    >>> calculator.invoke({"expression": "2 ** 10"})
    'Answer: 1024'
    >>> calculator.invoke("().__class__")
    'Calculator error: attribute access (.__class__) is not allowed; allowed: numbers, + - * / ** ^ ( ), pi, e and ...'
"""

search: BaseTool = StructuredTool.from_function(
    func=_search,
    name="Search",
    description=(
        "A search engine over a small offline snapshot of facts. Useful for when you need to answer questions "
        "about people, places and current events. Input should be a search query."
    ),
)
"""``Search``: the text of the best-matching corpus entry (see :func:`search_corpus`), like SerpAPI's answer box.

Example:
    >>> search.invoke("What is her current age?")
    "Vittoria Ceretti's current age is 25 years. The Italian model was born in 1998."
"""


def demo_tools() -> list[BaseTool]:
    """The offline stand-ins for ``load_tools(["serpapi", "llm-math"], llm=llm)``: ``[Search, Calculator]``.

    Example:
        >>> [tool.name for tool in demo_tools()]
        ['Search', 'Calculator']
    """
    return [search, calculator]
