"""The OpenAPI document explains each operation to a client written from it alone: what it does (summary
and description), who may call it (the bearer scheme, or nothing for public operations and signed grants),
every problem it may answer, and what each answer holds (a typed schema, every component described); and
the check that holds every answer the suite receives to that document."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, TypedDict, cast

import httpx
import pytest
from litestar import Litestar, get

from accounts.guards import public
from app import build_runtime, create_app
from storage.openapi import ProblemDetails
from storage.settings import Settings
from tests.openapi_check import JSON, Document, Mismatch, conformance_hook

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(var_dir=Path(tmp_path_factory.mktemp("openapi")), secret_key="k" * 40)
    app = create_app(build_runtime(settings), manage_runtime=False)
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return schema


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, item in document["paths"].items() for m, op in item.items() if m in METHODS]


def test_every_operation_says_what_it_does(document: dict[str, Any]) -> None:
    ops = operations(document)
    assert len(ops) > 150
    terse = [
        f"{m.upper()} {p}"
        for p, m, op in ops
        if len(op.get("description", "").split()) < 5 or len(op.get("summary", "").split()) < 3
    ]
    assert terse == []


def test_the_bearer_scheme_is_declared_and_each_operation_says_whether_it_needs_it(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert "/api/v1/auth/login" in scheme["description"]
    login = document["paths"]["/api/v1/auth/login"]["post"]
    assert {} in login["security"]  # the sign-in itself needs no token
    undeclared = [f"{m.upper()} {p}" for p, m, op in operations(document) if "security" not in op]
    assert undeclared == []
    tender = document["paths"]["/api/v1/tenders"]["post"]
    assert tender["security"] == [{"bearer": []}]
    grant = document["paths"]["/api/v1/objects/{token}"]["put"]
    assert grant["security"] == [{}]


def test_public_operations_are_those_with_the_public_guard(tmp_path: Path, document: dict[str, Any]) -> None:
    app = create_app(build_runtime(Settings(var_dir=tmp_path, secret_key="k" * 40)), manage_runtime=False)
    guarded_public = {
        handler.operation_id
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if public in getattr(handler, "resolve_guards", lambda: [])()
    }
    documented_public = {op["operationId"] for _p, _m, op in operations(document) if {} in op["security"]}
    grants = {
        op["operationId"] for p, _m, op in operations(document) if p.startswith("/api/v1/objects/{token}")
    }
    assert documented_public - grants == guarded_public - {None}


def test_every_operation_documents_its_problems(document: dict[str, Any]) -> None:
    missing = []
    for p, m, op in operations(document):
        for status in ("400", "401", "403", "404"):
            content = op["responses"].get(status, {}).get("content", {})
            if "application/problem+json" not in content:
                missing.append(f"{m.upper()} {p} {status}")
    assert missing == []


# ---------------------------------------------------------------- typed answers


@pytest.fixture(scope="module")
def checker(document: dict[str, Any]) -> Document:
    return Document(document)


def success_schemas(op: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(status, media type, schema) of each documented 2xx answer that has a body."""
    return [
        (status, media, body.get("schema"))
        for status, response in op["responses"].items()
        if status.startswith("2")
        for media, body in (response.get("content") or {}).items()
    ]


def test_every_json_success_answer_is_typed(document: dict[str, Any], checker: Document) -> None:
    untyped = {
        op["operationId"]
        for _p, _m, op in operations(document)
        for _status, media, schema in success_schemas(op)
        if media == JSON and not checker.is_typed(schema)
    }
    assert untyped == set()


def test_every_success_answer_with_a_body_says_its_media_type(document: dict[str, Any]) -> None:
    silent = [
        f"{m.upper()} {p} {status}"
        for p, m, op in operations(document)
        for status, response in op["responses"].items()
        if status.startswith("2") and status != "204" and not response.get("content")
    ]
    assert silent == []
    download = document["paths"]["/api/v1/objects/{token}"]["get"]["responses"]["200"]["content"]
    assert list(download) == ["application/octet-stream"]


def test_every_component_has_a_description(document: dict[str, Any]) -> None:
    undescribed = {
        name for name, schema in document["components"]["schemas"].items() if not schema.get("description")
    }
    assert undescribed == set()


