"""The archive bundle's bytes, its signature and the offline checks of it (G-09).

A bundle is one JSON object:

    {"manifest": {…}, "manifest_sha256": "<hex>", "key_id": "<16 hex>", "public_key": "<base64>",
     "signature": "<base64>"}

`manifest_sha256` is the SHA-256 of the manifest's canonical bytes: UTF-8 JSON with sorted keys, no spaces,
not \\u-escaped, and no floats (money in fen, points in hundredths). `signature` is the Ed25519 signature,
with the platform's log key (`GET /api/v1/transparency/key`), over these UTF-8 lines, each ending in a line
feed: `ggzy-archive-v1` and the manifest's SHA-256 in lowercase hex. The first line keeps these signatures
apart from every other text the same key signs. `public_key` is informational: a verifier pins the key.

Pure: no database, no web framework.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from bidding import merkle, opening_record
from escrow import heads, ledger
from evaluation import report
from rules import rotation
from storage.commitments import final_quote_commitment
from storage.signing import LogSigner, key_id

VERSION: Final = "ggzy-archive-v1"
KIND: Final = "ggzy-archive"


class BundleError(ValueError):
    """A bundle that cannot be read as one; the message names the part."""


@dataclass(frozen=True)
class Check:
    """One check of a bundle: its name, whether it held, and what it found."""

    name: str
    ok: bool
    detail: str


def canonical(manifest: dict[str, Any]) -> bytes:
    """The manifest's canonical bytes (sorted keys, UTF-8, no floats); a float or any non-JSON value is a
    BundleError naming where it is."""
    try:
        return report.canonical(manifest)
    except report.ReportError as exc:
        raise BundleError(str(exc).replace("report", "manifest", 1)) from None


def manifest_sha256(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest's canonical bytes, 64 lowercase hex digits."""
    return hashlib.sha256(canonical(manifest)).hexdigest()


def message(digest: str) -> bytes:
    """The bytes the platform signs for a bundle whose manifest hashes to `digest`."""
    return f"{VERSION}\n{digest}\n".encode()


def seal(manifest: dict[str, Any], signer: LogSigner) -> dict[str, Any]:
    """The bundle of `manifest`, signed with the platform's log key."""
    digest = manifest_sha256(manifest)
    return {
        "manifest": manifest,
        "manifest_sha256": digest,
        "key_id": signer.key_id,
        "public_key": base64.b64encode(signer.public_raw).decode("ascii"),
        "signature": base64.b64encode(signer.sign(message(digest))).decode("ascii"),
    }


def to_bytes(bundle: dict[str, Any]) -> bytes:
    """The bundle as stored and served: canonical JSON too, so its own SHA-256 is stable."""
    return canonical(bundle)


# ---------------------------------------------------------------- offline checks


def _check(name: str, ok: bool, passed: str, failed: str) -> Check:
    return Check(name, ok, passed if ok else failed)


def _signature(bundle: Mapping[str, Any], manifest: dict[str, Any], key: bytes) -> list[Check]:
    try:
        digest = manifest_sha256(manifest)
    except BundleError as exc:
        return [Check("manifest hash", False, str(exc))]
    stated = bundle.get("manifest_sha256")
    checks = [
        _check(
            "manifest hash",
            digest == stated,
            f"the manifest hashes to {digest[:16]}…",
            f"the manifest hashes to {digest[:16]}…, the bundle states {str(stated)[:16]}…",
        )
    ]
    checks.append(
        _check(
            "key id",
            bundle.get("key_id") == key_id(key),
            f"signed by key {key_id(key)}",
            f"the bundle names key {bundle.get('key_id')!r}, the pinned key is {key_id(key)}",
        )
    )
    ok = False
    try:
        signature = base64.b64decode(str(bundle.get("signature", "")), validate=True)
        ok = verify_ed25519(key, signature, message(digest))
    except (binascii.Error, ValueError):
        ok = False
    checks.append(
        _check(
            "platform signature",
            ok,
            "the platform's signature over the manifest hash verifies",
            "the platform's signature does not verify over the manifest's hash",
        )
    )
    return checks


