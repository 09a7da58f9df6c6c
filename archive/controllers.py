"""HTTP route of the trade archive (G-09): the signed bundle of an ended tender, for the agency that ran it,
the centre, supervisors and auditors."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import msgspec
from litestar import Controller, get
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import requires
from accounts.security import Principal
from archive import assemble
from storage.objects import ObjectStore
from storage.problems import NotFound
from trading.tenders import oversees, tender_by_id


class ArchiveBundle(msgspec.Struct, kw_only=True):
    """A tender's archive bundle as kept: `manifest` lists every record of the trade (canonical JSON:
    sorted keys, UTF-8, no floats), `manifest_sha256` is the SHA-256 of its canonical bytes, and
    `signature` is the base64 Ed25519 signature by the platform's log key (`key_id`; `public_key` is
    informational, pin `GET /api/v1/transparency/key`) over the lines `ggzy-archive-v1` and the manifest's
    SHA-256, each ending in a line feed. `ggzy verify archive FILE` checks it offline."""

    manifest: dict[str, Any]
    manifest_sha256: str
    key_id: str
    public_key: str
    signature: str


class ArchiveController(Controller):
    """The archive of an ended tender."""

    path = "/api/v1/tenders"
    tags = ["archive"]

    @get(
        "/{tender_id:uuid}/archive",
        operation_id="get_tender_archive",
        guards=[requires("agency", "centre", "supervisor", "auditor")],
    )
    async def archive(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, object_store: ObjectStore
    ) -> ArchiveBundle:
        """The newest signed archive bundle of the tender, assembled by the chronograph when it ended."""
        tender = await tender_by_id(session, tender_id)
        if not oversees(principal, tender):
            raise NotFound("No such tender.")
        row = await assemble.latest_of(session, tender.id)
        data = b"".join([chunk async for chunk in object_store.iter_chunks(row.object_key)])
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise RuntimeError(f"archive {row.object_key} does not match its recorded SHA-256")
        return msgspec.convert(json.loads(data), ArchiveBundle)
