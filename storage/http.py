"""HTTP plumbing every package's controllers share: ETags for optimistic concurrency on editable
resources, and server-sent event streams polled from a numbered event table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import msgspec
from litestar.response import ServerSentEventMessage

from storage.problems import PreconditionRequired, ValidationProblem, field_error

POLL_SECONDS = 0.5
KEEP_ALIVE_POLLS = 30


def etag(version: int) -> str:
    """The ETag of a resource at `version`."""
    return f'"{version}"'


def if_match(value: str | None, *, required: bool) -> int | None:
    """The version an `If-Match` header names (`"3"` or `W/"3"`); 428 when it is required and absent, 422
    when it is not an ETag this server could have issued."""
    if value is None:
        if required:
            raise PreconditionRequired("Send If-Match with the ETag you read, so no one's change is lost.")
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationProblem(
            "If-Match must be an ETag this server issued.",
            errors=[field_error("header:If-Match", "malformed")],
        )
    return int(raw)


async def poll_events(
    read: Callable[[int], Awaitable[tuple[Sequence[Any], bool]]],
    after: int,
    follow: bool,
    last_kind: str,
    body: Callable[[Any], dict[str, Any]],
) -> AsyncIterator[ServerSentEventMessage]:
    """Send each event after `after` once, as `read(after)` finds them in short read-only transactions (so
    every process serving the stream sees what any worker wrote). `read` answers the new events (each with
    `seq` and `kind`) and whether more may come; the stream ends after an event of `last_kind`, when nothing
    more may come, or at once unless `follow`. An idle stream gets a keep-alive comment now and then."""
    idle = 0
    while True:
        events, live = await read(after)
        for event in events:
            after = event.seq
            yield ServerSentEventMessage(
                data=msgspec.json.encode(body(event)).decode(), event=event.kind, id=str(event.seq)
            )
            if event.kind == last_kind:
                return
        if not follow or (not events and not live):
            return
        idle = 0 if events else idle + 1
        if idle and idle % KEEP_ALIVE_POLLS == 0:
            yield ServerSentEventMessage(comment="keep-alive")
        await asyncio.sleep(POLL_SECONDS)
