"""The sandboxed Jinja environment chat templates run in, and the budget that bounds a render."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.parser
import jinja2.runtime
import jinja2.utils
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_MAX_RANGE = 100_000  # the same cap as jinja2.sandbox.safe_range
_ITER_FILTER = "__lc_hf_bounded_iter__"
_SIZE_FILTER = "__lc_hf_bounded_size__"


@dataclasses.dataclass(frozen=True)
class RenderLimits:
    """Bounds on one render of an untrusted template.

    Attributes:
        max_seconds: wall-clock budget for one render.
        max_output_chars: largest rendered prompt (and largest string or list built on the way).
        max_loop_iterations: total ``for``-loop steps in one render.

    Example:
        >>> RenderLimits(max_seconds=0.5).max_output_chars
        4000000
    """

    max_seconds: float = 2.0
    max_output_chars: int = 4_000_000
    max_loop_iterations: int = 2_000_000


class _RenderBudget:
    """Counts the work of one render; the sandbox hooks call `step`/`check_size`."""

    __slots__ = ("_deadline", "_limits", "_next_check", "_output_counted", "_output_size", "_steps")

    def __init__(self, limits: RenderLimits) -> None:
        self._limits = limits
        self._deadline = time.monotonic() + limits.max_seconds
        self._steps = 0
        self._next_check = 256
        self._output_counted = 0
        self._output_size = 0

    @property
    def max_output_chars(self) -> int:
        return self._limits.max_output_chars

    def output_fits(self, chunks: list[str]) -> bool:
        """Whether the chunks of a growing output are within the size limit (counts only new chunks)."""
        self._output_size += sum(map(len, itertools.islice(chunks, self._output_counted, None)))
        self._output_counted = len(chunks)
        return self._output_size <= self._limits.max_output_chars

    def step(self, n: int = 1) -> None:
        self._steps += n
        if self._steps >= self._next_check:
            self._next_check = self._steps + 256
            if self._steps > self._limits.max_loop_iterations:
                raise _LimitExceededError(f"rendering exceeded {self._limits.max_loop_iterations} loop iterations")
            self.check_time()

    def step_many(self, n: int) -> None:
        """``n`` calls of ``step()``, with the same checkpoints (every 256 steps) and the same outcome."""
        steps = self._steps + n
        if steps >= self._next_check:
            last_check = self._next_check + (steps - self._next_check) // 256 * 256
            self._steps = last_check
            self._next_check = last_check  # step(0) runs the checks of the last checkpoint passed
            self.step(0)
        self._steps = steps

    def restarted(self) -> _RenderBudget:
        """A budget with fresh counters and the same deadline (for a second render of the same call)."""
        budget = _RenderBudget(self._limits)
        budget._deadline = self._deadline
        return budget

    def check_time(self) -> None:
        if time.monotonic() > self._deadline:
            raise _LimitExceededError(f"rendering took longer than {self._limits.max_seconds} s")

    def check_size(self, size: int) -> None:
        if size > self._limits.max_output_chars:
            raise _LimitExceededError(
                f"the template built a value of {size} characters/items (limit {self._limits.max_output_chars})"
            )


_BUDGET: ContextVar[_RenderBudget | None] = ContextVar("lc_hf_template_budget", default=None)


class _LimitExceededError(SecurityError):
    """A render went over its time, iteration or size budget."""


class _TemplateRaised(jinja2.exceptions.TemplateError):
    """The template called ``raise_exception(message)``."""


def _sized(value: Any) -> Any:
    budget = _BUDGET.get()
    if budget is not None and isinstance(value, (str, list, tuple, dict)):
        budget.check_size(len(value))
    return value


@jinja2.pass_context
def _bounded_iter(_context: jinja2.runtime.Context, iterable: Any) -> Any:
    budget = _BUDGET.get()
    if budget is None:
        return iterable
    return _counting_iter(iterable, budget)


def _counting_iter(iterable: Iterable[Any], budget: _RenderBudget) -> Iterator[Any]:
    for item in iterable:
        budget.step()
        yield item


@jinja2.pass_context
def _bounded_size(_context: jinja2.runtime.Context, value: Any) -> Any:
    return _sized(value)


def _predicted_str_call_size(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """Size of the result of a string method that could blow up memory, before calling it."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str):
        return 0
    name = getattr(obj, "__name__", "")
    params = list(args) + list(kwargs.values())
    if name in ("center", "ljust", "rjust", "zfill") and params and isinstance(params[0], int):
        return params[0]
    if name == "replace" and len(params) >= 2 and all(isinstance(p, str) for p in params[:2]):
        old, new = params[0], params[1]
        count = owner.count(old) if old else len(owner) + 1
        return len(owner) + count * max(len(new) - len(old), 0)
    if name == "expandtabs":
        tab = params[0] if params and isinstance(params[0], int) else 8
        return len(owner) + owner.count("\t") * max(tab, 0)
    return 0


