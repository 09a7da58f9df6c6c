"""The accounts API: registration and approval, sign-in, bearer and API tokens, public keys, the audit trail."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select, update

from accounts import security
from accounts.models import ApiToken, Organisation, User
from accounts.security import Principal
from accounts.service import principal_of
from accounts.uscc import make_uscc
from storage.pagination import MAX_CURSOR_LENGTH
from tests.helpers import PASSWORD, Actor, Api, credit_code
from trading.models import Tender

PROBLEM_JSON = "application/problem+json"


# ---------------------------------------------------------------- helpers


def registration(kind: str = "bidder", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organisation_name": "江苏恒通建设集团有限公司",
        "credit_code": credit_code(),
        "kind": kind,
        "username": f"reg_{secrets.token_hex(4)}",
        "password": PASSWORD,
        "display_name": "张伟",
        "contact_email": "tender@hengtong.example",
    }
    body.update(overrides)
    return body


async def register(api: Api, kind: str = "bidder", **overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A self-registered (pending) organisation, as the centre lists it, and the registration's body."""
    body = registration(kind, **overrides)
    r = await api.post("/api/v1/registrations", json=body)
    assert r.status_code == 202, r.text
    centre = await api.bootstrap_centre()
    listed = (await api.get("/api/v1/organisations", centre, params={"status": "pending"})).json()
    [org] = [o for o in listed if o["credit_code"] == body["credit_code"]]
    return org, body


async def me(api: Api, actor: Actor) -> dict[str, Any]:
    r = await api.get("/api/v1/auth/me", actor)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def count(api: Api, model: Any) -> int:
    async with api.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def audit(api: Api, **params: Any) -> list[dict[str, Any]]:
    centre = await api.bootstrap_centre()
    r = await api.get("/api/v1/audit", centre, params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def issue_token(api: Api, actor: Actor, roles: list[str], **extra: Any) -> dict[str, Any]:
    r = await api.post("/api/v1/auth/tokens", actor, json={"name": "agency ERP", "roles": roles, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


def raw_public_key(kind: str) -> bytes:
    private = Ed25519PrivateKey.generate() if kind == "signing" else X25519PrivateKey.generate()
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def assert_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body = dict(r.json())
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body


# ---------------------------------------------------------------- registration and approval


async def test_registration_creates_a_pending_organisation_with_one_user(api: Api) -> None:
    org, body = await register(api, "agency")
    assert (org["status"], org["approved_at"], org["kind"]) == ("pending", None, "agency")
    async with api.runtime.sessionmaker() as session:
        [user] = (
            await session.scalars(select(User).where(User.organisation_id == uuid.UUID(org["id"])))
        ).all()
    assert (user.username, user.roles, user.active) == (body["username"], ["agency"], True)


async def test_a_pending_agency_cannot_create_a_tender(api: Api) -> None:
    _org, body = await register(api, "agency")
    r = await api.post("/api/v1/auth/login", json={"username": body["username"], "password": PASSWORD})
    assert assert_problem(r, 403)["type"] == "tag:ggzy,2026:problem/pending-approval"
    async with api.runtime.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.username == body["username"]))
        assert user is not None
        token, _ = security.issue_access_token(
            principal_of(user), api.runtime.settings.secret_key, api.clock.now(), timedelta(hours=1)
        )
    r = await api.client.post("/api/v1/tenders", json=api.tender_body(), headers=bearer(token))
    assert "approval" in assert_problem(r, 403)["detail"]
    assert await count(api, Tender) == 0


async def test_an_approved_agency_creates_a_tender(api: Api) -> None:
    org, body = await register(api, "agency")
    centre = await api.bootstrap_centre()
    r = await api.post(f"/api/v1/organisations/{org['id']}/approve", centre)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert r.json()["approved_at"] == api.clock.now().isoformat().replace("+00:00", "Z")
    token = await api.login(body["username"])
    assert (
        await api.client.post("/api/v1/tenders", json=api.tender_body(), headers=bearer(token))
    ).status_code == 201


async def test_approving_an_organisation_twice_is_a_conflict(api: Api) -> None:
    org, _ = await register(api)
    centre = await api.bootstrap_centre()
    assert (await api.post(f"/api/v1/organisations/{org['id']}/approve", centre)).status_code == 200
    r = await api.post(f"/api/v1/organisations/{org['id']}/approve", centre)
    assert assert_problem(r, 409)["detail"] == "The organisation is active, not pending approval."


async def test_approving_an_unknown_organisation_is_not_found(api: Api) -> None:
    centre = await api.bootstrap_centre()
    assert_problem(await api.post(f"/api/v1/organisations/{uuid.uuid4()}/approve", centre), 404)


async def test_a_duplicate_credit_code_goes_to_the_centre_not_to_the_caller(api: Api) -> None:
    org, _ = await register(api)
    before = await count(api, Organisation)
    r = await api.post("/api/v1/registrations", json=registration(credit_code=org["credit_code"]))
    assert r.status_code == 202, r.text
    assert await count(api, Organisation) == before
    [collision] = (await api.get("/api/v1/registrations/collisions", await api.bootstrap_centre())).json()
    assert collision["collides_on"] == ["credit_code"]


async def test_a_wrong_check_character_is_refused_naming_credit_code(api: Api) -> None:
    code = credit_code()
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    r = await api.post("/api/v1/registrations", json=registration(credit_code=wrong))
    errors = assert_problem(r, 422)["errors"]
    assert [e["field"] for e in errors] == ["credit_code"]
    assert errors[0]["message"].startswith(f"wrong check character: expected {code[-1]!r}")
    assert await count(api, Organisation) == 0


async def test_a_full_width_credit_code_is_stored_in_ascii(api: Api) -> None:
    code = make_uscc("91320100MA1XY2H0A")
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in code)
    r = await api.post("/api/v1/registrations", json=registration(credit_code=full_width))
    assert r.status_code == 202, r.text
    listed = (await api.get("/api/v1/organisations", await api.bootstrap_centre())).json()
    assert code in [o["credit_code"] for o in listed]


