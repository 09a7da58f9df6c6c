"""A bounded walk of every operation in the app's OpenAPI document, as several roles, with values at and
past every stated bound, bodies of the wrong media type, duplicate keys and wrong JSON types: no answer is
a server error, and every status an operation answers is one its document states.

The walk is deterministic (seeded) and sized to about a minute per database backend.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.helpers import Actor, Api

SEED = 20261207
REQUESTS_PER_ROLE = 2  # per operation and role, each with another mutation
ROLES = ("anonymous", "bidder", "agency", "centre", "supervisor")
MISSING = object()
STREAMS = re.compile(r"/events$")


@dataclass
class Call:
    """One request, built from an operation's parameters and body schema."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    what: str = "edges"


class Schemas:
    """Reads an OpenAPI schema: what a value in range looks like, and values at and past its bounds."""

    def __init__(self, components: dict[str, Any], rng: random.Random) -> None:
        self.components = components
        self.rng = rng

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The schema behind `$ref`s, with an optional field's alternatives reduced to the non-null one."""
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        for key in ("oneOf", "anyOf"):
            if key in schema:
                outer = {k: v for k, v in schema.items() if k != key}
                alternatives = [a for a in schema[key] if a.get("type") != "null"] or [{}]
                return self.resolve({**outer, **self.resolve(alternatives[0])})
        return schema

    def plausible(self, schema: dict[str, Any], depth: int = 0) -> Any:
        """A value inside the schema's bounds (not always a valid request: it need not refer to anything)."""
        schema = self.resolve(schema)
        if "enum" in schema:
            return schema["enum"][0]
        if "const" in schema:
            return schema["const"]
        kind = schema.get("type")
        kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
        if kind == "integer":
            return int(schema.get("minimum", 0) or 0)
        if kind == "number":
            return 1.0
        if kind == "boolean":
            return True
        if kind == "array":
            count = int(schema.get("minItems", 0) or 0)
            return [self.plausible(schema.get("items", {}), depth + 1) for _ in range(count)]
        if kind == "object" or "properties" in schema:
            if depth > 6:
                return {}
            required = schema.get("required", [])
            return {name: self.plausible(schema["properties"][name], depth + 1) for name in required}
        return {
            "uuid": str(uuid.UUID(int=1)),
            "date-time": "2026-03-02T09:00:00+08:00",
            "date": "2026-03-02",
        }.get(schema.get("format", ""), "x" * max(1, int(schema.get("minLength", 1) or 1)))

    def edges(self, schema: dict[str, Any]) -> list[Any]:
        """Values at and past the schema's bounds, and values of the wrong type."""
        schema = self.resolve(schema)
        kind = schema.get("type")
        kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
        if kind == "integer":
            low = int(schema.get("minimum", schema.get("exclusiveMinimum", 0)))
            high = int(schema.get("maximum", schema.get("exclusiveMaximum", 2**63 - 1)))
            return [high, high + 1, low, low - 1, 2**63, -(2**63) - 1, 10**40, 1.5, "x"]
        if kind == "number":
            return [1e308, -1e308, "x"]
        if kind == "boolean":
            return ["maybe", 2]
        if kind == "string":
            longest = int(schema.get("maxLength", 10_000))
            return ["x" * longest, "x" * (longest + 1), "", "\x00", "工" * (longest + 1), 7, None]
        if kind == "array":
            most = min(int(schema.get("maxItems", 1_000)), 10_000)
            item = self.plausible(schema.get("items", {}))
            return [[item] * (most + 1), [None], "x", {}]
        return [None, [], "x", 2**63]


def fill_path(path: str, tender_id: str, rng: random.Random, *, edge: bool) -> str:
    """The path with its parameters: the walk's tender where one is named, a number or a random id."""
    if edge:
        return (
            path.replace("{year}", str(2**63))
            .replace("{sequence}", str(2**63))
            .replace("{token}", "x" * 5000)
            .replace("{upload_id}", "x" * 300)
            .replace("{tender_id}", tender_id)
        )
    filled = path.replace("{tender_id}", tender_id).replace("{year}", "2027").replace("{sequence}", "1")
    filled = filled.replace("{token}", "not-a-grant").replace("{upload_id}", "u1")
    return re.sub(r"\{[^}]*\}", lambda _m: str(uuid.UUID(int=rng.getrandbits(128), version=4)), filled)


