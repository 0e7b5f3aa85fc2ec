"""A compiler from a chat template's Jinja AST to one plain Python function (the fast render path).

Jinja's runtime (render context, loop objects, a generator per template, the sandbox's checks on every
item and attribute) costs ten times what a chat template does with its inputs. Chat templates use a
small part of Jinja, so that part is translated here to straight Python that keeps Jinja's semantics:

* values are the same objects (``jinja2.Undefined`` for what is missing), so operators, truthiness and
  ``str()`` behave as in Jinja;
* item and attribute lookups take a fast path only for plain ``dict``/``list`` values and otherwise call
  the sandbox's own ``getitem``/``getattr``; calls, ``%``/``*``/``**`` and every filter and test go
  through the same functions and checks as the sandbox;
* the render budget counts the same loop steps and calls, and checks the same values' sizes.

The generated source is made from AST nodes only: literals are written with ``repr``, template names
become numbered identifiers. A template that uses anything outside the subset (macros, blocks,
``{% generation %}``, recursive loops...) is not compiled and renders with Jinja. A compiled render that
raises for any reason is redone with Jinja, so errors (and their messages) are Jinja's own.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from typing import Any

import jinja2
import jinja2.nodes as nodes
from jinja2.nodes import EvalContext
from jinja2.utils import Namespace, _PassArg

from langchain_hf_chat._templates._sandbox import (
    _ENVIRONMENT,
    _ITER_FILTER,
    _SIZE_FILTER,
    _predicted_str_call_size,
    _RenderBudget,
    _sized,
    _TemplateNamespace,
)

FastRender = Callable[[dict[str, Any], _RenderBudget], list[str]]

_MISSING = object()
_UNDEFINED = _ENVIRONMENT.undefined
_EVAL_CONTEXT = EvalContext(_ENVIRONMENT)
_SIZED_TYPES = (str, list, tuple, dict)
_LOOP_ATTRIBUTES = frozenset(
    ["index", "index0", "first", "last", "length", "revindex", "revindex0", "previtem", "nextitem", "depth", "depth0"]
)
_DICT_ATTRIBUTES = frozenset(dir(dict))
_COMPARE = {"eq": "==", "ne": "!=", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<=", "in": "in", "notin": "not in"}
_PLAIN_BINOPS = {"Add": "+", "Sub": "-", "Div": "/", "FloorDiv": "//"}
_INTERCEPTED_BINOPS = {"Mul": "*", "Pow": "**", "Mod": "%"}
# Names with a meaning of their own in Jinja (template references, macro internals).
_SPECIAL_NAMES = frozenset(["self", "super", "caller", "varargs", "kwargs", "context"])


class _UnsupportedError(Exception):
    """The template uses something the compiler does not translate; it renders with Jinja."""


class _BailError(Exception):
    """The compiled render met a case it leaves to Jinja."""


# -- runtime helpers (the generated code calls these) -----------------------------------------------------


def _getitem(obj: Any, key: Any) -> Any:
    kind = type(obj)
    if kind is dict:
        value = obj.get(key, _MISSING) if type(key) is str else _MISSING
        if value is not _MISSING:
            return value
    elif (kind is list or kind is tuple) and type(key) is int and -len(obj) <= key < len(obj):
        return obj[key]
    return _ENVIRONMENT.getitem(obj, key)


def _getattr(obj: Any, name: str) -> Any:
    if type(obj) is dict and name not in _DICT_ATTRIBUTES:
        value = obj.get(name, _MISSING)
        if value is not _MISSING:
            return value
    return _ENVIRONMENT.getattr(obj, name)


def _call(budget: _RenderBudget, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # _SandboxEnvironment.call, for callables that take no context.
    budget.step()
    budget.check_size(_predicted_str_call_size(func, args, kwargs))
    if not _ENVIRONMENT.is_safe_callable(func):
        raise _BailError
    if _PassArg.from_obj(func) is not None or (
        hasattr(func, "__call__") and _PassArg.from_obj(func.__call__) is not None  # noqa: B004
    ):
        raise _BailError
    try:
        result = func(*args, **kwargs)
    except StopIteration:
        raise _BailError from None
    return _sized(result)


def _binop(operator: str, left: Any, right: Any) -> Any:
    if operator == "%" and type(left) is int and type(right) is int:
        return left % right
    return _ENVIRONMENT.call_binop(None, operator, left, right)  # type: ignore[arg-type]


def _loop_items(iterable: Any, budget: _RenderBudget, output: list[str]) -> list[Any]:
    """A loop's items, all counted at once against the budget (Jinja counts each as the loop reaches it)."""
    items = iterable if type(iterable) is list else list(iterable)
    budget.step_many(len(items))
    if len(output) > 64 and not budget.output_fits(output):
        raise _BailError  # Jinja renders it again and reports the size where it crossed the limit
    return items


