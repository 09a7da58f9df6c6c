"""Tests for bidding.receipt: every field a receipt states is checked against its signed leaf, nothing passes
without a pinned key, and a receipt is checked against a closing record of either version offline."""

from __future__ import annotations

import base64
import copy
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from bidding import logtree, merkle
from bidding import receipt as receipts
from bidding.receipt import KeyPin, verify
from tests.bidding.test_merkle import JSON

PLATFORM = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = PLATFORM.public_key().public_bytes_raw()
ATTACKER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ATTACKER_PUBLIC = ATTACKER.public_key().public_bytes_raw()
PIN = KeyPin(PUBLIC, "given with --key")
TENDER = "GGZY-320100-2026-W000042"
T0 = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def leaf(event: str, n: int, **changes: Any) -> dict[str, Any]:
    """A bid event as bidding.submission writes one (without the log's own fields)."""
    at = T0 + timedelta(hours=n)
    return {
        "event": event,
        "tender": TENDER,
        "lot": 1,
        "bidder": "91320100000000001X",
        "bid": str(uuid.UUID(int=n + 1)),
        "sequence": 1,
        "envelope_sha256": hashlib.sha256(f"envelope {n}".encode()).hexdigest(),
        "size": 4096 + n,
        "submitted_at": _z(at),
        "at": _z(at),
    } | changes


def api_receipt(log_part: dict[str, Any]) -> dict[str, Any]:
    """The API's receipt around its log part (trading.schemas.Receipt)."""
    entry = log_part["leaf"]
    submitted = entry["submitted_at"] if "submitted_at" in entry else entry["at"]
    return {
        "bid_id": entry["bid"],
        "tender_code": entry["tender"],
        "lot_number": entry["lot"],
        "bidder_credit_code": entry["bidder"],
        "envelope_sha256": entry["envelope_sha256"],
        "size": entry["size"],
        "submitted_at": submitted,
        "sequence": entry["sequence"],
        "event": entry["event"],
        "log": log_part,
    }


@dataclass
class Log:
    """An in-memory log that appends and signs as bidding.logs does."""

    log_id: str
    version: int
    key: Ed25519PrivateKey = PLATFORM
    leaves: list[dict[str, Any]] = field(default_factory=list)

    @property
    def hashes(self) -> list[bytes]:
        return [merkle.leaf_hash(merkle.leaf_bytes(e)) for e in self.leaves]

    def append(self, entry: dict[str, Any], at: datetime = T0) -> dict[str, Any]:
        """Append and answer the receipt's log part, signed at once."""
        index = len(self.leaves)
        full = entry | {"log": self.log_id, "index": index}
        if self.version:
            full["v"] = self.version
        self.leaves.append(full)
        head = merkle.TreeHead(self.log_id, index + 1, merkle.root(self.hashes), at)
        return merkle.receipt_to_json(
            leaf=full,
            leaf_index=index,
            inclusion_proof=merkle.inclusion_proof(index, self.hashes),
            tree_head=merkle.sign_head(head, self.key),
            log_public_key=self.key.public_key().public_bytes_raw(),
            version=self.version or 1,
        )


def bidder_log(suffix: str = "9f3a61c2d4b5e607", tender: str = TENDER) -> Log:
    return Log(f"{receipts.tender_log_id(tender)}/{suffix}", 2)


def closing_record(
    leaves: list[bytes],
    envelopes: list[str],
    *,
    tender: str = TENDER,
    key: Ed25519PrivateKey = PLATFORM,
    public_log: Log | None = None,
) -> dict[str, Any]:
    """A version 2 closing record as bidding.logs.close publishes it."""
    head = merkle.sign_head(
        merkle.TreeHead(
            receipts.tender_log_id(tender),
            len(leaves),
            merkle.root(leaves),
            T0 + timedelta(days=3),
            "closing",
        ),
        key,
    )
    head_json = merkle.head_to_json(head)
    public = public_log or Log(receipts.PUBLIC_LOG_ID, 0, key)
    entry = public.append(receipts.closing_entry(tender, head_json), T0 + timedelta(days=3))
    message = logtree.closing_message(tender, len(leaves), head_json["root_hash"], envelopes)
    return {
        "tender": tender,
        "head": head_json,
        "envelopes": sorted(envelopes),
        "envelopes_signature": _b64(key.sign(message)),
        "log_public_key": _b64(key.public_key().public_bytes_raw()),
        "version": 2,
        "leaves": [_b64(h) for h in leaves],
        "log_entry": entry,
    }