async def test_a_taken_username_goes_to_the_centre_not_to_the_caller(api: Api) -> None:
    agency = await api.organisation("agency")
    r = await api.post("/api/v1/registrations", json=registration(username=agency.username))
    assert r.status_code == 202, r.text
    assert await count(api, Organisation) == 2  # the centre and the agency
    [collision] = (await api.get("/api/v1/registrations/collisions", await api.bootstrap_centre())).json()
    assert collision["collides_on"] == ["username"]


# ---------------------------------------------------------------- sign-in


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(api: Api) -> None:
    agency = await api.organisation("agency")
    wrong = await api.post(
        "/api/v1/auth/login", json={"username": agency.username, "password": "not it at all"}
    )
    unknown = await api.post(
        "/api/v1/auth/login", json={"username": "nobody_here", "password": "not it at all"}
    )
    assert wrong.json() == unknown.json() == assert_problem(wrong, 401)
    assert wrong.json()["detail"] == "Wrong username or password."
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == 'Bearer realm="ggzy"'


async def test_a_signed_in_user_is_told_who_it_is(api: Api) -> None:
    agency = await api.organisation("agency", name="南京招标代理有限公司")
    who = await me(api, agency)
    assert who["username"] == agency.username
    assert who["roles"] == ["agency"]
    assert who["via"] == "jwt"
    assert who["organisation"]["name"] == "南京招标代理有限公司"


async def test_the_centre_deactivates_a_user(api: Api) -> None:
    bidder = await api.organisation("bidder")
    user_id = (await me(api, bidder))["user_id"]
    r = await api.post(f"/api/v1/users/{user_id}/deactivate", await api.bootstrap_centre())
    assert r.status_code == 200, r.text
    assert r.json()["id"] == user_id
    assert r.json()["active"] is False


async def test_a_deactivated_user_cannot_sign_in(api: Api) -> None:
    bidder = await api.organisation("bidder")
    user_id = (await me(api, bidder))["user_id"]
    await api.post(f"/api/v1/users/{user_id}/deactivate", await api.bootstrap_centre())
    r = await api.post("/api/v1/auth/login", json={"username": bidder.username, "password": PASSWORD})
    assert assert_problem(r, 401)["detail"] == "Wrong username or password."


async def test_a_deactivated_users_bearer_token_stops_working_at_once(api: Api) -> None:
    bidder = await api.organisation("bidder")
    user_id = (await me(api, bidder))["user_id"]
    await api.post(f"/api/v1/users/{user_id}/deactivate", await api.bootstrap_centre())
    assert_problem(await api.get("/api/v1/auth/me", bidder), 401)


