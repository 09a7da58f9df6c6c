"""The expert pool (专家库): the specialty tree, imports, enrolment and approval, proposed changes,
relationships and unavailability, the credit record, and who may see and do what."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select

from evaluation import pool
from evaluation.models import Expert
from storage.db import transaction
from tests.evaluation.pool_fixtures import (
    BASE,
    XLSX,
    csv_file,
    enrol_expert,
    enrolment,
    expert_by_number,
    expert_row,
    expert_user,
    import_experts,
    import_file,
    seed_specialties,
    xlsx_file,
)
from tests.helpers import Api, credit_code, shanghai

PROBLEM_JSON = "application/problem+json"


def problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    return dict(r.json())


def errors(r: Any, status: int = 422) -> list[tuple[str, str]]:
    return [(e["field"], e["message"]) for e in problem(r, status)["errors"]]


async def expert_count(api: Api) -> int:
    async with api.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Expert)) or 0)


async def audit_actions(api: Api, expert_id: str) -> list[str]:
    r = await api.get(
        "/api/v1/audit",
        await api.bootstrap_centre(),
        params={"object_type": "expert", "object_id": expert_id, "limit": 50},
    )
    assert r.status_code == 200, r.text
    return sorted(e["action"] for e in r.json()["items"])


# ---------------------------------------------------------------- the specialty tree


async def test_the_default_specialty_tree_is_seeded_once(api: Api) -> None:
    assert await seed_specialties(api) == 25
    assert await seed_specialties(api) == 0
    r = await api.get(f"{BASE}/specialties", await api.bootstrap_centre())
    assert len(r.json()) == 25
    assert r.json()[:2] == [
        {"code": "A", "parent_code": None, "name": "工程 (works)", "active": True},
        {"code": "A01", "parent_code": "A", "name": "房屋建筑工程 (building construction)", "active": True},
    ]


async def test_the_centre_replaces_the_specialty_tree(api: Api) -> None:
    await seed_specialties(api)
    centre = await api.bootstrap_centre()
    tree = [
        {"code": "A", "name": "工程"},
        {"code": "A01", "parent_code": "A", "name": "房建"},
        {"code": "A0103", "parent_code": "A01", "name": "幕墙", "active": False},
    ]
    r = await api.client.put(f"{BASE}/specialties", json=tree, headers=centre.headers)
    assert r.status_code == 200, r.text
    assert r.json() == [
        {"code": "A", "parent_code": None, "name": "工程", "active": True},
        {"code": "A01", "parent_code": "A", "name": "房建", "active": True},
        {"code": "A0103", "parent_code": "A01", "name": "幕墙", "active": False},
    ]
    assert (await api.get(f"{BASE}/specialties", centre)).json() == r.json()


async def test_a_tree_with_a_missing_parent_a_non_prefix_parent_or_a_repeated_code_is_refused(
    api: Api,
) -> None:
    await seed_specialties(api)
    centre = await api.bootstrap_centre()
    tree = [
        {"code": "A", "name": "工程"},
        {"code": "B01", "parent_code": "B", "name": "信息技术设备"},
        {"code": "C01", "parent_code": "A", "name": "信息技术服务"},
        {"code": "A", "name": "工程 again"},
    ]
    r = await api.client.put(f"{BASE}/specialties", json=tree, headers=centre.headers)
    assert errors(r) == [
        ("[3].code", "repeats [0]"),
        ("[1].parent_code", "B is not in the tree"),
        ("[2].parent_code", "A is not a proper prefix of C01"),
    ]
    assert len((await api.get(f"{BASE}/specialties", centre)).json()) == 25


async def test_a_code_held_by_an_expert_can_be_deactivated_but_not_removed(api: Api) -> None:
    await enrol_expert(api, specialties=("A0102",))
    centre = await api.bootstrap_centre()
    tree = [
        {"code": c["code"], "parent_code": c["parent_code"], "name": c["name"], "active": c["active"]}
        for c in (await api.get(f"{BASE}/specialties", centre)).json()
    ]
    without = [c for c in tree if c["code"] != "A0102"]
    r = await api.client.put(f"{BASE}/specialties", json=without, headers=centre.headers)
    assert (problem(r, 409)["errors"]) == [{"field": "body", "message": "A0102 is held by experts"}]
    inactive = [{**c, "active": c["code"] != "A0102"} for c in tree]
    r = await api.client.put(f"{BASE}/specialties", json=inactive, headers=centre.headers)
    assert r.status_code == 200, r.text
    newcomer = await expert_user(api)
    r = await api.post(f"{BASE}/me/enrol", newcomer, json=enrolment(specialties=["A0101", "A0102"]))
    assert errors(r) == [("specialties[1]", "A0102 is no longer in use (inactive)")]


# ---------------------------------------------------------------- import


async def test_a_csv_import_creates_numbered_active_experts(api: Api) -> None:
    rows = [expert_row(name="李明"), expert_row(name="张红", specialties="B01", phone=None)]
    assert await import_experts(api, rows) == {"created": 2, "updated": 0, "unchanged": 0}
    li = await expert_by_number(api, "E000001")
    assert {k: li[k] for k in ("name", "employer_credit_code", "specialties", "status", "phone")} == {
        "name": "李明",
        "employer_credit_code": rows[0]["employer_credit_code"],
        "specialties": ["A0101", "D01"],
        "status": "active",
        "phone": rows[0]["phone"],
    }
    zhang = await expert_by_number(api, "E000002")
    assert (zhang["name"], zhang["specialties"], zhang["phone"], zhang["term_end"]) == (
        "张红",
        ["B01"],
        None,
        "2028-12-31",
    )


async def test_an_xlsx_import_reads_number_and_date_cells(api: Api) -> None:
    await seed_specialties(api)
    row = expert_row(
        name="赵磊",
        region_code=320100,  # a number cell
        phone=13912345678,
        term_start=date(2026, 1, 1),  # date cells
        term_end=datetime(2027, 12, 31),
    )
    r = await import_file(api, xlsx_file([row]), XLSX)
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 1, "updated": 0, "unchanged": 0}
    zhao = await expert_by_number(api, "E000001")
    assert (zhao["region_code"], zhao["phone"], zhao["term_start"], zhao["term_end"]) == (
        "320100",
        "13912345678",
        "2026-01-01",
        "2027-12-31",
    )


async def test_importing_the_same_file_again_changes_nothing(api: Api) -> None:
    await seed_specialties(api)
    employer = await api.organisation("employer")
    content = csv_file([expert_row(), expert_row(username=employer.username)])
    assert (await import_file(api, content)).json() == {"created": 2, "updated": 0, "unchanged": 0}
    before = (await api.get(f"{BASE}/experts", await api.bootstrap_centre())).json()
    r = await import_file(api, content)
    assert r.json() == {"created": 0, "updated": 0, "unchanged": 2}
    assert (await api.get(f"{BASE}/experts", await api.bootstrap_centre())).json() == before


async def test_an_import_updates_by_number_and_by_username(api: Api) -> None:
    user, expert_id = await enrol_expert(api)
    first = expert_row()
    await import_experts(api, [first])  # E000002 (the enrolled expert is E000001)
    rows = [
        {**first, "number": "E000002", "title": "正高级工程师", "specialties": "D01"},
        expert_row(username=user.username, name="王建国", status="suspended"),
    ]
    assert await import_experts(api, rows) == {"created": 0, "updated": 2, "unchanged": 0}
    second = await expert_by_number(api, "E000002")
    assert (second["title"], second["specialties"]) == ("正高级工程师", ["D01"])
    mine = (await api.get(f"{BASE}/me", user)).json()
    assert (mine["id"], mine["status"], mine["employer_name"]) == (
        expert_id,
        "suspended",
        rows[1]["employer_name"],
    )


async def test_bad_rows_refuse_the_whole_file_naming_each_cell(api: Api) -> None:
    await seed_specialties(api)
    bidder = await api.organisation("bidder")
    rows = [
        expert_row(),
        expert_row(employer_credit_code="91320100000000000X", region_code="3201"),
        expert_row(status="sleeping", term_start="2026-13-01"),
        expert_row(username="nobody"),
        expert_row(number="E123456"),
        expert_row(username=bidder.username),
        expert_row(name=None, email="not-an-email"),
        expert_row(specialties="A0101;Z99"),
    ]
    rows.append(dict(rows[0]))  # the same person twice
    r = await import_file(api, csv_file(rows))
    body = problem(r, 422)
    assert (body["detail"], body["error_count"]) == ("Nothing was imported: 11 problems in the file.", 11)
    assert [(e["field"], e["message"]) for e in body["errors"]] == [
        ("rows[3].region_code", "malformed"),
        ("rows[3].employer_credit_code", "wrong check character: expected '5' at position 18, got 'X'"),
        ("rows[4].status", "one of active, suspended, retired"),
        ("rows[4].term_start", "not a date YYYY-MM-DD"),
        ("rows[5].username", "no user is named nobody"),
        ("rows[6].number", "no expert has the number E123456"),
        ("rows[7].username", f"{bidder.username} does not hold the expert role"),
        ("rows[8].name", "required"),
        ("rows[8].email", "malformed"),
        ("rows[9].specialties", "Z99 is not in the specialty tree"),
        ("rows[10]", "the same expert as rows[2]"),
    ]
    assert await expert_count(api) == 0


async def test_a_file_that_is_not_csv_or_xlsx_is_refused_with_415(api: Api) -> None:
    r = await import_file(api, b'{"rows": []}', "application/json")
    assert problem(r, 415)["type"] == "tag:ggzy,2026:problem/unsupported-media-type"


async def test_a_header_missing_a_required_column_or_naming_an_unknown_one_is_refused(api: Api) -> None:
    await seed_specialties(api)
    row = {**expert_row(), "salary": "100"}
    columns = [c for c in (*pool.IMPORT_COLUMNS, "salary") if c in row and c != "title"]
    r = await import_file(api, csv_file([row], columns))
    assert errors(r) == [("header[10]", "unknown column 'salary'"), ("header.title", "missing column")]


async def test_a_workbook_that_is_not_one_is_refused_naming_the_body(api: Api) -> None:
    r = await import_file(api, b"PK\x03\x04 not really a zip", XLSX)
    assert errors(r) == [("body", "not an .xlsx workbook")]


# ---------------------------------------------------------------- listing


async def test_experts_are_filtered_by_status_specialty_prefix_employer_and_name(api: Api) -> None:
    code = credit_code()
    await import_experts(
        api,
        [
            expert_row(name="陈静", specialties="A0201", employer_credit_code=code),
            expert_row(name="陈刚", specialties="B02", status="suspended", employer_credit_code=code),
            expert_row(name="周敏", specialties="A0101"),
        ],
    )
    auditor = await api.organisation("auditor")

    async def numbers(**params: str) -> list[str]:
        r = await api.get(f"{BASE}/experts", auditor, params=params)
        assert r.status_code == 200, r.text
        return [e["number"] for e in r.json()["items"]]

    assert await numbers(status="suspended") == ["E000002"]
    assert await numbers(specialty="A") == ["E000001", "E000003"]
    assert await numbers(specialty="A02") == ["E000001"]
    assert await numbers(employer_credit_code=code) == ["E000001", "E000002"]
    assert await numbers(q="陈") == ["E000001", "E000002"]
    assert await numbers(q="%") == []
    assert await numbers(q="陈", specialty="B") == ["E000002"]


async def test_the_expert_list_pages_by_number(api: Api) -> None:
    await import_experts(api, [expert_row() for _ in range(5)])
    centre = await api.bootstrap_centre()
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.get(f"{BASE}/experts", centre, params=params)).json()
        seen += [e["number"] for e in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ["E000001", "E000002", "E000003", "E000004", "E000005"]
    assert cursor is None


async def test_a_malformed_cursor_or_filter_is_refused_naming_it(api: Api) -> None:
    centre = await api.bootstrap_centre()
    r = await api.get(f"{BASE}/experts", centre, params={"cursor": "bm90LWEtbnVtYmVy"})
    assert errors(r) == [("cursor", "malformed cursor")]
    r = await api.get(f"{BASE}/experts", centre, params={"specialty": "a%"})
    assert errors(r) == [("specialty", "not a code")]


# ---------------------------------------------------------------- the centre's changes


async def test_the_centre_suspends_an_expert_naming_the_version_it_read(api: Api) -> None:
    _user, expert_id = await enrol_expert(api)
    centre = await api.bootstrap_centre()
    read = await api.get(f"{BASE}/experts/{expert_id}", centre)
    r = await api.patch(
        f"{BASE}/experts/{expert_id}",
        centre,
        json={"status": "suspended", "term_end": "2027-06-30"},
        headers={"If-Match": read.headers["etag"]},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["term_end"]) == ("suspended", "2027-06-30")
    assert r.headers["etag"] == f'"{read.json()["version"] + 1}"'


async def test_a_stale_if_match_is_refused_with_412_and_changes_nothing(api: Api) -> None:
    _user, expert_id = await enrol_expert(api)
    centre = await api.bootstrap_centre()
    etag = (await api.get(f"{BASE}/experts/{expert_id}", centre)).headers["etag"]
    url = f"{BASE}/experts/{expert_id}"
    assert (
        await api.patch(url, centre, json={"status": "suspended"}, headers={"If-Match": etag})
    ).status_code == 200
    r = await api.patch(url, centre, json={"status": "retired"}, headers={"If-Match": etag})
    problem(r, 412)
    assert (await api.get(url, centre)).json()["status"] == "suspended"


async def test_a_patch_without_if_match_is_refused_with_428(api: Api) -> None:
    _user, expert_id = await enrol_expert(api)
    r = await api.patch(
        f"{BASE}/experts/{expert_id}", await api.bootstrap_centre(), json={"status": "retired"}
    )
    problem(r, 428)


async def test_a_pending_expert_cannot_be_made_active_by_a_patch(api: Api) -> None:
    _user, expert_id = await enrol_expert(api, approve=False)
    r = await api.patch(
        f"{BASE}/experts/{expert_id}",
        await api.bootstrap_centre(),
        json={"status": "active"},
        headers={"If-Match": '"1"'},
    )
    assert (
        problem(r, 409)["detail"]
        == "An expert who is pending cannot become active here; allowed now: nothing."
    )


# ---------------------------------------------------------------- enrolment and approval


async def test_an_enrolled_expert_is_pending_until_the_centre_approves(api: Api) -> None:
    user, expert_id = await enrol_expert(api, approve=False)
    orgs = (await api.get("/api/v1/organisations", await api.bootstrap_centre())).json()
    [employer] = [o for o in orgs if o["id"] == user.organisation_id]
    mine = (await api.get(f"{BASE}/me", user)).json()
    assert {
        k: mine[k] for k in ("number", "status", "approved_at", "employer_credit_code", "employer_name")
    } == {
        "number": "E000001",
        "status": "pending",
        "approved_at": None,
        "employer_credit_code": user.credit_code,
        "employer_name": employer["name"],
    }
    r = await api.post(f"{BASE}/experts/{expert_id}/approve", await api.bootstrap_centre())
    assert (r.json()["status"], r.json()["approved_at"]) == (
        "active",
        api.clock.now().isoformat().replace("+00:00", "Z"),
    )


async def test_enrolling_twice_is_a_conflict(api: Api) -> None:
    user, _expert_id = await enrol_expert(api)
    r = await api.post(f"{BASE}/me/enrol", user, json=enrolment())
    assert problem(r, 409)["detail"] == "You already have an expert profile (E000001, active)."


async def test_a_rejected_enrolment_shows_the_reason_and_may_be_made_again(api: Api) -> None:
    user, expert_id = await enrol_expert(api, approve=False)
    centre = await api.bootstrap_centre()
    r = await api.post(f"{BASE}/experts/{expert_id}/reject", centre, json={"reason": "职称证书未上传"})
    assert r.status_code == 200, r.text
    mine = (await api.get(f"{BASE}/me", user)).json()
    assert (mine["status"], mine["rejection"]["reason"]) == ("rejected", "职称证书未上传")
    r = await api.post(f"{BASE}/me/enrol", user, json=enrolment(title="正高级工程师"))
    assert r.status_code == 201, r.text
    assert (r.json()["id"], r.json()["number"], r.json()["status"], r.json()["rejection"]) == (
        expert_id,
        "E000001",
        "pending",
        None,
    )


async def test_profile_changes_wait_for_the_centres_approval(api: Api) -> None:
    user, expert_id = await enrol_expert(api)
    centre = await api.bootstrap_centre()
    r = await api.patch(f"{BASE}/me", user, json={"title": "正高级工程师", "specialties": ["A0101", "D01"]})
    assert r.status_code == 200, r.text
    assert r.json()["pending_changes"] == {"title": "正高级工程师", "specialties": ["A0101", "D01"]}
    before = (await api.get(f"{BASE}/experts/{expert_id}", centre)).json()
    assert (before["title"], before["specialties"]) == ("高级工程师", ["A0101"])
    r = await api.post(f"{BASE}/experts/{expert_id}/approve", centre)
    assert (r.json()["title"], r.json()["specialties"], r.json()["pending_changes"]) == (
        "正高级工程师",
        ["A0101", "D01"],
        None,
    )


async def test_an_application_awaiting_approval_is_edited_in_place(api: Api) -> None:
    user, _expert_id = await enrol_expert(api, approve=False)
    r = await api.patch(f"{BASE}/me", user, json={"title": "教授级高工"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["pending_changes"], r.headers["etag"]) == ("教授级高工", None, '"2"')


async def test_rejected_changes_are_dropped_with_the_reason(api: Api) -> None:
    user, expert_id = await enrol_expert(api)
    await api.patch(f"{BASE}/me", user, json={"phone": "13700000000"})
    r = await api.post(
        f"{BASE}/experts/{expert_id}/reject", await api.bootstrap_centre(), json={"reason": "号码无法接通"}
    )
    mine = (await api.get(f"{BASE}/me", user)).json()
    assert (r.status_code, mine["phone"], mine["pending_changes"], mine["rejection"]["reason"]) == (
        200,
        "13800138000",
        None,
        "号码无法接通",
    )


async def test_approving_with_nothing_pending_is_a_conflict(api: Api) -> None:
    _user, expert_id = await enrol_expert(api)
    r = await api.post(f"{BASE}/experts/{expert_id}/approve", await api.bootstrap_centre())
    assert problem(r, 409)["detail"] == "Expert E000001 has nothing awaiting approval."


# ---------------------------------------------------------------- relationships and unavailability


async def test_a_declared_relationship_takes_effect_at_once(api: Api) -> None:
    user, expert_id = await enrol_expert(api)
    former = credit_code()
    r = await api.post(
        f"{BASE}/me/relationships",
        user,
        json={
            "kind": "former_employer",
            "credit_code": former,
            "organisation_name": "南京市政设计院",
            "start_on": "2015-07-01",
            "end_on": "2024-06-30",
        },
    )
    assert r.status_code == 201, r.text
    seen = (await api.get(f"{BASE}/experts/{expert_id}", await api.organisation("supervisor"))).json()
    assert [(x["kind"], x["credit_code"], x["end_on"]) for x in seen["relationships"]] == [
        ("former_employer", former, "2024-06-30")
    ]


async def test_a_relationship_with_a_bad_credit_code_or_no_relation_is_refused(api: Api) -> None:
    user, _expert_id = await enrol_expert(api)
    body = {"kind": "relative", "credit_code": credit_code(), "organisation_name": "某建设公司"}
    assert errors(await api.post(f"{BASE}/me/relationships", user, json=body)) == [
        ("relation", "required for relative")
    ]
    r = await api.post(
        f"{BASE}/me/relationships", user, json={**body, "relation": "配偶", "credit_code": "123"}
    )
    assert errors(r) == [("credit_code", "wrong length: expected 18 characters, got 3")]


async def test_unavailability_is_refused_in_the_past_backwards_or_over_366_days(api: Api) -> None:
    user, _expert_id = await enrol_expert(api)  # today is 2026-03-02 in Shanghai
    url = f"{BASE}/me/unavailability"
    cases = [
        ({"start_on": "2026-03-01", "end_on": "2026-03-05"}, [("start_on", "in the past")]),
        ({"start_on": "2026-03-10", "end_on": "2026-03-09"}, [("end_on", "before start_on")]),
        (
            {"start_on": "2026-03-02", "end_on": "2027-03-03"},
            [("end_on", "more than 366 days after start_on")],
        ),
    ]
    for body, expected in cases:
        assert errors(await api.post(url, user, json=body)) == expected
    r = await api.post(
        url, user, json={"start_on": "2026-03-02", "end_on": "2027-03-02", "reason": "出国访学"}
    )
    assert (r.status_code, r.json()["end_on"]) == (201, "2027-03-02")


async def test_an_expert_withdraws_their_own_unavailability_but_not_anothers(api: Api) -> None:
    user, _expert_id = await enrol_expert(api)
    other, _ = await enrol_expert(api)
    r = await api.post(
        f"{BASE}/me/unavailability", user, json={"start_on": "2026-04-01", "end_on": "2026-04-03"}
    )
    period = r.json()["id"]
    problem(await api.client.delete(f"{BASE}/me/unavailability/{period}", headers=other.headers), 404)
    r = await api.client.delete(f"{BASE}/me/unavailability/{period}", headers=user.headers)
    assert r.status_code == 204
    assert (await api.get(f"{BASE}/me", user)).json()["unavailability"] == []


# ---------------------------------------------------------------- the credit record


async def test_the_credit_score_counts_the_points_of_the_last_two_years(api: Api) -> None:
    _user, expert_id = await enrol_expert(api)
    async with transaction(api.runtime.sessionmaker) as session:
        for instant, kind in [
            (shanghai(2024, 3, 2, 12), "absent"),  # two years before 2026-03-02: no longer counted
            (shanghai(2024, 3, 3, 12), "complaint_upheld"),
            (shanghai(2026, 2, 27, 12), "late"),
            (shanghai(2026, 3, 2, 8), "declined"),
        ]:
            await pool.record_credit(session, None, uuid.UUID(expert_id), kind, None, None, instant)
        assert await pool.credit_score(session, uuid.UUID(expert_id), date(2026, 3, 2)) == 100 - 10 - 2 - 1
        assert await pool.credit_score(session, uuid.UUID(expert_id), date(2026, 3, 1)) == 100 - 10 - 10 - 2
        assert await pool.credit_score(session, uuid.UUID(expert_id), date(2028, 3, 2)) == 100


async def test_the_score_never_falls_below_zero(api: Api) -> None:
    _user, expert_id = await enrol_expert(api)
    async with transaction(api.runtime.sessionmaker) as session:
        for _ in range(11):
            await pool.record_credit(
                session, None, uuid.UUID(expert_id), "absent", None, None, api.clock.now()
            )
        assert await pool.credit_score(session, uuid.UUID(expert_id), date(2026, 3, 2)) == 0


async def test_credit_scores_of_the_whole_pool_take_one_grouped_query(api: Api) -> None:
    await import_experts(api, [expert_row() for _ in range(3)])
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async with transaction(api.runtime.sessionmaker) as session:
        ids = list(await session.scalars(select(Expert.id).order_by(Expert.number)))
        await pool.record_credit(session, None, ids[0], "late", None, None, api.clock.now())
        await pool.record_credit(session, None, ids[2], "no_response", None, None, api.clock.now())
        await session.flush()
        engine = api.runtime.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            scores = await pool.credit_scores(session, None, date(2026, 3, 2))
            chosen = await pool.credit_scores(session, ids[1:], date(2026, 3, 2))
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert scores == {ids[0]: 98, ids[1]: 100, ids[2]: 98}
    assert chosen == {ids[1]: 100, ids[2]: 98}
    assert len(statements) == 2 and all("GROUP BY" in s for s in statements)


async def test_the_centre_records_an_upheld_complaint_and_other_points(api: Api) -> None:
    user, expert_id = await enrol_expert(api)
    centre = await api.bootstrap_centre()
    url = f"{BASE}/experts/{expert_id}/credit"
    r = await api.post(
        url, centre, json={"kind": "complaint_upheld", "note": "投诉成立：评分明显偏向某投标人"}
    )
    assert (r.status_code, r.json()["score"]) == (201, 90)
    api.clock.advance(timedelta(hours=1))
    r = await api.post(url, centre, json={"kind": "other", "points": 5, "note": "评审中接打私人电话多次"})
    assert r.json()["score"] == 85
    assert [(e["kind"], e["points"], e["recorded_by"], e["counted"]) for e in r.json()["events"]] == [
        ("other", 5, "centre", True),
        ("complaint_upheld", 10, "centre", True),
    ]
    mine = (await api.get(f"{BASE}/me/credit", user)).json()
    assert (mine["score"], len(mine["events"])) == (85, 2)


async def test_other_credit_needs_points_and_fixed_kinds_take_none(api: Api) -> None:
    _user, expert_id = await enrol_expert(api)
    centre = await api.bootstrap_centre()
    url = f"{BASE}/experts/{expert_id}/credit"
    note = "评审中接打私人电话多次"
    assert errors(await api.post(url, centre, json={"kind": "other", "note": note})) == [
        ("points", "required, 1 to 20")
    ]
    r = await api.post(url, centre, json={"kind": "late", "points": 5, "note": note})
    assert errors(r) == [("points", "only for other")]
    assert [
        e["field"]
        for e in problem(await api.post(url, centre, json={"kind": "late", "note": "迟到"}), 400)["errors"]
    ] == ["note"]
    r = await api.post(url, centre, json={"kind": "late", "note": note, "tender_id": str(uuid.uuid4())})
    assert errors(r) == [("tender_id", "no such tender")]


# ---------------------------------------------------------------- who sees and does what


async def test_supervisors_and_auditors_see_no_phone_or_email(api: Api) -> None:
    user, expert_id = await enrol_expert(api)
    await api.patch(f"{BASE}/me", user, json={"email": "new@example.cn", "title": "教授级高工"})
    centre = await api.bootstrap_centre()
    for reader in (await api.organisation("auditor"), await api.organisation("supervisor")):
        one = (await api.get(f"{BASE}/experts/{expert_id}", reader)).json()
        [listed] = (await api.get(f"{BASE}/experts", reader)).json()["items"]
        assert (one["phone"], one["email"], listed["phone"], listed["email"]) == (None, None, None, None)
        assert one["pending_changes"] == {"email": None, "title": "教授级高工"}
    seen = (await api.get(f"{BASE}/experts/{expert_id}", centre)).json()
    assert (seen["phone"], seen["pending_changes"]["email"]) == ("13800138000", "new@example.cn")


async def test_an_expert_cannot_read_the_pool_or_change_experts(api: Api) -> None:
    user, expert_id = await enrol_expert(api)
    attempts = [
        await api.get(f"{BASE}/experts", user),
        await api.get(f"{BASE}/experts/{expert_id}", user),
        await api.get(f"{BASE}/experts/{expert_id}/credit", user),
        await api.post(f"{BASE}/experts/{expert_id}/approve", user),
        await api.patch(
            f"{BASE}/experts/{expert_id}", user, json={"status": "active"}, headers={"If-Match": '"2"'}
        ),
        await api.client.put(f"{BASE}/specialties", json=[], headers=user.headers),
        await api.client.post(
            f"{BASE}/experts/import", content=b"name\n", headers={**user.headers, "content-type": "text/csv"}
        ),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)


async def test_a_supervisor_cannot_approve_or_record_credit(api: Api) -> None:
    _user, expert_id = await enrol_expert(api, approve=False)
    supervisor = await api.organisation("supervisor")
    attempts = [
        await api.post(f"{BASE}/experts/{expert_id}/approve", supervisor),
        await api.post(
            f"{BASE}/experts/{expert_id}/credit",
            supervisor,
            json={"kind": "late", "note": "迟到三十分钟以上"},
        ),
    ]
    assert [r.status_code for r in attempts] == [403, 403]
    assert (await api.get(f"{BASE}/experts/{expert_id}", supervisor)).json()["status"] == "pending"


async def test_a_user_without_the_expert_role_has_no_profile_routes(api: Api) -> None:
    bidder = await api.organisation("bidder")
    assert (await api.post(f"{BASE}/me/enrol", bidder, json=enrolment())).status_code == 403
    assert (await api.get(f"{BASE}/me", bidder)).status_code == 403


async def test_an_expert_without_a_profile_is_told_to_enrol(api: Api) -> None:
    user = await expert_user(api)
    assert problem(await api.get(f"{BASE}/me", user), 404)["detail"].startswith(
        "You have no expert profile yet"
    )


async def test_every_change_is_in_the_audit_trail(api: Api) -> None:
    user, expert_id = await enrol_expert(api)
    await api.patch(f"{BASE}/me", user, json={"title": "教授级高工"})
    await api.post(f"{BASE}/experts/{expert_id}/approve", await api.bootstrap_centre())
    await api.post(f"{BASE}/me/unavailability", user, json={"start_on": "2026-04-01", "end_on": "2026-04-03"})
    assert await audit_actions(api, expert_id) == [
        "expert.approve",
        "expert.approve",
        "expert.declare_unavailability",
        "expert.enrol",
        "expert.propose",
    ]
