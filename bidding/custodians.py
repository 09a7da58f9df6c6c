"""The opening custodians of a tender: the roster fixed at publication, and the shares they release after the deadline, each attributed to its custodian."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from bidding import custody, envelope, shamir
from bidding.models import (
    Custodian,
    Envelope,
    ShareRelease,
    TechnicalEnvelope,
)
from bidding.records import b64, header_of
from storage.problems import Conflict, NotFound, ValidationProblem, field_error

MAX_CUSTODIANS = 10

# The envelope a custody share is of (双信封): a bid's commercial envelope (the only one on a tender of one
# envelope) or its technical one; each header holds shares of its own file key.
KINDS = ("technical", "commercial")


async def set_roster(
    session: AsyncSession,
    tender_id: uuid.UUID,
    organisation_ids: Sequence[uuid.UUID],
    threshold: int,
    now: datetime,
) -> list[Custodian]:
    """Freeze a tender's custodians at publication: each named organisation's newest encryption key, share
    positions in the order given. The platform (the centre) holds at most one share and never counts
    toward t: 2 ≤ t ≤ the number of the other custodians (see `shamir_threshold`)."""
    rows = await _roster_of(session, tender_id, organisation_ids, threshold)
    for row in rows:
        session.add(row)
    await session.flush()
    return rows


async def check_roster(session: AsyncSession, organisation_ids: Sequence[uuid.UUID], threshold: int) -> None:
    """Refuse custodians `set_roster` would refuse, recording nothing (a notice submitted for review)."""
    await _roster_of(session, None, organisation_ids, threshold)


async def _roster_of(
    session: AsyncSession, tender_id: uuid.UUID | None, organisation_ids: Sequence[uuid.UUID], threshold: int
) -> list[Custodian]:
    n = len(organisation_ids)
    if n < 2 or n > MAX_CUSTODIANS:
        raise ValidationProblem(
            f"Name between 2 and {MAX_CUSTODIANS} opening custodians.",
            errors=[field_error("custodians", f"{n} named")],
        )
    if len(set(organisation_ids)) != n:
        raise ValidationProblem(
            "Each custodian may hold one share only.", errors=[field_error("custodians", "duplicate")]
        )
    rows: list[Custodian] = []
    for position, org_id in enumerate(organisation_ids, start=1):
        where = f"custodians[{position - 1}]"
        try:
            org = await accounts.get_organisation(session, org_id)
        except NotFound:
            raise ValidationProblem(
                "No such organisation.", errors=[field_error(where, "unknown organisation")]
            ) from None
        if org.status != "active":
            raise ValidationProblem(
                f"{org.name} is not an active organisation.", errors=[field_error(where, "not active")]
            )
        keys = [
            k
            for k in await accounts.list_keys(session, org_id)
            if k.purpose == "encryption" and k.revoked_at is None
        ]
        if not keys:
            raise ValidationProblem(
                f"{org.name} has no registered encryption key to receive custody shares "
                "(`ggzy custodian keygen --register`).",
                errors=[field_error(where, "no encryption key")],
            )
        key = keys[-1]
        if not custody.is_prime_order_key(base64.b64decode(key.public_key)):
            # No release of a stanza wrapped to such a key could be proven (bidding.custody).
            raise ValidationProblem(
                f"{org.name}'s encryption key is not a point of the prime-order group; register a key made "
                "by `ggzy custodian keygen`.",
                errors=[field_error(where, "key.point")],
            )
        rows.append(
            Custodian(
                tender_id=tender_id,
                position=position,
                organisation_id=org_id,
                public_key_id=key.id,
                public_key=key.public_key,
                platform=org.kind == "centre",
            )
        )
    platform = sum(row.platform for row in rows)
    if platform > 1:
        raise ValidationProblem(
            "The platform may hold at most one custody share.",
            errors=[field_error("custodians", "more than one centre")],
        )
    others = n - platform
    if not 2 <= threshold <= others:
        raise ValidationProblem(
            f"The custody threshold t counts the custodians other than the platform: it must be at least 2 "
            f"and at most the {others} of them, so that neither the platform nor any one custodian alone, "
            "nor the platform with t − 1 others, can open a bid.",
            errors=[
                field_error(
                    "custody_threshold",
                    f"t={threshold} exceeds the {others} custodian(s) other than the platform"
                    if threshold > others
                    else f"t={threshold} is below 2",
                )
            ],
        )
    return rows


def shamir_threshold(rows: Sequence[Custodian], threshold: int) -> int:
    """T, the Shamir threshold written in every stanza: t + 1 when the platform holds a share (its share
    then never stands in for a custodian's), else t."""
    return threshold + (1 if any(row.platform for row in rows) else 0)


def custodians_of(rows: Sequence[Custodian]) -> list[custody.Custodian]:
    """The roster as `bidding.custody` takes it."""
    return [custody.Custodian(r.position, base64.b64decode(r.public_key), r.platform) for r in rows]


async def roster(session: AsyncSession, tender_id: uuid.UUID) -> list[Custodian]:
    """A tender's custodians by share position."""
    return list(
        await session.scalars(
            select(Custodian).where(Custodian.tender_id == tender_id).order_by(Custodian.position)
        )
    )


async def custodian_position(session: AsyncSession, tender_id: uuid.UUID, organisation_id: uuid.UUID) -> int:
    """The share position of an organisation on the roster (NotFound when it is not a custodian)."""
    position = await session.scalar(
        select(Custodian.position).where(
            Custodian.tender_id == tender_id, Custodian.organisation_id == organisation_id
        )
    )
    if position is None:
        raise NotFound("No such tender.")
    return position


@dataclass(frozen=True)
class Recorded:
    """What became of a custodian's release: `status` valid or invalid (`error`, its stable code), whether
    the proven secret opens the stanza, and whether it only repeated what was already on record."""

    status: str
    error: str | None
    detail: str | None
    stanza_opens: bool | None
    replayed: bool


async def release_of(
    session: AsyncSession, bid_id: uuid.UUID, position: int, kind: str = "commercial"
) -> ShareRelease | None:
    """The release on record for this bid's envelope of `kind` from the custodian at `position`."""
    return await session.scalar(
        select(ShareRelease).where(
            ShareRelease.bid_id == bid_id, ShareRelease.kind == kind, ShareRelease.position == position
        )
    )


async def record_release(
    session: AsyncSession,
    *,
    row: Envelope | TechnicalEnvelope,
    custodian: Custodian,
    context: str,
    release: dict[str, Any],
    now: datetime,
    kind: str = "commercial",
) -> Recorded:
    """Verify a custodian's release of its stanza of this envelope (of `kind`) at once and keep it, valid
    or not: an invalid one is the evidence of the custodian's fault until a valid one replaces it. The same
    release again is a replay; a valid release stands and is never replaced (Conflict)."""
    header = header_of(row)
    member = custody.Custodian(custodian.position, base64.b64decode(custodian.public_key), custodian.platform)
    share: shamir.Share | None = None
    error: envelope.EnvelopeError | None = None
    try:
        _parsed, share = custody.check_release(release, header, member, context)
    except envelope.EnvelopeError as exc:
        error = exc
    existing = await release_of(session, row.bid_id, custodian.position, kind)
    if existing is not None and existing.status == "valid":
        # A proof is randomised, so a retried release differs in its bytes; the secret it proves does not.
        if (
            error is None
            and existing.release is not None
            and existing.release.get("shared_secret") == release.get("shared_secret")
        ):
            return Recorded("valid", None, None, existing.share is not None, True)
        raise Conflict(
            "A valid release of this stanza is on record; it stands and cannot be replaced.",
            errors=[field_error("release", "already released")],
        )
    if existing is not None and existing.release == release:
        return Recorded(existing.status, existing.error, None if error is None else error.message, None, True)
    status = "valid" if error is None else "invalid"
    code = None if error is None else error.code
    values: dict[str, Any] = {
        "organisation_id": custodian.organisation_id,
        "share": None if share is None else b64(share.value),
        "release": release,
        "status": status,
        "error": code,
        "released_at": now,
    }
    if existing is None:
        session.add(ShareRelease(bid_id=row.bid_id, kind=kind, position=custodian.position, **values))
    else:
        for name, value in values.items():
            setattr(existing, name, value)
    await session.flush()
    return Recorded(
        status,
        code,
        None if error is None else error.message,
        None if error is not None else share is not None,
        False,
    )


async def releases_of(
    session: AsyncSession, bid_ids: Sequence[uuid.UUID], kind: str = "commercial"
) -> list[ShareRelease]:
    """The releases on record for these bids' envelopes of `kind`, by envelope and position."""
    if not bid_ids:
        return []
    return list(
        await session.scalars(
            select(ShareRelease)
            .where(ShareRelease.bid_id.in_(list(bid_ids)), ShareRelease.kind == kind)
            .order_by(ShareRelease.bid_id, ShareRelease.position)
        )
    )


async def attribute(
    session: AsyncSession,
    row: Envelope | TechnicalEnvelope,
    *,
    context: str,
    shamir_threshold: int,
    kind: str = "commercial",
) -> custody.Outcome:
    """The custody outcome of an envelope from the releases of its `kind` on record
    (`bidding.custody.attribute`: each release is verified again, exactly as anyone re-checks the published
    record); a release of the bid's other envelope never counts toward it."""
    members = custodians_of(await roster(session, row.tender_id))
    releases = {
        r.position: r.release for r in await releases_of(session, [row.bid_id], kind) if r.release is not None
    }
    return custody.attribute(
        header_of(row), members, shamir_threshold=shamir_threshold, context=context, releases=releases
    )
