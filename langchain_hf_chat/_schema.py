"""JSON-schema helpers for tools and structured output.

Grammar engines (TGI's outlines-based `grammar`, llguidance, xgrammar) and several servers only
understand self-contained schemas: a ``$ref`` into ``$defs`` is lost as soon as the schema is
embedded in a bigger one (TGI merges tool parameters into its own grammar). `inline_refs`
replaces local references with the schemas they point to; `schema_from` turns whatever a user
passes to ``with_structured_output`` into one named, self-contained JSON schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast
from urllib.parse import unquote

from langchain_core.utils.function_calling import convert_to_json_schema
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel
from typing_extensions import is_typeddict

__all__ = ["DEFAULT_SCHEMA_NAME", "inline_refs", "schema_from"]

DEFAULT_SCHEMA_NAME = "output"
"""Name given to a structured-output schema that has no ``title`` and no explicit name."""

_DEFS_KEYS = ("$defs", "definitions")
# Keywords whose values are data, not schemas: a "$ref" key inside them is not a reference.
_DATA_KEYWORDS = frozenset({"const", "default", "enum", "examples"})
_MAX_NODES = 100_000


class _Inliner:
    def __init__(self, root: Mapping[str, Any], on_recursion: Literal["keep", "raise"], max_nodes: int) -> None:
        self.root = root
        self.on_recursion = on_recursion
        self.max_nodes = max_nodes
        self.nodes = 0
        self.kept_refs: set[str] = set()

    def resolve(self, ref: str) -> Any:
        if ref in ("#", "#/"):
            return self.root
        node: Any = self.root
        for raw in ref[2:].split("/"):
            token = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                msg = f"Cannot resolve $ref {ref!r}: no such location in the schema."
                raise ValueError(msg)
        return node

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            msg = (
                f"Schema is too large once its $refs are inlined (more than {self.max_nodes} "
                "nodes); pass it with its $defs instead."
            )
            raise ValueError(msg)

    def walk(self, node: Any, expanding: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            self.count()
            return [self.walk(item, expanding) for item in node]
        if not isinstance(node, Mapping):
            return node
        self.count()
        ref = node.get("$ref")
        siblings = {
            key: (value if key in _DATA_KEYWORDS else self.walk(value, expanding))
            for key, value in node.items()
            if key != "$ref" or not isinstance(ref, str)
        }
        if not isinstance(ref, str):
            return siblings
        if ref != "#" and not ref.startswith("#/"):
            return {"$ref": ref, **siblings}  # remote or anchor: nothing is ever fetched
        if ref in expanding:
            if self.on_recursion == "raise":
                msg = (
                    f"Schema is recursive ($ref {ref!r} refers to itself); it cannot be inlined. "
                    "Grammar-constrained decoding needs a non-recursive schema."
                )
                raise ValueError(msg)
            self.kept_refs.add(ref)
            return {"$ref": ref, **siblings}
        target = self.walk(self.resolve(ref), (*expanding, ref))
        if not siblings:
            return target
        if isinstance(target, dict):
            return {**target, **siblings}  # keywords next to "$ref" refine the target
        return {"allOf": [target], **siblings}


def inline_refs(
    schema: Mapping[str, Any],
    *,
    on_recursion: Literal["keep", "raise"] = "keep",
    max_nodes: int = _MAX_NODES,
) -> dict[str, Any]:
    """Return a copy of ``schema`` with local ``$ref``s replaced by what they point to.

    References of the form ``#/$defs/Name``, ``#/definitions/Name`` or any other JSON pointer
    into the same document (``#/properties/a``) are resolved. Keywords written next to a
    ``$ref`` (a ``description``, a ``default``) override those of the target. Remote references
    (``https://...``) and anchors (``#node``) are left alone: nothing is ever fetched.

    Recursive references (a tree node containing nodes) cannot be inlined. With
    ``on_recursion="keep"`` (the default) they stay as ``$ref``s and the definitions they need
    are kept in ``$defs``, themselves inlined as far as possible; with ``"raise"`` a
    `ValueError` names the reference. The top-level ``$defs``/``definitions`` is dropped when
    nothing refers to it any more. The input is never modified.

    Raises:
        ValueError: A ``$ref`` points nowhere, a recursive ``$ref`` with
            ``on_recursion="raise"``, or the inlined schema would exceed ``max_nodes``.

    Example:
        >>> schema = {
        ...     "type": "object",
        ...     "properties": {"home": {"$ref": "#/$defs/Address", "description": "Where"}},
        ...     "$defs": {"Address": {"properties": {"city": {"type": "string"}}}},
        ... }
        >>> inline_refs(schema)["properties"]["home"]
        {'properties': {'city': {'type': 'string'}}, 'description': 'Where'}
        >>> "$defs" in inline_refs(schema)
        False
    """
    inliner = _Inliner(schema, on_recursion, max_nodes)
    body = {key: value for key, value in schema.items() if key not in _DEFS_KEYS}
    result = inliner.walk(body, ())
    if not isinstance(result, dict):  # a root "$ref" to a boolean schema
        result = {"allOf": [result]}
    # Recursive references stay; give them their (inlined) definitions to point to.
    kept: dict[str, dict[str, Any]] = {}
    done: set[str] = set()
    while pending := sorted(inliner.kept_refs - done):
        for ref in pending:
            done.add(ref)
            parts = ref[2:].split("/")
            if len(parts) == 2 and parts[0] in _DEFS_KEYS:
                definition = inliner.walk(inliner.resolve(ref), (ref,))
                kept.setdefault(parts[0], {})[unquote(parts[1])] = definition
    for key, definitions in kept.items():
        result[key] = {
            name: definitions[name] for name in cast("Mapping[str, Any]", schema.get(key, {})) if name in definitions
        }
    return cast("dict[str, Any]", result)


def schema_from(schema: Mapping[str, Any] | type, *, name: str | None = None) -> dict[str, Any]:
    """Return a self-contained JSON schema with a ``title`` (its name) for structured output.

    Accepts a Pydantic model class, a ``TypedDict`` class, a JSON-schema dict, an OpenAI
    function or tool dict (``{"name", "parameters"}`` / ``{"type": "function", ...}``) and an
    OpenAI ``response_format`` ``json_schema`` body (``{"name", "schema"}``). ``$ref``s are
    inlined (recursive ones kept, see `inline_refs`). The name is ``name`` if given, else the
    schema's own title or function name, else `DEFAULT_SCHEMA_NAME`.

    Raises:
        ValueError: The object is none of the above.

    Example:
        >>> from pydantic import BaseModel
        >>> class Pet(BaseModel):
        ...     '''A pet.'''
        ...
        ...     name: str
        >>> s = schema_from(Pet)
        >>> s["title"], s["description"], s["properties"]["name"]
        ('Pet', 'A pet.', {'title': 'Name', 'type': 'string'})
        >>> schema_from({"type": "object", "properties": {}}, name="answer")["title"]
        'answer'
    """
    result: dict[str, Any]
    if isinstance(schema, type) and is_basemodel_subclass(schema):
        # ``pydantic.v1`` models (still accepted by LangChain) have ``schema()`` instead.
        model = cast("type[BaseModel]", schema)
        result = model.model_json_schema() if hasattr(model, "model_json_schema") else model.schema()
    elif isinstance(schema, type) and is_typeddict(schema):
        result = convert_to_json_schema(schema)
    elif isinstance(schema, Mapping):
        result = _schema_from_dict(schema)
    else:
        msg = (
            f"Unsupported schema {schema!r}: expected a Pydantic model class, a TypedDict class or a JSON-schema dict."
        )
        raise ValueError(msg)
    result = inline_refs(result)
    result["title"] = name or result.get("title") or DEFAULT_SCHEMA_NAME
    return result


def _schema_from_dict(schema: Mapping[str, Any]) -> dict[str, Any]:
    if schema.get("type") == "function" and isinstance(schema.get("function"), Mapping):
        schema = schema["function"]
    if isinstance(schema.get("name"), str) and isinstance(schema.get("schema"), Mapping):
        # An OpenAI response_format json_schema body: {"name", "schema", "strict"?}.
        result = dict(schema["schema"])
        result.setdefault("title", schema["name"])
        if isinstance(schema.get("description"), str):
            result.setdefault("description", schema["description"])
        return result
    if isinstance(schema.get("name"), str) and ("parameters" in schema or "description" in schema or len(schema) == 1):
        return convert_to_json_schema(dict(schema))
    return dict(schema)
