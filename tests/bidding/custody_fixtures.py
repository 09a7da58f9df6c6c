"""Envelopes a cheating bidder could make, and the submissions that carry them.

Each keeps the envelope's payload and its bidder stanza (so the bidder can still open it) and rewrites
only the custodians' `ggzy-share` stanzas, keeping their context, x, t and tags, so finalize's roster
check passes; the header MAC is recomputed with the real file key, as the bidder can.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
from collections.abc import Sequence
from typing import Any

from bidding import agekeys, envelope
from bidding.envelope import Stanza
from tests.helpers import Actor, Api, SealedBid


def _parts(sealed: bytes, keys: agekeys.KeyPair) -> tuple[envelope.Header, bytes, bytes]:
    header = envelope.read_header(io.BytesIO(sealed))
    file_key = envelope.unwrap_bidder(header, keys.encryption.private_bytes_raw())
    return header, file_key, sealed[header.size :]


def _shares(header: envelope.Header) -> list[envelope.ShareStanza]:
    return [
        envelope.parse_share_stanza(s, i)
        for i, s in enumerate(s for s in header.stanzas if s.type == envelope.SHARE_TYPE)
    ]


def _rebuild(header: envelope.Header, file_key: bytes, payload: bytes, shares: Sequence[Stanza]) -> bytes:
    bidder = [s for s in header.stanzas if s.type == envelope.X25519_TYPE]
    return envelope.encode_header([*bidder, *shares], file_key) + payload


def _with_args_of(stanza: Stanza, honest: envelope.ShareStanza) -> Stanza:
    """`stanza` (wrapped to whatever) dressed in the honest stanza's context, x, t and tag."""
    ephemeral = stanza.args[-1]
    return Stanza(
        envelope.SHARE_TYPE,
        (honest.context, str(honest.x), str(honest.t), honest.tag, ephemeral),
        stanza.body,
    )


def random_secret_shares(sealed: bytes, keys: agekeys.KeyPair, roster: Sequence[bytes]) -> bytes:
    """Every custodian's stanza opens, but the shares are of a random secret, not of the file key."""
    header, file_key, payload = _parts(sealed, keys)
    honest = _shares(header)
    t, context = honest[0].t, honest[0].context
    fake = envelope.share_stanzas(secrets.token_bytes(envelope.FILE_KEY_SIZE), roster, t, context)
    return _rebuild(header, file_key, payload, fake)


def stanza_to_random_key(
    sealed: bytes, keys: agekeys.KeyPair, roster: Sequence[bytes], position: int
) -> bytes:
    """Shares of the real file key, but the stanza of custodian `position` (1-based) is wrapped to a random
    key: it carries that custodian's tag and x, yet that custodian cannot open it."""
    header, file_key, payload = _parts(sealed, keys)
    honest = _shares(header)
    t, context = honest[0].t, honest[0].context
    stranger = agekeys.x25519_public_raw(agekeys.generate(signing=False))
    recipients = [stranger if i == position else key for i, key in enumerate(roster, start=1)]
    stanzas = envelope.share_stanzas(file_key, recipients, t, context)
    by_x = {s.x: s for s in honest}
    return _rebuild(
        header,
        file_key,
        payload,
        [_with_args_of(s, by_x[i]) if i == position else s for i, s in enumerate(stanzas, start=1)],
    )


def roster_keys(tender: dict[str, Any]) -> list[bytes]:
    """The tender's custodian keys in share-position order."""
    return [base64.b64decode(c["public_key"]) for c in tender["custodians"]]


async def submit(
    api: Api, bidder: Actor, tender: dict[str, Any], content: bytes, price_fen: int
) -> SealedBid:
    """Upload and finalise `content` as the bidder's bid on the first lot (documents already obtained)."""
    grant = await api.post(
        f"/api/v1/tenders/{tender['id']}/bids/uploads",
        bidder,
        json={"filename": "bid.age", "size": len(content)},
    )
    assert grant.status_code == 201, grant.text
    await api.upload(grant.json(), content)
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/bids",
        bidder,
        json={"lot_id": tender["lots"][0]["id"], "object_key": grant.json()["object_key"]},
        headers={"Idempotency-Key": f"bid-{secrets.token_hex(8)}"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["envelope_sha256"] == hashlib.sha256(content).hexdigest()
    return SealedBid(
        bidder,
        tender["lots"][0]["id"],
        r.json()["bid_id"],
        price_fen,
        365,
        content,
        api.keys[bidder.organisation_id],
        r.json(),
    )


async def cheat(api: Api, tender: dict[str, Any], price_fen: int, how: str, position: int = 2) -> SealedBid:
    """A bidder that obtains the documents and submits an envelope made by `how` ("random_secret" or
    "random_key" for custodian `position`)."""
    bidder = await api.organisation("bidder")
    r = await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", bidder)
    assert r.status_code == 200, r.text
    keys = await api.register_keys(bidder)
    honest = await api.seal(bidder, tender, price_fen)
    if not tender.get("custodians"):
        tender = (await api.get(f"/api/v1/tenders/{tender['id']}", bidder)).json()
    roster = roster_keys(tender)
    if how == "random_secret":
        content = random_secret_shares(honest, keys, roster)
    else:
        content = stanza_to_random_key(honest, keys, roster, position)
    return await submit(api, bidder, tender, content, price_fen)


async def pay_deposits(api: Api, bidders: Sequence[Actor]) -> None:
    """Each bidder's deposit of the tender it registered for arrives by the bank's statement, unless it is
    already held (the test helpers' bidders pay theirs before they bid)."""
    from escrow import sandbox
    from storage.settings import Settings

    centre = await api.bootstrap_centre()
    day = api.clock.now().date()
    lines = []
    for i, bidder in enumerate(bidders):
        [deposit] = (await api.get("/api/v1/escrow/deposits", bidder)).json()
        if deposit["held_fen"] > 0:
            continue
        lines.append(
            sandbox.Credit(
                f"C{secrets.token_hex(6)}",
                deposit["required_fen"],
                day,
                f"付款人 {i}",
                f"62220000{secrets.randbelow(10**8):08d}",
                "中国工商银行南京分行",
                deposit["virtual_number"],
                "投标保证金",
            )
        )
    if not lines:
        return
    content = sandbox.statement(Settings.escrow_account, f"S{secrets.token_hex(6)}", api.clock.now(), lines)
    r = await api.client.post(
        "/api/v1/escrow/statements",
        params={"format": "camt053"},
        content=content,
        headers={**centre.headers, "Content-Type": "application/xml"},
    )
    assert r.status_code == 200 and r.json()["matched"] == len(lines), r.text