class _GenerationTag(jinja2.ext.Extension):
    """``{% generation %}...{% endgeneration %}`` renders its body unchanged, as in transformers."""

    tags = {"generation"}  # noqa: RUF012 - jinja2 declares this as a class attribute

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        call = self.call_method("_render_body")
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _render_body(self, caller: Callable[[], str]) -> str:
        return caller()


class _TemplateDict:
    """``dict`` for templates, without the class itself (its attributes allow type hacking)."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return _sized(dict(*args, **kwargs))  # type: ignore[no-any-return]

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return _sized(dict.fromkeys(*args, **kwargs))  # type: ignore[no-any-return]


class _TemplateNamespace(jinja2.utils.Namespace):
    """``namespace()`` that refuses underscore names (as transformers) and oversized values."""

    def __init__(*args: Any, **kwargs: Any) -> None:  # Jinja's signature trick
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, _sized(value))

    @staticmethod
    def _check_name(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(
                "Chat templates cannot store underscore-prefixed attributes on a namespace, "
                f"but got {name!r}. Please rename the attribute."
            )


def _raise_exception(message: Any) -> None:
    raise _TemplateRaised(str(message))


def _tojson(
    x: Any,
    ensure_ascii: bool = False,
    indent: int | str | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # transformers' override: no HTML escaping, json.dumps options exposed.
    return _sized(  # type: ignore[no-any-return]
        json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    )


def _strftime_now(format: str) -> str:  # transformers' parameter name
    return datetime.now().strftime(format)


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > _MAX_RANGE:
        raise _LimitExceededError(f"range() of {len(rng)} items is larger than the limit {_MAX_RANGE}")
    return rng


def _checked_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps jinja's pass_context/pass_eval_context markers
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _sized(func(*args, **kwargs))

    return wrapper


_WIDTH_FILTERS = {"center": 1, "indent": 1, "slice": 1, "batch": 1}


def _width_checked_filter(func: Callable[..., Any], position: int) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        width = args[position] if len(args) > position else next(iter(kwargs.values()), 0)
        if isinstance(width, int) and width > _MAX_RANGE:
            raise _LimitExceededError(f"filter argument {width} is larger than the limit {_MAX_RANGE}")
        return _sized(func(*args, **kwargs))

    return wrapper


class _SandboxEnvironment(ImmutableSandboxedEnvironment):
    """transformers' template environment, plus budget checks and hard errors on unsafe access."""

    # `+` is not intercepted (templates use it everywhere); values kept by `set` are checked.
    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[_GenerationTag, jinja2.ext.loopcontrols],
        )
        for name, func in list(self.filters.items()):
            position = _WIDTH_FILTERS.get(name)
            self.filters[name] = (
                _width_checked_filter(func, position) if position is not None else _checked_filter(func)
            )
        self.filters["tojson"] = _tojson
        self.filters[_ITER_FILTER] = _bounded_iter
        self.filters[_SIZE_FILTER] = _bounded_size
        self.globals["raise_exception"] = _raise_exception
        self.globals["strftime_now"] = _strftime_now
        self.globals["dict"] = _TemplateDict()
        self.globals["namespace"] = _TemplateNamespace
        self.globals["range"] = _bounded_range

    def _parse(self, source: str, name: str | None, filename: str | None) -> jinja2.nodes.Template:
        # Route every loop's iterable, every `set` value and every `~` through the render budget.
        tree = super()._parse(source, name, filename)
        for loop in list(tree.find_all(jinja2.nodes.For)):
            loop.iter = jinja2.nodes.Filter(loop.iter, _ITER_FILTER, [], [], None, None)
        for assign in list(tree.find_all(jinja2.nodes.Assign)):
            assign.node = jinja2.nodes.Filter(assign.node, _SIZE_FILTER, [], [], None, None)
        for block in list(tree.find_all(jinja2.nodes.AssignBlock)):
            if block.filter is None:
                block.filter = jinja2.nodes.Filter(None, _SIZE_FILTER, [], [], None, None)
        for parent in list(tree.find_all(jinja2.nodes.Node)):
            for field in parent.fields:
                child = getattr(parent, field, None)
                if isinstance(child, jinja2.nodes.Concat):
                    bounded = jinja2.nodes.Filter(child, _SIZE_FILTER, [], [], None, None)
                    setattr(parent, field, bounded)
        return tree

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Fast path for `message.role` on plain dicts: jinja tries the attribute first and pays
        # for an AttributeError; a dict has no attribute outside `dir(dict)`, so the key wins.
        kind = type(obj)
        if kind is dict and attribute not in _DICT_ATTRIBUTES:
            value = obj.get(attribute, _MISSING)
            if value is not _MISSING:
                return value
        elif kind is jinja2.runtime.LoopContext and attribute in _LOOP_ATTRIBUTES:
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # Jinja returns a silent Undefined here; fail loudly so probing a template is obvious.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            if operator == "*":
                seq, times = (left, right) if isinstance(right, int) else (right, left)
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    budget.check_size(len(seq) * max(times, 0))
            elif operator == "**" and isinstance(left, int) and isinstance(right, int):
                if abs(left) > 1 and right > 0 and abs(left).bit_length() * right > 100_000:
                    raise _LimitExceededError("the template computed a power that is too large")
            elif operator == "%" and isinstance(left, str) and re.search(r"%[^a-zA-Z%]*\d{6}", left):
                raise _LimitExceededError("the template used a %-format width that is too large")
        return _sized(super().call_binop(context, operator, left, right))

    def call(
        __self,  # noqa: N805 - jinja2's signature, so keyword arguments named `self` work
        __context: jinja2.runtime.Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()
            budget.check_size(_predicted_str_call_size(__obj, args, kwargs))
        return _sized(super().call(__context, __obj, *args, **kwargs))


_DICT_ATTRIBUTES = frozenset(dir(dict))
_LOOP_ATTRIBUTES = frozenset(
    ["first", "last", "index", "index0", "revindex", "revindex0", "length", "depth", "depth0", "previtem", "nextitem"]
)
_MISSING = object()
_ENVIRONMENT = _SandboxEnvironment()


@dataclasses.dataclass(frozen=True)
class _Compiled:
    template: jinja2.Template
    variables: frozenset[str]
    # The template as one Python function (see _compiler.py), or None: it renders with Jinja.
    fast: Callable[[dict[str, Any], _RenderBudget], list[str]] | None = None


@functools.lru_cache(maxsize=128)
def _compile(source: str) -> _Compiled:
    """Compile (and cache) a template; the LRU key is the source text."""
    from langchain_hf_chat._templates._compiler import compile_fast  # it builds on this module

    tree = _ENVIRONMENT.parse(source)
    referenced = frozenset(node.name for node in tree.find_all(jinja2.nodes.Name))
    template = _ENVIRONMENT.from_string(source)
    return _Compiled(template, referenced, compile_fast(tree, template))