def verify_ed25519(key: bytes, signature: bytes, data: bytes) -> bool:
    """Whether `signature` is the Ed25519 signature of `data` under the raw 32-byte `key`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _notices(manifest: Mapping[str, Any]) -> list[Check]:
    wrong = []
    for notice in manifest.get("notices", []):
        try:
            digest = hashlib.sha256(canonical(notice.get("body"))).hexdigest()
        except (BundleError, AttributeError):
            digest = ""
        if digest != notice.get("body_sha256"):
            wrong.append(str(notice.get("id", "?")))
    count = len(manifest.get("notices", []))
    return [
        _check(
            "notice bodies",
            not wrong,
            f"{count} notice bod{'y' if count == 1 else 'ies'} hash as listed",
            f"notice bodies do not hash as listed: {', '.join(wrong)}",
        )
    ]


def _final_quotes(manifest: Mapping[str, Any]) -> list[Check]:
    """Each opened final quote of a negotiated procedure opens its commitment: the price the panel
    evaluated is the one sealed before the deadline."""
    tender_id = uuid.UUID(str(manifest["tender"]["id"]))
    quotes = (manifest.get("negotiation") or {}).get("final_quotes", [])
    opened = [q for q in quotes if q.get("price_fen") is not None]
    if not quotes:
        return []
    wrong = [
        str(q.get("organisation_id"))
        for q in opened
        if final_quote_commitment(
            tender_id,
            uuid.UUID(str(q["lot_id"])),
            uuid.UUID(str(q["organisation_id"])),
            int(q["price_fen"]),
            str(q.get("nonce")),
        )
        != q.get("commitment")
    ]
    return [
        _check(
            "final quotes",
            not wrong,
            f"{len(opened)} of {len(quotes)} sealed final quote(s) opened, each opening its commitment",
            f"final quotes that do not open their commitment: {', '.join(wrong)}",
        )
    ]


def _instant(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


def _framework_orders(manifest: Mapping[str, Any]) -> list[Check]:
    """Each order under a framework agreement (G-01) went to a supplier admitted on its lot, at no more than
    the supplier's cap as archived (a cap is only ever lowered, so an order above it cannot have been
    lawful); a mini-competition's to its lowest quote, the earliest of equal quotes, and no quote came
    after the close."""
    framework = manifest.get("framework")
    if not framework:
        return []
    caps = {(str(a["lot_id"]), str(a["organisation_id"])): int(a["cap_fen"]) for a in framework["admissions"]}
    wrong = []
    placed = [o for o in framework["orders"] if o["status"] == "placed"]
    for order in framework["orders"]:
        quotes = order.get("quotes", [])
        if any(_instant(q["quoted_at"]) >= _instant(order["closes_at"]) for q in quotes):
            wrong.append(f"{order['id']} (a quote after the close)")
    for order in placed:
        cap = caps.get((str(order["lot_id"]), str(order["organisation_id"])))
        if cap is None or int(order["price_fen"]) > cap:
            wrong.append(f"{order['id']} (not admitted, or above the cap)")
            continue
        admission = _admission_of(framework, order)
        assert admission is not None  # it has a cap
        if _instant(admission["admitted_at"]) > _instant(order["placed_at"]) or (
            admission.get("left_at") and _instant(admission["left_at"]) <= _instant(order["placed_at"])
        ):
            wrong.append(f"{order['id']} (to a supplier not admitted at the time)")
            continue
        quotes = order.get("quotes", [])
        if order["kind"] == "competition":
            best = min(quotes, key=lambda q: (int(q["price_fen"]), _instant(q["quoted_at"])), default=None)
            if best is None or (str(best["organisation_id"]), int(best["price_fen"])) != (
                str(order["organisation_id"]),
                int(order["price_fen"]),
            ):
                wrong.append(f"{order['id']} (not the lowest quote)")
    wrong += _rotation(framework)
    return [
        _check(
            "framework orders",
            not wrong,
            f"{len(placed)} order(s) under the framework agreement, each to an admitted supplier within its "
            "cap, each mini-competition to its lowest quote",
            f"framework orders that break the agreement: {', '.join(wrong)}",
        )
    ]


def _admission_of(framework: Mapping[str, Any], order: Mapping[str, Any]) -> Mapping[str, Any] | None:
    key = (str(order["lot_id"]), str(order["organisation_id"]))
    return next(
        (a for a in framework["admissions"] if (str(a["lot_id"]), str(a["organisation_id"])) == key), None
    )


def _rotation(framework: Mapping[str, Any]) -> list[str]:
    """Each order by rotation (顺序轮候) went to the supplier whose turn it was (`rules/rotation.py`), replayed
    from the admissions as they stood when it was placed and the supplier of the lot's previous one."""
    wrong = []
    last: dict[str, rotation.Member] = {}
    for order in framework["orders"]:
        if order["kind"] != "rotation":
            continue
        lot, at = str(order["lot_id"]), _instant(order["placed_at"])
        members = [
            _member(a)
            for a in framework["admissions"]
            if str(a["lot_id"]) == lot
            and _instant(a["admitted_at"]) <= at
            and not (a.get("left_at") and _instant(a["left_at"]) <= at)
        ]
        turn = rotation.queue(members, last.get(lot))
        admission = _admission_of(framework, order)
        if not turn or turn[0] != str(order["organisation_id"]) or admission is None:
            wrong.append(f"{order['id']} (not the supplier whose turn it was)")
            continue
        last[lot] = _member(admission)
    return wrong


