"""Rehearsal mode (演练模式): the centre's offset, accelerated clock, shared through the database by every
process, marked on every answer, and refused in a production configuration."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import click
import httpx
import pytest
from click.testing import CliRunner

from storage.clock import Pace, RehearsalClock, SettableClock
from storage.settings import Settings, SettingsError
from tests.conftest import BANK_SECRET, Database
from tests.helpers import Actor, Api

REAL_START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _settings(var_dir: Path, *, rehearsal: bool) -> Settings:
    return Settings(
        var_dir=var_dir,
        secret_key=secrets.token_urlsafe(32),
        public_url="http://testserver",
        token_ttl_minutes=60 * 24 * 365,
        bank_notify_secret=BANK_SECRET,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
        rehearsal=rehearsal,
    )


async def _api_on(database: Database, settings: Settings, clock: Any) -> AsyncIterator[Api]:
    from app import build_runtime, create_app

    runtime = build_runtime(settings, clock=clock, engine=database.engine)
    runtime.run_chronograph = False
    await runtime.store.ensure_ready()
    transport = httpx.ASGITransport(app=cast(Any, create_app(runtime, manage_runtime=False)))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Api(client, runtime)
    await runtime.queue.close()


@pytest.fixture
def real() -> SettableClock:
    """Real time, standing still until the test moves it (Mon 2026-03-02 09:00 Shanghai)."""
    return SettableClock(REAL_START)


@pytest.fixture
async def api(database: Database, real: SettableClock, tmp_path: Path) -> AsyncIterator[Api]:
    """A rehearsal deployment's API on the test database, its clock running on `real`."""
    async for api in _api_on(database, _settings(tmp_path, rehearsal=True), RehearsalClock(real=real)):
        yield api


async def _set(api: Api, actor: Actor | None, body: dict[str, Any]) -> httpx.Response:
    return await api.client.put(
        "/api/v1/rehearsal/clock", json=body, headers=actor.headers if actor else None
    )


# ---------------------------------------------------------------- the pace, pure


def test_a_pace_runs_rate_times_as_fast_from_its_anchor_and_a_change_never_jumps_back() -> None:
    pace = Pace(REAL_START, REAL_START + timedelta(days=20), 60.0)

    assert pace.at(REAL_START + timedelta(minutes=1)) == REAL_START + timedelta(days=20, hours=1)
    slower = pace.changed(REAL_START + timedelta(minutes=1), rate=1.0)
    assert slower.at(REAL_START + timedelta(minutes=1)) == REAL_START + timedelta(days=20, hours=1)
    assert slower.at(REAL_START + timedelta(minutes=2)) == REAL_START + timedelta(days=20, hours=1, minutes=1)
    still = slower.changed(REAL_START + timedelta(minutes=2), rate=0.0)
    assert still.at(REAL_START + timedelta(days=3)) == still.rehearsal


# ---------------------------------------------------------------- production refuses it