def _assign_attribute(namespace: Any, name: str, value: Any) -> None:
    if not isinstance(namespace, Namespace):
        raise _BailError
    namespace[name] = value


_RUNTIME: dict[str, Any] = {
    "_M": _MISSING,
    "_U": _UNDEFINED,
    "_UT": jinja2.Undefined,
    "_gi": _getitem,
    "_ga": _getattr,
    "_call": _call,
    "_binop": _binop,
    "_sz": _sized,
    "_items": _loop_items,
    "_nsset": _assign_attribute,
    "_ENV": _ENVIRONMENT,
    "_EVAL": _EVAL_CONTEXT,
    "_NS": _TemplateNamespace,
    "_DA": _DICT_ATTRIBUTES,
}


# -- the compiler -----------------------------------------------------------------------------------------


class _Loop:
    __slots__ = ("attributes", "index", "items", "length")

    def __init__(self, number: int, attributes: frozenset[str]) -> None:
        self.attributes = attributes
        self.index = f"_i{number}"
        self.items = f"_l{number}"
        self.length = f"_n{number}"


class _Frame:
    __slots__ = ("loop", "names", "parent")

    def __init__(self, parent: _Frame | None, names: dict[str, str], loop: _Loop | None) -> None:
        self.parent = parent
        self.names = names
        self.loop = loop

    def lookup(self, name: str) -> str:
        frame = self
        while name not in frame.names:
            if frame.parent is None:  # the root: a template variable, resolved once at the start
                frame.names[name] = f"v{len(frame.names)}"
                break
            frame = frame.parent
        return frame.names[name]


def _target_names(target: nodes.Node) -> list[str]:
    if isinstance(target, nodes.Name):
        return [target.name]
    return [name.name for name in target.find_all(nodes.Name)]


def _stored_names(body: list[nodes.Node]) -> list[str]:
    """Names a frame assigns: its own statements, without nested loops' bodies (their own frames)."""
    found: list[str] = []

    def visit(node: nodes.Node) -> None:
        if isinstance(node, nodes.For):
            return
        if isinstance(node, nodes.Assign):
            found.extend(name for name in _target_names(node.target) if name not in found)
            return
        if isinstance(node, nodes.AssignBlock) and isinstance(node.target, nodes.Name):
            found.extend(name for name in [node.target.name] if name not in found)
        for child in node.iter_child_nodes():
            visit(child)

    for statement in body:
        visit(statement)
    return found


def _loop_attributes(loop: nodes.For) -> frozenset[str]:
    """The ``loop.<attr>`` a loop's body reads; any other use of ``loop`` is unsupported."""
    used: set[str] = set()

    def visit(node: nodes.Node, own: bool) -> None:
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) and node.node.name == "loop":
            if own:
                if node.attr not in _LOOP_ATTRIBUTES:
                    raise _UnsupportedError(f"loop.{node.attr}")
                used.add(node.attr)
            return
        if isinstance(node, nodes.Name) and node.name == "loop":
            raise _UnsupportedError("loop used as a value")
        if isinstance(node, nodes.For):
            visit(node.iter, own)  # a nested loop's iterable sees this loop; its body has its own
            return
        for child in node.iter_child_nodes():
            visit(child, own)

    for statement in loop.body:
        visit(statement, True)
    if loop.test is not None:
        for _ in loop.test.find_all(nodes.Name):
            if _.name == "loop":
                raise _UnsupportedError("loop in a loop filter")
    return frozenset(used)