@dataclass
class Trade:
    """Two bidders; ours submits, the other submits and withdraws; then the tender closes."""

    ours: Log
    theirs: Log
    submit: dict[str, Any]
    withdraw: dict[str, Any]
    closing: dict[str, Any]


def trade() -> Trade:
    ours, theirs = bidder_log(), bidder_log("0123456789abcdef")
    theirs.append(leaf("submit", 0, bidder="91320100000000002X"))
    submit = api_receipt(ours.append(leaf("submit", 1), T0 + timedelta(hours=1)))
    withdraw = api_receipt(theirs.append(leaf("withdraw", 0, bidder="91320100000000002X")))
    arrival = [theirs.hashes[0], ours.hashes[0], theirs.hashes[1]]
    closing = closing_record(arrival, [submit["envelope_sha256"]])
    return Trade(ours, theirs, submit, withdraw, closing)


def names(checks: list[merkle.Check]) -> list[str]:
    return [c.name for c in checks]


def failed(checks: list[merkle.Check]) -> set[str]:
    return {c.name for c in checks if not c.ok and not c.skipped}


RECEIPT_NAMES = ["format", "key_pinned", "head_signature", "leaf_index", "inclusion", "log"]
FIELD_NAMES = [name for name, _leaf in receipts.STATED]
CLOSING_NAMES = [
    "closing_signature",
    "closing_tender",
    "closing_kind",
    "closing_leaves",
    "closing_inclusion",
    "closing_logged",
    "closing_set_signature",
]


# ---------------------------------------------------------------- the receipt and its fields


def test_a_good_receipt_passes_every_check_each_named() -> None:
    t = trade()
    checks = verify(t.submit, pin=PIN)
    assert names(checks) == RECEIPT_NAMES + FIELD_NAMES
    assert receipts.passed(checks), [c for c in checks if not c.ok]
    assert (
        checks[1].detail
        == f"the receipt's log key is the key given with --key (key id {merkle.key_id(PUBLIC)})"
    )


def test_the_log_part_alone_states_no_other_field() -> None:
    checks = verify(trade().submit["log"], pin=PIN)
    assert names(checks) == RECEIPT_NAMES
    assert receipts.passed(checks)


STATED_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "bid_id": st.uuids().map(str),
    "tender_code": st.text(min_size=1, max_size=30),
    "lot_number": st.integers(min_value=0, max_value=10**6),
    "bidder_credit_code": st.text(min_size=1, max_size=18),
    "envelope_sha256": st.binary(min_size=32, max_size=32).map(bytes.hex),
    "size": st.integers(min_value=0, max_value=2**40),
    "submitted_at": st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
    ).map(_z),
    "sequence": st.integers(min_value=0, max_value=10**6),
    "event": st.sampled_from(["submit", "replace", "withdraw", "closing"]),
}


@given(st.data())
def test_any_edited_field_fails_that_check_and_no_other(data: st.DataObject) -> None:
    t = trade()
    name = data.draw(st.sampled_from(FIELD_NAMES))
    original = t.submit[name]
    value = data.draw(STATED_VALUES[name].filter(lambda v: not receipts._same(name, v, original)))
    checks = verify(t.submit | {name: value}, pin=PIN)
    assert names(checks) == RECEIPT_NAMES + FIELD_NAMES
    assert failed(checks) == {name}
    assert not receipts.passed(checks)


