"""`ChatTemplate`: a compiled template and its render path."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast

import jinja2
from jinja2.exceptions import SecurityError

from langchain_hf_chat._templates._inputs import (
    _cut_continuation,
    _freeze,
    _mark_continuation,
    _message_dicts,
    _plain,
    _UnhashableInputError,
)
from langchain_hf_chat._templates._sandbox import (
    _BUDGET,
    RenderLimits,
    _compile,
    _LimitExceededError,
    _RenderBudget,
    _TemplateRaised,
)
from langchain_hf_chat.errors import TemplateError

# Renders of identical inputs are memoised per template (a small, bounded cache).
_MEMO_ENTRIES = 256
_MEMO_MAX_CHARS = 200_000
_MEMO_TOTAL_CHARS = 4_000_000


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
        "_memo",
        "_memo_chars",
        "_memo_lock",
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
                f"chat template for {self._label} is not valid Jinja (line {exc.lineno}): {exc.message}"
            ) from None
        except Exception as exc:  # e.g. RecursionError on absurdly nested templates
            raise TemplateError(f"chat template for {self._label} failed to compile: {exc}") from None
        tokens = dict(special_tokens or {})
        self.bos_token = bos_token or tokens.get("bos_token", "")
        self.eos_token = eos_token or tokens.get("eos_token", "")
        tokens.update(bos_token=self.bos_token, eos_token=self.eos_token)
        self.special_tokens = tokens
        self._globals: dict[str, Any] = _plain(tokens)
        self._system_role: bool | None = None
        # Rendering is a pure function of the inputs unless the template reads the clock. Only the Jinja path is
        # memoised: a compiled render is faster than hashing its inputs for the memo key.
        pure = "strftime_now" not in self._compiled.variables
        self._memo: dict[Any, str] | None = {} if pure and self._compiled.fast is None else None
        self._memo_chars = 0
        self._memo_lock = threading.Lock()

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
        key = None
        if self._memo is not None:
            try:
                key = _freeze((messages, tools, documents, add_generation_prompt, continue_final_message)) + _freeze(
                    template_kwargs
                )
            except _UnhashableInputError:
                key = None
            else:
                cached = self._memo.get(key)
                if cached is not None:
                    return cached
        rendered = self._render_mapping_errors(
            messages, tools, documents, add_generation_prompt, continue_final_message, template_kwargs
        )
        if key is not None and self._memo is not None and len(rendered) <= _MEMO_MAX_CHARS:
            with self._memo_lock:
                # Oldest first; the prompt's size stands in for the inputs the key holds on to.
                while self._memo and (
                    len(self._memo) >= _MEMO_ENTRIES or self._memo_chars + len(rendered) > _MEMO_TOTAL_CHARS
                ):
                    self._memo_chars -= len(self._memo.pop(next(iter(self._memo))))
                if key not in self._memo:
                    self._memo[key] = rendered
                    self._memo_chars += len(rendered)
        return rendered

    def _render_plain_chat(self, chat: list[dict[str, str]], tools: Sequence[Mapping[str, Any]] | None) -> str:
        """``render(chat, tools=tools)`` for messages already in the form ``_message_dicts`` gives.

        The caller guarantees it: a non-empty list of new dicts whose keys and values are all ``str``
        (exactly), without reasoning fields. ``messages_to_template``'s plain messages are.
        """
        return self._render_mapping_errors(chat, tools, None, True, False, {}, plain=True)

    def _render_mapping_errors(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None,
        documents: Sequence[Mapping[str, Any]] | None,
        add_generation_prompt: bool,
        continue_final_message: bool | str,
        template_kwargs: dict[str, Any],
        *,
        plain: bool = False,
    ) -> str:
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
                plain,
            )
        except TemplateError:
            raise
        except _TemplateRaised as exc:
            raise TemplateError(f"chat template for {self._label} raised: {exc.message}") from None
        except _LimitExceededError as exc:
            raise TemplateError(f"chat template for {self._label} went over a render limit: {exc.message}") from None
        except SecurityError as exc:
            raise TemplateError(f"chat template for {self._label} was blocked by the sandbox: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(
                f"chat template for {self._label} failed: {exc.message or type(exc).__name__}"
            ) from None
        except RecursionError:
            raise TemplateError(f"chat template for {self._label} recursed too deeply") from None
        except MemoryError:
            raise TemplateError(f"chat template for {self._label} ran out of memory") from None
        except Exception as exc:
            raise TemplateError(f"chat template for {self._label} failed: {type(exc).__name__}: {exc}") from None
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
        plain: bool,
    ) -> str:
        chat = cast("list[dict[Any, Any]]", messages) if plain else _message_dicts(messages)
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
        variables = {**self._globals, **_plain(template_kwargs)} if template_kwargs else self._globals.copy()
        variables["messages"] = chat
        variables["tools"] = tool_schemas
        variables["documents"] = docs
        variables["add_generation_prompt"] = add_generation_prompt
        limit = self.limits.max_output_chars
        fast = self._compiled.fast
        if fast is not None:
            try:
                parts = fast(variables, budget)
            except _LimitExceededError as exc:
                if exc.message and exc.message.startswith("rendering "):
                    raise  # out of steps or time: Jinja would only spend the same again
            except Exception:  # noqa: S110 - Jinja renders it again and raises its own error
                pass
            else:
                # A few chunks are joined before their size is known; many are counted first (loops count as they go).
                rendered = "".join(parts) if len(parts) <= 64 or budget.output_fits(parts) else None
                if rendered is not None and len(rendered) <= limit:
                    budget.check_time()
                    return _cut_continuation(rendered, final) if continue_final_message else rendered
            budget = budget.restarted()
            _BUDGET.set(budget)  # render() resets the variable
        parts = []
        size = 0
        template = self._compiled.template
        for chunk in template.root_render_func(template.new_context(variables)):
            size += len(chunk)
            if size > limit:
                budget.check_size(size)
            parts.append(chunk)
        budget.check_time()
        rendered = "".join(parts)
        if continue_final_message:
            rendered = _cut_continuation(rendered, final)
        return rendered
