"""The published opening record (开标记录) and the custody statement of the closing head, and their offline
verification (`ggzy verify opening`).

At the deadline the platform signs, beside the closing head, a **custody statement**: the tender's
custodian roster (position, organisation, key, its fingerprint, whether it is the platform), the
threshold t (custodians other than the platform) and the Shamir threshold T written in the stanzas, and
every standing envelope's SHA-256 paired with the SHA-256 of its age header. After the opening the
platform signs the **opening record**: the closing record, each standing envelope's public header, what
became of it and, for an envelope that went to custody, every custodian's release with its proof and the
outcome with its cause. `verify` re-checks all of it from the record alone and the pinned platform key:
signatures, header hashes, every proof, every stanza opening and the stated cause, by `custody.attribute`.

Messages signed: b"ggzy-closing-custody-v1\\n" + canonical JSON of the statement, and
b"ggzy-opening-record-v1\\n" + canonical JSON of the record without its `signature` (canonical JSON: sorted
keys, no spaces, UTF-8, as `merkle.leaf_bytes`).

Pure: no database, no web framework.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bidding import custody, envelope, logtree, merkle
from bidding.envelope import EnvelopeError
from bidding.merkle import Check

STATEMENT_DOMAIN: Final = b"ggzy-closing-custody-v1\n"
RECORD_DOMAIN: Final = b"ggzy-opening-record-v1\n"
RECORD_KIND: Final = "ggzy/v1/opening-record"
RECORD_VERSION: Final = 1
# What an envelope's `result` says for each custody cause (an opened one then reads as any opened bid).
CAUSE_RESULTS: Final = {"bidder_fault": "custody.bidder_fault", "custodian_fault": "custody.custodian_fault"}


def fingerprint(public_key: bytes) -> str:
    """A custodian key's fingerprint: the hex SHA-256 of the raw X25519 key."""
    return hashlib.sha256(public_key).hexdigest()


