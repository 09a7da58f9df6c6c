"""Fault injection: crash points, and outages of the object store or the database on the injected clock.

Crash points (failpoints) are named places where a process can be made to die on purpose, so the tests
can prove that a crash anywhere in a money movement leaves no half-written state and no double payment.

`GGZY_CRASH_AT` names the points (comma-separated) at which the process exits at once with status 137, as
if killed: no `finally`, no commit, no flush. Unset, a crash point costs one set lookup.

An `Outage` is a span on the clock during which `FlakyStore` (around any object store) or
`database_outage` (on an engine) refuse every call, so tests can show that a store or database gone for a
second or a minute changes no outcome.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.clock import Clock
from storage.objects import DEFAULT_CHUNK_SIZE, DEFAULT_CONTENT_TYPE, ObjectInfo, ObjectStore, Part

EXIT_STATUS: Final = 137  # what a shell reports for a process killed by SIGKILL


def _armed() -> frozenset[str]:
    return frozenset(p.strip() for p in os.environ.get("GGZY_CRASH_AT", "").split(",") if p.strip())


_ARMED: Final = _armed()


def crash_point(name: str) -> None:
    """Die here, at once, if `GGZY_CRASH_AT` names this point."""
    if name in _ARMED:
        os._exit(EXIT_STATUS)


# ---------------------------------------------------------------- outages on the injected clock


class Unavailable(ConnectionError):
    """A dependency refused service during an injected outage."""


@dataclass
class Outage:
    """An outage of a dependency from `start` (inclusive) to `end` (exclusive) on a clock; none when unset.

    Outages are measured on the injected clock, not on wall time, so a test simulates a minute-long outage
    by moving its clock, never by sleeping.
    """

    clock: Clock
    start: datetime | None = None
    end: datetime | None = None

    def set(self, start: datetime, end: datetime) -> None:
        """The dependency is down from `start` until `end`."""
        self.start, self.end = start, end

    def clear(self) -> None:
        """The dependency is up again for good."""
        self.start = self.end = None

    @property
    def down(self) -> bool:
        """Whether the dependency is down at the clock's instant."""
        if self.start is None or self.end is None:
            return False
        return self.start <= self.clock.now() < self.end

    def check(self, what: str) -> None:
        """Raise `Unavailable` while the outage lasts."""
        if self.down:
            raise Unavailable(f"{what} is unavailable (injected outage)")


class FlakyStore:
    """An object store that fails every call while its outage lasts and is the wrapped store otherwise;
    a read stream fails when its first chunk is asked for, as a lost connection would."""

    def __init__(self, inner: ObjectStore, outage: Outage) -> None:
        self.inner = inner
        self.outage = outage

    async def ensure_ready(self) -> None:
        self.outage.check("the object store")
        await self.inner.ensure_ready()

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        self.outage.check("the object store")
        return await self.inner.put_stream(key, chunks, content_type=content_type)

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        self.outage.check("the object store")
        return await self.inner.put_bytes(key, data, content_type=content_type)

    async def iter_chunks(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        self.outage.check("the object store")
        async for chunk in self.inner.iter_chunks(key, chunk_size):
            self.outage.check("the object store")
            yield chunk

    async def scratch(self) -> Path:
        self.outage.check("the object store")
        return await self.inner.scratch()

    async def sweep_scratch(self) -> int:
        return await self.inner.sweep_scratch()

    async def get_file(self, key: str, path: Path) -> ObjectInfo:
        self.outage.check("the object store")
        return await self.inner.get_file(key, path)

    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str,
        size: int,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> ObjectInfo:
        self.outage.check("the object store")
        return await self.inner.put_file(key, path, sha256=sha256, size=size, content_type=content_type)

    async def stat(self, key: str) -> ObjectInfo | None:
        self.outage.check("the object store")
        return await self.inner.stat(key)

    async def hash_object(self, key: str) -> ObjectInfo:
        self.outage.check("the object store")
        return await self.inner.hash_object(key)

    async def delete(self, key: str) -> None:
        self.outage.check("the object store")
        await self.inner.delete(key)

    async def presigned_put_url(self, key: str, expires: timedelta, *, max_bytes: int | None = None) -> str:
        self.outage.check("the object store")
        return await self.inner.presigned_put_url(key, expires, max_bytes=max_bytes)

    async def presigned_get_url(self, key: str, expires: timedelta) -> str:
        self.outage.check("the object store")
        return await self.inner.presigned_get_url(key, expires)

    async def start_multipart(self, key: str, *, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        self.outage.check("the object store")
        return await self.inner.start_multipart(key, content_type=content_type)

    async def presigned_part_url(
        self, key: str, upload_id: str, part_number: int, expires: timedelta, *, max_bytes: int
    ) -> str:
        self.outage.check("the object store")
        return await self.inner.presigned_part_url(key, upload_id, part_number, expires, max_bytes=max_bytes)

    async def list_parts(self, key: str, upload_id: str) -> list[Part]:
        self.outage.check("the object store")
        return await self.inner.list_parts(key, upload_id)

    async def complete_multipart(self, key: str, upload_id: str) -> ObjectInfo:
        self.outage.check("the object store")
        return await self.inner.complete_multipart(key, upload_id)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        self.outage.check("the object store")
        await self.inner.abort_multipart(key, upload_id)


@contextmanager
def database_outage(engine: AsyncEngine, outage: Outage) -> Iterator[Outage]:
    """Make every statement on `engine` fail while `outage` lasts, for the duration of the block."""

    def refuse(*_args: Any) -> None:
        outage.check("the database")

    event.listen(engine.sync_engine, "before_cursor_execute", refuse)
    try:
        yield outage
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", refuse)