def test_a_component_description_is_its_class_docstring(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    assert components["ProblemDetails"]["description"] == inspect.cleandoc(ProblemDetails.__doc__ or "")
    # a Struct's own docstring, not the one of the base it inherits from
    assert "unknown field is an error" not in components["LoginRequest"]["description"]


def _open(schema: dict[str, Any], checker: Document) -> bool:
    schema = dict(checker.resolve(schema))
    if schema.get("type") == "array":
        return _open(schema.get("items") or {}, checker)
    alternatives = [s for s in schema.get("oneOf", []) if checker.resolve(s).get("type") != "null"]
    if alternatives:
        return any(_open(s, checker) for s in alternatives)
    return not schema.get("properties") and schema.get("type") in ("object", None) and "$ref" not in schema


def test_an_open_part_of_a_typed_answer_says_what_it_holds(
    document: dict[str, Any], checker: Document
) -> None:
    components = document["components"]["schemas"]
    silent = []
    for name, component in components.items():
        for prop, schema in (component.get("properties") or {}).items():
            if not _open(schema, checker):
                continue
            if not schema.get("description") and f"`{prop}`" not in component.get("description", ""):
                silent.append(f"{name}.{prop}")
    assert silent == []


@pytest.mark.parametrize(
    ("component", "first_line", "encoding"),
    [
        ("PublishedTreeHead", "ggzy-tree-head-v1", "root hash in lowercase hex"),
        ("PublishedLedgerHead", "ggzy-ledger-head-v1", "whole microseconds"),
        ("PublishedAuditHead", "ggzy-audit-head-v1", "whole microseconds"),
    ],
)
def test_a_signed_head_says_what_is_signed_and_how(
    document: dict[str, Any], component: str, first_line: str, encoding: str
) -> None:
    text = " ".join(document["components"]["schemas"][component]["description"].split())
    for needed in ("Ed25519", "base64 of the 64-byte", first_line, "line feed", encoding, "key_id"):
        assert needed in text, needed


# ---------------------------------------------------------------- the conformance check itself

HEAD = {
    "version": "ggzy-audit-head-v1",
    "sequence": 1,
    "events": 3,
    "chain_hash": "ab" * 32,
    "signed_at": "2026-03-02T01:00:00.000000Z",
    "key_id": "0123456789abcdef",
    "signature": "c2ln",
}


def test_an_answer_as_documented_passes(checker: Document) -> None:
    checker.check("GET", "/api/v1/transparency/audit/head", 200, HEAD)
    checker.check("GET", "/api/v1/transparency/audit/heads", 200, {"heads": [HEAD], "next": None})


def test_a_missing_key_fails_naming_operation_and_path(checker: Document) -> None:
    answer = {k: v for k, v in HEAD.items() if k != "signature"}
    with pytest.raises(Mismatch, match=r"audit_head \(GET .*\n  \$\.signature: missing \(required\)"):
        checker.check("GET", "/api/v1/transparency/audit/head", 200, answer)


def test_a_key_the_type_does_not_list_fails(checker: Document) -> None:
    with pytest.raises(Mismatch, match=r"\$\.kind: not a documented property"):
        checker.check("GET", "/api/v1/transparency/audit/head", 200, {**HEAD, "kind": "head"})


def test_a_wrong_type_deep_inside_fails_with_its_json_path(checker: Document) -> None:
    page = {"heads": [HEAD, {**HEAD, "sequence": "2"}], "next": 2}
    with pytest.raises(Mismatch, match=r"\$\.heads\[1\]\.sequence: string where the schema says integer"):
        checker.check("GET", "/api/v1/transparency/audit/heads", 200, page)


def test_null_passes_only_where_documented(checker: Document) -> None:
    with pytest.raises(Mismatch, match=r"\$\.events: null"):
        checker.check("GET", "/api/v1/transparency/audit/head", 200, {**HEAD, "events": None})


def test_a_literal_path_segment_wins_over_a_parameter(checker: Document) -> None:
    op = checker.operation("GET", "/api/v1/transparency/ledger/heads")
    assert op is not None and op.operation_id == "ledger_heads"
    op = checker.operation("GET", "/api/v1/transparency/ledger/heads/7")
    assert op is not None and op.operation_id == "ledger_head_at"


def test_an_undocumented_success_status_fails(checker: Document) -> None:
    with pytest.raises(Mismatch, match="audit_head: answered 202"):
        checker.check("GET", "/api/v1/transparency/audit/head", 202, HEAD)


def test_sign_audit_head_documents_both_its_answers(document: dict[str, Any]) -> None:
    responses = document["paths"]["/api/v1/audit/heads"]["post"]["responses"]
    for status in ("200", "201"):
        assert responses[status]["content"][JSON]["schema"] == {
            "$ref": "#/components/schemas/PublishedAuditHead"
        }


def test_bounds_enums_and_lengths_are_checked(checker: Document) -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 3},
            "kind": {"enum": ["a", "b"]},
            "code": {"type": "string", "minLength": 2, "maxLength": 3},
            "any": {},
            "open": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
        "required": ["n"],
    }
    assert checker.errors(schema, {"n": 2, "kind": "a", "code": "ab", "any": [1], "open": {"x": 1}}) == []
    assert checker.errors(schema, {"n": 0, "kind": "c", "code": "abcd", "open": {"x": "1"}}) == [
        "$.n: 0 is below the minimum 1",
        "$.kind: 'c' is not one of ['a', 'b']",
        "$.code: longer than 3 characters",
        "$.open.x: string where the schema says integer",
    ]
    assert checker.errors(schema, {"n": True}) == ["$.n: boolean where the schema says integer"]


class _Answer(TypedDict):
    """A test answer."""

    n: int


async def test_the_client_hook_fails_a_test_whose_answer_drifts() -> None:
    @get("/drift", operation_id="drift", sync_to_thread=False)
    def drift() -> _Answer:
        """Answers a key its type does not list."""
        return cast(_Answer, {"n": 1, "m": 2})

    @get("/fine", operation_id="fine", sync_to_thread=False)
    def fine() -> _Answer:
        """Answers as typed."""
        return {"n": 1}

    app = Litestar([drift, fine])
    transport = httpx.ASGITransport(app=cast(Any, app))
    hooks = {"response": [conformance_hook(app)]}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", event_hooks=hooks) as client:
        assert (await client.get("/fine")).json() == {"n": 1}
        with pytest.raises(
            Mismatch, match=r"drift \(GET /drift\) answered 200 .*\n  \$\.m: not a documented"
        ):
            await client.get("/drift")
