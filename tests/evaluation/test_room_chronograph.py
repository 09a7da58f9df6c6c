"""The evaluation stage of the chronograph: each room and each draw's invitations step in a transaction of
their own, so one that raises (a store refusing its report, a bad record) stalls no other; it is retried
with backoff on the clock and listed for the centre and supervisors until it succeeds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from evaluation.models import Draw, Invitation, RoomEvent
from storage.clock import SettableClock
from storage.db import transaction
from storage.objects import DEFAULT_CONTENT_TYPE, LocalObjectStore, ObjectInfo
from tests.conftest import Database, _api, _runtime
from tests.evaluation.test_room_api import BASE, Committee, make_report, scored, sign
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api
from trading import jobs

FAILURES = "/api/v1/chronograph/failures"


class RefusingStore(LocalObjectStore):
    """The real local store, refusing every write under the key prefixes in `refused`, as a bucket whose
    policy went wrong for one tender's records would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused: set[str] = set()

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        if any(key.startswith(prefix) for prefix in self.refused):
            raise PermissionError(f"write refused: {key}")
        return await super().put_bytes(key, data, content_type=content_type)


@pytest.fixture
async def api(database: Database, clock: SettableClock, tmp_path: Path) -> AsyncIterator[Api]:
    store = RefusingStore(tmp_path / "objects", "http://testserver", b"s" * 32, now=clock.now)
    rt = _runtime(database, clock, tmp_path, store=store)
    await store.ensure_ready()
    async for client in _api(rt):
        yield client
    await rt.queue.close()


def refuse(api: Api, tender: dict[str, Any]) -> set[str]:
    refused: set[str] = api.runtime.store.refused
    refused.add(f"records/{tender['code']}/evaluation/")
    return refused


@dataclass
class Trade:
    agency: Actor
    tender: dict[str, Any]
    bids: list[Any]


