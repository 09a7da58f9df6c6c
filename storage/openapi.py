"""What the OpenAPI document states beyond what Litestar derives from the handlers: the refusals every
operation may answer, as RFC 9457 problems, so a client (or a generated one) knows each status code it can
meet before it meets it; and each schema component's description, taken from its class docstring."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

from storage.problem_http import PROBLEM_JSON


class FieldError(msgspec.Struct):
    """Where the request was wrong, and what was wrong there."""

    field: str
    message: str


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem: `rule` names the RULES.md rule that refused the request, `errors` the fields."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    rule: str | None = None
    errors: list[FieldError] | None = None


EVERY_OPERATION = {
    400: "The request is malformed: a parameter or body field out of its bounds, of the wrong type, or unknown",
    401: "The credentials are missing, expired or not ours",
    403: "The caller's role or organisation may not do this",
    404: "No such resource, or not one this caller may see",
    422: "The values are well-formed but a rule or the resource's state refuses them",
    429: "Too many attempts; Retry-After says when to try again",
    503: "A service the request needs is out of reach; nothing was done",
}
CHANGING_OPERATION = {
    409: "The resource's state does not allow this now, or the same key was used for another request",
    412: "If-Match names a version someone has since changed",
    428: "The resource is changed only with If-Match",
}
BODY_OPERATION = {
    413: "The body is larger than the server takes",
    415: "The body is not of the media type the operation reads (JSON unless stated)",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def problem_statuses(handler: HTTPRouteHandler) -> dict[int, str]:
    """The refusals `handler` may answer, with what each means."""
    statuses = dict(EVERY_OPERATION)
    if not set(handler.http_methods) <= SAFE_METHODS:
        statuses |= CHANGING_OPERATION
        statuses |= BODY_OPERATION
    return statuses


def refusal(description: str) -> ResponseSpec:
    """A problem response for a handler's own `responses`: a refusal its method does not answer elsewhere
    (a read that the resource's state refuses with 409, say)."""
    return ResponseSpec(
        data_container=ProblemDetails,
        description=description,
        media_type=PROBLEM_JSON,
        generate_examples=False,
    )


def document_problems(handlers: Iterable[Any]) -> None:
    """Add the problem responses to each handler's documented responses (its own take precedence)."""
    for handler in handlers:
        if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
            continue
        problems = {status: refusal(description) for status, description in problem_statuses(handler).items()}
        handler.responses = {**problems, **(handler.responses or {})}


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring, on one line: an operation's summary."""
    text = " ".join(inspect.cleandoc(doc).split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def class_docstring(cls: object) -> str | None:
    """The docstring a class declares itself, cleaned of indentation; None when it declares none (one
    inherited from a base, or the signature a dataclass writes for itself, is not the class's own)."""
    doc = getattr(cls, "__dict__", {}).get("__doc__")
    if not isinstance(doc, str) or not doc.strip():
        return None
    if dataclasses.is_dataclass(cls) and doc.startswith(f"{getattr(cls, '__name__', '')}("):
        return None
    return inspect.cleandoc(doc)


class ComponentDescriptions(OpenAPISchemaPlugin):
    """Gives each schema component (a Struct, TypedDict or dataclass with a docstring of its own) its class
    docstring as `description`. Litestar builds the component with the plugin that would have built it
    anyway; this one only adds the text, and only when the document is built (it stays lazy)."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        annotation = field_definition.annotation
        return (
            not field_definition.is_union
            and isinstance(annotation, type)
            and (
                issubclass(annotation, msgspec.Struct)
                or field_definition.is_typeddict_type
                or dataclasses.is_dataclass(annotation)
            )
            and class_docstring(annotation) is not None
        )

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        builder = next(
            plugin
            for plugin in schema_creator.plugins
            if plugin is not self and schema_creator.plugin_supports_field(plugin, field_definition)
        )
        schema = builder.to_openapi_schema(field_definition=field_definition, schema_creator=schema_creator)
        if isinstance(schema, Schema) and schema.description is None:
            schema.description = class_docstring(field_definition.annotation)
        return schema
