"""Sign-in resists guessing: throttling with Retry-After, the password policy, registration that does not
tell which names exist, and a pending organisation that can only wait."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from accounts import models, security
from accounts.models import ApiToken, AuditEvent, Organisation, PublicKey, User
from accounts.security import Principal
from tests.accounts.test_api import assert_problem, audit, b64, bearer, raw_public_key
from tests.helpers import PASSWORD, Actor, Api, credit_code

LOGIN = "/api/v1/auth/login"
FREE = 5  # failed sign-ins of one account before it is locked (GGZY_SIGNIN_FREE_ATTEMPTS)
LOCKOUT = 60  # the first lockout in seconds, doubled each further failure (GGZY_SIGNIN_LOCKOUT_SECONDS)


async def count(api: Api, model: Any) -> int:
    async with api.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def wrong(api: Api, username: str, **kw: Any) -> Any:
    return await api.post(LOGIN, json={"username": username, "password": "not the password at all"}, **kw)


async def right(api: Api, username: str) -> Any:
    return await api.post(LOGIN, json={"username": username, "password": PASSWORD})


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


# ---------------------------------------------------------------- throttling


async def test_thirty_wrong_passwords_then_the_right_one_is_throttled_with_retry_after(api: Api) -> None:
    agency = await api.organisation("agency")
    for _ in range(30):
        await wrong(api, agency.username)
    r = await right(api, agency.username)
    body = assert_problem(r, 429)
    assert body["type"] == "tag:ggzy,2026:problem/too-many-requests"
    assert int(r.headers["retry-after"]) == body["retry_after"] == LOCKOUT


async def test_the_account_is_locked_after_the_free_attempts_and_not_before(api: Api) -> None:
    agency = await api.organisation("agency")
    for _ in range(FREE - 1):
        assert (await wrong(api, agency.username)).status_code == 401
    assert (await right(api, agency.username)).status_code == 200  # the fifth try, right: in, and reset
    for _ in range(FREE):
        assert (await wrong(api, agency.username)).status_code == 401
    r = await right(api, agency.username)
    assert r.status_code == 429 and r.headers["retry-after"] == str(LOCKOUT)


async def test_the_lockout_ends_after_retry_after_on_the_injected_clock(api: Api) -> None:
    agency = await api.organisation("agency")
    for _ in range(FREE):
        await wrong(api, agency.username)
    api.clock.advance(timedelta(seconds=LOCKOUT - 1))
    r = await right(api, agency.username)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    api.clock.advance(timedelta(seconds=1))
    assert (await right(api, agency.username)).status_code == 200


async def test_each_failure_after_a_lockout_doubles_the_next_one(api: Api) -> None:
    agency = await api.organisation("agency")
    for _ in range(FREE):
        await wrong(api, agency.username)
    waits = []
    for _ in range(4):
        r = await wrong(api, agency.username)
        waits.append(int(r.headers["retry-after"]))
        api.clock.advance(timedelta(seconds=waits[-1]))
        assert (await wrong(api, agency.username)).status_code == 401
    r = await wrong(api, agency.username)
    assert waits == [60, 120, 240, 480]
    assert r.headers["retry-after"] == "900"  # capped (GGZY_SIGNIN_MAX_LOCKOUT_SECONDS)


async def test_a_successful_sign_in_resets_the_accounts_counter(api: Api) -> None:
    agency = await api.organisation("agency")
    for _ in range(FREE - 1):
        await wrong(api, agency.username)
    assert (await right(api, agency.username)).status_code == 200
    for _ in range(FREE - 1):
        assert (await wrong(api, agency.username)).status_code == 401
    assert (await right(api, agency.username)).status_code == 200


async def test_an_unknown_username_is_throttled_exactly_like_a_known_one(api: Api) -> None:
    agency = await api.organisation("agency")
    answers: dict[str, list[tuple[int, str | None, dict[str, Any]]]] = {}
    for name in (agency.username, "nobody_by_this_name"):
        answers[name] = []
        for _ in range(FREE + 2):
            r = await wrong(api, name)
            body = {k: v for k, v in r.json().items() if k != "instance"}
            answers[name].append((r.status_code, r.headers.get("retry-after"), body))
    assert answers[agency.username] == answers["nobody_by_this_name"]
    assert [a[0] for a in answers["nobody_by_this_name"]] == [401] * FREE + [429, 429]


async def test_a_lockout_of_one_account_does_not_lock_another(api: Api) -> None:
    victim, other = await api.organisation("agency"), await api.organisation("bidder")
    for _ in range(FREE):
        await wrong(api, victim.username)
    assert (await right(api, victim.username)).status_code == 429
    assert (await right(api, other.username)).status_code == 200


async def test_one_address_guessing_many_accounts_is_throttled(api: Api) -> None:
    await api.bootstrap_centre()
    for i in range(20):  # GGZY_SIGNIN_ADDRESS_FREE_ATTEMPTS, one failure per account
        assert (await wrong(api, f"sprayed_{i}")).status_code == 401
    r = await wrong(api, "sprayed_20")
    assert r.status_code == 429 and r.headers["retry-after"] == str(LOCKOUT)
    # another address is not affected
    transport = api.client._transport  # the same app, seen from another client address
    import httpx

    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=transport.app, client=("198.51.100.7", 4000)),  # type: ignore[attr-defined]
        base_url="http://testserver",
    )
    async with other:
        assert (await other.post(LOGIN, json={"username": "centre", "password": PASSWORD})).status_code == 200


async def test_a_throttled_attempt_is_audited_without_the_password(api: Api) -> None:
    agency = await api.organisation("agency")
    for _ in range(FREE):
        await wrong(api, agency.username)
    await api.post(LOGIN, json={"username": agency.username, "password": "a guess while locked out"})
    events = await audit(api, object_type="user", object_id=agency.username)
    throttled = [e for e in events if e["detail"].get("reason") == "throttled"]
    assert len(throttled) == 1
    assert throttled[0]["action"] == "auth.login"
    assert throttled[0]["outcome"] == "refused"
    assert throttled[0]["detail"] == {"reason": "throttled", "retry_after": LOCKOUT, "address": "127.0.0.1"}
    async with api.runtime.sessionmaker() as session:
        details = [str(d) for d in await session.scalars(select(AuditEvent.detail))]
    assert not any("a guess while locked out" in d or "not the password" in d for d in details)


async def test_changing_the_password_is_throttled_like_sign_in(api: Api) -> None:
    agency = await api.organisation("agency")
    for _ in range(FREE):
        r = await api.post(
            "/api/v1/auth/password",
            agency,
            json={"current_password": "not the password at all", "new_password": "a brand new passphrase 7"},
        )
        assert_problem(r, 403)
    r = await api.post(
        "/api/v1/auth/password",
        agency,
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase 7"},
    )
    assert assert_problem(r, 429)["retry_after"] == LOCKOUT
    assert (await right(api, agency.username)).status_code == 429  # the same account's counter


async def test_a_user_changes_the_password_and_signs_in_with_the_new_one(api: Api) -> None:
    agency = await api.organisation("agency")
    new = "a brand new passphrase 7"
    r = await api.post(
        "/api/v1/auth/password", agency, json={"current_password": PASSWORD, "new_password": new}
    )
    assert r.status_code == 204, r.text
    assert (await right(api, agency.username)).status_code == 401
    assert (await api.post(LOGIN, json={"username": agency.username, "password": new})).status_code == 200
    [event] = [e for e in await audit(api, object_type="user") if e["action"] == "auth.password.change"]
    assert event["outcome"] == "ok"


async def test_a_bearer_token_issued_before_a_password_change_stops_working(api: Api) -> None:
    agency = await api.organisation("agency")
    old_token = agency.token
    api.clock.advance(timedelta(seconds=1))
    r = await api.post(
        "/api/v1/auth/password",
        agency,
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase 7"},
    )
    assert r.status_code == 204, r.text
    assert_problem(await api.client.get("/api/v1/auth/me", headers=bearer(old_token)), 401)


async def test_an_api_token_cannot_change_the_password(api: Api) -> None:
    agency = await api.organisation("agency")
    issued = (await api.post("/api/v1/auth/tokens", agency, json={"name": "erp", "roles": ["agency"]})).json()
    r = await api.client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase 7"},
        headers=bearer(issued["token"]),
    )
    assert_problem(r, 403)
    assert (await right(api, agency.username)).status_code == 200


async def test_a_new_password_is_held_to_the_policy(api: Api) -> None:
    agency = await api.organisation("agency")
    r = await api.post(
        "/api/v1/auth/password",
        agency,
        json={"current_password": PASSWORD, "new_password": f"{agency.username}-my-passphrase"},
    )
    assert assert_problem(r, 422)["errors"] == [  # the helper's users are displayed by their usernames
        {"field": "new_password", "message": "contains the username"},
        {"field": "new_password", "message": "contains the display name"},
    ]
    assert (await right(api, agency.username)).status_code == 200


async def test_changing_the_password_needs_a_signed_in_user(api: Api) -> None:
    r = await api.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase 7"},
    )
    assert_problem(r, 401)


# ---------------------------------------------------------------- the password policy


@pytest.mark.parametrize(
    ("password", "messages"),
    [
        (" " * 10, ["shorter than 15 characters", "only whitespace"]),
        ("1234567890", ["shorter than 15 characters", "a commonly used password"]),
        ("password12", ["shorter than 15 characters", "a commonly used password"]),
        ("\t \u3000" * 6, ["only whitespace"]),
        ("passwordpassword", ["one character or group of characters repeated"]),
        ("aaaaaaaaaaaaaaaaaaaa", ["one character or group of characters repeated"]),
        ("abcdefghijklmnopq", ["a run of consecutive characters"]),
        ("qwertyuiopasdfgh", ["a run of consecutive characters"]),
        ("Trustno1!!!!!!!!!!", ["a commonly used password"]),
    ],
    ids=[
        "ten-spaces",
        "digits",
        "password12",
        "blank",
        "repeated-word",
        "one-letter",
        "run",
        "keyboard",
        "common",
    ],
)
async def test_a_weak_password_is_refused_at_registration_naming_password_and_the_reason(
    api: Api, password: str, messages: list[str]
) -> None:
    before = await count(api, Organisation)
    r = await api.post("/api/v1/registrations", json=registration(password=password))
    body = assert_problem(r, 422)
    assert body["errors"] == [{"field": "password", "message": m} for m in messages]
    assert await count(api, Organisation) == before
    assert await count(api, models.RegistrationCollision) == 0


@pytest.mark.parametrize(
    ("field", "make"),
    [
        ("username", lambda b: f"My{b['username'].upper()}passphrase"),
        ("organisation name", lambda b: f"{b['organisation_name']}的密码很长很长"),
        ("credit code", lambda b: f"code {b['credit_code'].lower()} ok"),
    ],
)
async def test_a_password_holding_the_users_own_names_is_refused(api: Api, field: str, make: Any) -> None:
    body = registration()
    body["password"] = make(body)
    r = await api.post("/api/v1/registrations", json=body)
    assert assert_problem(r, 422)["errors"] == [{"field": "password", "message": f"contains the {field}"}]


async def test_the_centre_cannot_give_a_new_user_a_weak_password(api: Api) -> None:
    centre = await api.bootstrap_centre()
    org = (
        await api.post(
            "/api/v1/organisations",
            centre,
            json={"name": "南京招标代理有限公司", "credit_code": credit_code(), "kind": "agency"},
        )
    ).json()
    r = await api.post(
        "/api/v1/users",
        centre,
        json={
            "organisation_id": org["id"],
            "username": "njzb",
            "password": "iloveyou12345678",
            "display_name": "李娜",
            "roles": ["agency"],
        },
    )
    assert assert_problem(r, 422)["errors"] == [{"field": "password", "message": "a commonly used password"}]
    assert await count(api, User) == 1


async def test_the_demo_password_and_the_suites_password_meet_the_policy() -> None:
    from accounts import passwords
    from demo.common import PASSWORD as DEMO

    for password in (DEMO, PASSWORD):
        assert passwords.weaknesses(password, names={"username": "agency"}) == []


# ---------------------------------------------------------------- registration discloses nothing


async def test_registration_answers_the_same_whether_or_not_the_username_exists(api: Api) -> None:
    agency = await api.organisation("agency")
    fresh = await api.post("/api/v1/registrations", json=registration())
    taken = await api.post("/api/v1/registrations", json=registration(username=agency.username))
    assert fresh.status_code == taken.status_code == 202
    assert fresh.json() == taken.json()
    assert fresh.headers.keys() == taken.headers.keys()


async def test_registration_answers_the_same_whether_or_not_the_credit_code_exists(api: Api) -> None:
    agency = await api.organisation("agency")
    fresh = await api.post("/api/v1/registrations", json=registration())
    taken = await api.post("/api/v1/registrations", json=registration(credit_code=agency.credit_code))
    assert fresh.status_code == taken.status_code == 202
    assert fresh.json() == taken.json()


async def test_a_colliding_registration_is_recorded_for_the_centre_and_changes_nothing_else(api: Api) -> None:
    agency = await api.organisation("agency")
    orgs, users = await count(api, Organisation), await count(api, User)
    body = registration(username=agency.username, credit_code=agency.credit_code)
    assert (await api.post("/api/v1/registrations", json=body)).status_code == 202
    assert (await count(api, Organisation), await count(api, User)) == (orgs, users)
    centre = await api.bootstrap_centre()
    r = await api.get("/api/v1/registrations/collisions", centre)
    assert r.status_code == 200, r.text
    [row] = r.json()
    assert row["collides_on"] == ["credit_code", "username"]
    assert (row["username"], row["credit_code"], row["contact_email"]) == (
        agency.username,
        agency.credit_code,
        "tender@hengtong.example",
    )
    assert row["status"] == "open"
    assert "password" not in str(row)


async def test_the_centre_closes_a_collision_and_its_password_hash_is_forgotten(api: Api) -> None:
    agency = await api.organisation("agency")
    await api.post("/api/v1/registrations", json=registration(username=agency.username))
    centre = await api.bootstrap_centre()
    [row] = (await api.get("/api/v1/registrations/collisions", centre)).json()
    r = await api.post(
        f"/api/v1/registrations/collisions/{row['id']}/close", centre, json={"note": "电话联系申请人，已说明"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["note"]) == ("closed", "电话联系申请人，已说明")
    async with api.runtime.sessionmaker() as session:
        stored = await session.get(models.RegistrationCollision, uuid.UUID(row["id"]))
        assert stored is not None and stored.password_hash is None
    again = await api.post(f"/api/v1/registrations/collisions/{row['id']}/close", centre, json={"note": "x"})
    assert_problem(again, 409)


@pytest.mark.parametrize("kind", ["agency", "bidder", "supervisor", "auditor", "employer"])
async def test_only_the_centre_reads_and_closes_registration_collisions(api: Api, kind: str) -> None:
    actor = await api.organisation(kind)
    assert_problem(await api.get("/api/v1/registrations/collisions", actor), 403)
    r = await api.post(f"/api/v1/registrations/collisions/{uuid.uuid4()}/close", actor, json={"note": "x"})
    assert_problem(r, 403)


async def test_signing_in_after_a_registration_answers_the_same_whether_or_not_it_collided(api: Api) -> None:
    agency = await api.organisation("agency")
    fresh = registration(password="the first applicant's passphrase")
    taken = registration(username=agency.username, password="the second applicant's passphrase")
    answers = []
    for body in (fresh, taken):
        assert (await api.post("/api/v1/registrations", json=body)).status_code == 202
        r = await api.post(LOGIN, json={"username": body["username"], "password": body["password"]})
        answers.append((r.status_code, {k: v for k, v in r.json().items() if k != "instance"}))
    assert answers[0] == answers[1]
    assert answers[0][0] == 403
    assert answers[0][1]["type"] == "tag:ggzy,2026:problem/pending-approval"
    assert (await right(api, agency.username)).status_code == 200  # the real owner is not affected


async def test_a_colliding_applicants_sign_ins_never_reset_the_owners_counter(api: Api) -> None:
    agency = await api.organisation("agency")
    taken = registration(username=agency.username, password="an applicant's own passphrase")
    assert (await api.post("/api/v1/registrations", json=taken)).status_code == 202
    for _ in range(FREE - 1):
        await wrong(api, agency.username)
    await api.post(LOGIN, json={"username": agency.username, "password": taken["password"]})  # 403, pending
    assert (await wrong(api, agency.username)).status_code == 401
    assert (await right(api, agency.username)).status_code == 429


# ---------------------------------------------------------------- a pending organisation waits


async def pending(api: Api, kind: str = "bidder") -> tuple[dict[str, Any], Actor, dict[str, Any]]:
    """A self-registered organisation the centre has not approved, and a bearer token for its user (as if it
    had one: sign-in gives it none)."""
    body = registration(kind)
    assert (await api.post("/api/v1/registrations", json=body)).status_code == 202
    centre = await api.bootstrap_centre()
    [org] = [
        o
        for o in (await api.get("/api/v1/organisations", centre, params={"status": "pending"})).json()
        if o["credit_code"] == body["credit_code"]
    ]
    async with api.runtime.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.username == body["username"]))
        assert user is not None
        principal = Principal(user.id, user.organisation_id, frozenset(user.roles), user.username)
    token, _ = security.issue_access_token(
        principal, api.runtime.settings.secret_key, api.clock.now(), timedelta(hours=1)
    )
    return org, Actor(body["username"], token, org["id"], body["credit_code"]), body


async def test_a_pending_organisations_user_signing_in_is_told_to_wait_and_gets_no_token(api: Api) -> None:
    _org, _actor, body = await pending(api)
    r = await api.post(LOGIN, json={"username": body["username"], "password": body["password"]})
    problem = assert_problem(r, 403)
    assert problem["type"] == "tag:ggzy,2026:problem/pending-approval"
    assert "access_token" not in problem
    assert "approv" in problem["detail"]


async def test_a_pending_organisation_can_neither_register_a_key_nor_issue_an_api_token(api: Api) -> None:
    _org, actor, _body = await pending(api)
    r = await api.post(
        "/api/v1/keys", actor, json={"purpose": "signing", "public_key": b64(raw_public_key("signing"))}
    )
    assert assert_problem(r, 403)["type"] == "tag:ggzy,2026:problem/pending-approval"
    r = await api.post("/api/v1/auth/tokens", actor, json={"name": "erp", "roles": ["bidder"]})
    assert assert_problem(r, 403)["type"] == "tag:ggzy,2026:problem/pending-approval"
    assert (await count(api, PublicKey), await count(api, ApiToken)) == (0, 0)


async def test_a_pending_bidder_can_do_nothing_with_a_tender(api: Api) -> None:
    tender = await api.published(await api.organisation("agency"))
    _org, actor, _body = await pending(api)
    tid = tender["id"]
    calls = [
        ("POST", f"/api/v1/tenders/{tid}/documents/obtain", None),
        ("POST", f"/api/v1/tenders/{tid}/bids/uploads", {"filename": "bid.age", "size": 100}),
        ("GET", "/api/v1/escrow/deposits", None),
        ("GET", "/api/v1/notifications", None),
        ("GET", "/api/v1/auth/me", None),
        ("GET", "/api/v1/keys", None),
    ]
    for method, url, body in calls:
        r = await api.client.request(method, url, json=body, headers=actor.headers)
        assert assert_problem(r, 403)["type"] == "tag:ggzy,2026:problem/pending-approval", url


async def test_an_approved_organisation_signs_in_and_acts(api: Api) -> None:
    org, _actor, body = await pending(api, "agency")
    centre = await api.bootstrap_centre()
    assert (await api.post(f"/api/v1/organisations/{org['id']}/approve", centre)).status_code == 200
    token = await api.login(body["username"], body["password"])
    assert (
        await api.client.post("/api/v1/tenders", json=api.tender_body(), headers=bearer(token))
    ).status_code == 201


# ---------------------------------------------------------------- the command line


async def test_ggzy_accounts_password_changes_the_password_over_http(api: Api) -> None:
    from accounts.cli import password_over_http

    agency = await api.organisation("agency")
    await password_over_http(api.client, agency.username, PASSWORD, "a brand new passphrase 7")
    assert (
        await api.post(LOGIN, json={"username": agency.username, "password": "a brand new passphrase 7"})
    ).status_code == 200


async def test_ggzy_accounts_password_names_the_policys_reasons(api: Api) -> None:
    import click

    from accounts.cli import password_over_http

    agency = await api.organisation("agency")
    with pytest.raises(click.ClickException) as refused:
        await password_over_http(api.client, agency.username, PASSWORD, "password12")
    assert refused.value.message == (
        "The password is too easy to guess: shorter than 15 characters; a commonly used password. "
        "(new_password: shorter than 15 characters; new_password: a commonly used password)"
    )
    for _ in range(FREE):
        await wrong(api, agency.username)
    with pytest.raises(click.ClickException, match="Try again in 60 seconds"):
        await password_over_http(api.client, agency.username, PASSWORD, "a brand new passphrase 7")


def test_ggzy_accounts_bootstrap_refuses_a_weak_password(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from ggzy import cli

    monkeypatch.setenv("GGZY_VAR_DIR", str(tmp_path))
    result = CliRunner().invoke(
        cli,
        [
            "accounts",
            "bootstrap",
            "--credit-code",
            credit_code(),
            "--username",
            "centre",
            "--password",
            "centre123456",
        ],
    )
    assert result.exit_code == 1
    assert "shorter than 15 characters" in result.output
    assert not (tmp_path / "ggzy.db").exists()