def calls(
    operation: dict[str, Any], method: str, path: str, schemas: Schemas, tender_id: str
) -> Iterator[Call]:
    """Requests for one operation, each with one mutation, in a seeded order."""
    rng = schemas.rng
    parameters = [p for p in operation.get("parameters", []) if p["in"] in ("query", "header", "path")]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    stream = bool(STREAMS.search(path))

    def base(what: str, *, edge_path: bool = False) -> Call:
        call = Call(method.upper(), fill_path(path, tender_id, rng, edge=edge_path), what=what)
        if stream:
            call.query["follow"] = "false"  # answer what is recorded and end, never wait for more
        if body is not None:
            call.headers["content-type"] = "application/json"
            call.content = json.dumps(schemas.plausible(body["schema"])).encode()
        return call

    mutations: list[Call] = []
    for parameter in parameters:
        if parameter["in"] == "path":
            if re.search(r"\{(year|sequence|token|upload_id)\}", path):
                mutations.append(base("path past its bounds", edge_path=True))
            continue
        if stream and parameter["name"] == "follow":
            continue
        for value in schemas.edges(parameter.get("schema", {})):
            if value is None or isinstance(value, (list, dict)):
                continue
            call = base(f"{parameter['in']} {parameter['name']}={str(value)[:20]!r}")
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if parameter["in"] == "query":
                call.query[parameter["name"]] = text
            elif "\x00" not in text and text.isascii():
                call.headers[parameter["name"]] = text
            mutations.append(call)
    if body is not None:
        schema = schemas.resolve(body["schema"])
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            call = base(f"body as {content_type}")
            call.headers["content-type"] = content_type
            mutations.append(call)
        duplicate = base("duplicate key")
        duplicate.content = b'{"a": 1, "a": 2}'
        mutations.append(duplicate)
        for raw in (b"null", b"[]", b'"x"', b"1e400", b"{", b"[" * 5000):
            call = base(f"body {raw[:8]!r}")
            call.content = raw
            mutations.append(call)
        for name, child in schema.get("properties", {}).items():
            for value in schemas.edges(child):
                call = base(f"body {name}={str(value)[:20]!r}")
                document = schemas.plausible(schema)
                if isinstance(document, dict):
                    document[name] = value
                call.content = json.dumps(document).encode()
                mutations.append(call)
    if not mutations:
        mutations.append(base("as documented"))
    rng.shuffle(mutations)
    while True:
        yield from mutations


@pytest.fixture
async def walkers(api: Api) -> dict[str, Actor | None]:
    actors: dict[str, Actor | None] = {"anonymous": None}
    for role in ROLES[1:]:
        actors[role] = await api.bootstrap_centre() if role == "centre" else await api.organisation(role)
    return actors


async def test_no_operation_answers_a_server_error_or_an_undocumented_status(
    api: Api, walkers: dict[str, Actor | None]
) -> None:
    from tests.test_bad_input import openapi_spec

    spec = openapi_spec()
    rng = random.Random(SEED)
    schemas = Schemas(spec.get("components", {}).get("schemas", {}), rng)
    agency = walkers["agency"]
    assert agency is not None
    tender_id = (await api.published(agency))["id"]
    failures: list[str] = []
    sent = 0
    for path, item in sorted(spec["paths"].items()):
        for method, operation in sorted(item.items()):
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            documented = {int(status) for status in operation.get("responses", {})}
            generated = calls(operation, method, path, schemas, tender_id)
            for role in ROLES:
                actor = walkers[role]
                for _ in range(REQUESTS_PER_ROLE):
                    call = next(generated)
                    headers = {**(actor.headers if actor else {}), **call.headers}
                    try:
                        r = await api.client.request(
                            call.method, call.path, params=call.query, headers=headers, content=call.content
                        )
                    except httpx.InvalidURL:
                        continue  # longer than any client would send

                    sent += 1
                    problem = r.status_code >= 400
                    if (
                        r.status_code >= 500
                        or r.status_code not in documented
                        or (problem and r.headers.get("content-type") != "application/problem+json")
                    ):
                        failures.append(f"{method.upper()} {path} as {role}, {call.what}: {r.status_code}")
    assert failures == []
    assert sent >= 1000
