"""The escrow API's answers are documented field by field: every JSON answer under /api/v1/escrow is a
named type whose every part has properties, the exports and the bank's payment file state their media
types, and every type says what it is, in which unit its money is and what its hashes cover."""

from __future__ import annotations

import inspect
import types
import typing
from datetime import date, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from app import build_runtime, create_app
from escrow import responses, schemas
from storage.settings import Settings
from tests.escrow import test_deposits as deposits
from tests.helpers import Api

JSON = "application/json"
EXPORTS = {
    "trial_balance",
    "statement_lines",
    "list_obligations",
    "audit_overdue",
    "audit_tender",
    "audit_bidder",
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(var_dir=Path(tmp_path_factory.mktemp("openapi")), secret_key="k" * 40)
    schema: dict[str, Any] = create_app(
        build_runtime(settings), manage_runtime=False
    ).openapi_schema.to_schema()
    return schema


def escrow_successes(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(operation id, its 2xx response) for every operation under /api/v1/escrow."""
    return [
        (op["operationId"], response)
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/escrow")
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
        for status, response in op["responses"].items()
        if status.startswith("2")
    ]


def open_parts(document: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]) -> list[str]:
    """Where `schema` (followed through its references, items, alternatives and properties) is an object
    whose fields nobody named, or has no type at all."""
    components = document["components"]["schemas"]
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return open_parts(document, components[name], name, seen)
    if "oneOf" in schema:
        return [p for alt in schema["oneOf"] for p in open_parts(document, alt, where, seen)]
    if schema.get("type") == "array":
        return open_parts(document, schema.get("items", {}), f"{where}[]", seen)
    if schema.get("type") == "object":
        if schema.get("properties"):
            return [
                p
                for key, field in schema["properties"].items()
                for p in open_parts(document, field, f"{where}.{key}", seen)
            ]
        values = schema.get("additionalProperties")
        if isinstance(values, dict) and "$ref" in values:
            return open_parts(document, values, f"{where}{{}}", seen)
        return [where]
    return [] if schema.get("type") else [where]


def test_every_json_answer_of_escrow_is_typed_to_its_last_field(document: dict[str, Any]) -> None:
    successes = escrow_successes(document)
    assert len(successes) >= 31
    untyped = []
    for operation, response in successes:
        media = response.get("content", {}).get(JSON)
        if media is not None:
            untyped += [f"{operation}: {p}" for p in open_parts(document, media["schema"], operation, set())]
    assert untyped == []


def test_exports_and_the_payment_file_state_their_media_types(document: dict[str, Any]) -> None:
    content = {
        operation: set(response.get("content", {})) for operation, response in escrow_successes(document)
    }
    for operation in EXPORTS:
        assert content[operation] == {JSON, responses.CSV, responses.XLSX}, operation
    assert content["refund_batch_file"] == {responses.XML, responses.CSV}
    trial = document["paths"]["/api/v1/escrow/trial-balance"]["get"]["responses"]["200"]["content"]
    assert trial[JSON]["schema"] == {"$ref": "#/components/schemas/TrialBalance"}


def answer_types() -> list[type]:
    """Every request and answer type of the escrow API."""
    found = []
    for module in (schemas, responses):
        for _, value in inspect.getmembers(module, inspect.isclass):
            if value.__module__ != module.__name__ or value is schemas.Strict:
                continue
            if typing.is_typeddict(value) or issubclass(value, msgspec.Struct):
                found.append(value)
    return found


def fields_of(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind, vars(responses) | vars(schemas))


def test_every_type_says_what_it_is_and_that_money_is_in_fen() -> None:
    kinds = answer_types()
    assert len(kinds) > 40
    silent = [k.__name__ for k in kinds if len((k.__doc__ or "").split()) < 12]
    assert silent == []
    money = [k for k in kinds if any(name.endswith("_fen") for name in fields_of(k))]
    assert money and [k.__name__ for k in money if "fen" not in (k.__doc__ or "")] == []


def test_every_hash_says_what_it_covers_and_how_it_is_written() -> None:
    hashed = [k for k in answer_types() if {"hash", "sha256"} & set(fields_of(k))]
    assert {k.__name__ for k in hashed} == {"AccountEntry", "EntryRead", "StatementRead"}
    for kind in hashed:
        doc = kind.__doc__ or ""
        assert "SHA-256" in doc and "hex" in doc, kind.__name__
    assert "escrow.ledger.entry_text" in (responses.EntryRead.__doc__ or "")


def conforms(value: object, kind: Any, where: str) -> list[str]:
    """Where `value`, an answer as JSON, departs from the type `kind` that documents it."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Annotated:
        return conforms(value, args[0], where)
    if origin in (types.UnionType, typing.Union):
        fits = [conforms(value, alt, where) for alt in args]
        return [] if any(not f for f in fits) else fits[0]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [p for i, item in enumerate(value) for p in conforms(item, args[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        return [p for key, item in value.items() for p in conforms(item, args[1], f"{where}.{key}")]
    if typing.is_typeddict(kind):
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        hints = fields_of(kind)
        problems = [f"{where}: {key} is not documented" for key in set(value) - set(hints)]
        problems += [f"{where}: {key} is missing" for key in kind.__required_keys__ - set(value)]
        return problems + [
            p for key in set(value) & set(hints) for p in conforms(value[key], hints[key], f"{where}.{key}")
        ]
    if kind is type(None):
        return [] if value is None else [f"{where}: {value!r} is not null"]
    if kind in (date, datetime):
        try:
            kind.fromisoformat(str(value))
        except ValueError:
            return [f"{where}: {value!r} is not a {kind.__name__}"]
        return []
    if kind is int and isinstance(value, bool):
        return [f"{where}: {value!r} is not an int"]
    return [] if isinstance(value, kind) else [f"{where}: {value!r} is not {kind.__name__}"]


async def test_the_answers_of_a_whole_trade_are_what_their_types_say(api: Api) -> None:
    centre, agency, tender, bids, bidders = await deposits._contracted(api)
    award = (await api.get(f"/api/v1/tenders/{tender['id']}/awards")).json()[0]
    assert (await api.contract(agency, tender["id"], award["id"], bids[2].price_fen)).status_code == 201
    batch = await deposits._batch(api, centre)
    results = await deposits._results(api, centre, batch)
    auditor = await api.organisation("auditor")
    mine = await deposits._deposit(api, bidders[0])
    statement = (await api.get("/api/v1/escrow/statements", auditor)).json()[0]
    answers: list[tuple[str, object, Any]] = [
        ("batch made", batch, responses.RefundBatchMade),
        ("results", results, responses.RefundResults),
        ("deposit", mine, responses.DepositRead),
        ("statements", [statement], list[responses.StatementRead]),
    ]
    reads = {
        f"/api/v1/escrow/deposits/{mine['id']}": responses.DepositLife,
        f"/api/v1/escrow/batches/{batch['batch']['id']}": responses.RefundBatchDetail,
        "/api/v1/escrow/batches": list[responses.RefundBatchRead],
        f"/api/v1/escrow/statements/{statement['id']}": list[schemas.StatementLineRow],
        f"/api/v1/escrow/audit/tenders/{tender['id']}": responses.DepositsAndObligations,
        f"/api/v1/escrow/audit/bidders/{bidders[0].organisation_id}": responses.DepositsAndObligations,
        "/api/v1/escrow/audit/overdue": list[schemas.ObligationRow],
        "/api/v1/escrow/obligations": list[schemas.ObligationRow],
        "/api/v1/escrow/trial-balance": responses.TrialBalance,
        "/api/v1/escrow/verify": responses.LedgerVerification,
        "/api/v1/escrow/rates": list[responses.RateRead],
        "/api/v1/escrow/suspense": list[responses.BankLineRead],
        "/api/v1/escrow/guarantees": list[responses.GuaranteeRead],
        "/api/v1/escrow/forfeitures": list[responses.ForfeitureRead],
        "/api/v1/escrow/conflicts": list[responses.BankLineConflictRead],
    }
    for path, kind in reads.items():
        r = await api.get(path, auditor)
        assert r.status_code == 200, (path, r.text)
        answers.append((path, r.json(), kind))
    life = answers[4][1]
    assert isinstance(life, dict) and life["entries"] and life["eligibility"][0]["evidence"]["payments"]
    problems = [p for where, value, kind in answers for p in conforms(value, kind, where)]
    assert problems == []