def _member(a: Mapping[str, Any]) -> rotation.Member:
    return rotation.Member(_instant(a["admitted_at"]), str(a.get("id")), str(a["organisation_id"]))


def _envelopes(manifest: Mapping[str, Any], key: bytes) -> list[Check]:
    listed = sorted(str(e.get("sha256")) for e in manifest.get("envelopes", []) if e.get("stands"))
    record = manifest.get("opening_record")
    closing = manifest.get("closing")
    checks: list[Check] = []
    if closing is not None:
        sealed = sorted(str(h) for h in closing.get("envelopes", []))
        checks.append(
            _check(
                "closing envelopes",
                sealed == listed,
                f"the closing head's {len(sealed)} envelope hash(es) equal the envelope list",
                f"the closing head seals {len(sealed)} envelope hash(es), the envelope list holds "
                f"{len(listed)}; differing: {', '.join(h[:12] for h in sorted(set(sealed) ^ set(listed)))}",
            )
        )
    if record is not None:
        opened = sorted(str(e.get("envelope_sha256")) for e in record.get("envelopes", []))
        checks.append(
            _check(
                "opening record envelopes",
                opened == listed,
                f"the opening record's {len(opened)} envelope hash(es) equal the envelope list",
                f"the opening record reads {len(opened)} envelope hash(es), the envelope list holds "
                f"{len(listed)}; differing: {', '.join(h[:12] for h in sorted(set(opened) ^ set(listed)))}",
            )
        )
        failed = [c for c in opening_record.verify(record, key) if not c.ok]
        checks.append(
            _check(
                "opening record",
                not failed,
                "the signed opening record verifies",
                "; ".join(f"{c.name}: {c.detail}" for c in failed),
            )
        )
    return checks


def _evaluation(manifest: Mapping[str, Any]) -> list[Check]:
    checks = []
    for room in manifest.get("evaluation", []):
        body, stated = room.get("report"), room.get("report_hash")
        try:
            digest = report.report_hash(body) if body is not None else None
        except report.ReportError:
            digest = ""
        checks.append(
            _check(
                f"report {str(stated)[:12]}",
                digest is None or digest == stated,
                "the evaluation report hashes to the hash the members signed",
                f"the evaluation report hashes to {str(digest)[:16]}…, not the stated {str(stated)[:16]}…",
            )
        )
        bad = []
        for sig in room.get("signatures", []):
            if sig.get("outcome") != "signed":
                continue
            try:
                ok = report.verify_signature(
                    base64.b64decode(str(sig.get("public_key"))),
                    str(stated),
                    base64.b64decode(str(sig.get("signature"))),
                )
            except (binascii.Error, ValueError, report.ReportError):
                ok = False
            if not ok:
                bad.append(str(sig.get("seat")))
        checks.append(
            _check(
                f"report {str(stated)[:12]} signatures",
                not bad,
                "every member's signature verifies over the report hash",
                f"the signatures of seat(s) {', '.join(bad)} do not verify",
            )
        )
    return checks


def _stored(entry: Mapping[str, Any]) -> ledger.StoredEntry:
    party = entry.get("party") or {}
    return ledger.StoredEntry(
        sequence=int(entry["sequence"]),
        idempotency_key=str(entry["idempotency_key"]),
        request_hash=str(entry["request_hash"]),
        reason=str(entry["reason"]),
        phase=str(entry["phase"]),
        at=datetime.fromisoformat(str(entry["at"])).astimezone(UTC),
        previous_hash=str(entry["previous_hash"]),
        hash=str(entry["hash"]),
        postings=tuple(ledger.Posting(str(p["account"]), int(p["amount_fen"])) for p in entry["postings"]),
        context=dict(entry.get("context") or {}),
        actor=str(entry["actor"]),
        resolves=entry.get("resolves"),
        party=ledger.Party(
            str(party.get("role", "")),
            str(party.get("account", "")),
            str(party.get("name", "")),
            str(party.get("bank", "")),
        ),
        scheme=int(entry["scheme"]),
    )


