"""The trading centre's own steps before a trade starts: project acceptance (项目受理), the review of tender
notices (公告审核) and the booking of its rooms (场地预约), each with the attacks on it."""

from __future__ import annotations

from typing import Any

from httpx import Response

from tests.helpers import Actor, Api, shanghai

T = "/api/v1/tenders"
P = "/api/v1/projects"
PROJECT = {
    "name": "城南污水处理厂提标改造工程",
    "sector": "works",
    "funding_source": "市级财政资金",
    "approval_number": "宁发改审批〔2026〕18号",
}


def problem(r: Response, status: int, field: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem of `status`, naming `field` when given."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body


async def board(api: Api, code: str) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/notices", params={"tender_code": code})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def submitted(api: Api, agency: Actor, **overrides: Any) -> dict[str, Any]:
    """A draft with its documents, its notice submitted for the centre's review."""
    draft = await api.draft(agency, **overrides)
    await api.document(agency, draft["id"], b"%PDF-1.7 tender documents")
    r = await api.post(f"{T}/{draft['id']}/publish", agency)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def decide(api: Api, tender_id: str, decision: str, reasons: str | None = None) -> Response:
    centre = await api.bootstrap_centre()
    body = {"decision": decision} | ({"reasons": reasons} if reasons else {})
    return await api.post(f"{T}/{tender_id}/review", centre, json=body)


async def rooms(api: Api, kind: str) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/venues", await api.bootstrap_centre())
    assert r.status_code == 200, r.text
    return [v for v in r.json() if v["kind"] == kind]


async def only_room(api: Api, kind: str, capacity: int) -> None:
    """The centre lists its one room of `kind`, holding `capacity` sessions, before any is booked."""
    room = {"name": f"{kind} room", "kind": kind, "capacity": capacity}
    r = await api.post("/api/v1/venues", await api.bootstrap_centre(), json=room)
    assert r.status_code == 201 and r.json()["capacity"] == capacity, r.text


# ---------------------------------------------------------------- project acceptance (项目受理)


async def test_a_tender_of_a_refused_project_cannot_be_published(api: Api) -> None:
    agency, centre = await api.organisation("agency"), await api.bootstrap_centre()
    project = (await api.post(P, agency, json=PROJECT)).json()
    assert project["status"] == "pending"
    r = await api.post(
        f"{P}/{project['id']}/decision", centre, json={"decision": "refused", "reasons": "批复过期"}
    )
    assert r.status_code == 200 and r.json()["status"] == "refused" and r.json()["reasons"] == "批复过期", (
        r.text
    )
    draft = await api.draft(agency, project_id=project["id"])
    await api.document(agency, draft["id"], b"%PDF-1.7 tender documents")

    body = problem(await api.post(f"{T}/{draft['id']}/publish", agency), 409, "project_id")

    assert "refused" in body["detail"] and "批复过期" in body["detail"]
    assert (await api.get(f"{T}/{draft['id']}", agency)).json()["review"] is None
    assert await board(api, draft["code"]) == []


async def test_a_tender_of_a_pending_project_or_of_none_cannot_be_published(api: Api) -> None:
    agency = await api.organisation("agency")
    pending = await api.project(agency, accept=False)
    for project_id in (pending, None):
        draft = await api.draft(agency, project_id=project_id)
        await api.document(agency, draft["id"], b"%PDF-1.7 tender documents")
        problem(await api.post(f"{T}/{draft['id']}/publish", agency), 409, "project_id")


async def test_a_tender_is_created_only_under_its_own_agencys_project_of_its_sector(api: Api) -> None:
    agency, other = await api.organisation("agency"), await api.organisation("agency")
    foreign = await api.project(other)
    problem(await api.post(T, agency, json=api.tender_body(project_id=foreign)), 422, "project_id")
    procurement = await api.project(agency, "procurement")
    problem(await api.post(T, agency, json=api.tender_body(project_id=procurement)), 422, "project_id")


async def test_a_procurement_project_names_its_procurement_plan(api: Api) -> None:
    agency = await api.organisation("agency")
    r = await api.post(P, agency, json=PROJECT | {"sector": "procurement"})
    problem(r, 422, "procurement_plan_number")
    r = await api.post(
        P, agency, json=PROJECT | {"sector": "procurement", "procurement_plan_number": "NJCG-1"}
    )
    assert r.status_code == 201 and r.json()["procurement_plan_number"] == "NJCG-1", r.text


async def test_an_approval_document_must_be_an_upload_of_the_agency(api: Api) -> None:
    agency = await api.organisation("agency")
    foreign = "tenders/GGZY-320100-2026-W000001/documents/00000000-0000-0000-0000-000000000000/x-a.pdf"
    problem(await api.post(P, agency, json=PROJECT | {"documents": [foreign]}), 422, "documents")
    missing = f"tenders/GGZY-320100-2026-W000001/documents/{agency.organisation_id}/x-a.pdf"
    problem(await api.post(P, agency, json=PROJECT | {"documents": [missing]}), 422, "documents")


async def test_the_centre_refuses_a_project_only_with_reasons_and_decides_once(api: Api) -> None:
    agency, centre = await api.organisation("agency"), await api.bootstrap_centre()
    project = await api.project(agency, accept=False)
    problem(await api.post(f"{P}/{project}/decision", centre, json={"decision": "refused"}), 422, "reasons")
    assert (
        await api.post(f"{P}/{project}/decision", centre, json={"decision": "accepted"})
    ).status_code == 200
    problem(
        await api.post(f"{P}/{project}/decision", centre, json={"decision": "refused", "reasons": "x"}), 409
    )


async def test_an_agency_sees_its_own_projects_and_the_overseers_see_all(api: Api) -> None:
    agency, other = await api.organisation("agency"), await api.organisation("agency")
    mine, theirs = await api.project(agency), await api.project(other)
    listed = (await api.get(P, agency)).json()["items"]
    assert [p["id"] for p in listed] == [mine]
    problem(await api.get(f"{P}/{theirs}", agency), 404)
    for watcher in (await api.bootstrap_centre(), await api.organisation("supervisor")):
        assert {p["id"] for p in (await api.get(P, watcher)).json()["items"]} == {mine, theirs}
        assert (await api.get(f"{P}/{theirs}", watcher)).json()["status"] == "accepted"


async def test_a_bidder_cannot_see_projects(api: Api) -> None:
    agency, bidder = await api.organisation("agency"), await api.organisation("bidder")
    project = await api.project(agency)
    problem(await api.get(P, bidder), 403)
    problem(await api.get(f"{P}/{project}", bidder), 404)
    problem(await api.post(P, bidder, json=PROJECT), 403)
    problem(await api.get(P), 401)


async def test_only_the_centre_decides_on_a_project(api: Api) -> None:
    agency = await api.organisation("agency")
    project = await api.project(agency, accept=False)
    for actor in (agency, await api.organisation("supervisor"), await api.organisation("bidder")):
        problem(await api.post(f"{P}/{project}/decision", actor, json={"decision": "accepted"}), 403)
    assert (await api.get(f"{P}/{project}", agency)).json()["status"] == "pending"


# ---------------------------------------------------------------- notice review (公告审核)


async def test_a_submitted_notice_approved_by_the_centre_is_published_at_the_approval(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await submitted(api, agency)
    assert tender["status"] == "draft" and tender["published_at"] is None
    assert tender["review"]["status"] == "pending" and tender["review"]["due_on"] == "2026-03-04"
    api.clock.set(shanghai(2026, 3, 2, 15))

    r = await decide(api, tender["id"], "approved")

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "tendering" and r.json()["review"]["status"] == "approved"
    assert r.json()["published_at"] == r.json()["documents_from"] == "2026-03-02T07:00:00Z"
    await api.run_jobs()
    assert [n["kind"] for n in await board(api, tender["code"])] == ["tender_notice"]
    bidder = await api.organisation("bidder")
    assert (await api.get(f"{T}/{tender['id']}", bidder)).json()["status"] == "tendering"


async def test_a_notice_under_review_is_neither_on_the_board_nor_readable_by_bidders_or_the_public(
    api: Api,
) -> None:
    agency, bidder = await api.organisation("agency"), await api.organisation("bidder")
    tender = await submitted(api, agency)
    await api.run_jobs()

    assert await board(api, tender["code"]) == []
    problem(await api.get(f"{T}/{tender['id']}", bidder), 404)
    problem(await api.get(f"{T}/{tender['id']}"), 404)
    assert tender["id"] not in [t["id"] for t in (await api.get(T)).json()["items"]]
    problem(await api.post(f"{T}/{tender['id']}/documents/obtain", bidder), 404)


async def test_a_notice_under_review_is_neither_edited_nor_submitted_twice(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await submitted(api, agency)
    assert "publish" not in tender["allowed_actions"] and "cancel" in tender["allowed_actions"]
    etag = (await api.get(f"{T}/{tender['id']}", agency)).headers["ETag"]
    problem(
        await api.patch(f"{T}/{tender['id']}", agency, json={"title": "改标题"}, headers={"If-Match": etag}),
        409,
        "review",
    )
    problem(await api.post(f"{T}/{tender['id']}/publish", agency), 409, "review")


async def test_a_refused_notice_stays_a_draft_and_is_published_once_fixed_and_resubmitted(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await submitted(api, agency)
    problem(await decide(api, tender["id"], "refused"), 422, "reasons")

    r = await decide(api, tender["id"], "refused", "资格条件设置不合理")

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "draft"
    assert r.json()["review"]["status"] == "refused" and r.json()["review"]["reasons"] == "资格条件设置不合理"
    await api.run_jobs()
    assert await board(api, tender["code"]) == []
    problem(await decide(api, tender["id"], "approved"), 409)
    etag = (await api.get(f"{T}/{tender['id']}", agency)).headers["ETag"]
    fixed = await api.patch(
        f"{T}/{tender['id']}",
        agency,
        json={"qualification": "市政公用工程施工总承包三级及以上资质"},
        headers={"If-Match": etag},
    )
    assert fixed.status_code == 200, fixed.text
    r = await api.publish(agency, tender["id"])
    assert r.status_code == 200 and r.json()["status"] == "tendering", r.text
    await api.run_jobs()
    [notice] = await board(api, tender["code"])
    assert notice["body"]["qualification"] == "市政公用工程施工总承包三级及以上资质"


async def test_the_agency_cannot_approve_its_own_notice(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await submitted(api, agency)
    for actor in (agency, await api.organisation("supervisor"), await api.organisation("bidder")):
        problem(await api.post(f"{T}/{tender['id']}/review", actor, json={"decision": "approved"}), 403)
    assert (await api.get(f"{T}/{tender['id']}", agency)).json()["status"] == "draft"
    problem(await api.get("/api/v1/reviews", agency), 403)
    [pending] = (await api.get("/api/v1/reviews", await api.bootstrap_centre())).json()
    assert pending["tender_id"] == tender["id"]


async def test_the_approval_runs_every_publishing_check_again_at_its_own_instant(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await submitted(api, agency)  # bids close Mon 03-23: 20 days from Mon 03-02
    api.clock.set(shanghai(2026, 3, 4, 9))  # from Wed 03-04 the earliest lawful deadline is Tue 03-24

    body = problem(await decide(api, tender["id"], "approved"), 422)

    assert body["rule"] == "W-01" and body["earliest_deadline_day"] == "2026-03-24"
    state = (await api.get(f"{T}/{tender['id']}", agency)).json()
    assert state["status"] == "draft" and state["review"]["status"] == "pending"
    assert await board(api, tender["code"]) == []


async def test_the_review_shows_its_due_day_and_light_among_the_deadlines(api: Api) -> None:
    agency, centre = await api.organisation("agency"), await api.bootstrap_centre()
    tender = await submitted(api, agency)

    [due] = (await api.get("/api/v1/supervision/deadlines", centre)).json()
    assert (due["tender_id"], due["step"], due["by"], due["due"], due["light"]) == (
        tender["id"],
        "review",
        "centre",
        "2026-03-04",
        "green",
    )
    api.clock.set(shanghai(2026, 3, 5, 9))
    [late] = (await api.get(f"{T}/{tender['id']}/deadlines", agency)).json()
    assert late["light"] == "red"
    assert (await decide(api, tender["id"], "refused", "公告内容不完整")).status_code == 200
    assert (await api.get("/api/v1/supervision/deadlines", centre)).json() == []


async def test_a_draft_terminated_under_review_leaves_nothing_to_review(api: Api) -> None:
    agency, centre = await api.organisation("agency"), await api.bootstrap_centre()
    tender = await submitted(api, agency)
    r = await api.post(f"{T}/{tender['id']}/cancel", agency, json={"reason": "项目调整"})
    assert r.status_code == 200 and r.json()["review"]["status"] == "withdrawn", r.text

    problem(await decide(api, tender["id"], "approved"), 409)
    assert (await api.get("/api/v1/reviews", centre)).json() == []
    assert (await api.get("/api/v1/supervision/deadlines", centre)).json() == []


# ---------------------------------------------------------------- venue booking (场地预约)


async def test_an_opening_beyond_the_halls_capacity_is_refused_naming_the_deadline(api: Api) -> None:
    agency = await api.organisation("agency")
    await only_room(api, "opening", 1)
    first = await api.published(agency)
    second = await submitted(api, agency)

    problem(await decide(api, second["id"], "approved"), 409, "bid_deadline")

    assert (await api.get(f"{T}/{second['id']}", agency)).json()["status"] == "draft"
    assert await board(api, second["code"]) == []
    later = await submitted(api, agency, bid_deadline="2026-03-23T11:00:00+08:00")
    assert (await decide(api, later["id"], "approved")).status_code == 200
    assert first["status"] == "tendering"


async def test_an_evaluation_booking_that_clashes_beyond_capacity_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    await only_room(api, "evaluation", 1)
    first, second = await api.published(agency), await api.published(agency)
    day = {"starts_at": "2026-03-24T09:00:00+08:00", "ends_at": "2026-03-24T17:00:00+08:00"}
    r = await api.post(f"{T}/{first['id']}/bookings", agency, json=day)
    assert r.status_code == 201 and r.json()["kind"] == "evaluation", r.text

    clash = {"starts_at": "2026-03-24T12:00:00+08:00", "ends_at": "2026-03-24T14:00:00+08:00"}
    problem(await api.post(f"{T}/{second['id']}/bookings", agency, json=clash), 409, "starts_at")

    after = {"starts_at": "2026-03-24T17:00:00+08:00", "ends_at": "2026-03-24T19:00:00+08:00"}
    assert (await api.post(f"{T}/{second['id']}/bookings", agency, json=after)).status_code == 201
    early = {"starts_at": "2026-03-23T09:00:00+08:00", "ends_at": "2026-03-23T12:00:00+08:00"}
    problem(await api.post(f"{T}/{second['id']}/bookings", agency, json=early), 422, "starts_at")


async def test_only_the_tenders_agency_books_its_evaluation(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    day = {"starts_at": "2026-03-24T09:00:00+08:00", "ends_at": "2026-03-24T17:00:00+08:00"}
    problem(await api.post(f"{T}/{tender['id']}/bookings", await api.organisation("agency"), json=day), 404)
    problem(await api.post(f"{T}/{tender['id']}/bookings", await api.organisation("bidder"), json=day), 403)
    problem(await api.post(f"{T}/{tender['id']}/bookings", await api.bootstrap_centre(), json=day), 403)
    draft = await api.draft(agency)
    problem(await api.post(f"{T}/{draft['id']}/bookings", agency, json=day), 409)


async def test_the_calendar_shows_the_centres_bookings_to_the_centre_only(api: Api) -> None:
    agency, centre = await api.organisation("agency"), await api.bootstrap_centre()
    tender = await api.published(agency)
    window = {"from": "2026-03-23T00:00:00+08:00", "to": "2026-03-24T00:00:00+08:00"}

    r = await api.get("/api/v1/venues/calendar", centre, params=window)

    assert r.status_code == 200, r.text
    [opening] = r.json()
    assert (opening["tender_id"], opening["kind"], opening["venue_name"]) == (
        tender["id"],
        "opening",
        "网上开标大厅",
    )
    assert (opening["starts_at"], opening["ends_at"]) == ("2026-03-23T02:00:00Z", "2026-03-23T02:30:00Z")
    for actor in (agency, await api.organisation("supervisor"), await api.organisation("bidder")):
        problem(await api.get("/api/v1/venues/calendar", actor, params=window), 403)
    problem(
        await api.get("/api/v1/venues/calendar", centre, params={"from": window["to"], "to": window["from"]}),
        422,
        "to",
    )


async def test_only_the_centre_lists_and_changes_its_rooms(api: Api) -> None:
    agency, centre = await api.organisation("agency"), await api.bootstrap_centre()
    assert await rooms(api, "opening") == []
    await api.published(agency)  # the default hall is listed once the first opening is booked
    [room] = await rooms(api, "opening")
    assert (room["name"], room["capacity"]) == ("网上开标大厅", 50)
    for actor in (agency, await api.organisation("supervisor")):
        problem(await api.get("/api/v1/venues", actor), 403)
        problem(await api.patch(f"/api/v1/venues/{room['id']}", actor, json={"capacity": 1}), 403)
        problem(
            await api.post(
                "/api/v1/venues", actor, json={"name": "评标室二", "kind": "evaluation", "capacity": 2}
            ),
            403,
        )
    r = await api.post(
        "/api/v1/venues", centre, json={"name": "评标室二", "kind": "evaluation", "capacity": 2}
    )
    assert r.status_code == 201 and r.json()["capacity"] == 2, r.text
    problem(
        await api.post(
            "/api/v1/venues", centre, json={"name": "评标室二", "kind": "evaluation", "capacity": 2}
        ),
        409,
        "name",
    )
    r = await api.patch(f"/api/v1/venues/{room['id']}", centre, json={"capacity": 60})
    assert r.status_code == 200 and r.json()["capacity"] == 60, r.text
    missing = "00000000-0000-0000-0000-000000000000"
    problem(await api.patch(f"/api/v1/venues/{missing}", centre, json={"capacity": 1}), 404)


async def test_a_deadline_moved_out_by_w02_moves_its_opening_booking(api: Api) -> None:
    agency, centre = await api.organisation("agency"), await api.bootstrap_centre()
    tender = await api.published(agency)
    api.clock.set(shanghai(2026, 3, 16, 9))
    r = await api.post(
        f"{T}/{tender['id']}/clarifications",
        agency,
        json={"text": "工程量清单第5项更正", "affects_bids": True},
    )
    assert r.status_code == 201 and r.json()["deadline_moved"] is True, r.text

    window = {"from": "2026-03-20T00:00:00+08:00", "to": "2026-04-01T00:00:00+08:00"}
    [opening] = (await api.get("/api/v1/venues/calendar", centre, params=window)).json()

    assert (opening["kind"], opening["starts_at"]) == ("opening", "2026-03-31T02:00:00Z")
