"""The chronograph under load and faults: one transaction per tender, no cap per tick, a failing tender
retried with backoff and listed for the centre and supervisors, each tender closed exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bidding import bench_chronograph as cluster
from bidding.models import Envelope
from storage.db import transaction
from tests.conftest import Database
from tests.helpers import DEADLINE, Api
from tests.trading.test_rules import get_tender, with_bids
from trading import chronograph

FAILURES = "/api/v1/chronograph/failures"


async def _break_envelopes(api: Api, tender: dict[str, Any]) -> list[tuple[Any, str]]:
    """Garble the stored headers of a tender's envelopes (one bad record); answer what to restore."""
    async with transaction(api.runtime.sessionmaker) as session:
        rows = (
            await session.execute(
                select(Envelope.id, Envelope.header).where(Envelope.tender_id == uuid.UUID(tender["id"]))
            )
        ).all()
        await session.execute(
            update(Envelope).where(Envelope.tender_id == uuid.UUID(tender["id"])).values(header="!!")
        )
    return [(row.id, row.header) for row in rows]


async def _restore(api: Api, saved: list[tuple[Any, str]]) -> None:
    async with transaction(api.runtime.sessionmaker) as session:
        for envelope_id, header in saved:
            await session.execute(update(Envelope).where(Envelope.id == envelope_id).values(header=header))


async def _failures(api: Api) -> list[dict[str, Any]]:
    r = await api.get(FAILURES, await api.bootstrap_centre())
    assert r.status_code == 200, r.text
    return list(r.json())


async def test_a_tender_whose_transition_raises_stalls_no_other_tender(api: Api) -> None:
    _agency, broken, _bids = await with_bids(api, 3)
    _agency, sound, _bids = await with_bids(api, 3)
    await _break_envelopes(api, broken)

    assert await api.at(DEADLINE) == [(sound["code"], "opening")]

    assert (await get_tender(api, sound))["status"] == "opening"
    assert (await get_tender(api, broken))["status"] == "tendering"
    [failure] = await _failures(api)
    assert failure["tender_code"] == broken["code"]
    assert (failure["status"], failure["attempts"], failure["error"]) == ("tendering", 1, "EnvelopeError")


async def test_the_stages_after_a_failing_tender_still_run(api: Api) -> None:
    _agency, broken, _bids = await with_bids(api, 3)
    await _break_envelopes(api, broken)

    await api.at(DEADLINE)

    # the ledger and audit heads are signed at the deadline all the same
    ledger = (await api.get("/api/v1/transparency/ledger/head")).json()
    trail = (await api.get("/api/v1/transparency/audit/head")).json()
    assert ledger["signed_at"].startswith("2026-03-23T02:00:00"), ledger
    assert trail["signed_at"].startswith("2026-03-23T02:00:00"), trail


async def test_a_failing_transition_is_retried_with_backoff_on_the_clock_until_it_succeeds(api: Api) -> None:
    _agency, broken, _bids = await with_bids(api, 3)
    saved = await _break_envelopes(api, broken)

    assert await api.at(DEADLINE) == []
    [first] = await _failures(api)
    assert first["attempts"] == 1 and first["retry_at"].startswith("2026-03-23T02:01:00")

    assert await api.at(DEADLINE + timedelta(seconds=59)) == []  # not before its retry
    assert (await _failures(api))[0]["attempts"] == 1
    assert await api.at(DEADLINE + timedelta(minutes=1)) == []
    [second] = await _failures(api)
    assert second["attempts"] == 2 and second["retry_at"].startswith("2026-03-23T02:03:00")
    assert second["first_failed_at"] == first["first_failed_at"]

    await _restore(api, saved)
    assert await api.at(DEADLINE + timedelta(minutes=2)) == []
    assert await api.at(DEADLINE + timedelta(minutes=3)) == [(broken["code"], "opening")]
    assert await _failures(api) == []


def test_the_retry_waits_double_each_time_up_to_an_hour() -> None:
    waits = [chronograph.retry_after(n) for n in range(1, 10)]
    assert waits[:7] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60)]
    assert waits[7:] == [timedelta(hours=1)] * 2


async def test_the_failure_list_is_for_the_centre_and_supervisors_only(api: Api) -> None:
    for kind in ("agency", "bidder", "auditor", "employer", "regulator"):
        r = await api.get(FAILURES, await api.organisation(kind))
        assert r.status_code == 403, (kind, r.text)
    assert (await api.get(FAILURES)).status_code == 401
    assert (await api.get(FAILURES, await api.organisation("supervisor"))).json() == []
    assert (await api.get(FAILURES, await api.bootstrap_centre())).json() == []


async def _cluster(api: Api, tenders: int) -> list[Any]:
    engine = api.runtime.sessionmaker.kw["bind"]
    who = await cluster.parties(api.runtime.sessionmaker, 3)
    return await cluster.seed(engine, who, tenders, 3, DEADLINE, "K")


async def test_one_tick_closes_every_tender_due_however_many(api: Api) -> None:
    ids = await _cluster(api, 130)

    done = await api.at(DEADLINE)

    assert len(done) == 130 and {outcome for _code, outcome in done} == {"opening"}
    assert await cluster.once_each(api.runtime.sessionmaker.kw["bind"], ids) == (130, 130)


async def test_several_workers_close_each_tender_exactly_once(api: Api, database: Database) -> None:
    ids = await _cluster(api, 40)
    sessionmaker, signer = api.runtime.sessionmaker, api.runtime.signer

    results = await asyncio.gather(
        *(chronograph.tick(sessionmaker, DEADLINE, signer, concurrency=3) for _ in range(3))
    )

    codes = [code for done in results for code, _outcome in done]
    assert len(codes) == len(set(codes)) == 40, database.backend
    assert await cluster.once_each(sessionmaker.kw["bind"], ids) == (40, 40)
    assert [done for done in await asyncio.gather(chronograph.tick(sessionmaker, DEADLINE, signer))] == [[]]


# PostgreSQL only: SQLite serialises writers, so there a second worker waits for the first instead of skipping.
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_worker_skips_a_tender_another_worker_holds_and_goes_on(api: Api) -> None:
    _agency, held, _bids = await with_bids(api, 3)
    _agency, free, _bids = await with_bids(api, 3)
    async with transaction(api.runtime.sessionmaker) as session:
        tender = await chronograph.claim(session, uuid.UUID(held["id"]), DEADLINE)
        assert tender is not None
        # another worker, meanwhile: the held tender is skipped, not waited for, and the other one closes
        assert await chronograph.tick(api.runtime.sessionmaker, DEADLINE, api.runtime.signer) == [
            (free["code"], "opening")
        ]
    assert await chronograph.tick(api.runtime.sessionmaker, DEADLINE, api.runtime.signer) == [
        (held["code"], "opening")
    ]