def _ledger(manifest: Mapping[str, Any], key: bytes) -> list[Check]:
    extract = manifest.get("deposit_ledger") or {}
    entries = extract.get("entries", [])
    accounts = set(extract.get("accounts", []))
    deposits = set(extract.get("deposits", []))
    checks: list[Check] = []
    head = None
    if extract.get("head") is not None:
        try:
            head = heads.parse(extract["head"])
        except heads.HeadError as exc:
            return [Check("ledger head", False, exc.message)]
        checks.append(
            _check(
                "ledger head",
                heads.signature_ok(head, key),
                f"ledger head {head.sequence} ({head.entries} entries) is signed by the platform key",
                f"ledger head {head.sequence} is not signed by the platform key",
            )
        )
    broken: list[str] = []
    previous: ledger.StoredEntry | None = None
    for raw in entries:
        try:
            stored = _stored(raw)
        except (KeyError, TypeError, ValueError) as exc:
            broken.append(f"entry {raw.get('sequence', '?')} unreadable ({exc})")
            continue
        where = f"entry {stored.sequence}"
        try:
            if ledger.request_hash(stored.draft()) != stored.request_hash:
                broken.append(f"{where}: request hash does not recompute")
            link = ledger.link_hash(
                stored.previous_hash,
                stored.sequence,
                stored.idempotency_key,
                stored.request_hash,
                stored.phase,
                stored.at,
                stored.scheme,
            )
        except (TypeError, ValueError) as exc:
            broken.append(f"{where}: {exc}")
            continue
        if link != stored.hash:
            broken.append(f"{where}: hash does not recompute")
        if previous is not None and stored.sequence <= previous.sequence:
            broken.append(f"{where}: out of order")
        if previous is not None and stored.sequence == previous.sequence + 1:
            if stored.previous_hash != previous.hash:
                broken.append(f"{where}: does not chain to entry {previous.sequence}")
        if not any(p.account in accounts for p in stored.postings) and not (
            stored.reason in ledger.MEMO_REASONS and stored.context.get("deposit") in deposits
        ):
            broken.append(f"{where}: touches none of the tender's deposit accounts or deposits")
        if head is not None:
            if stored.sequence > head.entries:
                broken.append(f"{where}: not covered by ledger head {head.sequence}")
            elif stored.sequence == head.entries and stored.hash != head.chain_hash:
                broken.append(f"{where}: differs from the chain hash ledger head {head.sequence} signs")
        previous = stored
    if entries and head is None:
        broken.append("no signed ledger head covers the entries")
    checks.append(
        _check(
            "deposit ledger extract",
            not broken,
            f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} of {len(accounts)} deposit account(s) "
            "recompute their hashes and are covered by the signed head",
            "; ".join(broken[:10]),
        )
    )
    return checks


def _heads(manifest: Mapping[str, Any], key: bytes) -> list[Check]:
    checks = []
    transparency = manifest.get("transparency_head")
    if transparency is not None:
        try:
            ok = merkle.verify_head(merkle.head_from_json(transparency), key)
        except (ValueError, KeyError, TypeError):
            ok = False
        checks.append(
            _check(
                "transparency head",
                ok,
                "the transparency log's head is signed by the platform key",
                "the transparency log's head is not signed by the platform key",
            )
        )
    audit = manifest.get("audit_head")
    if audit is not None:
        from accounts import auditchain

        try:
            ok = auditchain.verify_head(auditchain.head_from_json(audit), key)
        except (ValueError, KeyError, TypeError):
            ok = False
        checks.append(
            _check(
                "audit head",
                ok,
                "the audit trail's head is signed by the platform key",
                "the audit trail's head is not signed by the platform key",
            )
        )
    return checks


def verify(bundle: object, key: bytes) -> list[Check]:
    """Every check of a bundle under the pinned platform `key`: the signature over the manifest's hash,
    then that the manifest agrees with itself (notice bodies, envelope lists, the opening record, the final
    quotes against their commitments, a framework agreement's orders against its caps and quotes, the evaluation reports and signatures, the deposit ledger extract
    against its signed head, the heads)."""
    if not isinstance(bundle, dict) or not isinstance(bundle.get("manifest"), dict):
        return [Check("bundle", False, "not an archive bundle: no manifest object")]
    manifest = bundle["manifest"]
    if manifest.get("kind") != KIND:
        return [Check("bundle", False, f"the manifest's kind is {manifest.get('kind')!r}, not {KIND!r}")]
    checks = _signature(bundle, manifest, key)
    parts: Sequence[Callable[[], list[Check]]] = (
        lambda: _notices(manifest),
        lambda: _envelopes(manifest, key),
        lambda: _final_quotes(manifest),
        lambda: _framework_orders(manifest),
        lambda: _evaluation(manifest),
        lambda: _ledger(manifest, key),
        lambda: _heads(manifest, key),
    )
    for part in parts:
        try:
            checks += part()
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            checks.append(Check("manifest", False, f"malformed manifest ({type(exc).__name__}: {exc})"))
    return checks
