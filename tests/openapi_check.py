"""Every JSON answer a test receives is checked against what the OpenAPI document says of its operation and
status: a typed answer that drifts from its documented schema fails the test that received it, naming the
operation, the JSON path and what is wrong there.

The validator covers the part of JSON Schema the document uses: `$ref`, `type` (one or a list, `null`
included), `nullable`, `properties`, `required`, `additionalProperties`, `items`, `allOf`, `anyOf`,
`oneOf`, `enum`, `const`, `minimum`/`maximum` (and their exclusive forms), `minLength`/`maxLength`,
`minItems`/`maxItems`. Two choices differ from plain JSON Schema, on purpose:

- An object schema with `properties` is closed: a key it does not list is a mismatch (unless
  `additionalProperties` says otherwise), so an answer carrying a key its type forgot fails.
- `oneOf` is read as `anyOf`: Litestar writes every union as `oneOf`, and two object types of a union
  may both accept one answer.

Answers whose documented schema is free-form (no `properties` at its top, nor in its items) are not
checked: they say nothing yet to check against.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

JSON = "application/json"
METHODS = ("get", "post", "put", "patch", "delete")
_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


class Mismatch(AssertionError):
    """An answer that is not what its operation documents."""


@dataclass(frozen=True)
class Operation:
    """One documented operation: its id, method and path template, and its responses by status."""

    operation_id: str
    method: str
    path: str
    pattern: re.Pattern[str]
    params: int
    responses: Mapping[str, Any]


class Document:
    """An OpenAPI document, indexed to find the operation a request reached and to validate its answer."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.components: Mapping[str, Any] = document.get("components", {}).get("schemas", {})
        operations = []
        for path, item in document["paths"].items():
            for method, op in item.items():
                if method not in METHODS:
                    continue
                regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path.rstrip("/") or "/"))
                operations.append(
                    Operation(
                        op.get("operationId", f"{method} {path}"),
                        method.upper(),
                        path,
                        re.compile(f"{regex}/?"),
                        path.count("{"),
                        op.get("responses", {}),
                    )
                )
        # A literal segment wins over a parameter (…/heads before …/{sequence}).
        self.operations = sorted(operations, key=lambda o: o.params)

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation `method path` reaches, or None when the document has none."""
        for op in self.operations:
            if op.method == method.upper() and op.pattern.fullmatch(path):
                return op
        return None

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """`schema`, or the component its `$ref` names (followed to the end)."""
        seen = 0
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
            seen += 1
            if seen > 32:
                raise Mismatch(f"$ref loop at {schema}")
        return schema

    def is_typed(self, schema: Mapping[str, Any] | None) -> bool:
        """Whether `schema` says what the answer holds: an object with properties, an array of such, or a
        union of such."""
        if not schema:
            return False
        schema = self.resolve(schema)
        if schema.get("properties"):
            return True
        if schema.get("type") == "array" or "items" in schema:
            return self.is_typed(schema.get("items"))
        alternatives = [s for key in ("oneOf", "anyOf", "allOf") for s in schema.get(key, [])]
        concrete = [s for s in alternatives if self.resolve(s).get("type") != "null"]
        return bool(concrete) and all(self.is_typed(s) for s in concrete)

    def response_schema(self, op: Operation, status: int) -> Mapping[str, Any] | None:
        """The JSON schema `op` documents for `status`; a Mismatch when the status is not documented."""
        response = op.responses.get(str(status))
        if response is None:
            documented = sorted(s for s in op.responses if s.startswith("2"))
            raise Mismatch(
                f"{op.operation_id}: answered {status}, but documents only {', '.join(documented)}"
            )
        content = response.get("content") or {}
        if JSON not in content:
            raise Mismatch(f"{op.operation_id}: answered {status} in JSON, but documents {sorted(content)}")
        schema: Mapping[str, Any] | None = content[JSON].get("schema")
        return schema

    def errors(self, schema: Mapping[str, Any], value: Any, where: str = "$") -> list[str]:
        """Every way `value` departs from `schema`, each as "JSON path: reason" (empty when it conforms)."""
        schema = self.resolve(schema)
        found: list[str] = []
        for key in ("allOf",):
            for part in schema.get(key, []):
                found += self.errors(part, value, where)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                tries = [self.errors(part, value, where) for part in schema[key]]
                if all(tries):
                    best = min(tries, key=len)
                    found.append(f"{where}: matches none of the {len(tries)} alternatives ({best[0]})")
        if "const" in schema and value != schema["const"]:
            found.append(f"{where}: must be {schema['const']!r}, not {value!r}")
        if "enum" in schema and value not in schema["enum"]:
            found.append(f"{where}: {value!r} is not one of {schema['enum']!r}")
        kinds = schema.get("type")
        if kinds is not None:
            allowed = [kinds] if isinstance(kinds, str) else list(kinds)
            if schema.get("nullable"):
                allowed.append("null")
            if not any(_JSON_TYPES[kind](value) for kind in allowed):
                found.append(f"{where}: {_type_name(value)} where the schema says {' or '.join(allowed)}")
                return found
        if isinstance(value, dict):
            found += self._object_errors(schema, value, where)
        elif isinstance(value, list):
            found += self._array_errors(schema, value, where)
        elif isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                found.append(f"{where}: shorter than {schema['minLength']} characters")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                found.append(f"{where}: longer than {schema['maxLength']} characters")
        elif _JSON_TYPES["number"](value):
            found += _number_errors(schema, value, where)
        return found

    def _object_errors(self, schema: Mapping[str, Any], value: dict[str, Any], where: str) -> list[str]:
        found: list[str] = []
        properties: Mapping[str, Any] = schema.get("properties") or {}
        for name in schema.get("required", []):
            if name not in value:
                found.append(f"{where}.{name}: missing (required)")
        extra = schema.get("additionalProperties", not properties)
        for name, item in value.items():
            if name in properties:
                found += self.errors(properties[name], item, f"{where}.{name}")
            elif extra is False:
                found.append(f"{where}.{name}: not a documented property")
            elif isinstance(extra, Mapping):
                found += self.errors(extra, item, f"{where}.{name}")
        return found

    def _array_errors(self, schema: Mapping[str, Any], value: list[Any], where: str) -> list[str]:
        found: list[str] = []
        if "minItems" in schema and len(value) < schema["minItems"]:
            found.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            found.append(f"{where}: more than {schema['maxItems']} items")
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                found += self.errors(items, item, f"{where}[{i}]")
        return found

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        """Raise a Mismatch naming the operation, the JSON path and the reason when the JSON answer `body`
        departs from what the document states for `method path` and `status` (checked only where typed)."""
        op = self.operation(method, path)
        if op is None:
            return
        typed = [s for code, r in op.responses.items() if code.startswith("2") for s in _json_schemas(r)]
        if not any(self.is_typed(s) for s in typed):
            return
        schema = self.response_schema(op, status)
        if not self.is_typed(schema):
            return
        assert schema is not None
        found = self.errors(schema, body)
        if found:
            shown = "\n  ".join(found[:10])
            more = f"\n  … and {len(found) - 10} more" if len(found) > 10 else ""
            raise Mismatch(
                f"{op.operation_id} ({method} {path}) answered {status} off its documented schema:\n  {shown}{more}"
            )


def _json_schemas(response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = response.get("content") or {}
    return [content[JSON]["schema"]] if JSON in content and content[JSON].get("schema") else []


def _number_errors(schema: Mapping[str, Any], value: float, where: str) -> list[str]:
    found = []
    if "minimum" in schema and value < schema["minimum"]:
        found.append(f"{where}: {value} is below the minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        found.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        found.append(f"{where}: {value} is not above {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        found.append(f"{where}: {value} is not below {schema['exclusiveMaximum']}")
    return found


def _type_name(value: Any) -> str:
    for name, test in _JSON_TYPES.items():
        if name != "number" and test(value):
            return name
    return "number" if _JSON_TYPES["number"](value) else type(value).__name__


_documents: dict[frozenset[str], Document] = {}


def document_of(app: Any) -> Document:
    """The app's document, built once per process for each set of routes: every app the suite builds from
    `create_app` documents the same API, and building the document takes a noticeable fraction of a
    second."""
    routes = frozenset(f"{route.path} {sorted(getattr(route, 'methods', []))}" for route in app.routes)
    if routes not in _documents:
        _documents[routes] = Document(app.openapi_schema.to_schema())
    return _documents[routes]


def conformance_hook(app: Any) -> Callable[[httpx.Response], Awaitable[None]]:
    """An httpx response hook checking every 2xx JSON answer of `app` against its documented schema."""
    documents: list[Document] = []

    async def check(response: httpx.Response) -> None:
        if not 200 <= response.status_code < 300:
            return
        if response.headers.get("content-type", "").split(";")[0].strip() != JSON:
            return
        await response.aread()
        if not documents:
            documents.append(document_of(app))
        documents[0].check(
            response.request.method, response.request.url.path, response.status_code, response.json()
        )

    return check