def test_settings_refuse_a_rehearsal_in_a_production_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="GGZY_ENV=production"):
        Settings(secret_key="x", env="production", rehearsal=True)
    monkeypatch.setenv("GGZY_SECRET_KEY", "x")
    monkeypatch.setenv("GGZY_ENV", "Production")
    monkeypatch.setenv("GGZY_REHEARSAL", "1")
    with pytest.raises(SettingsError):
        Settings.from_env()
    monkeypatch.setenv("GGZY_ENV", "staging")
    assert Settings.from_env().rehearsal is True


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["db", "upgrade"]])
def test_ggzy_serve_worker_and_db_refuse_to_start_a_production_rehearsal(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ggzy import cli

    monkeypatch.setenv("GGZY_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("GGZY_SECRET_KEY", "x")
    monkeypatch.setenv("GGZY_ENV", "production")
    monkeypatch.setenv("GGZY_REHEARSAL", "true")

    result = CliRunner().invoke(cli, command)

    assert result.exit_code == 2
    assert "refused where GGZY_ENV=production" in result.output


# ---------------------------------------------------------------- the API


async def test_the_centre_moves_the_rehearsal_clock_forward_and_speeds_it_up(
    api: Api, real: SettableClock
) -> None:
    centre = await api.bootstrap_centre()

    r = await _set(api, centre, {"advance_seconds": 20 * 86400, "rate": 60})

    assert r.status_code == 200, r.text
    assert r.json() == {
        "rehearsal": True,
        "now": "2026-03-22T01:00:00Z",
        "real_now": "2026-03-02T01:00:00Z",
        "rate": 60.0,
        "offset_seconds": 20 * 86400.0,
    }
    real.set(REAL_START + timedelta(minutes=2))
    clock = (await api.get("/api/v1/clock")).json()
    assert (clock["now"], clock["rehearsal"]) == ("2026-03-22T03:00:00Z", True)
    assert api.runtime.clock.now() == datetime(2026, 3, 22, 3, 0, tzinfo=UTC)
    r = await _set(api, centre, {"at": "2026-04-01T09:00:00+08:00", "rate": 1})
    assert (r.status_code, r.json()["now"], r.json()["rate"]) == (200, "2026-04-01T01:00:00Z", 1.0)
    trail = await api.get("/api/v1/audit", centre, params={"object_type": "rehearsal_clock"})
    assert [(e["action"], e["detail"]["rate"]) for e in trail.json()["items"]] == [
        ("rehearsal.clock", "1"),
        ("rehearsal.clock", "60"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"at": "2026-03-01T09:00:00+08:00"}, "at"),
        ({"at": "2026-04-01T09:00:00"}, "at"),
        ({"at": "2099-04-01T09:00:00Z"}, "at"),
        ({"advance_seconds": -1}, "advance_seconds"),
        ({"advance_seconds": 10**12}, "advance_seconds"),
        ({"at": "2026-04-01T09:00:00Z", "advance_seconds": 60}, "advance_seconds"),
        ({"rate": -1}, "rate"),
        ({"rate": 1e9}, "rate"),
    ],
)
async def test_the_rehearsal_clock_refuses_to_go_back_or_run_wild_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    centre = await api.bootstrap_centre()

    r = await _set(api, centre, body)

    # past a bound the schema states (advance_seconds from 0 to ten years) 400, else the rule's 422
    bounded = field == "advance_seconds" and "at" not in body
    assert r.status_code == (400 if bounded else 422), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert api.runtime.clock.now() == REAL_START


async def test_only_the_centre_sets_the_rehearsal_clock(api: Api) -> None:
    await api.bootstrap_centre()
    agency = await api.organisation("agency")
    bidder = await api.organisation("bidder")
    supervisor = await api.organisation("supervisor")

    for actor in (agency, bidder, supervisor):
        r = await _set(api, actor, {"advance_seconds": 3600})
        assert r.status_code == 403, (actor.username, r.text)
    assert (await _set(api, None, {"advance_seconds": 3600})).status_code == 401
    assert api.runtime.clock.now() == REAL_START


async def test_every_answer_of_a_rehearsal_says_so(api: Api) -> None:
    centre = await api.bootstrap_centre()
    agency = await api.organisation("agency")
    tender = await api.draft(agency)

    answers = [
        await api.get("/health"),
        await api.get("/api/v1/clock"),
        await api.get("/api/v1/notices"),
        await api.get(f"/api/v1/tenders/{tender['id']}", agency),
        await api.get("/api/v1/tenders", agency, params={"mine": True}),
        await api.get("/api/v1/no-such-page"),
        await _set(api, None, {}),
        await _set(api, centre, {"rate": "fast"}),
    ]

    assert [r.headers.get("X-GGZY-Rehearsal") for r in answers] == ["1"] * len(answers)
    assert answers[1].json()["rehearsal"] is True
    assert answers[3].json()["rehearsal"] is True
    assert answers[4].json()["rehearsal"] is True and "rehearsal" not in answers[4].json()["items"][0]


