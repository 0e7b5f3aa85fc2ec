r"""Chat templates: find a model's template, compile it once, render it in a locked-down sandbox.

Rendering reproduces ``transformers``' ``apply_chat_template(..., tokenize=False)`` exactly (the
same Jinja options, globals, filters and input handling as ``chat_template_utils``) without
importing ``transformers``. Templates come from model repositories, so they are treated as
untrusted code: they run in Jinja's immutable sandbox, cannot reach Python internals, the file
system or the network, and their running time and output size are bounded.

Example:
    >>> zephyr = ChatTemplate.from_string(
    ...     "{% for m in messages %}<|{{ m['role'] }}|>\\n{{ m['content'] }}{{ eos_token }}\\n"
    ...     "{% endfor %}{% if add_generation_prompt %}<|assistant|>\\n{% endif %}",
    ...     eos_token="</s>",
    ... )
    >>> zephyr.render([{"role": "user", "content": "Hi"}])
    '<|user|>\\nHi</s>\\n<|assistant|>\\n'
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
import jinja2.meta
import jinja2.nodes
import jinja2.parser
import jinja2.runtime
import jinja2.utils
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from langchain_hf_chat.errors import TemplateError

__all__ = ["ChatTemplate", "RenderLimits", "load_chat_template"]

# Names a message's reasoning is passed under; templates read the first (as in transformers).
_REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "
# The named special tokens transformers passes to every template (`special_tokens_map`).
_SPECIAL_TOKEN_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)
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

    __slots__ = ("_deadline", "_limits", "_next_check", "_steps")

    def __init__(self, limits: RenderLimits) -> None:
        self._limits = limits
        self._deadline = time.monotonic() + limits.max_seconds
        self._steps = 0
        self._next_check = 256

    def step(self, n: int = 1) -> None:
        self._steps += n
        if self._steps >= self._next_check:
            self._next_check = self._steps + 256
            if self._steps > self._limits.max_loop_iterations:
                raise _LimitExceededError(
                    f"rendering exceeded {self._limits.max_loop_iterations} loop iterations"
                )
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self._deadline:
            raise _LimitExceededError(f"rendering took longer than {self._limits.max_seconds} s")

    def check_size(self, size: int) -> None:
        if size > self._limits.max_output_chars:
            raise _LimitExceededError(
                f"the template built a value of {size} characters/items "
                f"(limit {self._limits.max_output_chars})"
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
        json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )
    )


def _strftime_now(format: str) -> str:  # transformers' parameter name
    return datetime.now().strftime(format)


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > _MAX_RANGE:
        raise _LimitExceededError(
            f"range() of {len(rng)} items is larger than the limit {_MAX_RANGE}"
        )
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
            raise _LimitExceededError(
                f"filter argument {width} is larger than the limit {_MAX_RANGE}"
            )
        return _sized(func(*args, **kwargs))

    return wrapper


class _SandboxEnvironment(ImmutableSandboxedEnvironment):
    """transformers' template environment, plus budget checks and hard errors on unsafe access."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[_GenerationTag, jinja2.ext.loopcontrols],
        )
        for name, func in list(self.filters.items()):
            position = _WIDTH_FILTERS.get(name)
            self.filters[name] = (
                _width_checked_filter(func, position)
                if position is not None
                else _checked_filter(func)
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
        # Route every loop's iterable and every `~` concatenation through the render budget.
        tree = super()._parse(source, name, filename)
        for loop in list(tree.find_all(jinja2.nodes.For)):
            loop.iter = jinja2.nodes.Filter(loop.iter, _ITER_FILTER, [], [], None, None)
        for parent in list(tree.find_all(jinja2.nodes.Node)):
            for field in parent.fields:
                child = getattr(parent, field, None)
                if isinstance(child, jinja2.nodes.Concat):
                    bounded = jinja2.nodes.Filter(child, _SIZE_FILTER, [], [], None, None)
                    setattr(parent, field, bounded)
        return tree

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # Jinja returns a silent Undefined here; fail loudly so probing a template is obvious.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            if operator == "*":
                seq, times = (left, right) if isinstance(right, int) else (right, left)
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    budget.check_size(len(seq) * max(times, 0))
            elif operator == "**" and isinstance(left, int) and isinstance(right, int):
                if abs(left) > 1 and right > 0 and abs(left).bit_length() * right > 100_000:
                    raise _LimitExceededError("the template computed a power that is too large")
            elif (
                operator == "%" and isinstance(left, str) and re.search(r"%[^a-zA-Z%]*\d{6}", left)
            ):
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


_ENVIRONMENT = _SandboxEnvironment()


@dataclasses.dataclass(frozen=True)
class _Compiled:
    template: jinja2.Template
    variables: frozenset[str]


@functools.lru_cache(maxsize=128)
def _compile(source: str) -> _Compiled:
    """Compile (and cache) a template; the LRU key is the source text."""
    tree = _ENVIRONMENT.parse(source)
    referenced = frozenset(node.name for node in tree.find_all(jinja2.nodes.Name))
    return _Compiled(_ENVIRONMENT.from_string(source), referenced)


# ---------------------------------------------------------------------------------------------
# Inputs: the same normalisation transformers applies before rendering.
# ---------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Rebuild a value from plain JSON types (as transformers' `_plain_template_data`)."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is float or kind is bool:
        return value
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    item = getattr(value, "item", None)  # numpy scalars, without importing numpy
    if type(value).__module__ == "numpy" and callable(item):
        return _plain(item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {field.name: _plain(getattr(value, field.name)) for field in fields}
    if callable(getattr(value, "model_dump", None)):
        return _plain(value.model_dump())
    return f"<{type(value).__name__}>"


def _message_dicts(messages: Any) -> list[dict[Any, Any]]:
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Iterable):
        raise TypeError(f"messages must be a list of message dicts, got {type(messages).__name__}")
    chat: list[dict[Any, Any]] = []
    for message in messages:
        if dataclasses.is_dataclass(message) and not isinstance(message, type):
            message = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
        elif not isinstance(message, Mapping) and callable(getattr(message, "model_dump", None)):
            message = message.model_dump()
        if not isinstance(message, Mapping):
            raise TypeError(f"Chat messages should be dicts, but got {message!r:.80}.")
        # Keys whose value is None are dropped: templates handle a missing key, not `None`.
        chat.append(_plain({key: value for key, value in message.items() if value is not None}))
    if not chat:
        raise ValueError("Cannot apply a chat template to an empty conversation.")
    for index, message in enumerate(chat):
        reasoning = next(
            (message[key] for key in _REASONING_FIELDS if message.get(key) is not None), None
        )
        if reasoning is not None:
            chat[index] = {"thinking": reasoning, **message, "reasoning_content": reasoning}
    return chat


def _mark_continuation(chat: list[dict[Any, Any]], field: str, source: str) -> str:
    """Tag the final message (as transformers) so its end can be found and cut after rendering."""
    last = chat[-1]
    final = last.get(field)
    if final is None:
        raise ValueError(f'continue_final_message is set but the final message has no "{field}"')
    fields = [field]
    if field in _REASONING_FIELDS:
        fields = [name for name in _REASONING_FIELDS if last.get(name) == final]
    if not any(name in source for name in fields):
        raise ValueError(f'continue_final_message is "{field}", which this template never reads')
    if isinstance(final, (list, tuple)):
        for block in reversed(final):
            if isinstance(block, dict) and "text" in block:
                text = block["text"]
                block["text"] = text + _CONTINUE_TAG
                return str(text)
        raise ValueError("continue_final_message is set but the final message has no text block")
    for name in fields:
        last[name] = last[name] + _CONTINUE_TAG
    return str(final)


def _cut_continuation(rendered: str, final: str) -> str:
    tag = _CONTINUE_TAG.strip()
    if final.strip() not in rendered or tag not in rendered:
        raise ValueError(
            "continue_final_message is set but the final message does not appear in the chat "
            "after applying the chat template (the template deletes part of it)"
        )
    at = rendered.rindex(tag)
    if rendered[at : at + len(_CONTINUE_TAG)] == _CONTINUE_TAG:
        return rendered[:at]
    return rendered[:at].rstrip()


# ---------------------------------------------------------------------------------------------
# The template object.
# ---------------------------------------------------------------------------------------------


class ChatTemplate:
    r"""A compiled chat template; rendering is thread-safe and fast.

    Build one with :meth:`from_string` or :func:`load_chat_template`. Compiled templates are cached
    by source, so building many ``ChatTemplate`` objects for one model costs one compilation.

    Example:
        >>> tmpl = ChatTemplate.from_string(
        ...     "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\\n"
        ...     "{% endfor %}",
        ...     bos_token="<s>",
        ...     name="toy",
        ... )
        >>> tmpl.render([{"role": "user", "content": "Hello"}], add_generation_prompt=False)
        '<s>[user] Hello\\n'
        >>> tmpl.supports_tools
        False
    """

    __slots__ = (
        "_compiled",
        "_globals",
        "_system_role",
        "bos_token",
        "eos_token",
        "limits",
        "name",
        "source",
        "special_tokens",
    )

    source: str
    bos_token: str
    eos_token: str
    special_tokens: Mapping[str, str]
    name: str | None
    limits: RenderLimits

    def __init__(
        self,
        source: str,
        *,
        bos_token: str = "",
        eos_token: str = "",
        special_tokens: Mapping[str, str] | None = None,
        name: str | None = None,
        limits: RenderLimits | None = None,
    ) -> None:
        if not isinstance(source, str):
            raise TemplateError(f"chat template for {name or 'model'} must be a string")
        self.source = source
        self.name = name
        self.limits = limits or RenderLimits()
        try:
            self._compiled = _compile(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"chat template for {self._label} is not valid Jinja (line {exc.lineno}): "
                f"{exc.message}"
            ) from None
        except Exception as exc:  # e.g. RecursionError on absurdly nested templates
            raise TemplateError(
                f"chat template for {self._label} failed to compile: {exc}"
            ) from None
        tokens = dict(special_tokens or {})
        self.bos_token = bos_token or tokens.get("bos_token", "")
        self.eos_token = eos_token or tokens.get("eos_token", "")
        tokens.update(bos_token=self.bos_token, eos_token=self.eos_token)
        self.special_tokens = tokens
        self._globals: dict[str, Any] = _plain(tokens)
        self._system_role: bool | None = None

    @classmethod
    def from_string(
        cls,
        source: str,
        *,
        bos_token: str = "",
        eos_token: str = "",
        special_tokens: Mapping[str, str] | None = None,
        name: str | None = None,
        limits: RenderLimits | None = None,
    ) -> ChatTemplate:
        """Compile ``source`` (cached by source text) into a template.

        ``special_tokens`` are further template variables (``unk_token``, ``pad_token``...), as
        transformers passes its ``special_tokens_map``; ``bos_token``/``eos_token`` win over them.
        ``name`` (usually the model id) appears in error messages.

        Example:
            >>> ChatTemplate.from_string("{{ eos_token }}", eos_token="</s>").render(
            ...     [{"role": "user", "content": "x"}]
            ... )
            '</s>'
        """
        return cls(
            source,
            bos_token=bos_token,
            eos_token=eos_token,
            special_tokens=special_tokens,
            name=name,
            limits=limits,
        )

    def __repr__(self) -> str:
        return f"ChatTemplate(name={self.name!r}, source=<{len(self.source)} chars>)"

    @property
    def _label(self) -> str:
        return repr(self.name) if self.name else "<unnamed template>"

    @property
    def supports_tools(self) -> bool:
        """Whether the template reads the ``tools`` variable."""
        return "tools" in self._compiled.variables

    @property
    def supports_system_role(self) -> bool:
        """Best effort: a system message renders without error and its text reaches the prompt."""
        if self._system_role is None:
            marker = "SYSTEM-PROBE-7f3a"
            probe = [{"role": "system", "content": marker}, {"role": "user", "content": "hi"}]
            try:
                self._system_role = marker in self.render(probe)
            except TemplateError:
                self._system_role = False
        return self._system_role

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        documents: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool | None = None,
        continue_final_message: bool | str = False,
        **template_kwargs: Any,
    ) -> str:
        """Render ``messages`` to a prompt string, exactly as transformers' ``apply_chat_template``.

        Args:
            messages: role/content dicts (dataclasses and Pydantic models are converted).
            tools: JSON-schema tool dicts (``{"type": "function", "function": {...}}``).
            documents: RAG documents (dicts, usually with ``title`` and ``text``).
            add_generation_prompt: append the assistant header. Defaults to ``True``, or to
                ``False`` when ``continue_final_message`` is set (the two cannot be combined).
            continue_final_message: leave the final message open so the model continues it; a
                string names the field to continue (e.g. ``"reasoning_content"``).
            **template_kwargs: further template variables; they override the special tokens.

        Raises:
            TemplateError: the template raised (its own message is kept), broke a sandbox rule or a
                limit, or the inputs cannot be rendered.

        Example:
            >>> t = ChatTemplate.from_string("{% for m in messages %}{{ m.content }}|{% endfor %}")
            >>> t.render([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
            'a|b|'
        """
        if add_generation_prompt is None:
            add_generation_prompt = not continue_final_message
        elif add_generation_prompt and continue_final_message:
            raise TemplateError(
                "continue_final_message and add_generation_prompt cannot be combined: the first "
                "continues the last message, the second starts a new assistant message"
            )
        budget = _RenderBudget(self.limits)
        token = _BUDGET.set(budget)
        try:
            return self._render(
                budget,
                messages,
                tools,
                documents,
                add_generation_prompt,
                continue_final_message,
                template_kwargs,
            )
        except TemplateError:
            raise
        except _TemplateRaised as exc:
            raise TemplateError(f"chat template for {self._label} raised: {exc.message}") from None
        except _LimitExceededError as exc:
            raise TemplateError(
                f"chat template for {self._label} went over a render limit: {exc.message}"
            ) from None
        except SecurityError as exc:
            raise TemplateError(
                f"chat template for {self._label} was blocked by the sandbox: {exc.message}"
            ) from None
        except jinja2.TemplateError as exc:
            raise TemplateError(
                f"chat template for {self._label} failed: {exc.message or type(exc).__name__}"
            ) from None
        except RecursionError:
            raise TemplateError(f"chat template for {self._label} recursed too deeply") from None
        except MemoryError:
            raise TemplateError(f"chat template for {self._label} ran out of memory") from None
        except Exception as exc:
            raise TemplateError(
                f"chat template for {self._label} failed: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            _BUDGET.reset(token)

    def _render(
        self,
        budget: _RenderBudget,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None,
        documents: Sequence[Mapping[str, Any]] | None,
        add_generation_prompt: bool,
        continue_final_message: bool | str,
        template_kwargs: dict[str, Any],
    ) -> str:
        chat = _message_dicts(messages)
        final = ""
        if continue_final_message:
            field = continue_final_message if isinstance(continue_final_message, str) else "content"
            final = _mark_continuation(chat, field, self.source)
        tool_schemas = None
        if tools is not None:
            if any(not isinstance(tool, Mapping) for tool in tools):
                raise TypeError("tools must be JSON-schema dicts (convert functions first)")
            tool_schemas = _plain(list(tools))
        docs = None
        if documents is not None:
            if any(not isinstance(document, Mapping) for document in documents):
                raise TypeError("documents should be a list of dicts with 'title' and 'text' keys")
            docs = _plain(list(documents))
        variables = (
            {**self._globals, **_plain(template_kwargs)} if template_kwargs else dict(self._globals)
        )
        variables.update(
            messages=chat,
            tools=tool_schemas,
            documents=docs,
            add_generation_prompt=add_generation_prompt,
        )
        limit = self.limits.max_output_chars
        parts: list[str] = []
        size = 0
        for chunk in self._compiled.template.generate(variables):
            size += len(chunk)
            if size > limit:
                budget.check_size(size)
            parts.append(chunk)
        budget.check_time()
        rendered = "".join(parts)
        if continue_final_message:
            rendered = _cut_continuation(rendered, final)
        return rendered


# ---------------------------------------------------------------------------------------------
# Lookup: explicit string, tokenizer object, local path, Hugging Face cache.
# ---------------------------------------------------------------------------------------------


_DEFAULT_NAME = "default"


@dataclasses.dataclass
class _Found:
    templates: dict[str, str]  # name -> source; a single template is stored as "default"
    special_tokens: dict[str, str]
    origin: str


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _special_tokens_from_config(config: Mapping[str, Any]) -> dict[str, str]:
    tokens: dict[str, str] = {}
    extra = config.get("extra_special_tokens")
    names = list(_SPECIAL_TOKEN_KEYS)
    if isinstance(extra, Mapping):
        names += [str(key) for key in extra]
        config = {**extra, **config}
    for key in names:
        text = _token_text(config.get(key))
        if text is not None:
            tokens[key] = text
    return tokens


def _templates_from_value(value: Any) -> dict[str, str]:
    """`chat_template` as stored in configs: a string, or a list of {name, template}, or a dict."""
    if isinstance(value, str):
        return {_DEFAULT_NAME: value}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items() if isinstance(v, str)}
    if isinstance(value, list):
        named = {}
        for entry in value:
            if isinstance(entry, Mapping) and isinstance(entry.get("template"), str):
                named[str(entry.get("name", _DEFAULT_NAME))] = entry["template"]
        return named
    return {}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path} does not hold a JSON object")
    return data