def custody_statement(
    *,
    tender: str,
    roster: Sequence[Mapping[str, Any]],
    threshold: int,
    shamir_threshold: int,
    envelopes: Mapping[str, str],
    technical: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The custody statement signed at the deadline. `roster` items: position, organisation, credit_code,
    public_key (raw bytes), platform; `envelopes`: envelope SHA-256 → header SHA-256; on a tender of two
    envelopes (双信封) `technical` the same for the technical envelopes, whose headers hold shares too."""
    statement: dict[str, Any] = {
        "v": 1,
        "tender": tender,
        "threshold": threshold,
        "shamir_threshold": shamir_threshold,
        "roster": [
            {
                "position": int(c["position"]),
                "organisation": str(c["organisation"]),
                "credit_code": str(c["credit_code"]),
                "public_key": base64.b64encode(bytes(c["public_key"])).decode("ascii"),
                "fingerprint": fingerprint(bytes(c["public_key"])),
                "platform": bool(c["platform"]),
            }
            for c in sorted(roster, key=lambda c: int(c["position"]))
        ],
        "envelopes": [{"sha256": sha, "header_sha256": envelopes[sha]} for sha in sorted(envelopes)],
    }
    if technical:
        statement["technical"] = [
            {"sha256": sha, "header_sha256": technical[sha]} for sha in sorted(technical)
        ]
    return statement


def statement_message(statement: Mapping[str, Any]) -> bytes:
    """The bytes the custody statement's signature covers."""
    return STATEMENT_DOMAIN + merkle.leaf_bytes(statement)


def record_message(record: Mapping[str, Any]) -> bytes:
    """The bytes the opening record's signature covers: the record without its `signature`."""
    return RECORD_DOMAIN + merkle.leaf_bytes({k: v for k, v in record.items() if k != "signature"})


def roster_of(statement: Mapping[str, Any]) -> list[custody.Custodian]:
    """The custodians of a custody statement (ValueError when it is malformed)."""
    out = []
    for item in statement["roster"]:
        key = base64.b64decode(str(item["public_key"]), validate=True)
        position = item["position"]
        if isinstance(position, bool) or not isinstance(position, int) or len(key) != 32:
            raise ValueError("a roster entry needs an integer position and a 32-byte key")
        out.append(custody.Custodian(position, key, item["platform"] is True))
    return out


# --- verification --------------------------------------------------------------------------------------


def _signed(name: str, key: bytes, signature: object, message: Callable[[], bytes], what: str) -> Check:
    try:
        raw = base64.b64decode(str(signature), validate=True)
        Ed25519PublicKey.from_public_bytes(key).verify(raw, message())
    except (InvalidSignature, ValueError, TypeError, KeyError, binascii.Error):
        return Check(name, False, f"{what} is not signed by the pinned platform key")
    return Check(name, True, f"{what} is signed by the pinned platform key (key id {merkle.key_id(key)})")


def _short(digest: object) -> str:
    return str(digest)[:12] + "…"


def _envelope_checks(
    item: Mapping[str, Any],
    statement: Mapping[str, Any],
    roster: Sequence[custody.Custodian],
    headers: Mapping[str, str],
    label: str = "",
) -> list[Check]:
    sha = str(item.get("envelope_sha256"))
    name = label + _short(sha)
    try:
        header_raw = base64.b64decode(str(item["header"]), validate=True)
        header = envelope.parse_header(header_raw)
    except (KeyError, ValueError, binascii.Error, EnvelopeError) as exc:
        return [Check(f"header {name}", False, f"the published header does not parse ({exc})")]
    digest = envelope.header_sha256(header)
    signed = headers.get(sha)
    if envelope.header_bytes(header) != header_raw or digest != item.get("header_sha256") or digest != signed:
        return [
            Check(
                f"header {name}",
                False,
                f"the header's SHA-256 {_short(digest)} is not the one signed at the deadline "
                f"({_short(signed)})",
            )
        ]
    checks = [
        Check(f"header {name}", True, f"the header hashes to {_short(digest)}, as signed at the deadline")
    ]
    held = item.get("custody")
    if held is None:
        return checks
    return checks + _custody_checks(name, header, held, item, statement, roster)


def _custody_checks(
    name: str,
    header: envelope.Header,
    held: Any,
    item: Mapping[str, Any],
    statement: Mapping[str, Any],
    roster: Sequence[custody.Custodian],
) -> list[Check]:
    checks = []
    tender = str(statement["tender"])
    by_position = {c.position: c for c in roster}
    releases: dict[int, object] = {}
    for entry in held.get("releases", []):
        position = entry.get("position")
        custodian = by_position.get(position) if isinstance(position, int) else None
        check_name = f"release {name} x={position}"
        if custodian is None or position in releases:
            checks.append(Check(check_name, False, "the release names no custodian of the roster (or twice)"))
            continue
        releases[position] = entry.get("release")
        try:
            _release, share = custody.check_release(entry.get("release"), header, custodian, tender)
        except EnvelopeError as exc:
            ok = entry.get("valid") is False and entry.get("error") == exc.code
            checks.append(
                Check(
                    check_name,
                    ok,
                    f"invalid ({exc.code}), as stated"
                    if ok
                    else f"invalid ({exc.code}) but stated {entry.get('valid')}",
                )
            )
            continue
        ok = entry.get("valid") is True
        opens = "its stanza opens" if share is not None else "its stanza does NOT open (the bidder's fault)"
        checks.append(
            Check(
                check_name,
                ok,
                f"the proof holds; {opens}" if ok else "the proof holds but it is stated invalid",
            )
        )
    outcome = custody.attribute(
        header,
        roster,
        shamir_threshold=int(statement["shamir_threshold"]),
        context=tender,
        releases=releases,
    )
    stated = held.get("outcome")
    recomputed = outcome.evidence()
    same = isinstance(stated, Mapping) and all(stated.get(k) == v for k, v in recomputed.items())
    expected_result = CAUSE_RESULTS.get(outcome.cause)
    result_ok = expected_result is None or item.get("result") == expected_result
    if same and result_ok:
        checks.append(Check(f"cause {name}", True, f"{outcome.cause}: {outcome.detail}"))
    else:
        got = stated.get("cause") if isinstance(stated, Mapping) else stated
        checks.append(
            Check(
                f"cause {name}",
                False,
                f"the releases give {outcome.cause} ({outcome.detail}); the record states {got} "
                f"with result {item.get('result')}",
            )
        )
    return checks


def verify(record: Any, trusted_key: bytes) -> list[Check]:
    """Every check of a published opening record against the pinned platform key, offline. A check whose
    inputs are not authenticated (the record's or the custody statement's signature fails) is reported
    as failed, never as passed."""
    if (
        not isinstance(record, Mapping)
        or record.get("kind") != RECORD_KIND
        or record.get("v") != RECORD_VERSION
    ):
        return [Check("format", False, f"not a {RECORD_KIND} v{RECORD_VERSION} document")]
    try:
        closing = record["closing"]
        statement = closing["custody"]
        head = merkle.head_from_json(closing["head"])
        items = list(record["envelopes"])
        roster = roster_of(statement)
        headers = {str(e["sha256"]): str(e["header_sha256"]) for e in statement["envelopes"]}
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        return [Check("format", False, f"the record is malformed ({exc})")]
    checks = [
        Check("format", True, f"opening record of {record.get('tender')}"),
        _signed(
            "record_signature",
            trusted_key,
            record.get("signature"),
            lambda: record_message(record),
            "the record",
        ),
        Check(
            "closing_signature",
            merkle.verify_head(head, trusted_key),
            f"the closing head at {head.head.tree_size} leaves"
            + (
                " is signed by the pinned key"
                if merkle.verify_head(head, trusted_key)
                else " is NOT signed by the pinned key"
            ),
        ),
        _signed(
            "closing_set_signature",
            trusted_key,
            closing.get("envelopes_signature"),
            lambda: logtree.closing_message(
                str(closing["tender"]),
                head.head.tree_size,
                str(closing["head"]["root_hash"]),
                closing["envelopes"],
            ),
            f"the set of {len(closing.get('envelopes', []))} envelopes at the deadline",
        ),
        _signed(
            "custody_statement_signature",
            trusted_key,
            closing.get("custody_signature"),
            lambda: statement_message(statement),
            f"the custody statement (t={statement.get('threshold')}, T={statement.get('shamir_threshold')}, "
            f"{len(roster)} custodians)",
        ),
    ]
    if not all(c.ok for c in checks):
        return [
            *checks,
            Check("contents", False, "not checked: the record is not authenticated by the pinned key"),
        ]
    standing = sorted(str(s) for s in closing["envelopes"])
    listed = sorted(str(i.get("envelope_sha256")) for i in items)
    consistent = standing == sorted(headers) == listed and statement.get("tender") == closing.get(
        "tender"
    ) == record.get("tender")
    checks.append(
        Check(
            "envelopes_accounted",
            consistent,
            f"the record accounts for each of the {len(standing)} envelopes standing at the deadline"
            if consistent
            else "the record's envelopes are not exactly those signed at the deadline",
        )
    )
    for item in items:
        checks += _envelope_checks(item, statement, roster, headers)
    if "technical" in record or "technical" in statement:
        checks += _technical_checks(record, items, statement, roster)
    return checks


def _technical_checks(
    record: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    statement: Mapping[str, Any],
    roster: Sequence[custody.Custodian],
) -> list[Check]:
    """A tender of two envelopes (双信封): its technical lines account for exactly the technical envelopes
    signed at the deadline, one for each standing bid; each header hashes as signed, each custody opening
    recomputes to its stated cause and each says consistently how it was opened."""
    try:
        lines = list(record.get("technical") or [])
        headers = {str(e["sha256"]): str(e["header_sha256"]) for e in statement.get("technical") or []}
        bids = sorted(str(i.get("bid")) for i in items)
        consistent = (
            sorted(str(t.get("envelope_sha256")) for t in lines) == sorted(headers)
            and sorted(str(t.get("bid")) for t in lines) == bids
        )
    except (AttributeError, KeyError, TypeError) as exc:
        return [Check("technical_accounted", False, f"the technical lines are malformed ({exc})")]
    checks = [
        Check(
            "technical_accounted",
            consistent,
            f"the record accounts for each of the {len(headers)} technical envelopes, one for each bid"
            if consistent
            else "the record's technical envelopes are not exactly those signed at the deadline, one a bid",
        )
    ]
    for line in lines:
        checks += _envelope_checks(line, statement, roster, headers, "technical ")
        checks.append(_opened_by(line))
    return checks


def _opened_by(line: Mapping[str, Any]) -> Check:
    """Who opened a technical envelope, as the line states it: its bidder (no custody), the custodians
    (only from custody) or nobody."""
    by, held = line.get("opened_by"), line.get("custody")
    ok = by in ("bidder", "custodians", None) and not (by == "bidder" and held is not None)
    ok = ok and not (by == "custodians" and held is None)
    name = f"opened technical {_short(line.get('envelope_sha256'))}"
    return Check(
        name, ok, f"opened by {by or 'nobody'}" if ok else f"opened by {by!r} contradicts its custody"
    )