async def test_a_pace_set_through_one_process_is_the_time_of_every_other(
    api: Api, database: Database, real: SettableClock, tmp_path: Path
) -> None:
    centre = await api.bootstrap_centre()
    async for other in _api_on(database, _settings(tmp_path, rehearsal=True), RehearsalClock(real=real)):
        assert (await other.get("/api/v1/clock")).json()["now"] == "2026-03-02T01:00:00Z"

        assert (await _set(api, centre, {"advance_seconds": 7 * 86400, "rate": 10})).status_code == 200
        real.set(REAL_START + timedelta(seconds=6))

        assert (await other.get("/api/v1/clock")).json()["now"] == "2026-03-09T01:01:00Z"
        assert other.runtime.clock.now() == datetime(2026, 3, 9, 1, 1, tzinfo=UTC)


async def test_the_chronograph_closes_bidding_when_the_rehearsal_clock_passes_the_deadline(
    api: Api, database: Database, real: SettableClock, tmp_path: Path
) -> None:
    from app import chronograph_tick

    centre = await api.bootstrap_centre()
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    deadline = datetime.fromisoformat(tender["bid_deadline"])
    # a worker: another process's runtime, its clock not yet told of the change
    async for worker in _api_on(database, _settings(tmp_path, rehearsal=True), RehearsalClock(real=real)):
        assert await chronograph_tick(worker.runtime.job_context) == []

        r = await _set(api, centre, {"at": (deadline + timedelta(minutes=1)).isoformat()})
        assert r.status_code == 200, r.text

        # no bid came: the deadline closes the tender as unsuccessful
        assert await chronograph_tick(worker.runtime.job_context) == [(tender["code"], "unsuccessful")]
    assert (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()["status"] == "unsuccessful"


async def test_a_deployment_on_real_time_has_no_rehearsal_clock_to_set(
    database: Database, real: SettableClock, tmp_path: Path
) -> None:
    async for api in _api_on(database, _settings(tmp_path, rehearsal=False), real):
        centre = await api.bootstrap_centre()

        r = await _set(api, centre, {"advance_seconds": 3600})

        assert r.status_code == 409, r.text
        assert "X-GGZY-Rehearsal" not in r.headers
        clock = await api.get("/api/v1/clock")
        assert clock.json() == {
            "rehearsal": False,
            "now": "2026-03-02T01:00:00Z",
            "real_now": "2026-03-02T01:00:00Z",
            "rate": 1.0,
            "offset_seconds": 0.0,
        }
        assert "X-GGZY-Rehearsal" not in clock.headers


# ---------------------------------------------------------------- ggzy rehearsal


def test_ggzy_rehearsal_set_reads_its_advance_in_days_hours_minutes_or_seconds() -> None:
    from demo.cli import parse_advance

    assert [parse_advance(t) for t in ("21d", "36h", "90m", "45s", "3600")] == [
        21 * 86400,
        36 * 3600,
        90 * 60,
        45,
        3600,
    ]
    for bad in ("", "d", "-1d", "1.5h", "3w"):
        with pytest.raises(click.BadParameter):
            parse_advance(bad)


def test_ggzy_rehearsal_set_without_a_change_is_a_usage_error() -> None:
    from demo.cli import rehearsal_set

    result = CliRunner().invoke(rehearsal_set, ["--username", "centre"])

    assert result.exit_code == 2
    assert "--at, --advance and/or --rate" in result.output


def test_ggzy_rehearsal_show_says_how_far_ahead_and_how_fast() -> None:
    from demo.cli import _clock_line

    line = _clock_line(
        {
            "rehearsal": True,
            "now": "2026-03-22T03:00:00Z",
            "real_now": "2026-03-02T01:02:00Z",
            "rate": 60.0,
            "offset_seconds": 1735080.0,
        }
    )

    assert (
        line
        == "rehearsal time: 2026-03-22 11:00:00 Shanghai, 20 days, 1:58:00 ahead of real time, running ×60"
    )