class _Compiler:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.indent = 1
        self.constants: dict[str, Any] = {}
        self.counter = 0
        self.names: dict[str, str] = {}
        self.uses_context = False
        self.targets: set[str] = set()  # loop variables: always bound
        # Loop variables never reassigned in their loop -> the name of a flag set once per iteration:
        # whether the item is a plain dict (so each lookup on it skips its own type check).
        self.dict_flags: dict[str, str] = {}

    # -- helpers

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def constant(self, value: Any) -> str:
        for name, existing in self.constants.items():
            if existing is value:
                return name
        name = f"_k{len(self.constants)}"
        self.constants[name] = value
        return name

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def literal(self, value: Any) -> str:
        if value is None or type(value) in (str, int, bool):
            return repr(value)
        if type(value) is float and math.isfinite(value):
            return repr(value)
        raise _UnsupportedError(f"constant {type(value).__name__}")

    # -- statements

    def compile(self, tree: nodes.Template) -> str:
        for const in tree.find_all(nodes.Const):
            if const.value == "sameas":
                raise _UnsupportedError("identity tests")  # Jinja makes a new Undefined per use
        for reference in tree.find_all(nodes.Name):
            if reference.name in _SPECIAL_NAMES:
                raise _UnsupportedError(f"special name {reference.name}")
        root = _Frame(None, {}, None)
        body = self.lines
        self.statements(tree.body, root, "_w")
        header = ["def render(V, B):", "    _p = []", "    _w = _p.append"]
        if self.uses_context:
            header.append("    _c = None")
        header.append("    _lim = B.max_output_chars")
        for name, identifier in root.names.items():
            # As Jinja: a missing name is the sentinel here and a new Undefined where it is used.
            default = self.constant(_ENVIRONMENT.globals[name]) if name in _ENVIRONMENT.globals else "_M"
            header.append(f"    {identifier} = V.get({name!r}, {default})")
        return "\n".join([*header, *body, "    return _p"]) + "\n"

    def statements(self, body: list[nodes.Node], frame: _Frame, write: str) -> None:
        start = len(self.lines)
        for node in body:
            self.statement(node, frame, write)
        if len(self.lines) == start:
            self.line("pass")

    def statement(self, node: nodes.Node, frame: _Frame, write: str) -> None:
        if isinstance(node, nodes.Output):
            self.output(node, frame, write)
        elif isinstance(node, nodes.If):
            self.if_(node, frame, write)
        elif isinstance(node, nodes.For):
            self.for_(node, frame, write)
        elif isinstance(node, nodes.Assign):
            self.assign(node, frame)
        elif isinstance(node, nodes.AssignBlock):
            self.assign_block(node, frame)
        elif isinstance(node, nodes.Break):
            self.line("break")
        elif isinstance(node, nodes.Continue):
            self.line("continue")
        else:
            raise _UnsupportedError(type(node).__name__)

    def output(self, node: nodes.Output, frame: _Frame, write: str) -> None:
        pending: list[str] = []
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                pending.append(child.data)
                continue
            if pending:
                self.line(f"{write}({''.join(pending)!r})")
                pending = []
            if isinstance(child, nodes.Const):
                self.line(f"{write}({str(child.value)!r})")
            else:
                self.line(f"{write}({self.as_str(child, frame)})")
        if pending:
            self.line(f"{write}({''.join(pending)!r})")

    def as_str(self, node: nodes.Expr, frame: _Frame) -> str:
        code = self.expr(node, frame)
        # `'literal' + x` is a str or raises; a `~` join is a str: no str() needed.
        if isinstance(node, nodes.Add) and _left_is_str_literal(node):
            return code
        if isinstance(node, nodes.Filter) and node.name == _SIZE_FILTER and isinstance(node.node, nodes.Concat):
            return code
        return f"str({code})"

    def if_(self, node: nodes.If, frame: _Frame, write: str) -> None:
        self.line(f"if {self.truth(node.test, frame)}:")
        self.block(node.body, frame, write)
        for branch in node.elif_:
            self.line(f"elif {self.truth(branch.test, frame)}:")
            self.block(branch.body, frame, write)
        if node.else_:
            self.line("else:")
            self.block(node.else_, frame, write)

    def block(self, body: list[nodes.Node], frame: _Frame, write: str) -> None:
        self.indent += 1
        self.statements(body, frame, write)
        self.indent -= 1

    def for_(self, node: nodes.For, frame: _Frame, write: str) -> None:
        if node.recursive or node.else_:
            raise _UnsupportedError("recursive loop or for-else")
        iterable = node.iter
        if not (isinstance(iterable, nodes.Filter) and iterable.name == _ITER_FILTER and iterable.node is not None):
            raise _UnsupportedError("unbounded loop")
        source = self.expr(iterable.node, frame)  # evaluated in the enclosing frame
        number = self.counter = self.counter + 1
        loop = _Loop(number, _loop_attributes(node))
        inner = _Frame(frame, {}, loop)
        for name in _target_names(node.target):
            inner.names[name] = f"t{number}_{len(inner.names)}"
            if name not in _stored_names(node.body):
                self.targets.add(inner.names[name])
        aliases: list[tuple[str, str]] = []
        for name in _stored_names(node.body):
            if name not in inner.names:
                inner.names[name] = f"t{number}_{len(inner.names)}"
                aliases.append((inner.names[name], frame.lookup(name)))
        target = self.target(node.target, inner)
        flag = None
        if isinstance(node.target, nodes.Name) and target in self.targets:
            flag = self.dict_flags[target] = f"_d{number}"
        items = f"_items({source}, B, _p)"
        if node.test is not None:
            item = self.fresh("_x")
            self.line(f"{loop.items} = []")
            self.line(f"for {item} in {items}:")
            self.indent += 1
            self.line(f"{target} = {item}")
            if flag is not None:
                self.line(f"{flag} = type({target}) is dict")
            self.line(f"if {self.truth(node.test, inner)}:")
            self.line(f"    {loop.items}.append({item})")
            self.indent -= 1
            items = loop.items
        elif loop.attributes & {"previtem", "nextitem"}:
            self.line(f"{loop.items} = {items}")
            items = loop.items
        if loop.attributes & {"last", "length", "revindex", "revindex0", "nextitem"}:
            if items != loop.items:
                self.line(f"{loop.items} = {items}")
                items = loop.items
            self.line(f"{loop.length} = len({loop.items})")
        self.line(f"for {loop.index}, {target} in enumerate({items}):")
        self.indent += 1
        if flag is not None:
            self.line(f"{flag} = type({target}) is dict")
        for local, outer in aliases:
            self.line(f"{local} = {outer}")
        self.statements(node.body, inner, write)
        self.indent -= 1

    def target(self, node: nodes.Node, frame: _Frame) -> str:
        if isinstance(node, nodes.Name):
            return frame.lookup(node.name)
        if isinstance(node, nodes.Tuple):
            return "(" + "".join(self.target(item, frame) + ", " for item in node.items) + ")"
        raise _UnsupportedError(f"assignment to {type(node).__name__}")

    def assign(self, node: nodes.Assign, frame: _Frame) -> None:
        value = self.expr(node.node, frame)
        if isinstance(node.target, nodes.NSRef):
            namespace = frame.lookup(node.target.name)
            self.line(f"_nsset({namespace}, {node.target.attr!r}, {value})")
            return
        if node.target.find(nodes.NSRef) is not None:
            raise _UnsupportedError("namespace attribute in a tuple assignment")
        self.line(f"{self.target(node.target, frame)} = {value}")

    def assign_block(self, node: nodes.AssignBlock, frame: _Frame) -> None:
        if not isinstance(node.target, nodes.Name) or _stored_names(node.body):
            raise _UnsupportedError("set block with assignments")
        buffer = self.fresh("_b")
        self.line(f"{buffer} = []")
        self.statements(node.body, frame, f"{buffer}.append")
        value = f"''.join({buffer})"
        if node.filter is not None:
            value = self.filter(node.filter, frame, value)
        self.line(f"{frame.lookup(node.target.name)} = {value}")

    # -- expressions

    def expr(self, node: nodes.Node, frame: _Frame) -> str:
        if isinstance(node, nodes.Const):
            return self.literal(node.value)
        if isinstance(node, nodes.TemplateData):
            return repr(node.data)
        if isinstance(node, nodes.Name):
            if node.ctx != "load":
                raise _UnsupportedError("name in a store context")
            identifier = frame.lookup(node.name)
            if identifier in self.targets:
                return identifier
            return f"({identifier} if {identifier} is not _M else _U(name={node.name!r}))"
        if isinstance(node, nodes.Getattr):
            return self.getattr(node, frame)
        if isinstance(node, nodes.Getitem):
            return self.getitem(node, frame)
        if isinstance(node, nodes.Slice):
            parts = [self.expr(part, frame) if part is not None else "" for part in (node.start, node.stop)]
            text = ":".join(parts)
            if node.step is not None:
                text += ":" + self.expr(node.step, frame)
            return text
        if isinstance(node, nodes.BinExpr):
            kind = type(node).__name__
            left, right = self.expr(node.left, frame), self.expr(node.right, frame)
            if kind in _PLAIN_BINOPS:
                return f"({left} {_PLAIN_BINOPS[kind]} {right})"
            if kind in _INTERCEPTED_BINOPS:
                return f"_binop({_INTERCEPTED_BINOPS[kind]!r}, {left}, {right})"
            if kind == "And":
                return f"({left} and {right})"
            if kind == "Or":
                return f"({left} or {right})"
            raise _UnsupportedError(kind)
        if isinstance(node, nodes.Not):
            return f"(not {self.truth(node.node, frame)})"
        if isinstance(node, nodes.Neg):
            return f"(-{self.expr(node.node, frame)})"
        if isinstance(node, nodes.Pos):
            return f"(+{self.expr(node.node, frame)})"
        if isinstance(node, nodes.Compare):
            text = self.expr(node.expr, frame)
            for operand in node.ops:
                text += f" {_COMPARE[operand.op]} {self.expr(operand.expr, frame)}"
            return f"({text})"
        if isinstance(node, nodes.Concat):
            return "''.join((" + "".join(f"str({self.expr(item, frame)}), " for item in node.nodes) + "))"
        if isinstance(node, nodes.CondExpr):
            if node.expr2 is None:
                raise _UnsupportedError("inline if without else")
            test = self.truth(node.test, frame)
            yes, no = self.expr(node.expr1, frame), self.expr(node.expr2, frame)
            return f"({yes} if {test} else {no})"
        if isinstance(node, nodes.Tuple):
            if node.ctx != "load":
                raise _UnsupportedError("tuple in a store context")
            return "(" + "".join(self.expr(item, frame) + ", " for item in node.items) + ")"
        if isinstance(node, nodes.List):
            return "[" + ", ".join(self.expr(item, frame) for item in node.items) + "]"
        if isinstance(node, nodes.Dict):
            pairs = (f"{self.expr(pair.key, frame)}: {self.expr(pair.value, frame)}" for pair in node.items)
            return "{" + ", ".join(pairs) + "}"
        if isinstance(node, nodes.Filter):
            if node.node is None:
                raise _UnsupportedError("filter without a value")
            return self.filter(node, frame, self.expr(node.node, frame))
        if isinstance(node, nodes.Test):
            return self.test(node, frame)
        if isinstance(node, nodes.Call):
            return self.call(node, frame)
        raise _UnsupportedError(type(node).__name__)

    def truth(self, node: nodes.Node, frame: _Frame) -> str:
        """Code with the same truth value as ``node`` (not always the same value): for ``if`` and ``not``."""
        if isinstance(node, (nodes.And, nodes.Or)):
            operator = "and" if isinstance(node, nodes.And) else "or"
            return f"({self.truth(node.left, frame)} {operator} {self.truth(node.right, frame)})"
        key = _constant_key(node)
        if key is not None and key not in _DICT_ATTRIBUTES and not _is_loop_attribute(node, frame):
            # A missing key of a plain dict is an Undefined, which is false: no need to build one.
            obj, o = self.expr(node.node, frame), self.fresh("_o")  # type: ignore[attr-defined]
            fallback = "getattr" if isinstance(node, nodes.Getattr) else "getitem"
            flag = self.dict_flags.get(obj)
            if flag is not None:
                return f"({obj}.get({key!r}, False) if {flag} else _ENV.{fallback}({obj}, {key!r}))"
            return f"({o}.get({key!r}, False) if type({o} := {obj}) is dict else _ENV.{fallback}({o}, {key!r}))"
        return self.expr(node, frame)

    def getattr(self, node: nodes.Getattr, frame: _Frame) -> str:
        if isinstance(node.node, nodes.Name) and node.node.name == "loop" and frame.loop is not None:
            return self.loop_attribute(node.attr, frame.loop)
        obj = self.expr(node.node, frame)
        if node.attr in _DICT_ATTRIBUTES:
            return f"_ENV.getattr({obj}, {node.attr!r})"
        return self.dict_lookup(obj, node.attr, "getattr")

    def dict_lookup(self, obj: str, key: str, fallback: str) -> str:
        # The sandbox on a plain dict, for a key that is not a dict method: the item, or
        # Undefined(obj=..., name=...) when it is missing. Anything else asks the sandbox.
        flag = self.dict_flags.get(obj)
        if flag is not None:  # a loop variable whose type was checked once for this iteration
            return (
                f"(({obj}[{key!r}] if {key!r} in {obj} else _U(obj={obj}, name={key!r})) "
                f"if {flag} else _ENV.{fallback}({obj}, {key!r}))"
            )
        o = self.fresh("_o")
        return (
            f"(({o}[{key!r}] if {key!r} in {o} else _U(obj={o}, name={key!r})) "
            f"if type({o} := {obj}) is dict else _ENV.{fallback}({o}, {key!r}))"
        )

    def loop_attribute(self, attr: str, loop: _Loop) -> str:
        i, n, items = loop.index, loop.length, loop.items
        return {
            "index0": i,
            "index": f"({i} + 1)",
            "first": f"({i} == 0)",
            "last": f"({i} == {n} - 1)",
            "length": n,
            "revindex": f"({n} - {i})",
            "revindex0": f"({n} - {i} - 1)",
            "previtem": f"({items}[{i} - 1] if {i} else _U('there is no previous item'))",
            "nextitem": f"({items}[{i} + 1] if {i} < {n} - 1 else _U('there is no next item'))",
            "depth": "1",
            "depth0": "0",
        }[attr]

    def getitem(self, node: nodes.Getitem, frame: _Frame) -> str:
        obj = self.expr(node.node, frame)
        if isinstance(node.arg, nodes.Slice):
            return f"{obj}[{self.expr(node.arg, frame)}]"
        arg = node.arg
        o, v = self.fresh("_o"), self.fresh("_v")
        if isinstance(arg, nodes.Const) and type(arg.value) is str:
            if arg.value not in _DICT_ATTRIBUTES:
                return self.dict_lookup(obj, arg.value, "getitem")
            return (
                f"({v} if type({o} := {obj}) is dict and ({v} := {o}.get({arg.value!r}, _M)) is not _M "
                f"else _ENV.getitem({o}, {arg.value!r}))"
            )
        if isinstance(arg, nodes.Const) and type(arg.value) is int and arg.value >= 0:
            return (
                f"({o}[{arg.value!r}] if type({o} := {obj}) is list and len({o}) > {arg.value!r} "
                f"else _ENV.getitem({o}, {arg.value!r}))"
            )
        return f"_gi({obj}, {self.expr(arg, frame)})"

    def arguments(self, node: nodes.Filter | nodes.Test | nodes.Call, frame: _Frame) -> tuple[list[str], list[str]]:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise _UnsupportedError("*args or **kwargs")
        args = [self.expr(arg, frame) for arg in node.args]
        kwargs = [f"{keyword.key!r}: {self.expr(keyword.value, frame)}" for keyword in node.kwargs]
        return args, kwargs

    def with_pass_arg(self, func: Any, value: str, args: list[str]) -> list[str]:
        """Arguments for a filter or test, with what it asks for first (as Jinja's code generator)."""
        pass_arg = _PassArg.from_obj(func)
        if pass_arg is _PassArg.context:
            self.uses_context = True
            return ["(_c if _c is not None else (_c := _T.new_context(V)))", value, *args]
        if pass_arg is _PassArg.eval_context:
            return ["_EVAL", value, *args]
        if pass_arg is _PassArg.environment:
            return ["_ENV", value, *args]
        return [value, *args]

    def filter(self, node: nodes.Filter, frame: _Frame, value: str) -> str:
        if node.name == _SIZE_FILTER:
            if isinstance(node.node, nodes.Const) and type(node.node.value) is not str:
                return value  # a number, boolean or none: nothing to measure
            t = self.fresh("_s")
            return f"({t} if (type({t} := {value}) is str or type({t}) is list) and len({t}) <= _lim else _sz({t}))"
        func = _ENVIRONMENT.filters.get(node.name)
        if func is None or node.name == _ITER_FILTER:
            raise _UnsupportedError(f"filter {node.name}")
        args, kwargs = self.arguments(node, frame)
        if node.name == "length" and not args and not kwargs:
            return f"len({value})"  # the wrapped `len`; its int result needs no size check
        if node.name == "trim" and not args and not kwargs:
            t, r = self.fresh("_s"), self.fresh("_r")
            trim = self.constant(func)
            return f"({r} if type({t} := {value}) is str and len({r} := {t}.strip()) <= _lim else {trim}({t}))"
        call_args = self.with_pass_arg(func, value, args)
        text = ", ".join([*call_args, f"**{{{', '.join(kwargs)}}}"] if kwargs else call_args)
        return f"{self.constant(func)}({text})"

    def test(self, node: nodes.Test, frame: _Frame) -> str:
        func = _ENVIRONMENT.tests.get(node.name)
        if func is None:
            raise _UnsupportedError(f"test {node.name}")
        args, kwargs = self.arguments(node, frame)
        key = _constant_key(node.node)
        if node.name in ("defined", "undefined") and not args and not kwargs:
            negate = "not " if node.name == "undefined" else ""
            if isinstance(node.node, nodes.Name) and frame.lookup(node.node.name) not in self.targets:
                identifier = frame.lookup(node.node.name)
                return f"({negate}({identifier} is not _M and not isinstance({identifier}, _UT)))"
            if key is not None and key not in _DICT_ATTRIBUTES and not _is_loop_attribute(node.node, frame):
                obj, o = self.expr(node.node.node, frame), self.fresh("_o")  # type: ignore[attr-defined]
                fallback = "getattr" if isinstance(node.node, nodes.Getattr) else "getitem"
                return (
                    f"({negate}(({key!r} in {o}) if type({o} := {obj}) is dict "
                    f"else not isinstance(_ENV.{fallback}({o}, {key!r}), _UT)))"
                )
        value = self.expr(node.node, frame)
        if not args and not kwargs:
            if node.name == "defined":
                return f"(not isinstance({value}, _UT))"
            if node.name == "undefined":
                return f"isinstance({value}, _UT)"
            if node.name == "none":
                return f"({value} is None)"
            if node.name == "string":
                return f"isinstance({value}, str)"
        if _PassArg.from_obj(func) is _PassArg.context:  # type: ignore[type-var]
            raise _UnsupportedError(f"test {node.name} takes the context")
        call_args = self.with_pass_arg(func, value, args)
        text = ", ".join([*call_args, f"**{{{', '.join(kwargs)}}}"] if kwargs else call_args)
        return f"{self.constant(func)}({text})"

    def call(self, node: nodes.Call, frame: _Frame) -> str:
        func = self.expr(node.node, frame)
        args, kwargs = self.arguments(node, frame)
        return f"_call(B, {func}, ({''.join(arg + ', ' for arg in args)}), {{{', '.join(kwargs)}}})"


