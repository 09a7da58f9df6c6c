"""The states tests only read (`read_only`): a read leaves a state's fingerprint as it was built, and any
write to it (a row, the clock, a stored file) changes the fingerprint, which fails the test that wrote."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, PG_URL, ReadOnly, unavailable
from tests.helpers import Actor, Api


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_read_keeps_the_fingerprint_and_every_kind_of_write_changes_it(
    backend: str, tmp_path: Path
) -> None:
    if backend == "postgresql" and not PG_URL:
        unavailable("PostgreSQL", "GGZY_TEST_DATABASE_URL is not set")
    async with AsyncExitStack() as clients:
        read_only = ReadOnly(backend, tmp_path, clients)
        api, centre = await read_only.world(f"fingerprint of {tmp_path.name}", Api.bootstrap_centre)
        [world] = read_only.used
        assert isinstance(centre, Actor)
        assert await world.fingerprint() == world.digest

        assert (await api.get("/api/v1/organisations", centre)).status_code == 200
        refused = await api.post("/api/v1/organisations", centre, json={"name": 1})
        assert refused.status_code == 400, refused.text
        assert await world.fingerprint() == world.digest

        await api.organisation("bidder")
        assert await world.fingerprint() != world.digest
        world.digest = await world.fingerprint()

        api.clock.set(api.clock.now() + timedelta(seconds=1))
        assert await world.fingerprint() != world.digest
        world.digest = await world.fingerprint()

        (world.var_dir / "stray").write_bytes(b"x")
        assert await world.fingerprint() != world.digest
