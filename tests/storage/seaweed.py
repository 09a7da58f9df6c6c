"""A pytest plugin that runs a real SeaweedFS (`weed mini`) for the S3 object-store tests.

One server per test session, started by `storage.seaweed.running`: loopback only, free ports for every
listener, random credentials. When it cannot run (no `weed` binary, no `weed mini`, or it does not come
up) the S3 tests are skipped locally, with the reason and the end of weed's log, and fail with `CI=true`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
import pytest_asyncio

from storage.seaweed import SeaweedS3, SeaweedUnavailable, running

if TYPE_CHECKING:
    from storage.objects import S3ObjectStore

SeaweedFS = SeaweedS3  # the name the tests know the session's server by


def _unavailable(why: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"SeaweedFS is required in CI but {why}", pytrace=False)
    pytest.skip(f"SeaweedFS not available: {why}")


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedS3]:
    """A running SeaweedFS for the whole session; stopped (with its children) at the end."""
    with tempfile.TemporaryDirectory(prefix="ggzy-weed-") as tmp, contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running(Path(tmp)))
        except SeaweedUnavailable as exc:
            _unavailable(str(exc))
        yield server


@pytest_asyncio.fixture
async def s3_store(seaweedfs: SeaweedS3) -> AsyncIterator[S3ObjectStore]:
    """An `S3ObjectStore` on the session's SeaweedFS, with a bucket of its own for each test."""
    from storage.objects import S3ObjectStore  # here, so loading this plugin never needs the store

    store = S3ObjectStore(
        seaweedfs.endpoint,
        seaweedfs.access_key,
        seaweedfs.secret_key,
        bucket=f"ggzy-test-{uuid.uuid4().hex[:16]}",
        secure=False,
        part_size=5 * 1024 * 1024,  # the S3 minimum, so a few MiB already exercise multipart uploads
    )
    await store.ensure_ready()
    yield store