async def committees(api: Api, count: int) -> list[Committee]:
    """`count` tenders under evaluation together, each with a committee whose room opens two hours later,
    all at the same instant."""
    trades = []
    for _ in range(count):
        agency = await api.organisation("agency")
        tender = await api.published(agency)
        bids = [await api.bid(await api.organisation("bidder"), tender, 4_000_000_000 - i) for i in range(3)]
        trades.append(Trade(agency, tender, bids))
    await api.at(DEADLINE)
    for trade in trades:
        for bid in trade.bids:
            assert (await api.reveal(trade.tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    pool = [await api.expert() for _ in range(6 * count)]
    opens_at = api.clock.now() + timedelta(hours=2)
    out = []
    for trade in trades:
        r = await api.post(
            f"{BASE}/tenders/{trade.tender['id']}/draws",
            trade.agency,
            json={"evaluation_at": opens_at.isoformat(), "quotas": [{"specialty": "A02", "seats": 5}]},
        )
        assert r.status_code == 201, r.text
        draw_id = r.json()["id"]
        await api.witnessed(draw_id)
        invited = []
        for actor in pool:
            for invitation in (await api.get(f"{BASE}/invitations", actor)).json():
                if invitation["status"] == "invited" and invitation["tender"]["id"] == trade.tender["id"]:
                    invited.append((actor, invitation["id"]))
        out.append(Committee(trade.agency, trade.tender, trade.bids, draw_id, "", opens_at, {}, pool))
        out[-1].lot_id = trade.tender["lots"][0]["id"]
        out[-1].invited = invited  # type: ignore[attr-defined]
    return out


async def seated(api: Api, c: Committee) -> Committee:
    """Every invitation of the committee's draw accepted; the room and its seats found."""
    for actor, invitation_id in c.invited:  # type: ignore[attr-defined]
        r = await api.post(f"{BASE}/invitations/{invitation_id}/answer", actor, json={"accept": True})
        assert r.status_code == 200, r.text
    for actor in c.pool:
        for listed in (await api.get(f"{BASE}/rooms", actor)).json():
            if listed["tender_id"] == c.tender["id"]:
                c.room_id = listed["id"]
                c.members[(await api.get(f"{BASE}/rooms/{c.room_id}", actor)).json()["my_seat"]] = actor
    assert sorted(c.members) == [1, 2, 3, 4, 5]
    return c


async def failures(api: Api, actor: Actor | None = None) -> list[dict[str, Any]]:
    r = await api.get(FAILURES, actor or await api.bootstrap_centre())
    assert r.status_code == 200, r.text
    return list(r.json())


async def room(api: Api, c: Committee) -> dict[str, Any]:
    return dict((await api.get(f"{c.url}/report", await api.bootstrap_centre())).json())


async def test_a_room_whose_finalisation_raises_stalls_no_other_room(api: Api) -> None:
    broken, sound, late = [await seated(api, c) for c in await committees(api, 3)]
    for c in (broken, sound):
        await scored(api, c)
        made = await make_report(api, c)
        await sign(api, c, 1, made["report_hash"])
    closes_at = datetime.fromisoformat((await api.get(broken.url, broken.members[1])).json()["closes_at"])
    refuse(api, broken.tender)

    await api.at(closes_at)

    assert (await room(api, sound))["status"] == "closed"
    assert (await api.get(f"/api/v1/tenders/{sound.tender['id']}")).json()["status"] == "publicity"
    assert (await api.get(late.url, late.members[1])).json()["status"] == "expired"
    assert (await room(api, broken))["status"] == "open"
    [failure] = await failures(api)
    assert (failure["stage"], failure["subject_id"], failure["tender_code"]) == (
        "room",
        broken.room_id,
        broken.tender["code"],
    )
    assert (failure["status"], failure["attempts"], failure["error"]) == ("open", 1, "PermissionError")
    assert datetime.fromisoformat(failure["retry_at"]) == closes_at + timedelta(minutes=1)


async def test_a_failing_room_is_retried_with_backoff_until_it_closes(api: Api) -> None:
    [c] = [await seated(api, c) for c in await committees(api, 1)]
    await scored(api, c)
    made = await make_report(api, c)
    closes_at = datetime.fromisoformat((await api.get(c.url, c.members[1])).json()["closes_at"])
    refused = refuse(api, c.tender)

    await api.at(closes_at)
    await api.at(closes_at + timedelta(seconds=59))  # not before its retry
    [first] = await failures(api)
    assert first["attempts"] == 1
    assert datetime.fromisoformat(first["retry_at"]) == closes_at + timedelta(minutes=1)
    await api.at(closes_at + timedelta(minutes=1))
    [second] = await failures(api)
    assert second["attempts"] == 2 and second["first_failed_at"] != second["last_failed_at"]

    refused.clear()
    await api.at(closes_at + timedelta(minutes=3))

    fetched = await room(api, c)
    assert fetched["status"] == "closed" and fetched["report_hash"] == made["report_hash"]
    assert [s["outcome"] for s in fetched["signatures"]] == ["deemed_agreed"] * 5
    assert await failures(api) == []


async def test_a_failing_room_is_listed_for_supervisors_and_no_one_else(api: Api) -> None:
    [c] = [await seated(api, c) for c in await committees(api, 1)]
    await scored(api, c)
    await make_report(api, c)
    closes_at = datetime.fromisoformat((await api.get(c.url, c.members[1])).json()["closes_at"])
    refuse(api, c.tender)
    await api.at(closes_at)

    assert [f["subject_id"] for f in await failures(api, await api.organisation("supervisor"))] == [c.room_id]
    for kind in ("agency", "bidder", "auditor", "employer"):
        r = await api.get(FAILURES, await api.organisation(kind))
        assert r.status_code == 403, (kind, r.text)
    assert (await api.get(FAILURES, c.members[1])).status_code == 403


async def test_a_draw_whose_invitations_cannot_time_out_stalls_no_other_draw(api: Api) -> None:
    broken, sound = await committees(api, 2)
    async with transaction(api.runtime.sessionmaker) as session:
        respond_by = await session.scalar(select(func.max(Invitation.respond_by)))
        digest = await session.scalar(select(Draw.pool_digest).where(Draw.id == uuid.UUID(broken.draw_id)))
        # one bad record: the broken draw's pool snapshot no longer matches its digest, so no expert can
        # be drawn to replace one who did not answer
        await session.execute(
            update(Draw).where(Draw.id == uuid.UUID(broken.draw_id)).values(pool_digest="0" * 64)
        )
    assert respond_by is not None

    await api.at(respond_by)

    assert await timed_out(api, sound) == 5
    assert await timed_out(api, broken) == 0
    [failure] = await failures(api)
    assert (failure["stage"], failure["subject_id"], failure["tender_code"]) == (
        "invitations",
        broken.draw_id,
        broken.tender["code"],
    )
    assert (failure["status"], failure["attempts"], failure["error"]) == ("inviting", 1, "Conflict")

    async with transaction(api.runtime.sessionmaker) as session:
        await session.execute(
            update(Draw).where(Draw.id == uuid.UUID(broken.draw_id)).values(pool_digest=digest)
        )
    await api.at(respond_by + timedelta(minutes=1))
    assert await timed_out(api, broken) == 5
    assert await failures(api) == []


async def timed_out(api: Api, c: Committee) -> int:
    async with transaction(api.runtime.sessionmaker, read_only=True) as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Invitation)
            .where(Invitation.draw_id == uuid.UUID(c.draw_id), Invitation.status == "timed_out")
        )
    return int(count or 0)


async def test_two_ticks_at_once_close_each_room_exactly_once(api: Api) -> None:
    cs = [await seated(api, c) for c in await committees(api, 2)]
    for c in cs:
        await scored(api, c)
        await make_report(api, c)
    closes_at = datetime.fromisoformat((await api.get(cs[0].url, cs[0].members[1])).json()["closes_at"])
    api.clock.set(closes_at)

    await asyncio.gather(*(jobs.chronograph_tick(api.runtime.job_context) for _ in range(2)))

    async with transaction(api.runtime.sessionmaker, read_only=True) as session:
        closed = (
            await session.scalars(select(RoomEvent.room_id).where(RoomEvent.kind == "room.closed"))
        ).all()
    assert sorted(str(r) for r in closed) == sorted(c.room_id for c in cs)
    for c in cs:
        assert (await room(api, c))["status"] == "closed"
    assert await failures(api) == []
