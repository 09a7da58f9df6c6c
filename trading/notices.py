"""Notices and notifications: what the public board publishes (公告: tender notices, corrections, opening
records, candidates, results, contracts, failures), which can never be retracted, only superseded (S-03);
and the messages each party receives about the trades it takes part in."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from storage import outbox
from storage.pagination import check_limit, decode_cursor, page_after
from storage.problems import (
    NotFound,
    ValidationProblem,
    field_error,
)
from trading import board, schemas
from trading.models import (
    DocumentAccess,
    Notice,
    Notification,
    Tender,
)


async def publish_notice(
    session: AsyncSession,
    tender: Tender,
    kind: str,
    title: str,
    body: dict[str, Any],
    now: datetime,
    *,
    supersedes: Notice | None = None,
) -> Notice:
    notice = Notice(
        tender_id=tender.id,
        kind=kind,
        sector=tender.sector,
        region_code=tender.region_code,
        tender_code=tender.code,
        title=title,
        body=body,
        published_at=now,
        supersedes_id=supersedes.id if supersedes else None,
    )
    session.add(notice)
    await session.flush()
    if supersedes is not None:
        supersedes.superseded_by_id = notice.id
    await accounts.record(
        session, None, "notice.publish", "notice", notice.id, now, kind=kind, tender=tender.code
    )
    return notice


# In the order of the board's read model, so a row becomes one by position: reading a row's columns by name
# cost more than the query.
NOTICE_COLUMNS = tuple(Notice.__table__.c[name] for name in schemas.NoticeRead.__struct_fields__)


async def list_notices(
    session: AsyncSession,
    *,
    kind: str | None,
    sector: str | None,
    region_code: str | None,
    tender_code: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[schemas.NoticeRead], str | None]:
    """Published notices, newest first, filtered and searched (title or tender code), as the board shows
    them. They are read as plain columns, not ORM objects: building and tracking objects was a tenth of
    the board's time.

    A read unit answers from this process's board cache while the board's version token is unchanged
    (trading/board.py): exactly what the query would read now, without the query."""
    limit = check_limit(limit)
    if q and len(q) > 100:
        raise ValidationProblem("q is at most 100 characters.", errors=[field_error("q", "too long")])
    found = board.board_cache(session)
    if found is None:
        return await _read_notices(session, kind, sector, region_code, tender_code, q, cursor, limit)
    engine, cache = found
    key = (kind, sector, region_code, tender_code, q, cursor, limit)
    token = await cache.token(session, engine)  # read before the page, so the page is at least as new
    if token is not None and (page := cache.get(key, token)) is not None:
        cached: tuple[Sequence[schemas.NoticeRead], str | None] = page
        return cached
    notices, next_cursor = await _read_notices(
        session, kind, sector, region_code, tender_code, q, cursor, limit
    )
    if token is not None:
        cache.keep(key, token, (tuple(notices), next_cursor))
    return notices, next_cursor


async def _read_notices(
    session: AsyncSession,
    kind: str | None,
    sector: str | None,
    region_code: str | None,
    tender_code: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[schemas.NoticeRead], str | None]:
    query = select(*NOTICE_COLUMNS).order_by(Notice.published_at.desc(), Notice.id.desc()).limit(limit + 1)
    if kind:
        query = query.where(Notice.kind == kind)
    if sector:
        query = query.where(Notice.sector == sector)
    if region_code:
        query = query.where(Notice.region_code == region_code)
    if tender_code:
        query = query.where(Notice.tender_code == tender_code)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # The pattern is rendered into the statement (quoted), not bound, so PostgreSQL plans for it: the order
        # index for a common word, the trigram index for a rare one. Backslash is PostgreSQL's default LIKE
        # escape, and an explicit ESCAPE clause would keep the trigram index out; SQLite needs one.
        term: Any = bindparam("q", pattern, literal_execute=True)
        escape = None if _dialect(session) == "postgresql" else "\\"
        query = query.where(
            or_(Notice.title.ilike(term, escape=escape), Notice.tender_code.ilike(term, escape=escape))
        )
    if cursor:
        at, row_id = decode_cursor(cursor)
        query = query.where((Notice.published_at < at) | ((Notice.published_at == at) & (Notice.id < row_id)))
    notices = [schemas.NoticeRead(*row) for row in await session.execute(query)]
    return page_after(notices, limit, "published_at")


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else ""


async def get_notice(session: AsyncSession, notice_id: uuid.UUID) -> Notice:
    """One published notice."""
    notice = await session.get(Notice, notice_id)
    if notice is None:
        raise NotFound("No such notice.")
    return notice


async def notify_holders(
    session: AsyncSession, tender: Tender, kind: str, message: str, now: datetime
) -> int:
    """Tell every organisation that obtained the documents, through the outbox (after commit)."""
    holders = list(
        await session.scalars(
            select(DocumentAccess.organisation_id).where(DocumentAccess.tender_id == tender.id)
        )
    )
    if holders:
        outbox.enqueue(
            session,
            "trading.notify",
            {
                "tender_id": str(tender.id),
                "organisations": [str(h) for h in holders],
                "kind": kind,
                "message": message,
            },
            now,
        )
    return len(holders)


async def deliver_notifications(session: AsyncSession, payload: dict[str, Any], now: datetime) -> int:
    """The job behind `notify_holders`: one notification row per organisation (idempotent per message)."""
    tender_id = uuid.UUID(payload["tender_id"])
    delivered = 0
    for org in payload["organisations"]:
        org_id = uuid.UUID(org)
        exists = await session.scalar(
            select(Notification.id).where(
                Notification.organisation_id == org_id,
                Notification.tender_id == tender_id,
                Notification.kind == payload["kind"],
                Notification.message == payload["message"],
            )
        )
        if exists is None:
            session.add(
                Notification(
                    organisation_id=org_id,
                    tender_id=tender_id,
                    kind=payload["kind"],
                    message=payload["message"],
                    created_at=now,
                )
            )
            delivered += 1
    return delivered


async def list_notifications(session: AsyncSession, actor: Principal) -> list[Notification]:
    """The caller organisation's notifications, newest first."""
    rows = await session.scalars(
        select(Notification)
        .where(Notification.organisation_id == actor.organisation_id)
        .order_by(Notification.created_at.desc())
        .limit(200)
    )
    return list(rows)
