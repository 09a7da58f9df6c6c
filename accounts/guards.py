"""Authentication (who is calling) and guards (may they call this route).

Every route declares its guard; the app refuses to start if one does not (see `app.check_guards`).
The relationship part of a guard ("an agency of this tender", "a bidder of this tender") is checked
in the service, where the object is loaded, and answers 404 so another organisation's objects are not
even confirmed to exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from accounts import security, service
from accounts.security import Principal
from storage.db import transaction
from storage.problem_http import problem_asgi_response
from storage.problems import Forbidden, Problem, Unauthenticated

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


class AuthenticationMiddleware(ASGIMiddleware):
    """Resolves the bearer credential to a `Principal` in `scope["user"]` (None when anonymous).

    A credential that is present but invalid is refused outright (401) rather than treated as anonymous,
    so a client with an expired token learns it at once.
    """

    scopes = ("http", "websocket")  # type: ignore[assignment]

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        header = _authorization(scope)
        scope["user"] = None
        scope["auth"] = None
        if header is not None:
            state = scope["litestar_app"].state
            try:
                scope["user"] = await _authenticate(header, state)
                refused: Problem | None = None
            except Problem as exc:  # e.g. the caller's organisation awaits approval
                refused = exc
            if scope["user"] is None:
                await problem_asgi_response(
                    refused or Unauthenticated("The bearer token is invalid or has expired; sign in again."),
                    scope,
                    receive,
                    send,
                )
                return
        await next_app(scope, receive, send)


def _authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return value.decode("latin-1")
    return None


async def _authenticate(header: str, state: Any) -> Principal | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    now = state.clock.now()
    if token.startswith(security.API_TOKEN_PREFIX):
        async with transaction(state.sessionmaker) as session:
            return await service.resolve_api_token(session, token, now)
    claimed = security.decode_access_token(token, state.settings.secret_key, now)
    if claimed is None:
        return None
    # A signed token is not enough: a user deactivated since it was issued is refused at once.
    async with transaction(state.sessionmaker, read_only=True) as session:
        return await service.current_principal(session, claimed)


def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The authenticated caller, or a 401 problem."""
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise Unauthenticated("Sign in first: this route needs a bearer token.")
    return user


def requires(*roles: str) -> Guard:
    """A guard admitting callers that hold any of `roles`."""
    wanted = frozenset(roles)
    unknown = wanted - security.ROLES
    if unknown:
        raise ValueError(f"unknown roles in guard: {sorted(unknown)}")

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        caller = principal(connection)
        if not caller.roles & wanted:
            raise Forbidden(f"This needs one of the roles: {', '.join(sorted(wanted))}.")

    guard.__name__ = f"requires_{'_'.join(sorted(wanted))}"
    guard.roles = wanted  # type: ignore[attr-defined]
    return guard


async def authenticated(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """A guard admitting any signed-in caller."""
    principal(connection)


async def public(_connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """A guard admitting everyone: published information (S-03) and the sign-in routes themselves."""


async def provide_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Dependency: the authenticated caller."""
    return principal(request)


def provide_optional_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """Dependency: the caller when signed in, None for the public."""
    user = request.scope.get("user")
    return user if isinstance(user, Principal) else None
