"""The ledger's signed heads, pure: the signed bytes pinned, the published JSON parsed strictly, signatures
checked against a pinned key, and the judgements over stored heads and a kept head — every offender named,
a rewrite located between the heads that still match and the first that does not."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escrow import heads, ledger
from storage.signing import LogSigner, key_id

SIGNER = LogSigner.from_secret("heads-test")
OTHER = LogSigner.from_secret("someone-else")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def chain(n: int, salt: str = "") -> dict[int, str]:
    """Stand-in entry hashes 1…n (only equality matters to the judgements)."""
    return {i: f"{i:04d}{salt}".ljust(64, "a")[:64] for i in range(1, n + 1)}


def signed_over(
    hashes: dict[int, str], at_entries: list[int], signer: LogSigner = SIGNER
) -> list[heads.SignedHead]:
    return [
        heads.sign(signer, n, e, hashes.get(e, ledger.GENESIS), T0 + timedelta(hours=n))
        for n, e in enumerate(at_entries, start=1)
    ]


# ---------------------------------------------------------------- the signed bytes and the JSON


def test_the_signed_text_is_pinned_byte_for_byte() -> None:
    at = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
    assert heads.message(3, 7, "ab" * 32, at) == (
        b"ggzy-ledger-head-v1\n3\n7\n" + b"ab" * 32 + b"\n1772442000123456\n"
    )


def test_a_head_round_trips_through_its_published_json_and_verifies() -> None:
    head = heads.sign(SIGNER, 1, 4, "cd" * 32, T0)
    published = head.to_json()
    assert published == {
        "version": "ggzy-ledger-head-v1",
        "sequence": 1,
        "entries": 4,
        "chain_hash": "cd" * 32,
        "signed_at": "2026-03-02T01:00:00.000000Z",
        "key_id": SIGNER.key_id,
        "signature": base64.b64encode(head.signature).decode(),
    }
    assert heads.parse(published) == head
    assert heads.signature_ok(head, SIGNER.public_raw)
    assert not heads.signature_ok(head, OTHER.public_raw)
    forged = dataclasses.replace(head, entries=5)
    assert not heads.signature_ok(forged, SIGNER.public_raw)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": "ggzy-tree-head-v1"}, "version"),
        ({"sequence": 0}, "sequence"),
        ({"sequence": True}, "sequence"),
        ({"sequence": "1"}, "sequence"),
        ({"entries": -1}, "entries"),
        ({"entries": 2.0}, "entries"),
        ({"chain_hash": "CD" * 32}, "chain_hash"),
        ({"chain_hash": "cd" * 31}, "chain_hash"),
        ({"signed_at": "2026-03-02T01:00:00Z"}, "signed_at"),
        ({"signed_at": "2026-02-30T01:00:00.000000Z"}, "signed_at"),
        ({"key_id": "xyz"}, "key_id"),
        ({"signature": "not base64!"}, "signature"),
        ({"signature": base64.b64encode(b"short").decode()}, "signature"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_malformed_head_is_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    document = {**heads.sign(SIGNER, 1, 4, "cd" * 32, T0).to_json(), **change}
    with pytest.raises(heads.HeadError) as refused:
        heads.parse(document)
    assert refused.value.field == field


def test_a_missing_field_or_a_document_that_is_not_an_object_is_refused() -> None:
    document: dict[str, object] = dict(heads.sign(SIGNER, 1, 4, "cd" * 32, T0).to_json())
    del document["chain_hash"]
    with pytest.raises(heads.HeadError, match="`chain_hash` is missing"):
        heads.parse(document)
    with pytest.raises(heads.HeadError) as refused:
        heads.parse(["not", "a", "head"])
    assert refused.value.code == "head.json"


def test_an_empty_journal_is_signed_with_the_genesis_hash_only() -> None:
    assert heads.sign(SIGNER, 1, 0, ledger.GENESIS, T0).entries == 0
    with pytest.raises(heads.HeadError, match="64 zeros"):
        heads.sign(SIGNER, 1, 0, "cd" * 32, T0)


# ---------------------------------------------------------------- the stored heads against the journal


def test_heads_that_match_the_journal_pass_and_say_what_they_cover() -> None:
    hashes = chain(5)
    check = heads.judge_signed(signed_over(hashes, [0, 2, 2, 5]), hashes, 5, SIGNER.public_raw)
    assert check.ok
    assert check.detail == "4 heads, the newest (head 4) covers entry 5, signed 2026-03-02T05:00:00.000000Z"


def test_every_offending_stored_head_is_named() -> None:
    hashes = chain(9)
    stored = signed_over(hashes, [1, 3, 5, 7])
    stored[1] = dataclasses.replace(stored[1], sequence=2, signature=OTHER.sign(b"x"))  # not the platform's
    rewritten = {**hashes, **{i: h.replace("a", "b") for i, h in chain(9).items() if i >= 5}}
    check = heads.judge_signed([stored[0], stored[1], stored[3]], rewritten, 9, SIGNER.public_raw)
    assert not check.ok
    assert check.offenders == (
        f"head 2 (entry 3): the signature does not verify with key {SIGNER.key_id}",
        "head 4 follows head 2",
        f"head 4 (entry 7): entry 7 now hashes to {rewritten[7][:16]}…, signed {hashes[7][:16]}…",
        "entries 8–9 covered by no signed head",
    )
    assert check.total == 4


def test_heads_out_of_order_or_beyond_the_journal_are_named() -> None:
    hashes = chain(4)
    first, second = signed_over(hashes, [4, 2])
    check = heads.judge_signed([dataclasses.replace(first, sequence=2), second], hashes, 3, SIGNER.public_raw)
    assert check.offenders[0] == "head 2 is the first stored; heads before it are missing"
    assert "head 2 (entry 4): the journal ends at entry 3" in check.offenders
    assert "head 2 (entry 2) covers fewer entries than head 2 (4)" in check.offenders


# ---------------------------------------------------------------- a kept head


def test_a_kept_head_the_journal_still_holds_passes() -> None:
    hashes = chain(6)
    stored = signed_over(hashes, [2, 4, 6])
    signed, held = heads.judge_kept(stored[1], SIGNER.public_raw, hashes[4], 6, stored, hashes)
    assert signed.ok and held.ok
    assert signed.detail == f"head 2, key {key_id(SIGNER.public_raw)}"


def test_a_kept_head_of_another_key_fails_its_signature_check() -> None:
    hashes = chain(2)
    kept = heads.sign(OTHER, 1, 2, hashes[2], T0)
    signed, held = heads.judge_kept(kept, SIGNER.public_raw, hashes[2], 2, [], hashes)
    assert not signed.ok and held.ok
    assert signed.detail == f"head 1 names key {OTHER.key_id}; it does not verify with key {SIGNER.key_id}"


def test_a_journal_shorter_than_the_kept_head_is_named() -> None:
    hashes = chain(3)
    kept = heads.sign(SIGNER, 1, 5, chain(5)[5], T0)
    _, held = heads.judge_kept(kept, SIGNER.public_raw, None, 3, [], hashes)
    assert held.detail == "the journal ends at entry 3, before the kept head 1's entry 5"


@given(st.integers(1, 40), st.data())
def test_a_rewrite_is_located_between_the_heads_that_still_match_and_the_first_that_does_not(
    length: int, data: st.DataObject
) -> None:
    hashes = chain(length)
    at = sorted(set(data.draw(st.lists(st.integers(1, length), min_size=1, max_size=12))))
    stored = signed_over(hashes, at)
    kept = stored[-1]
    edited = data.draw(st.integers(1, kept.entries))
    rewritten = {i: (h if i < edited else h.replace("a", "f")) for i, h in hashes.items()}
    _, held = heads.judge_kept(kept, SIGNER.public_raw, rewritten[kept.entries], length, stored, rewritten)
    assert not held.ok
    low = max([e for e in at if e < edited], default=0) + 1
    high = min(e for e in at if e >= edited)
    assert low <= edited <= high
    where = f"rewritten at entry {high}" if low == high else f"rewritten within entries {low}–{high}"
    assert held.detail.endswith(where)


def test_the_extension_names_every_entry_that_does_not_chain_on() -> None:
    entries: list[ledger.StoredEntry] = []
    previous = ledger.GENESIS
    for n in range(1, 6):
        draft = ledger.EntryDraft(
            "interest_received",
            (ledger.Posting("bank:escrow", n), ledger.Posting("interest:income", -n)),
            f"line:{n:08d}",
        )
        at = T0 + timedelta(seconds=n)
        link = ledger.entry_hash(previous, n, draft, "posted", at)
        entries.append(
            ledger.StoredEntry(
                n,
                draft.idempotency_key,
                ledger.request_hash(draft),
                draft.reason,
                "posted",
                at,
                previous,
                link,
                draft.postings,
                {},
                "",
            )
        )
        previous = link
    kept = heads.sign(SIGNER, 1, 2, entries[1].hash, T0)
    good = heads.Extension(kept)
    for entry in entries[2:]:
        good.feed(entry)
    assert good.finish() == ledger.Check(
        heads.KEPT_EXTENDED, True, "3 entries since entry 2, chained on its hash"
    )
    bad = heads.Extension(kept)
    bad.feed(dataclasses.replace(entries[2], context={"x": "y"}))  # edited, not rehashed
    bad.feed(entries[4])  # entry 4 missing
    check = bad.finish()
    assert [o.split(":")[0] for o in check.offenders] == [
        "entry 3",
        "entry 3",
        "entry 5 follows entry 3; expected 4",
        "entry 5",
    ]
    assert check.total == 4