def _from_files(files: Mapping[str, Path], origin: str) -> _Found:
    """Templates and tokens from the files of a tokenizer folder (local or cached)."""
    templates: dict[str, str] = {}
    tokens: dict[str, str] = {}
    if "chat_template.json" in files:
        data = _read_json(files["chat_template.json"])
        templates.update(_templates_from_value(data.get("chat_template")))
    if "tokenizer_config.json" in files:
        config = _read_json(files["tokenizer_config.json"])
        templates.update(_templates_from_value(config.get("chat_template")))
        tokens = _special_tokens_from_config(config)
    if "chat_template.jinja" in files:  # transformers prefers the separate file
        templates[_DEFAULT_NAME] = files["chat_template.jinja"].read_text(encoding="utf-8")
    return _Found(templates, tokens, origin)


_CONFIG_FILES = ("chat_template.jinja", "tokenizer_config.json", "chat_template.json")


def _from_path(path: Path) -> _Found:
    if path.is_dir():
        files = {name: path / name for name in _CONFIG_FILES if (path / name).is_file()}
        found = _from_files(files, str(path))
        extra_dir = path / "additional_chat_templates"
        if extra_dir.is_dir():
            for file in sorted(extra_dir.glob("*.jinja")):
                found.templates.setdefault(file.stem, file.read_text(encoding="utf-8"))
        return found
    if not path.is_file():
        raise TemplateError(f"chat template path {path} does not exist")
    sibling_config = path.parent / "tokenizer_config.json"
    if path.suffix == ".json":
        is_config = path.name == "tokenizer_config.json"
        files = {"tokenizer_config.json" if is_config else "chat_template.json": path}
        if not is_config and sibling_config.is_file():
            files["tokenizer_config.json"] = sibling_config
        return _from_files(files, str(path))
    found = _Found({_DEFAULT_NAME: path.read_text(encoding="utf-8")}, {}, str(path))
    if sibling_config.is_file():
        found.special_tokens = _special_tokens_from_config(_read_json(sibling_config))
    return found