async def test_a_deactivated_users_api_token_stops_working(api: Api) -> None:
    bidder = await api.organisation("bidder")
    issued = await issue_token(api, bidder, ["bidder"])
    user_id = (await me(api, bidder))["user_id"]
    await api.post(f"/api/v1/users/{user_id}/deactivate", await api.bootstrap_centre())
    assert_problem(await api.client.get("/api/v1/auth/me", headers=bearer(issued["token"])), 401)


async def test_deactivating_a_user_is_audited(api: Api) -> None:
    bidder = await api.organisation("bidder")
    centre = await api.bootstrap_centre()
    user_id = (await me(api, bidder))["user_id"]
    await api.post(f"/api/v1/users/{user_id}/deactivate", centre)
    events = await audit(
        api, object_type="user", object_id=user_id, actor_organisation_id=centre.organisation_id
    )
    [event] = [e for e in events if e["action"] == "user.deactivate"]
    assert event["actor_user_id"] == (await me(api, centre))["user_id"]
    assert event["outcome"] == "ok"


async def test_deactivating_an_inactive_user_is_a_conflict(api: Api) -> None:
    bidder = await api.organisation("bidder")
    centre = await api.bootstrap_centre()
    user_id = (await me(api, bidder))["user_id"]
    await api.post(f"/api/v1/users/{user_id}/deactivate", centre)
    assert_problem(await api.post(f"/api/v1/users/{user_id}/deactivate", centre), 409)


async def test_centre_staff_cannot_deactivate_themselves(api: Api) -> None:
    centre = await api.bootstrap_centre()
    user_id = (await me(api, centre))["user_id"]
    assert_problem(await api.post(f"/api/v1/users/{user_id}/deactivate", centre), 409)
    assert (await api.get("/api/v1/auth/me", centre)).status_code == 200


async def test_deactivating_an_unknown_user_is_not_found(api: Api) -> None:
    centre = await api.bootstrap_centre()
    assert_problem(await api.post(f"/api/v1/users/{uuid.uuid4()}/deactivate", centre), 404)


async def test_only_the_centre_deactivates_users(api: Api) -> None:
    supervisor = await api.organisation("supervisor")
    bidder = await api.organisation("bidder")
    user_id = (await me(api, bidder))["user_id"]
    assert_problem(await api.post(f"/api/v1/users/{user_id}/deactivate", supervisor), 403)
    assert (await api.get("/api/v1/auth/me", bidder)).status_code == 200


# ---------------------------------------------------------------- bearer tokens (JWT)


async def short_lived_token(api: Api, actor: Actor, ttl: timedelta) -> str:
    who = await me(api, actor)
    principal = Principal(
        uuid.UUID(who["user_id"]),
        uuid.UUID(who["organisation"]["id"]),
        frozenset(who["roles"]),
        who["username"],
    )
    token, _ = security.issue_access_token(principal, api.runtime.settings.secret_key, api.clock.now(), ttl)
    return token


async def test_a_bearer_token_works_until_it_expires(api: Api) -> None:
    agency = await api.organisation("agency")
    token = await short_lived_token(api, agency, timedelta(minutes=10))
    api.clock.advance(timedelta(minutes=9, seconds=59))
    assert (await api.client.get("/api/v1/auth/me", headers=bearer(token))).status_code == 200


async def test_an_expired_bearer_token_is_refused_with_a_problem(api: Api) -> None:
    agency = await api.organisation("agency")
    token = await short_lived_token(api, agency, timedelta(minutes=10))
    api.clock.advance(timedelta(minutes=10))
    r = await api.client.get("/api/v1/auth/me", headers=bearer(token))
    body = assert_problem(r, 401)
    assert body["detail"] == "The bearer token is invalid or has expired; sign in again."
    assert body["type"] == "tag:ggzy,2026:problem/unauthenticated"


async def test_a_login_token_expires_after_the_configured_lifetime(api: Api) -> None:
    agency = await api.organisation("agency")
    ttl = timedelta(minutes=api.runtime.settings.token_ttl_minutes)
    api.clock.advance(ttl)
    assert_problem(await api.get("/api/v1/auth/me", agency), 401)