@pytest.mark.parametrize(
    ("name", "value"),
    [("lot_number", "1"), ("size", True), ("sequence", 1.0), ("tender_code", None), ("submitted_at", 0)],
)
def test_a_field_of_another_type_fails_even_when_it_looks_the_same(name: str, value: Any) -> None:
    assert failed(verify(trade().submit | {name: value}, pin=PIN)) == {name}


def test_the_same_instant_written_in_another_zone_is_the_same_field() -> None:
    t = trade()
    shanghai = datetime.fromisoformat(t.submit["submitted_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert receipts.passed(verify(t.submit | {"submitted_at": shanghai.isoformat()}, pin=PIN))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r | {"comment": "paid"}, "comment: unknown field, which nothing signed could vouch for"),
        (lambda r: {k: v for k, v in r.items() if k != "size"}, "size: missing"),
        (lambda r: r | {"log": r["log"] | {"version": 3}}, "log.version: must be 1 or 2"),
        (lambda r: [r], "receipt: must be a JSON object"),
    ],
)
def test_what_cannot_be_checked_fails_format_and_nothing_else_is_reported(
    mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    checks = verify(mutate(trade().submit), pin=PIN)
    assert checks == [merkle.Check("format", False, message)]
    assert not receipts.passed(checks)


def test_a_leaf_of_another_log_or_version_fails_the_log_check() -> None:
    t = trade()
    relabelled = copy.deepcopy(t.submit)
    relabelled["log"]["version"] = 1
    assert "log" in failed(verify(relabelled, pin=PIN))
    # a bidder log of another tender, its leaf naming this tender
    elsewhere = bidder_log(tender="GGZY-320100-2026-W000099")
    moved = api_receipt(elsewhere.append(leaf("submit", 1)))
    checks = verify(moved, pin=PIN)
    assert failed(checks) == {"log"}
    assert "is not a bidder's log of tender" in next(c.detail for c in checks if c.name == "log")


# ---------------------------------------------------------------- the key


def test_without_a_pinned_key_a_receipt_fails_saying_how_to_pin_one() -> None:
    checks = verify(trade().submit)
    assert failed(checks) == {"key_pinned"}
    detail = checks[1].detail
    assert detail.startswith(f"no key pinned: the receipt's own key (key id {merkle.key_id(PUBLIC)})")
    assert all(flag in detail for flag in ("--key", "--fetch-key", "--closing"))
    # what was checked without a pin is said as exactly that
    assert checks[2].detail.endswith(
        "(not pinned: this shows only that the receipt is consistent with itself)"
    )


def test_a_receipt_self_signed_by_anyone_fails_under_the_platforms_key() -> None:
    forged = bidder_log()
    forged.key = ATTACKER
    receipt = api_receipt(forged.append(leaf("submit", 1)))
    assert receipts.passed(verify(receipt, pin=KeyPin(ATTACKER_PUBLIC, "the forger's")))
    checks = verify(receipt, pin=PIN)
    assert failed(checks) == {"key_pinned"}


def test_the_closing_record_pins_the_key_that_signed_it() -> None:
    t = trade()
    checks = verify(t.submit, closing=t.closing)
    assert receipts.passed(checks), [c for c in checks if not c.ok]
    assert checks[1].detail.startswith("the receipt's log key is the key of the closing record")
    # a receipt by another key than the published closing record's fails
    forged = bidder_log()
    forged.key = ATTACKER
    assert "key_pinned" in failed(verify(api_receipt(forged.append(leaf("submit", 1))), closing=t.closing))


def test_a_closing_record_signed_by_another_key_than_the_pinned_one_fails() -> None:
    t = trade()
    theirs = closing_record([t.ours.hashes[0]], [t.submit["envelope_sha256"]], key=ATTACKER)
    assert {"closing_signature", "closing_logged", "closing_set_signature"} <= failed(
        verify(t.submit, pin=PIN, closing=theirs)
    )


def test_a_pin_is_a_raw_ed25519_public_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        KeyPin(b"short", "given with --key")
    assert receipts.fingerprint(PUBLIC) == hashlib.sha256(PUBLIC).hexdigest()
    assert receipts.fingerprint(PUBLIC).startswith(merkle.key_id(PUBLIC))


# ---------------------------------------------------------------- against the closing record


def test_a_receipt_checked_against_its_closing_record_passes_every_check() -> None:
    t = trade()
    checks = verify(t.submit, pin=PIN, closing=t.closing)
    assert names(checks) == RECEIPT_NAMES + FIELD_NAMES + CLOSING_NAMES + ["closing_envelope"]
    assert receipts.passed(checks), [c for c in checks if not c.ok]
    inclusion = next(c for c in checks if c.name == "closing_inclusion")
    assert inclusion.detail == "the receipt's leaf is leaf 1 of the 3 the closing head commits to"


def test_a_withdrawal_is_in_the_closing_tree_and_has_no_envelope_to_stand() -> None:
    t = trade()
    checks = verify(t.withdraw, pin=PIN, closing=t.closing)
    assert names(checks) == RECEIPT_NAMES + FIELD_NAMES + CLOSING_NAMES
    assert receipts.passed(checks)


def test_a_leaf_the_platform_acknowledged_and_left_out_of_the_closing_is_an_omission() -> None:
    t = trade()
    without = closing_record([t.theirs.hashes[0], t.theirs.hashes[1]], [t.submit["envelope_sha256"]])
    checks = verify(t.submit, pin=PIN, closing=without)
    assert failed(checks) == {"closing_inclusion"}
    detail = next(c.detail for c in checks if c.name == "closing_inclusion")
    assert "NOT among them" in detail and "prove the omission" in detail


def test_published_leaves_that_do_not_make_the_signed_root_prove_nothing() -> None:
    t = trade()
    record = copy.deepcopy(t.closing)
    record["leaves"].append(_b64(t.ours.hashes[0]))  # the leaf list no longer makes the signed tree
    checks = verify(t.submit, pin=PIN, closing=record)
    assert failed(checks) == {"closing_leaves", "closing_inclusion"}
    assert next(c.detail for c in checks if c.name == "closing_inclusion").startswith("not checked")


def test_the_closing_record_of_another_tender_fails() -> None:
    t = trade()
    other = closing_record(
        [t.ours.hashes[0]], [t.submit["envelope_sha256"]], tender="GGZY-320100-2026-W000099"
    )
    checks = verify(t.submit, pin=PIN, closing=other)
    assert failed(checks) == {"closing_tender"}
    assert next(c.detail for c in checks if c.name == "closing_tender") == (
        f"the closing record is of tender 'GGZY-320100-2026-W000099' (log "
        f"'ggzy/bids/v2/GGZY-320100-2026-W000099'), the receipt of tender '{TENDER}'"
    )


def test_a_closing_head_not_marked_closing_fails() -> None:
    t = trade()
    leaves = [t.ours.hashes[0]]
    record = closing_record(leaves, [t.submit["envelope_sha256"]])
    head = merkle.sign_head(
        merkle.TreeHead(receipts.tender_log_id(TENDER), 1, merkle.root(leaves), T0, "head"), PLATFORM
    )
    record["head"] = merkle.head_to_json(head)
    record["envelopes_signature"] = _b64(
        PLATFORM.sign(logtree.closing_message(TENDER, 1, record["head"]["root_hash"], record["envelopes"]))
    )
    # the public log's entry names the closing head it logged, not this one
    assert failed(verify(t.submit, pin=PIN, closing=record)) == {"closing_kind", "closing_logged"}


def test_a_log_entry_of_another_closing_head_fails() -> None:
    t = trade()
    record = copy.deepcopy(t.closing)
    record["log_entry"] = closing_record([t.theirs.hashes[0]], [])["log_entry"]
    checks = verify(t.submit, pin=PIN, closing=record)
    assert failed(checks) == {"closing_logged"}
    assert "is not this closing head" in next(c.detail for c in checks if c.name == "closing_logged")


def test_a_tampered_log_entry_fails_with_the_reason() -> None:
    t = trade()
    record = copy.deepcopy(t.closing)
    record["log_entry"]["leaf"]["tender"] = "GGZY-OTHER"
    checks = verify(t.submit, pin=PIN, closing=record)
    assert failed(checks) == {"closing_logged"}
    assert "inclusion" in next(c.detail for c in checks if c.name == "closing_logged")


def test_a_tampered_envelope_set_fails_its_signature() -> None:
    t = trade()
    record = copy.deepcopy(t.closing)
    record["envelopes"] = sorted([*record["envelopes"], "ab" * 32])
    assert failed(verify(t.submit, pin=PIN, closing=record)) == {"closing_set_signature"}


def test_a_replaced_envelope_is_in_the_closing_tree_but_did_not_stand() -> None:
    t = trade()
    record = closing_record([t.theirs.hashes[0], t.ours.hashes[0], t.theirs.hashes[1]], ["cd" * 32])
    checks = verify(t.submit, pin=PIN, closing=record)
    assert failed(checks) == {"closing_envelope"}
    assert "NOT among the 1 envelopes" in next(c.detail for c in checks if c.name == "closing_envelope")


def test_fields_of_the_closing_record_the_verifier_does_not_use_are_said_unchecked() -> None:
    t = trade()
    record = t.closing | {"roster": [{"position": 1}]}
    checks = verify(t.submit, pin=PIN, closing=record)
    assert receipts.passed(checks)
    assert "its fields roster are not about this receipt: not checked here" in checks[0].detail


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c | {"version": 3}, "closing.version: must be 2"),
        (lambda c: {k: v for k, v in c.items() if k != "leaves"}, "closing.leaves: missing"),
        (lambda c: c | {"leaves": ["%%"]}, "closing.leaves[0]: not valid base64"),
        (lambda c: c | {"head": {}}, "closing.head.log_id: missing"),
        (lambda c: c | {"envelopes": "all"}, "closing.envelopes: must be a list"),
        (lambda c: c | {"log_entry": []}, "closing.log_entry: must be a JSON object"),
        (lambda c: c | {"tender": 7}, "closing.tender: must be a tender code"),
    ],
)
def test_a_malformed_closing_record_fails_format(
    mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    t = trade()
    [check] = verify(t.submit, pin=PIN, closing=mutate(t.closing))
    assert check.name == "format" and not check.ok and check.detail.startswith(message)


# ---------------------------------------------------------------- version 1 receipts


def v1_trade() -> tuple[Log, dict[str, Any], dict[str, Any]]:
    """A tender whose bids were logged in the platform-wide log (version 1): a submission, another
    tender's bid, then the withdrawal of the first."""
    public = Log(receipts.PUBLIC_LOG_ID, 1)
    entry = leaf("submit", 1)
    del entry["submitted_at"]  # version 1 leaves stated only the instant of their own event
    submit = api_receipt(public.append(entry))
    elsewhere = leaf("submit", 2, tender="GGZY-320100-2026-W000099")
    del elsewhere["submitted_at"]
    public.append(elsewhere)
    withdrawal = leaf("withdraw", 1, at=_z(T0 + timedelta(days=1)))
    del withdrawal["submitted_at"]
    withdraw = api_receipt(public.append(withdrawal)) | {"submitted_at": submit["submitted_at"]}
    return public, submit, withdraw


def test_a_version_1_submission_receipt_checks_every_field() -> None:
    _public, submit, _withdraw = v1_trade()
    checks = verify(submit, pin=PIN)
    assert names(checks) == RECEIPT_NAMES + FIELD_NAMES
    assert receipts.passed(checks)
    edited = submit | {"submitted_at": _z(T0)}
    assert failed(verify(edited, pin=PIN)) == {"submitted_at"}


def test_a_version_1_withdrawal_receipt_skips_what_its_leaf_never_stated() -> None:
    _public, _submit, withdraw = v1_trade()
    checks = verify(withdraw, pin=PIN)
    skipped = [c for c in checks if c.skipped]
    assert [c.name for c in skipped] == ["submitted_at"] and not skipped[0].ok
    assert "nothing signed vouches for it" in skipped[0].detail
    assert receipts.passed(checks)
    assert receipts.report(checks)[names(checks).index("submitted_at")].startswith("skip submitted_at:")


def test_a_version_1_receipt_against_a_version_1_closing_record_needs_the_consistency_proof() -> None:
    public, submit, _withdraw = v1_trade()
    size = len(public.leaves)
    head = merkle.sign_head(
        merkle.TreeHead(
            receipts.PUBLIC_LOG_ID, size, merkle.root(public.hashes), T0 + timedelta(days=3), "closing"
        ),
        PLATFORM,
    )
    head_json = merkle.head_to_json(head)
    record = {
        "tender": TENDER,
        "head": head_json,
        "envelopes": [submit["envelope_sha256"]],
        "envelopes_signature": _b64(
            PLATFORM.sign(
                logtree.closing_message(TENDER, size, head_json["root_hash"], [submit["envelope_sha256"]])
            )
        ),
        "log_public_key": _b64(PUBLIC),
    }
    proof = [_b64(p) for p in merkle.consistency_proof(1, public.hashes)]
    checks = verify(submit, pin=PIN, closing=record, consistency=proof)
    assert names(checks)[-8:] == [
        *merkle.CLOSING_CHECKS,
        "closing_tender",
        "closing_set_signature",
        "closing_envelope",
    ]
    assert receipts.passed(checks), [c for c in checks if not c.ok]
    without = verify(submit, pin=PIN, closing=record)
    assert failed(without) == {"consistency"}
    assert "GET /api/v1/transparency/consistency?first=1&second=3" in without[-4].detail
    elsewhere = verify(
        submit, pin=PIN, closing=record | {"tender": "GGZY-320100-2026-W000099"}, consistency=proof
    )
    assert failed(elsewhere) == {"closing_tender", "closing_set_signature"}


def test_a_version_1_receipt_of_a_tender_open_across_the_upgrade_is_in_its_version_2_closing() -> None:
    public, submit, _withdraw = v1_trade()
    later = bidder_log()
    other = later.append(leaf("submit", 5, bidder="91320100000000003X"))
    record = closing_record(
        [public.hashes[0], public.hashes[2], later.hashes[0]], [other["leaf"]["envelope_sha256"]]
    )
    checks = verify(submit, pin=PIN, closing=record)
    assert failed(checks) == {"closing_envelope"}  # withdrawn before the deadline
    assert next(c for c in checks if c.name == "closing_inclusion").ok


def test_a_version_2_receipt_is_not_checked_against_a_version_1_closing_record() -> None:
    t = trade()
    record = {k: v for k, v in t.closing.items() if k not in ("version", "leaves", "log_entry")}
    [check] = verify(t.submit, pin=PIN, closing=record)
    assert check.name == "format" and "version 2 receipt" in check.detail


# ---------------------------------------------------------------- garbage


RECEIPT = trade()


@given(st.sampled_from([*FIELD_NAMES, "log"]), JSON)
def test_verify_never_raises_on_a_garbage_receipt_field(name: str, value: Any) -> None:
    checks = verify(RECEIPT.submit | {name: value}, pin=PIN, closing=RECEIPT.closing)
    assert checks and all(isinstance(c.ok, bool) and c.detail for c in checks)
    assert not receipts.passed(checks) or RECEIPT.submit[name] == value


@given(st.sampled_from(sorted(RECEIPT.closing)), JSON)
def test_verify_never_raises_on_a_garbage_closing_field(name: str, value: Any) -> None:
    checks = verify(RECEIPT.submit, pin=PIN, closing=RECEIPT.closing | {name: value})
    assert checks and all(isinstance(c.ok, bool) and c.detail for c in checks)


@given(JSON)
def test_verify_never_raises_on_a_garbage_consistency_proof(proof: Any) -> None:
    checks = verify(RECEIPT.submit, pin=PIN, closing=RECEIPT.closing, consistency=proof)
    assert checks
