"""The refusals every operation may answer, stated in the OpenAPI document as RFC 9457 problems, so a
client (or a generated one) knows each status code it can meet before it meets it."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

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


def document_problems(handlers: Iterable[Any]) -> None:
    """Add the problem responses to each handler's documented responses (its own take precedence)."""
    for handler in handlers:
        if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
            continue
        problems = {
            status: ResponseSpec(
                data_container=ProblemDetails,
                description=description,
                media_type=PROBLEM_JSON,
                generate_examples=False,
            )
            for status, description in problem_statuses(handler).items()
        }
        handler.responses = {**problems, **(handler.responses or {})}


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring, on one line: an operation's summary."""
    text = " ".join(inspect.cleandoc(doc).split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]