def _constant_key(node: nodes.Node) -> str | None:
    """The key of ``x.key`` or ``x['key']``."""
    if isinstance(node, nodes.Getattr):
        return str(node.attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and type(node.arg.value) is str:
        return node.arg.value
    return None


def _is_loop_attribute(node: nodes.Node, frame: _Frame) -> bool:
    return (
        isinstance(node, nodes.Getattr)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "loop"
        and frame.loop is not None
    )


def _left_is_str_literal(node: nodes.Node) -> bool:
    while isinstance(node, nodes.Add):
        node = node.left
    return isinstance(node, nodes.Const) and type(node.value) is str


def compile_fast(tree: nodes.Template, template: jinja2.Template) -> FastRender | None:
    """Translate a parsed (budget-instrumented) template into a render function, or ``None`` if unsupported.

    The function takes the template variables and the render budget and returns the output chunks.

    Example:
        >>> tree = _ENVIRONMENT.parse("{% for m in messages %}{{ m.content }}{% endfor %}")
        >>> render = compile_fast(tree, _ENVIRONMENT.from_string(""))
        >>> from langchain_hf_chat._templates._sandbox import RenderLimits
        >>> "".join(render({"messages": [{"content": "hi"}]}, _RenderBudget(RenderLimits())))
        'hi'
    """
    compiler = _Compiler()
    try:
        source = compiler.compile(tree)
        code = compile(source, "<chat template>", "exec")
    except _UnsupportedError:
        return None
    except Exception:  # e.g. RecursionError on deep nesting: Jinja handles what this cannot
        return None
    namespace: dict[str, Any] = {**_RUNTIME, **compiler.constants, "_T": template, "__builtins__": _BUILTINS}
    exec(code, namespace)  # noqa: S102 - source generated from AST nodes; literals via repr()
    render: FastRender = namespace["render"]
    return render


_BUILTIN_NAMES = ("str", "len", "type", "isinstance", "enumerate", "dict", "list", "tuple", "int")
_BUILTINS = {name: getattr(builtins, name) for name in _BUILTIN_NAMES}
