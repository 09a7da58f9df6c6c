"""The dead-letter list: the centre sees the background jobs that failed for the whole retry horizon and
retries them, through the API and `ggzy jobs list|retry`; retrying is idempotent and audited."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from accounts.models import AuditEvent
from ggzy import cli
from storage.db import transaction
from storage.outbox import DEAD, DONE, OutboxMessage, enqueue
from tests.helpers import Api

DEAD_JOBS = "/api/v1/jobs/dead"
PAYLOAD = {"key": "uploads/0123456789abcdef/bid.age", "holder": "身份证 110101199003071234"}


async def a_dead_job(api: Api) -> uuid.UUID:
    """A discard of an upload that failed for the whole horizon while the store was gone (deleting a
    missing object is no error, so retried it runs to done)."""
    now = api.clock.now()
    async with transaction(api.runtime.sessionmaker) as session:
        row = enqueue(session, "trading.discard_upload", PAYLOAD, now - timedelta(hours=49))
        row.attempts, row.last_error = 300, "Unavailable: the object store is unavailable (injected outage)"
        row.failing_since, row.status, row.dead_at = now - timedelta(hours=48), DEAD, now
        await session.flush()
        return row.id


async def retries(api: Api, job_id: uuid.UUID) -> list[AuditEvent]:
    async with api.runtime.sessionmaker() as session:
        events = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == "job.retry", AuditEvent.object_id == str(job_id))
        )
        return list(events)


async def test_the_centre_sees_a_dead_job_without_its_payload_and_retries_it_once(api: Api) -> None:
    centre = await api.bootstrap_centre()
    job_id = await a_dead_job(api)

    r = await api.get(DEAD_JOBS, centre)
    assert r.status_code == 200, r.text
    [dead] = r.json()
    assert (dead["id"], dead["job"], dead["status"], dead["attempts"]) == (
        str(job_id),
        "trading.discard_upload",
        "dead",
        300,
    )
    assert dead["last_error"] == "Unavailable: the object store is unavailable (injected outage)"
    assert "payload" not in dead and "身份证" not in r.text

    first = await api.post(f"/api/v1/jobs/{job_id}/retry", centre)
    second = await api.post(f"/api/v1/jobs/{job_id}/retry", centre)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["retried"], first.json()["job"]["status"]) == (True, "pending")
    assert (second.json()["retried"], second.json()["job"]["status"]) == (False, "pending")
    assert first.json()["job"]["available_at"] == second.json()["job"]["available_at"]
    assert (await api.get(DEAD_JOBS, centre)).json() == []
    assert len(await retries(api, job_id)) == 1

    await api.run_jobs()
    async with api.runtime.sessionmaker() as session:
        row = await session.get(OutboxMessage, job_id)
    assert row is not None and row.status == DONE
    third = await api.post(f"/api/v1/jobs/{job_id}/retry", centre)
    assert (third.status_code, third.json()["retried"], third.json()["job"]["status"]) == (200, False, "done")


async def test_retrying_a_job_that_does_not_exist_is_a_404_problem(api: Api) -> None:
    centre = await api.bootstrap_centre()
    r = await api.post(f"/api/v1/jobs/{uuid.uuid4()}/retry", centre)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_no_one_but_the_centre_sees_or_retries_dead_jobs(api: Api) -> None:
    job_id = await a_dead_job(api)
    for kind in ("bidder", "agency", "supervisor", "auditor", "regulator"):
        other = await api.organisation(kind)
        assert (await api.get(DEAD_JOBS, other)).status_code == 403, kind
        assert (await api.post(f"/api/v1/jobs/{job_id}/retry", other)).status_code == 403, kind
    assert (await api.get(DEAD_JOBS)).status_code == 401
    assert await retries(api, job_id) == []
    async with api.runtime.sessionmaker() as session:
        row = await session.get(OutboxMessage, job_id)
    assert row is not None and row.status == DEAD


async def ggzy(api: Api, var_dir: Path, *args: str) -> Result:
    """Run the `ggzy` CLI against the test database (in a thread: the command runs its own event loop)."""
    env = {
        "GGZY_DATABASE_URL": api.runtime.engine.url.render_as_string(hide_password=False),
        "GGZY_SECRET_KEY": api.runtime.settings.secret_key,
        "GGZY_VAR_DIR": str(var_dir),
    }
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def test_ggzy_jobs_lists_the_dead_and_retries_them_idempotently(api: Api, tmp_path: Path) -> None:
    job_id = await a_dead_job(api)

    listed = await ggzy(api, tmp_path, "jobs", "list")
    assert listed.exit_code == 0, listed.output
    [line] = [x for x in listed.stdout.splitlines() if x]
    assert line.split("\t")[:3] == [str(job_id), "trading.discard_upload", "300"]
    assert "身份证" not in listed.output

    first = await ggzy(api, tmp_path, "jobs", "retry", str(job_id))
    again = await ggzy(api, tmp_path, "jobs", "retry", str(job_id))
    assert (first.exit_code, first.stdout) == (0, f"{job_id}\tretried\n")
    assert (again.exit_code, again.stdout) == (0, f"{job_id}\tnot dead (pending); unchanged\n")
    assert len(await retries(api, job_id)) == 1
    assert [x for x in (await ggzy(api, tmp_path, "jobs", "list")).stdout.splitlines() if x] == []

    missing = await ggzy(api, tmp_path, "jobs", "retry", str(uuid.uuid4()))
    assert missing.exit_code == 1 and "no such job" in missing.stdout
    malformed = await ggzy(api, tmp_path, "jobs", "retry", "not-a-uuid")
    assert malformed.exit_code == 2
