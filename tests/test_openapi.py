"""The OpenAPI document explains each operation to a client written from it alone: what it does (summary
and description), who may call it (the bearer scheme, or nothing for public operations and signed grants),
and every problem it may answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts.guards import public
from app import build_runtime, create_app
from storage.settings import Settings

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