def _from_tokenizer(tokenizer: Any) -> _Found:
    templates = _templates_from_value(getattr(tokenizer, "chat_template", None))
    tokens: dict[str, str] = {}
    mapping = getattr(tokenizer, "special_tokens_map", None)
    if isinstance(mapping, Mapping):
        tokens = {k: v for k, v in mapping.items() if isinstance(v, str)}
    for key in ("bos_token", "eos_token"):
        text = _token_text(getattr(tokenizer, key, None))
        if text is not None:
            tokens.setdefault(key, text)
    return _Found(templates, tokens, type(tokenizer).__name__)


def _hub_cache_dir(cache_dir: str | os.PathLike[str] | None) -> str | None:
    if cache_dir is not None:
        return os.fspath(cache_dir)
    # Read the environment at call time (huggingface_hub reads it once, at import).
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE")
    if flag is not None:
        return flag.strip().upper() in ("1", "ON", "YES", "TRUE")
    return bool(constants.HF_HUB_OFFLINE)


def _from_hub(
    repo_id: str,
    *,
    token: str | None,
    revision: str | None,
    local_files_only: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    download: bool,
) -> _Found:
    from huggingface_hub import _CACHED_NO_EXIST, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    cache = _hub_cache_dir(cache_dir)
    offline = local_files_only if local_files_only is not None else _offline()
    files: dict[str, Path] = {}
    problems: list[str] = []
    for filename in _CONFIG_FILES:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache, revision=revision)
        if isinstance(cached, str):
            files[filename] = Path(cached)
            continue
        if cached is _CACHED_NO_EXIST or offline or not download:
            continue
        try:
            local = hf_hub_download(
                repo_id, filename, revision=revision, token=token, cache_dir=cache
            )
        except EntryNotFoundError:
            continue
        except LocalEntryNotFoundError as exc:
            problems.append(f"{filename}: {exc}")
            continue
        except Exception as exc:  # repository missing, gated, network down...
            raise TemplateError(
                f"cannot fetch {filename} for {repo_id!r} from the Hugging Face Hub: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        files[filename] = Path(local)
    found = _from_files(files, f"{repo_id} (Hugging Face cache{', offline' if offline else ''})")
    if not found.templates and problems:
        found.origin += "; " + "; ".join(problems)
    return found


def _looks_like_source(text: str) -> bool:
    return "{%" in text or "{{" in text or "{#" in text or "\n" in text


def load_chat_template(
    *,
    chat_template: str | None = None,
    tokenizer: Any | None = None,
    path: str | os.PathLike[str] | None = None,
    repo_id: str | None = None,
    token: str | None = None,
    revision: str | None = None,
    local_files_only: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    limits: RenderLimits | None = None,
) -> ChatTemplate:
    """Find a model's chat template and compile it.

    Sources, in order: ``chat_template`` (a template source; or the *name* of one of the model's
    named templates), a ``tokenizer`` object (its ``chat_template`` and special tokens), a local
    ``path`` (a tokenizer folder, a ``.jinja`` file or a JSON config) and the Hugging Face cache for
    ``repo_id`` (``chat_template.jinja``, ``tokenizer_config.json``, ``chat_template.json``; files
    are downloaded when missing unless ``HF_HUB_OFFLINE=1`` or ``local_files_only=True``). When a
    config lists several named templates, ``"default"`` is used unless another name is given.
    ``bos_token``/``eos_token`` (and the other special tokens) come from ``tokenizer_config.json``.

    Raises:
        TemplateError: naming the model or path and what was missing.

    Example:
        >>> import json, pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "tokenizer_config.json").write_text(json.dumps({
        ...     "eos_token": {"content": "</s>"},
        ...     "chat_template": "{% for m in messages %}{{ m.content + eos_token }}{% endfor %}",
        ... }))
        >>> load_chat_template(path=folder).render([{"role": "user", "content": "Hi"}])
        'Hi</s>'
    """
    name = repo_id or (os.fspath(path) if path is not None else None)
    tried: list[str] = []
    found: _Found | None = None

    def sources() -> Iterator[_Found]:
        if tokenizer is not None:
            yield _from_tokenizer(tokenizer)
        if path is not None:
            yield _from_path(Path(path))
        if repo_id is not None:
            explicit_source = chat_template is not None and _looks_like_source(chat_template)
            yield _from_hub(
                repo_id,
                token=token,
                revision=revision,
                local_files_only=local_files_only,
                cache_dir=cache_dir,
                download=not explicit_source,
            )

    if chat_template is not None and _looks_like_source(chat_template):
        tokens: dict[str, str] = {}
        try:  # special tokens are a bonus here: never fail because the model files are missing
            for candidate in sources():
                if candidate.special_tokens:
                    tokens = candidate.special_tokens
                    break
        except TemplateError:
            pass
        return ChatTemplate(chat_template, special_tokens=tokens, name=name, limits=limits)

    wanted = chat_template or _DEFAULT_NAME
    for candidate in sources():
        tried.append(candidate.origin)
        if candidate.templates:
            found = candidate
            break
    if found is None:
        where = ", ".join(tried) or "nothing (pass chat_template, tokenizer, path or repo_id)"
        raise TemplateError(
            f"no chat template found for {name or 'the model'}: looked in {where} for "
            "chat_template.jinja, tokenizer_config.json `chat_template` and chat_template.json"
        )
    source = found.templates.get(wanted)
    if source is None and chat_template is None and len(found.templates) == 1:
        source = next(iter(found.templates.values()))
    if source is None:
        raise TemplateError(
            f"{name or found.origin} has no chat template named {wanted!r}; "
            f"available: {sorted(found.templates)}"
        )
    label = name or found.origin
    return ChatTemplate(source, special_tokens=found.special_tokens, name=label, limits=limits)