async def test_a_tampered_bearer_token_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    header, payload, signature = agency.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["centre"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    r = await api.client.get("/api/v1/audit", headers=bearer(f"{header}.{forged}.{signature}"))
    assert_problem(r, 401)


async def test_a_bearer_token_signed_with_another_key_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    claims = jwt.decode(agency.token, options={"verify_signature": False})
    token = jwt.encode(claims, secrets.token_urlsafe(32), algorithm="HS256")
    assert_problem(await api.client.get("/api/v1/auth/me", headers=bearer(token)), 401)


async def test_an_unsigned_bearer_token_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    claims = jwt.decode(agency.token, options={"verify_signature": False})
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert_problem(await api.client.get("/api/v1/auth/me", headers=bearer(f"{header}.{payload}.")), 401)


async def test_a_malformed_authorization_header_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    r = await api.client.get("/api/v1/auth/me", headers={"Authorization": f"Basic {agency.token}"})
    assert_problem(r, 401)


# ---------------------------------------------------------------- API tokens


async def test_an_api_token_acts_with_the_subset_of_roles_it_was_issued(api: Api) -> None:
    supervisor = await api.organisation("supervisor")
    async with api.runtime.sessionmaker() as session, session.begin():
        await session.execute(
            update(User).where(User.username == supervisor.username).values(roles=["auditor", "supervisor"])
        )
    supervisor.token = await api.login(supervisor.username)
    issued = await issue_token(api, supervisor, ["auditor"])
    assert issued["api_token"]["roles"] == ["auditor"]
    r = await api.client.get("/api/v1/auth/me", headers=bearer(issued["token"]))
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["auditor"]
    assert r.json()["via"] == "api_token"


async def test_an_api_token_is_accepted_by_a_route_its_roles_allow(api: Api) -> None:
    agency = await api.organisation("agency")
    issued = await issue_token(api, agency, ["agency"])
    r = await api.client.post("/api/v1/tenders", json=api.tender_body(), headers=bearer(issued["token"]))
    assert r.status_code == 201, r.text


async def test_an_api_token_cannot_carry_a_role_its_user_does_not_hold(api: Api) -> None:
    agency = await api.organisation("agency")
    r = await api.post("/api/v1/auth/tokens", agency, json={"name": "x", "roles": ["agency", "centre"]})
    assert assert_problem(r, 403)["detail"] == "You cannot grant roles you do not hold: centre."
    assert await count(api, ApiToken) == 0


async def test_a_revoked_api_token_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    issued = await issue_token(api, agency, ["agency"])
    r = await api.post(f"/api/v1/auth/tokens/{issued['api_token']['id']}/revoke", agency)
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is not None
    assert_problem(await api.client.get("/api/v1/auth/me", headers=bearer(issued["token"])), 401)


async def test_another_users_api_token_cannot_be_revoked(api: Api) -> None:
    owner = await api.organisation("agency")
    other = await api.organisation("agency")
    issued = await issue_token(api, owner, ["agency"])
    assert_problem(await api.post(f"/api/v1/auth/tokens/{issued['api_token']['id']}/revoke", other), 404)
    assert (await api.client.get("/api/v1/auth/me", headers=bearer(issued["token"]))).status_code == 200


async def test_another_users_api_tokens_are_not_listed(api: Api) -> None:
    owner = await api.organisation("agency")
    other = await api.organisation("agency")
    await issue_token(api, owner, ["agency"])
    assert (await api.get("/api/v1/auth/tokens", other)).json() == []
    assert len((await api.get("/api/v1/auth/tokens", owner)).json()) == 1


async def test_an_api_token_cannot_issue_api_tokens(api: Api) -> None:
    agency = await api.organisation("agency")
    issued = await issue_token(api, agency, ["agency"])
    r = await api.client.post(
        "/api/v1/auth/tokens", json={"name": "child", "roles": ["agency"]}, headers=bearer(issued["token"])
    )
    assert (
        assert_problem(r, 403)["detail"] == "API tokens are issued to people signed in, not to other tokens."
    )
    assert await count(api, ApiToken) == 1


async def test_an_expired_api_token_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    expires = api.clock.now() + timedelta(hours=1)
    issued = await issue_token(api, agency, ["agency"], expires_at=expires.isoformat())
    api.clock.advance(timedelta(hours=1))
    assert_problem(await api.client.get("/api/v1/auth/me", headers=bearer(issued["token"])), 401)


async def test_an_api_token_expiring_in_the_past_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    past = (api.clock.now() - timedelta(seconds=1)).isoformat()
    r = await api.post(
        "/api/v1/auth/tokens", agency, json={"name": "x", "roles": ["agency"], "expires_at": past}
    )
    assert assert_problem(r, 422)["errors"] == [{"field": "expires_at", "message": "in the past"}]


async def test_an_api_token_with_a_naive_expiry_is_refused_naming_expires_at(api: Api) -> None:
    agency = await api.organisation("agency")
    r = await api.post(
        "/api/v1/auth/tokens",
        agency,
        json={"name": "x", "roles": ["agency"], "expires_at": "2030-01-01T00:00:00"},
    )
    assert assert_problem(r, 422)["errors"] == [{"field": "expires_at", "message": "naive datetime"}]
    assert await count(api, ApiToken) == 0


async def test_only_the_hash_of_an_api_token_is_stored(api: Api) -> None:
    agency = await api.organisation("agency")
    issued = await issue_token(api, agency, ["agency"])
    token = issued["token"]
    async with api.runtime.sessionmaker() as session:
        row = (await session.execute(select(ApiToken.__table__))).one()
    stored = [str(value) for value in row]
    assert not any(token in value for value in stored)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(row.prefix) and len(row.prefix) < len(token) // 3


# ---------------------------------------------------------------- public keys


@pytest.mark.parametrize(("purpose", "algorithm"), [("signing", "ed25519"), ("encryption", "x25519")])
async def test_a_public_key_is_registered(api: Api, purpose: str, algorithm: str) -> None:
    bidder = await api.organisation("bidder")
    raw = raw_public_key(purpose)
    r = await api.post("/api/v1/keys", bidder, json={"purpose": purpose, "public_key": b64(raw)})
    assert r.status_code == 201, r.text
    assert r.json()["algorithm"] == algorithm
    assert r.json()["fingerprint"] == hashlib.sha256(raw).hexdigest()
    assert r.json()["organisation_id"] == bidder.organisation_id
    listed = (await api.get(f"/api/v1/organisations/{bidder.organisation_id}/keys", bidder)).json()
    assert [k["public_key"] for k in listed] == [b64(raw)]


@pytest.mark.parametrize("length", [31, 33])
async def test_a_public_key_of_the_wrong_length_is_refused_naming_public_key(api: Api, length: int) -> None:
    bidder = await api.organisation("bidder")
    r = await api.post(
        "/api/v1/keys", bidder, json={"purpose": "signing", "public_key": b64(secrets.token_bytes(length))}
    )
    assert [e["field"] for e in assert_problem(r, 422)["errors"]] == ["public_key"]
    assert (await api.get("/api/v1/keys", bidder)).json() == []


async def test_a_public_key_that_is_not_base64_is_refused_naming_public_key(api: Api) -> None:
    bidder = await api.organisation("bidder")
    r = await api.post("/api/v1/keys", bidder, json={"purpose": "encryption", "public_key": "!" * 44})
    assert [e["field"] for e in assert_problem(r, 422)["errors"]] == ["public_key"]


async def test_a_public_key_registered_twice_is_a_conflict(api: Api) -> None:
    bidder = await api.organisation("bidder")
    body = {"purpose": "signing", "public_key": b64(raw_public_key("signing"))}
    assert (await api.post("/api/v1/keys", bidder, json=body)).status_code == 201
    r = await api.post("/api/v1/keys", bidder, json=body)
    assert assert_problem(r, 409)["errors"] == [{"field": "public_key", "message": "duplicate"}]
    assert len((await api.get("/api/v1/keys", bidder)).json()) == 1


# ---------------------------------------------------------------- the audit trail


async def test_an_action_is_audited_with_actor_object_and_outcome(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.draft(agency)
    [event] = await audit(api, object_type="tender", object_id=tender["id"])
    assert event["action"] == "tender.create"
    assert event["actor_user_id"] == (await me(api, agency))["user_id"]
    assert event["actor_organisation_id"] == agency.organisation_id
    assert event["outcome"] == "ok"
    assert event["at"] == api.clock.now().isoformat().replace("+00:00", "Z")
    assert event["detail"] == {"code": tender["code"]}


async def test_a_successful_login_is_audited(api: Api) -> None:
    agency = await api.organisation("agency")
    user_id = (await me(api, agency))["user_id"]
    events = await audit(api, object_type="user", object_id=user_id)
    [event] = [e for e in events if e["action"] == "auth.login"]
    assert (event["outcome"], event["actor_user_id"]) == ("ok", user_id)


async def test_a_refused_login_is_audited_as_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    r = await api.post("/api/v1/auth/login", json={"username": agency.username, "password": "not it at all"})
    assert r.status_code == 401
    [event] = await audit(api, object_type="user", object_id=agency.username)
    assert event["action"] == "auth.login"
    assert event["outcome"] == "refused"
    assert event["actor_user_id"] is None
    assert event["detail"] == {"reason": "wrong password"}


async def test_a_refused_login_of_an_unknown_user_is_audited_as_refused(api: Api) -> None:
    await api.post("/api/v1/auth/login", json={"username": "mallory", "password": "guess guess guess"})
    [event] = await audit(api, object_type="user", object_id="mallory")
    assert (event["action"], event["outcome"], event["detail"]) == (
        "auth.login",
        "refused",
        {"reason": "unknown user"},
    )


async def test_a_refused_login_of_a_deactivated_user_is_audited_as_refused(api: Api) -> None:
    bidder = await api.organisation("bidder")
    user_id = (await me(api, bidder))["user_id"]
    await api.post(f"/api/v1/users/{user_id}/deactivate", await api.bootstrap_centre())
    await api.post("/api/v1/auth/login", json={"username": bidder.username, "password": PASSWORD})
    [event] = await audit(api, object_type="user", object_id=bidder.username)
    assert (event["outcome"], event["detail"]) == ("refused", {"reason": "inactive user"})


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("centre", 200),
        ("supervisor", 200),
        ("auditor", 200),
        ("agency", 403),
        ("bidder", 403),
        ("employer", 403),
        ("regulator", 403),
    ],
)
async def test_the_audit_trail_is_read_by_centre_supervisor_and_auditor_only(
    api: Api, kind: str, status: int
) -> None:
    actor = await api.bootstrap_centre() if kind == "centre" else await api.organisation(kind)
    assert (await api.get("/api/v1/audit", actor)).status_code == status


