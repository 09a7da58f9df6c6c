"""Refusals as data: every service raises a `Problem`, the web layer renders it as RFC 9457.

A problem names the rule from RULES.md that refused the request (`rule`), or the fields that were wrong
(`errors`), so a client can act on it without parsing prose. Nothing here imports a web framework.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

PROBLEM_BASE = "tag:ggzy,2026:problem/"
RULE_BASE = "tag:ggzy,2026:rule/"


class Problem(Exception):
    """A refusal with an HTTP status, a stable type, and whatever a client needs to correct it."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        rule: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.rule = rule
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra
        if title is not None:
            self.title = title

    @property
    def type_uri(self) -> str:
        """The problem's `type`: the rule it breaks, or its kind."""
        return f"{RULE_BASE}{self.rule}" if self.rule else f"{PROBLEM_BASE}{self.slug}"

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 body."""
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.rule:
            body["rule"] = self.rule
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class ValidationProblem(Problem):
    """The request is well-formed but a field's value is not acceptable."""

    status = 422
    slug = "validation"
    title = "Invalid input"


class RuleViolation(Problem):
    """A legal rule from RULES.md refuses the request."""

    status = 422
    slug = "rule-violation"
    title = "Refused by rule"

    def __init__(self, rule: str, detail: str, **extra: Any) -> None:
        super().__init__(detail, rule=rule, **extra)


class Unauthenticated(Problem):
    """No valid credentials."""

    status = 401
    slug = "unauthenticated"
    title = "Authentication required"


class Forbidden(Problem):
    """Authenticated, but this actor may not do this."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(Problem):
    """No such resource, or not visible to this actor."""

    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(Problem):
    """The resource's state does not allow this now (wrong order, duplicate, reused key)."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class PreconditionFailed(Problem):
    """The `If-Match` version is stale: someone changed the resource since it was read."""

    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class PreconditionRequired(Problem):
    """An editable resource was changed without `If-Match`."""

    status = 428
    slug = "precondition-required"
    title = "Precondition required"


def refusal(rule: str | None, detail: str, field: str, message: str, **extra: Any) -> Problem:
    """A refusal under `rule`, naming the field; where the procedure cites no rule for the value (a house
    value, or one the law of the sector gives without an id in RULES.md), the field alone."""
    errors = [field_error(field, message)]
    if rule:
        return RuleViolation(rule, detail, errors=errors, **extra)
    return ValidationProblem(detail, errors=errors, **extra)


def requested_instant(field: str, value: datetime) -> datetime:
    """An instant a request names, refused unless it carries a zone and falls in a year the platform can
    reckon with (a far one overflows on conversion to UTC or when a period is added: a 500, not a 422)."""
    if value.tzinfo is None:
        raise ValidationProblem(
            f"{field} must carry a time zone (e.g. +08:00 or Z).",
            errors=[field_error(field, "naive datetime")],
        )
    if not 2000 <= value.year <= 2099:
        raise ValidationProblem(
            f"{field} must fall within the years 2000 to 2099.", errors=[field_error(field, "out of range")]
        )
    return value


def field_error(field: str, message: str) -> dict[str, Any]:
    """One entry of `errors[]`: where and what."""
    return {"field": field, "message": message}


class TooManyRequests(Problem):
    """Too many attempts in too short a time; `Retry-After` says when to try again (RFC 9110 10.2.3)."""

    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after, **extra)


class ServiceUnavailable(Problem):
    """A service the request needs is out of reach; nothing was done, try again later."""

    status = 503
    slug = "unavailable"
    title = "Service unavailable"
