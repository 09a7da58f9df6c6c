"""`ggzy demo --seed-only`: the demo users, a trade completed in the past and an open tender, put into the
configured database and object store as one unit.

The steps are the demo's own, through the same HTTP API (in-process, ASGI), but every session they open
is a savepoint of one database transaction that commits only when the last step has passed. So seeding
is all or nothing, whatever the configuration:

- a step that fails, an exception or a killed process leave the database as it was, and a rerun starts
  afresh (it finds no centre, so nothing "already there");
- a chronograph running elsewhere (`ggzy serve`, or `ggzy worker` beside PostgreSQL and Redis) cannot see
  the past trade before it is complete, so it never moves it on real time;
- the jobs the steps cause run here, on the seed's clock, even where GGZY_REDIS_URL names a queue: no
  worker is needed, and none could see them before the commit.

Until the commit, other writers on the same database wait for the rows and locks the seed holds (on SQLite
the whole database: seed before `ggzy serve`, as `make run` does). Files written to the object store by a
seed that fails stay behind unreferenced; they are never read.
"""

from __future__ import annotations

from typing import Any

import httpx
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from accounts import service as accounts
from demo import common, works
from demo.private import PrivateDriver, ServerParts
from storage.clock import Clock, SettableClock
from storage.db import create_engine, one_transaction
from storage.migrate import upgrade_async
from storage.rehearsal import current_clock
from storage.settings import Settings


class SeedFailed(Exception):
    """A step of the seed did not do what it should; everything it wrote is rolled back."""


async def _centre_exists(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection, AsyncSession(bind=connection) as session:
        return bool(await accounts.list_organisations(session, kind="centre", status=None))


async def seed(
    console: Console, settings: Settings, server: ServerParts, wall_clock: Clock | None = None
) -> bool:
    """Seed the configured database once: people, a trade completed in the past, an open tender now.

    `server` is how the composition root builds the in-process server the steps talk to. "Now" is
    `wall_clock`, by default the deployment's clock (the rehearsal clock where GGZY_REHEARSAL is set).
    True when seeded or already seeded; False when a step failed and nothing was kept.
    """
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.effective_database_url)
    engine = create_engine(settings.effective_database_url)
    try:
        if await _centre_exists(engine):
            console.print("The demo data is already there; nothing changed.")
            works.next_steps(console, settings, None)
            return True
        wall_clock = wall_clock or await current_clock(settings, engine)
        try:
            live = await _seed_in_one_transaction(console, settings, server, engine, wall_clock)
        except SeedFailed:
            console.print("[red]Seeding stopped; nothing was kept. Run it again once the cause is fixed.[/]")
            return False
        works.next_steps(console, settings, live)
        return True
    finally:
        await engine.dispose()


async def _seed_in_one_transaction(
    console: Console, settings: Settings, server: ServerParts, engine: AsyncEngine, wall_clock: Clock
) -> common.Trade:
    clock = SettableClock(wall_clock.now() - common.SEED_HISTORY)
    async with one_transaction(engine) as sessionmaker:
        runtime = server.build_runtime(
            settings, clock=clock, engine=engine, sessionmaker=sessionmaker, sequential_jobs=True
        )
        runtime.run_chronograph = False
        try:
            await runtime.store.ensure_ready()
            await runtime.queue.start()
            # httpx types its ASGI app loosely and Litestar its scopes precisely; they agree at runtime.
            app: Any = server.create_app(runtime, manage_runtime=False)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport,
                base_url=settings.effective_public_url,
                timeout=common.HTTP_TIMEOUT_SECONDS,
            ) as client:
                driver = PrivateDriver(runtime, clock, files=settings.var_dir)
                platform = common.Platform(client, driver)
                narrator = common.Narrator(console)
                past = common.Trade(platform, common.WORKS, common.PARTIES)
                console.print(
                    f"[bold]Seeding[/]: a complete trade on a clock from {common.shanghai_text(clock.now())} "
                    "Shanghai"
                )
                if not await narrator.run((*works.PEOPLE_STEPS, *works.TRADE_STEPS), past):
                    raise SeedFailed
                clock.set(wall_clock.now())
                live = common.Trade(platform, common.LIVE, common.PARTIES, people=past.people, keys=past.keys)
                console.print(
                    f"[bold]Seeding[/]: an open tender published now ({common.shanghai_text(clock.now())} "
                    "Shanghai)"
                )
                if not await narrator.run(works.PUBLISH_STEPS, live):
                    raise SeedFailed
                await platform.run_jobs()
            # Written before the commit: a seed that dies now leaves key files a rerun replaces, never
            # registered keys whose private halves are lost.
            works.write_keys(settings, past, clock.now())
        finally:
            await runtime.queue.close()
            await runtime.throttle.close()
    return live
