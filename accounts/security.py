"""Passwords (argon2id), access tokens (JWT, HS256) and API tokens (random, stored hashed).

CPU-heavy hashing runs in a thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = frozenset({"centre", "agency", "bidder", "expert", "supervisor", "auditor", "regulator"})
API_TOKEN_PREFIX = "ggzy_"  # noqa: S105 - a public prefix, not a secret


@dataclass(frozen=True)
class PasswordCost:
    """argon2id cost parameters. The default is argon2-cffi's (RFC 9106's second recommended set: t=3,
    m=64 MiB, p=4); only the test suite lowers it, through `GGZY_ARGON2_*`, to keep thousands of sign-ins fast.
    A stored hash carries its own parameters, so changing the cost never locks anyone out."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4


class _Hashing:
    def __init__(self, cost: PasswordCost) -> None:
        self.cost = cost
        self.hasher = PasswordHasher(
            time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism
        )
        # Verified against when the username is unknown, so a miss costs as much time as a hit.
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))


_hashing = _Hashing(PasswordCost())


def configure_password_cost(cost: PasswordCost) -> None:
    """Hash new passwords with `cost` from now on (the composition root calls this once)."""
    global _hashing
    if cost != _hashing.cost:
        _hashing = _Hashing(cost)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (by JWT) or a system (by API token), with the roles it acts in."""

    user_id: uuid.UUID
    organisation_id: uuid.UUID
    roles: frozenset[str]
    username: str
    via: str = "jwt"
    issued_at: int | None = None  # a bearer token's `iat` (Unix seconds); None for API tokens

    def has(self, *roles: str) -> bool:
        """True when the principal holds any of `roles`."""
        return bool(self.roles.intersection(roles))


async def hash_password(password: str) -> str:
    """argon2id hash of `password`, computed off the event loop."""
    return await asyncio.to_thread(_hashing.hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-effort check of `password` against `password_hash` (None: unknown user)."""

    def check() -> bool:
        try:
            hashing = _hashing
            return (
                hashing.hasher.verify(password_hash or hashing.dummy_hash, password)
                and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def issue_access_token(
    principal: Principal, secret: str, now: datetime, ttl: timedelta
) -> tuple[str, datetime]:
    """A signed JWT for `principal`, valid from `now` for `ttl`."""
    expires = now + ttl
    claims = {
        "sub": str(principal.user_id),
        "org": str(principal.organisation_id),
        "roles": sorted(principal.roles),
        "name": principal.username,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()) - 5,
        "exp": int(expires.timestamp()),
        "iss": "ggzy",
    }
    return jwt.encode(claims, secret, algorithm="HS256"), expires


def decode_access_token(token: str, secret: str, now: datetime) -> Principal | None:
    """The principal a JWT names, or None when it is invalid or expired at `now`."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer="ggzy",
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "require": ["exp"]},
        )
        if not int(claims["nbf"]) <= now.timestamp() < int(claims["exp"]):
            return None
        roles = frozenset(str(r) for r in claims["roles"]) & ROLES
        return Principal(
            uuid.UUID(claims["sub"]),
            uuid.UUID(claims["org"]),
            roles,
            str(claims["name"]),
            issued_at=int(claims["iat"]),
        )
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None


def new_api_token() -> tuple[str, str]:
    """A fresh API token and the SHA-256 hex digest that is all the database keeps of it."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, api_token_hash(token)


def api_token_hash(token: str) -> str:
    """Digest under which an API token is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()