async def test_the_audit_trail_is_refused_to_anonymous_callers(api: Api) -> None:
    assert_problem(await api.get("/api/v1/audit"), 401)


async def test_the_audit_trail_pages_through_every_event_with_a_cursor(api: Api) -> None:
    centre = await api.bootstrap_centre()
    agency = await api.organisation("agency")
    await api.project(agency)
    for _ in range(3):
        await api.draft(agency, custodians=[])  # custodians are named later; their keys would log too
        api.clock.advance(timedelta(seconds=1))  # some events share an instant, some do not
    everything = [e["id"] for e in await audit(api)]
    # bootstrap, centre login, organisation, user, agency login, the project registered and accepted, three
    # tenders
    assert len(everything) == 10
    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"limit": 2}
    while True:
        r = await api.get("/api/v1/audit", centre, params=params)
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) <= 2
        seen += [e["id"] for e in r.json()["items"]]
        pages += 1
        if r.json()["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": r.json()["next_cursor"]}
    assert seen == everything
    assert pages == 5


async def test_the_audit_trail_is_newest_first(api: Api) -> None:
    agency = await api.organisation("agency")
    await api.project(agency)
    api.clock.advance(timedelta(minutes=1))
    await api.draft(agency, custodians=[])
    events = await audit(api)
    assert events[0]["action"] == "tender.create"
    assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        base64.urlsafe_b64encode(b'["2026-03-02T01:00:00", "7d0e3c3a-1b8b-4d46-9c3e-7f1e2c1a0b9d"]').decode(),
        base64.urlsafe_b64encode(b'["2026-03-02T01:00:00+00:00", 12345]').decode(),
        base64.urlsafe_b64encode(
            b'["0001-01-01T00:00:00+14:00", "7d0e3c3a-1b8b-4d46-9c3e-7f1e2c1a0b9d"]'
        ).decode(),
        "W" * 1000,
    ],
    ids=["garbage", "naive-instant", "numeric-id", "overflowing-instant", "too-long"],
)
async def test_a_malformed_cursor_is_refused_naming_cursor(api: Api, cursor: str) -> None:
    centre = await api.bootstrap_centre()
    r = await api.get("/api/v1/audit", centre, params={"cursor": cursor})
    if len(cursor) > MAX_CURSOR_LENGTH:  # past the length the schema states
        assert [e["field"] for e in assert_problem(r, 400)["errors"]] == ["cursor"]
    else:
        assert assert_problem(r, 422)["errors"] == [{"field": "cursor", "message": "malformed cursor"}]


@pytest.mark.parametrize("limit", [0, -1, 201])
async def test_a_limit_out_of_range_is_refused_naming_limit(api: Api, limit: int) -> None:
    centre = await api.bootstrap_centre()
    r = await api.get("/api/v1/audit", centre, params={"limit": limit})
    [error] = assert_problem(r, 400)["errors"]
    assert error["field"] == "limit"
