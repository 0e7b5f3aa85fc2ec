"""Schema-driven fuzzing of the TGI test server with schemathesis and TGI's own OpenAPI document.

* Requests that fit the schema never get a 5xx (they get an answer, or TGI's 4xx validation errors), and JSON
  answers are JSON.
* Requests that do not fit it never get a 5xx either: TGI's 422 (or, on stream routes, its in-stream validation
  event) when the body is JSON of the wrong shape, 400 when it is not JSON at all (axum's ``Json`` extractor),
  413/415 for size and content type; a 200 only where TGI itself is more lenient than its document
  (:func:`_tgi_may_accept`).

TGI's document says ``openapi: 3.0.3`` but uses JSON Schema 2020-12 keywords (numeric ``exclusiveMinimum``), which
schemathesis reads only as OpenAPI 3.1: the document is loaded as 3.1 with ``nullable`` turned into ``null``
types. Examples are bounded (``SCHEMATHESIS_EXAMPLES``, default 15) and the same on every run, so the module runs
in well under a minute.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

schemathesis = pytest.importorskip("schemathesis")
GenerationMode = schemathesis.GenerationMode

from langchain_hf_chat.testing import ScriptedBackend, TGIServer  # noqa: E402

SPEC = Path(__file__).parent.parent / "fixtures" / "tgi-openapi.json"
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))
#: Chat fields TGI accepts whatever their value (ignored, or any string read as a tool name).
IGNORED_FIELDS = {"n", "logit_bias", "tool_choice"}
#: Schema keywords about values rather than types.
VALUE_KEYWORDS = {
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "format",
}


def _nullable_to_null_type(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` as the JSON Schema ``null`` type OpenAPI 3.1 uses."""
    if isinstance(node, list):
        return [_nullable_to_null_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_to_null_type(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        elif "allOf" in node or "$ref" in node or "oneOf" in node:
            inner = {key: node.pop(key) for key in ("allOf", "$ref", "oneOf") if key in node}
            node["anyOf"] = [inner, {"type": "null"}]
    return node


def load_schema() -> Any:
    spec = _nullable_to_null_type(json.loads(SPEC.read_text()))
    spec["openapi"] = "3.1.0"
    return schemathesis.openapi.from_dict(spec)


SCHEMA = load_schema()
OPERATIONS = {operation.label: operation for operation in (result.ok() for result in SCHEMA.get_all_operations())}
#: Operations with a request body: only those have negative (schema-violating) examples.
WITH_BODY = sorted(label for label in OPERATIONS if label.startswith("POST "))


@pytest.fixture(scope="module")
def tgi() -> Iterator[TGIServer]:
    with TGIServer(backend=ScriptedBackend(model_id="HuggingFaceH4/zephyr-7b-beta")) as server:
        yield server


def _settings() -> settings:
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        # The same examples on every run (SCHEMATHESIS_RANDOM=1 explores new ones).
        derandomize=not os.environ.get("SCHEMATHESIS_RANDOM"),
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def _violations(case: Any) -> str:
    """schemathesis' account of how a negative case breaks the schema."""
    data = getattr(getattr(case.meta, "phase", None), "data", None)
    return str(getattr(data, "description", "") or "")


def _describe(case: Any, response: Any) -> str:
    return (
        f"{case.method} {case.path} ({_violations(case)}) body={str(case.body)[:300]!r} "
        f"-> {response.status_code} {response.text[:300]!r}"
    )


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_schema_valid_requests_never_get_a_server_error(tgi: TGIServer, label: str) -> None:
    operation = OPERATIONS[label]

    @_settings()
    @given(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def check(case: Any) -> None:
        response = case.call(base_url=tgi.url, timeout=30)
        assert response.status_code < 500, _describe(case, response)
        content_type = response.headers.get("content-type") or [""]
        if response.status_code == 200 and content_type[0].startswith("application/json"):
            json.loads(response.content)

    check()


def _violated(case: Any) -> list[tuple[str, str]]:
    """``(keyword, field)`` for each way a negative case breaks the schema (field: the last property name)."""
    found = []
    for group, where in re.findall(r"violates ((?:`\w+`(?:, )?)+) at (\S+)", _violations(case)):
        parts = where.split("/")
        names = [parts[i + 1] for i, part in enumerate(parts[:-1]) if part == "properties"]
        field = names[-1] if names else ""
        found += [(keyword, field) for keyword in re.findall(r"`(\w+)`", group)]
    return found


def _validation_event(response: Any) -> bool:
    """A stream route's 200 whose first event is TGI's validation error (protocol §5.2)."""
    first = response.text.split("\n", 1)[0]
    return response.status_code == 200 and first.startswith("data:") and "Input validation error" in first


def _tgi_may_accept(violated: list[tuple[str, str]]) -> bool:
    """Where TGI accepts what its own OpenAPI document forbids (and so must the test server).

    Bounds and formats: TGI checks its own, field by field (``seed`` from 0 as a u64, u32 token counts, a budget
    checked as ``min(max_new_tokens, 1024)``, ``top_n_tokens`` from 0; the tokenize routes check none), and
    ``tests/unit_tests/testing/test_tgi_validation.py`` pins them. Chat's ``n`` and ``logit_bias`` are accepted
    and ignored, and any ``tool_choice`` string names a tool (protocol §2.4, §7). serde's untagged enums take
    the first variant that fits, so a value matching several ``oneOf`` branches is accepted. Wrong types and
    missing fields are never accepted.
    """
    if not violated:
        return False
    return all(
        keyword in VALUE_KEYWORDS or keyword == "oneOf" or field in IGNORED_FIELDS for keyword, field in violated
    )


@pytest.mark.parametrize("label", WITH_BODY)
def test_schema_violating_bodies_get_tgis_rejections(tgi: TGIServer, label: str) -> None:
    operation = OPERATIONS[label]

    @_settings()
    @given(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def check(case: Any) -> None:
        response = case.call(base_url=tgi.url, timeout=30)
        assert response.status_code < 500, _describe(case, response)
        if isinstance(case.body, bytes):  # not JSON at all
            assert response.status_code in {400, 413, 415}, _describe(case, response)
        elif response.status_code != 422 and not _validation_event(response):
            # JSON of the wrong shape or with out-of-range values: TGI's 422 (or its in-stream validation
            # event), except where TGI itself accepts what its document forbids.
            assert response.status_code in {200, 413}, _describe(case, response)
            assert response.status_code == 413 or _tgi_may_accept(_violated(case)), _describe(case, response)

    check()
