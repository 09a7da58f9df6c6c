"""Problems (storage/problems.py) as HTTP answers: RFC 9457 `application/problem+json`, from a handler, an
exception handler or ASGI middleware that runs before routing."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response
from litestar.connection import ASGIConnection
from litestar.types import Receive, Scope, Send

from storage.problems import Problem

PROBLEM_JSON = "application/problem+json"


def problem_headers(problem: Problem) -> dict[str, str]:
    """The headers a problem carries; a 401 names the scheme to authenticate with (RFC 9110 15.5.2)."""
    headers = dict(problem.headers)
    if problem.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="ggzy"')
    return headers


def _response(problem: Problem, instance: str | None) -> Response[Any]:
    return Response(
        content=msgspec.json.encode(problem.to_dict(instance=instance)),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem_headers(problem),
    )


def problem_response(
    problem: Problem, request: ASGIConnection[Any, Any, Any, Any] | None = None
) -> Response[Any]:
    """The problem as the answer to `request` (its path is the problem's `instance`)."""
    return _response(problem, request.url.path if request is not None else None)


async def problem_asgi_response(problem: Problem, scope: Scope, receive: Receive, send: Send) -> None:
    """Send a problem straight from ASGI middleware, before routing."""
    await _response(problem, scope.get("path")).to_asgi_response(app=None, request=None)(  # type: ignore[arg-type]
        scope, receive, send
    )
