"""The audit trail's pure core: the canonical encoding (pinned, and equal to an independent RFC 8785
implementation), the chain, signed heads, and the checker naming every offender of every kind of tampering."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, cast

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.auditchain import (
    CHAIN_ROW,
    CHECKS,
    GENESIS,
    HASHES,
    HEADS,
    KEPT_CHECKS,
    KEPT_EXTENDED,
    KEPT_HELD,
    KEPT_SIGNED,
    LINKS,
    SEQUENCE,
    WELL_FORMED,
    Event,
    Head,
    SignedHead,
    StoredEvent,
    Verifier,
    all_ok,
    canonical_json,
    chain,
    detail_hash,
    event_text,
    head_from_json,
    head_to_json,
    link_hash,
    normalise,
    sign_head,
    signed_message,
    verify_head,
)

T0 = datetime(2026, 3, 2, 1, 0, 0, 123456, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = base64.b64decode("A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=")
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(32))
DETAIL: dict[str, Any] = {
    "reason": "wrong password",
    "status": 403,
    "roles": ["centre"],
    "ok": True,
    "none": None,
    "名": '招标\n"x"',
}


def pinned_event() -> Event:
    return Event(
        sequence=7,
        previous_hash="ab" * 32,
        event_id="7d0e3c3a-1b8b-4d46-9c3e-7f1e2c1a0b9d",
        at=T0,
        actor_user_id="0c6f1d2e-3b4a-4c5d-8e9f-a0b1c2d3e4f5",
        actor_organisation_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        actor_roles=("agency",),
        action="tender.create",
        object_type="tender",
        object_id="T-2026-001",
        outcome="ok",
        detail_sha256=detail_hash(DETAIL),
    )


# ---------------------------------------------------------------- the documented encodings, pinned


def test_the_details_hash_is_sha256_of_their_canonical_json() -> None:
    text = '{"none":null,"ok":true,"reason":"wrong password","roles":["centre"],"status":403,"名":"招标\\n\\"x\\""}'
    assert canonical_json(DETAIL) == text
    assert detail_hash(DETAIL) == hashlib.sha256(text.encode()).hexdigest()
    assert detail_hash(DETAIL) == "68737002c5f0f812053224ff1cb03783f3cd967ee9f78fc8c6d1394b696a06cd"


def test_the_link_is_sha256_of_the_documented_array() -> None:
    event = pinned_event()
    text = (
        '["ggzy.audit.event.1",7,"' + "ab" * 32 + '","7d0e3c3a-1b8b-4d46-9c3e-7f1e2c1a0b9d",1772413200123456,'
        '"0c6f1d2e-3b4a-4c5d-8e9f-a0b1c2d3e4f5","1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",["agency"],'
        '"tender.create","tender","T-2026-001","ok",'
        '"68737002c5f0f812053224ff1cb03783f3cd967ee9f78fc8c6d1394b696a06cd"]'
    )
    assert event_text(event) == text
    assert link_hash(event) == hashlib.sha256(text.encode()).hexdigest()
    assert link_hash(event) == "e4cb92ccacef413ab0178074127ee4ca2c28b9d6ac1a3d5ae1e876273484b5c0"


def test_an_independent_rfc8785_implementation_gives_the_same_link() -> None:
    event = pinned_event()
    fields: list[Any] = [
        "ggzy.audit.event.1",
        event.sequence,
        event.previous_hash,
        event.event_id,
        (event.at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1),
        event.actor_user_id,
        event.actor_organisation_id,
        list(event.actor_roles),
        event.action,
        event.object_type,
        event.object_id,
        event.outcome,
        hashlib.sha256(rfc8785.dumps(DETAIL)).hexdigest(),
    ]
    assert link_hash(event) == hashlib.sha256(rfc8785.dumps(fields)).hexdigest()


def test_the_same_instant_in_any_zone_links_the_same_and_a_naive_one_is_refused() -> None:
    event = pinned_event()
    shifted = dataclasses.replace(event, at=T0.astimezone(timezone(timedelta(hours=8))))
    assert link_hash(shifted) == link_hash(event)
    with pytest.raises(ValueError, match="aware"):
        link_hash(dataclasses.replace(event, at=T0.replace(tzinfo=None)))


def test_the_signed_head_message_and_signature_are_pinned() -> None:
    head = Head(3, 7, link_hash(pinned_event()), T0)
    assert signed_message(head) == (
        b"ggzy-audit-head-v1\n3\n7\n"
        b"e4cb92ccacef413ab0178074127ee4ca2c28b9d6ac1a3d5ae1e876273484b5c0\n1772413200123456\n"
    )
    signed = sign_head(head, KEY)
    assert head_to_json(signed) == {
        "version": "ggzy-audit-head-v1",
        "sequence": 3,
        "events": 7,
        "chain_hash": "e4cb92ccacef413ab0178074127ee4ca2c28b9d6ac1a3d5ae1e876273484b5c0",
        "signed_at": "2026-03-02T01:00:00.123456Z",
        "key_id": "56475aa75463474c",
        "signature": "lqd37dOjkLTYw28d94K3a76ah8Cv35hyk1TdiCNmsX8N/2gYY5y+qCxT48Cy6DuAeKxBsqf35iCwOwr3vDoxAQ==",
    }
    assert verify_head(signed, PUBLIC)


# ---------------------------------------------------------------- canonical JSON


_keys = st.text(max_size=6)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(_json)
def test_canonical_json_is_what_rfc8785_writes(value: Any) -> None:
    assert canonical_json(value).encode() == rfc8785.dumps(value)


_details = st.dictionaries(_keys, _json, max_size=5)


@settings(max_examples=300)
@given(_details)
def test_the_details_hash_is_sha256_of_what_rfc8785_writes(detail: dict[str, Any]) -> None:
    assert detail_hash(detail) == hashlib.sha256(rfc8785.dumps(detail)).hexdigest()


@settings(max_examples=200)
@given(
    st.integers(1, 2**53 - 1),
    st.text(max_size=20),
    st.lists(st.text(max_size=8), max_size=3),
    st.one_of(st.none(), st.text(max_size=10)),
)
def test_the_link_is_sha256_of_what_rfc8785_writes(
    sequence: int, text: str, roles: list[str], actor: str | None
) -> None:
    event = dataclasses.replace(
        pinned_event(), sequence=sequence, object_id=text, actor_roles=tuple(roles), actor_user_id=actor
    )
    fields: list[Any] = [
        "ggzy.audit.event.1",
        sequence,
        event.previous_hash,
        event.event_id,
        1772413200123456,
        actor,
        event.actor_organisation_id,
        roles,
        event.action,
        event.object_type,
        text,
        event.outcome,
        event.detail_sha256,
    ]
    assert link_hash(event) == hashlib.sha256(rfc8785.dumps(fields)).hexdigest()
    assert event_text(event).encode() == rfc8785.dumps(fields)


def test_keys_sort_by_utf16_code_units_as_rfc8785_says() -> None:
    # U+FF61 sorts before U+1F600 by code point, after it by UTF-16 code unit (a surrogate, 0xD83D)
    value = {"\uff61": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(value) == '{"a":3,"\U0001f600":2,"\uff61":1}'
    assert canonical_json(value).encode() == rfc8785.dumps(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"rate": 0.5}, r"value\.rate: a float"),
        ({1: "a"}, "key 1 is not text"),
        ({"blob": b"x"}, r"value\.blob: bytes is not a JSON value"),
        ({"text": "\ud800"}, "lone surrogate"),
    ],
)
def test_a_value_without_a_canonical_form_is_refused_naming_it(value: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        canonical_json(value)
    with pytest.raises(TypeError, match=message.replace(r"value\.", r"detail\.")):
        detail_hash(cast(dict[str, Any], value))


def test_details_are_normalised_to_what_the_database_hands_back() -> None:
    class Colour(Enum):
        RED = "red"

    given_ = {
        "id": uuid.UUID("7d0e3c3a-1b8b-4d46-9c3e-7f1e2c1a0b9d"),
        "at": T0,
        "on": date(2026, 3, 2),
        "rate": Decimal("3.45"),
        "colour": Colour.RED,
        "pair": (1, "a"),
        "fields": {"title", "deadline"},
        "nested": {"n": 1},
    }
    assert normalise(given_) == {
        "id": "7d0e3c3a-1b8b-4d46-9c3e-7f1e2c1a0b9d",
        "at": "2026-03-02T01:00:00.123456+00:00",
        "on": "2026-03-02",
        "rate": "3.45",
        "colour": "red",
        "pair": [1, "a"],
        "fields": ["deadline", "title"],
        "nested": {"n": 1},
    }


@pytest.mark.parametrize(
    ("value", "message"), [({"x": 1.5}, r"detail\.x: a float"), ({"x": {2: 1}}, "key 2 is not text")]
)
def test_details_the_chain_cannot_carry_are_refused_when_recorded(value: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        normalise(value)


# ---------------------------------------------------------------- the checker


def make_chain(n: int) -> list[StoredEvent]:
    """`n` well-formed events, each linked to the one before."""
    out: list[StoredEvent] = []
    previous = GENESIS
    for i in range(1, n + 1):
        detail = {"i": i}
        event = Event(
            i,
            previous,
            str(uuid.UUID(int=i)),
            T0 + timedelta(seconds=i),
            str(uuid.UUID(int=1000 + i)),
            None,
            ("bidder",),
            "bid.submit",
            "bid",
            f"B{i}",
            "ok",
            detail_hash(detail),
        )
        previous = link_hash(event)
        out.append(stored(event, detail, previous))
    return out


def stored(event: Event, detail: dict[str, Any], digest: str) -> StoredEvent:
    return StoredEvent(
        sequence=event.sequence,
        event_id=event.event_id,
        at=event.at,
        actor_user_id=event.actor_user_id,
        actor_organisation_id=event.actor_organisation_id,
        actor_roles=list(event.actor_roles),
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        outcome=event.outcome,
        detail=detail,
        previous_hash=event.previous_hash,
        hash=digest,
    )


def run(
    events: list[StoredEvent],
    *,
    row: tuple[int, str] | None = None,
    heads: tuple[SignedHead, ...] = (),
    kept: SignedHead | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    watch = {h.head.events for h in heads} | ({kept.head.events} if kept else set())
    checker = Verifier(limit, watch, kept_events=kept.head.events if kept else None)
    for event in events:
        checker.feed(event)
    if row is None:
        row = (events[-1].sequence, str(events[-1].hash)) if events else (0, GENESIS)
    checks = checker.finish(row, list(heads), PUBLIC, kept)
    return {c.name: c for c in checks}


def named(result: dict[str, Any], check: str) -> list[int | None]:
    return [o.sequence for o in result[check].offenders]


def failing(result: dict[str, Any]) -> list[str]:
    return [name for name, c in result.items() if not c.ok]


def head_over(
    events: list[StoredEvent], covered: int, number: int = 1, key: Ed25519PrivateKey = KEY
) -> SignedHead:
    """Head `number` over the first `covered` events."""
    chain_hash = GENESIS if covered == 0 else str(events[covered - 1].hash)
    return sign_head(Head(number, covered, chain_hash, T0 + timedelta(hours=number)), key)


def test_an_intact_chain_passes_every_check_and_says_what_it_covered() -> None:
    events = make_chain(5)
    heads = (head_over(events, 3, 1), head_over(events, 5, 2))
    result = run(events, heads=heads, kept=head_over(events, 2, 1))
    assert list(result) == [*CHECKS, *KEPT_CHECKS]
    assert failing(result) == []
    assert result[SEQUENCE].detail == "5 events, 1 to 5"
    assert result[HEADS].detail == "2 signed heads"
    assert result[KEPT_SIGNED].detail == "head 1, key id 56475aa75463474c"
    assert result[KEPT_HELD].detail == f"event 2 ends {str(events[1].hash)[:16]}…"
    assert result[KEPT_EXTENDED].detail == "3 events since"


def shaped(e: StoredEvent, **change: Any) -> Event:
    """The chain's view of a stored event (well formed by construction here)."""
    return dataclasses.replace(
        Event(
            e.sequence,
            cast(str, e.previous_hash),
            e.event_id,
            cast(datetime, e.at),
            e.actor_user_id,
            e.actor_organisation_id,
            tuple(cast(list[str], e.actor_roles)),
            cast(str, e.action),
            cast(str, e.object_type),
            cast(str, e.object_id),
            cast(str, e.outcome),
            detail_hash(cast(dict[str, Any], e.detail)),
        ),
        **change,
    )


def test_chain_computes_the_last_link() -> None:
    events = make_chain(4)
    assert chain(shaped(e, previous_hash="") for e in events) == events[-1].hash


FIELDS = [
    "at",
    "actor_user_id",
    "actor_organisation_id",
    "actor_roles",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "detail",
    "event_id",
]
EDITS: dict[str, object] = {
    "at": T0 - timedelta(days=1),
    "actor_user_id": str(uuid.UUID(int=99)),
    "actor_organisation_id": str(uuid.UUID(int=98)),
    "actor_roles": ["centre"],
    "action": "bid.withdraw",
    "object_type": "tender",
    "object_id": "B0",
    "outcome": "refused",
    "detail": {"i": 0},
    "event_id": str(uuid.UUID(int=97)),
}


@settings(max_examples=60)
@given(st.integers(1, 6), st.sampled_from(FIELDS))
def test_any_edited_field_of_any_event_is_named_by_the_hash_check_alone(at: int, field: str) -> None:
    events = make_chain(6)
    events[at - 1] = dataclasses.replace(events[at - 1], **cast(dict[str, Any], {field: EDITS[field]}))
    result = run(events)
    assert failing(result) == [HASHES]
    assert named(result, HASHES) == [at]
    assert result[HASHES].offenders[0].event_id == events[at - 1].event_id


def test_a_deleted_event_is_a_gap_and_a_broken_link() -> None:
    events = make_chain(6)
    del events[2]
    result = run(events)
    assert failing(result) == [SEQUENCE, LINKS]
    assert [str(o) for o in result[SEQUENCE].offenders] == ["event 3 is missing"]
    assert named(result, LINKS) == [4]
    assert str(result[LINKS].offenders[0]).startswith(f"event 4 ({events[2].event_id}): previous hash ")


def test_several_deleted_events_are_one_gap_each() -> None:
    events = make_chain(9)
    kept = [e for e in events if e.sequence not in (2, 5, 6, 7)]
    result = run(kept)
    assert [str(o) for o in result[SEQUENCE].offenders] == ["event 2 is missing", "events 5 to 7 are missing"]
    assert result[SEQUENCE].detail == "2 gaps or repeats"
    assert named(result, LINKS) == [3, 8]


def test_a_removed_tail_is_caught_by_the_chain_row() -> None:
    events = make_chain(5)
    result = run(events[:3], row=(5, str(events[4].hash)))
    assert failing(result) == [CHAIN_ROW]
    assert named(result, CHAIN_ROW) == [5]


def test_an_inserted_event_is_caught() -> None:
    events = make_chain(4)
    forged = dataclasses.replace(events[1], event_id=str(uuid.UUID(int=55)))
    result = run([events[0], events[1], forged, *events[2:]])
    assert SEQUENCE in failing(result)
    assert named(result, SEQUENCE) == [2]


def test_a_rewritten_and_rehashed_tail_is_caught_only_by_the_heads() -> None:
    events = make_chain(6)
    stored_head, kept = head_over(events, 5, 1), head_over(events, 4, 1)
    # the insider changes event 3 and recomputes every hash from there, as anyone with the recipe could
    forged = list(events[:2])
    previous = str(events[1].hash)
    for e in events[2:]:
        outcome = "refused" if e.sequence == 3 else str(e.outcome)
        link = shaped(e, previous_hash=previous, outcome=outcome)
        previous = link_hash(link)
        forged.append(
            dataclasses.replace(e, outcome=outcome, previous_hash=link.previous_hash, hash=previous)
        )
    result = run(forged, heads=(stored_head,), kept=kept)
    assert failing(result) == [HEADS, KEPT_HELD, KEPT_EXTENDED]
    assert [str(o) for o in result[HEADS].offenders] == [
        f"head 1: event 5 ends {str(forged[4].hash)[:16]}…, the head was signed over {str(events[4].hash)[:16]}…"
    ]
    assert [str(o) for o in result[KEPT_HELD].offenders] == [
        f"kept head 1: event 4 ends {str(forged[3].hash)[:16]}…, the head was signed over {str(events[3].hash)[:16]}…"
    ]
    assert [str(o) for o in result[KEPT_EXTENDED].offenders] == [
        "not checked: the trail does not hold the kept head"
    ]


def test_an_event_damaged_after_a_kept_head_is_named_against_its_extension() -> None:
    events = make_chain(6)
    events[4] = dataclasses.replace(events[4], outcome="forged")  # event 5, after the head over 3 events
    del events[5]  # and the last one removed … but the chain row still names it
    result = run(events, row=(6, "ab" * 32), kept=head_over(make_chain(6), 3))
    assert failing(result) == [HASHES, CHAIN_ROW, KEPT_EXTENDED]
    assert [(o.sequence, o.detail) for o in result[KEPT_EXTENDED].offenders] == [
        (5, "fails “events hash to their stored hash”")
    ]
    assert result[KEPT_EXTENDED].detail == "1 faults after the kept head"


def test_a_fault_before_a_kept_head_does_not_count_against_its_extension() -> None:
    events = make_chain(6)
    events[1] = dataclasses.replace(events[1], outcome="forged")
    result = run(events, kept=head_over(events, 4))
    assert failing(result) == [HASHES]


def test_a_kept_head_beyond_the_trail_names_where_the_trail_ends() -> None:
    events = make_chain(6)
    result = run(events[:4], kept=head_over(events, 6))
    assert failing(result) == [KEPT_HELD, KEPT_EXTENDED]
    assert [str(o) for o in result[KEPT_HELD].offenders] == [
        "kept head 1: the trail ends at event 4; the head covers 6 events"
    ]


def test_a_head_signed_by_another_key_or_with_a_bad_signature_is_named() -> None:
    events = make_chain(3)
    foreign = head_over(events, 2, 1, OTHER)
    good = head_over(events, 3, 2)
    broken = SignedHead(good.head, good.key_id, bytes(64))
    result = run(events, heads=(foreign, broken), kept=foreign)
    assert [str(o) for o in result[HEADS].offenders] == [
        f"head 1: signed by key id {foreign.key_id}, not the platform key {good.key_id}",
        f"head 2: the signature does not verify with key id {good.key_id}",
    ]
    assert result[HEADS].detail == "2 problems with 2 signed heads"
    assert failing(result) == [HEADS, KEPT_SIGNED]


def test_a_removed_head_is_a_gap_in_their_numbers_and_a_head_never_covers_less_than_the_one_before() -> None:
    events = make_chain(6)
    heads = (
        head_over(events, 1, 1),
        head_over(events, 4, 3),
        head_over(events, 2, 4),
        head_over(events, 6, 7),
    )
    result = run(events, heads=heads)
    assert [str(o) for o in result[HEADS].offenders] == [
        "head 2 is missing",
        "head 4 covers 2 events, fewer than the 4 of the head before it",
        "heads 5 to 6 are missing",
    ]


def test_the_genesis_head_is_extended_by_any_chain() -> None:
    events = make_chain(2)
    assert failing(run(events, kept=head_over(events, 0))) == []


def test_every_offender_is_counted_and_the_first_ones_up_to_the_limit_are_named() -> None:
    events = [dataclasses.replace(e, outcome="forged") for e in make_chain(8)]
    result = run(events, limit=3)
    assert named(result, HASHES) == [1, 2, 3]
    assert result[HASHES].offenders_total == 8
    assert result[HASHES].detail == "8 of 8 events; the first 3 are named"
    assert run(events, limit=8)[HASHES].detail == "8 of 8 events"


@pytest.mark.parametrize("limit", [0, -1, 10_001])
def test_a_limit_out_of_range_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 10000"):
        Verifier(limit)


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("at", T0.replace(tzinfo=None), "its time is not an aware instant"),
        ("actor_roles", "centre", "its roles are not a list of text"),
        ("outcome", None, "its outcome is not text"),
        ("hash", "AB" * 32, "its hash is not 64 lowercase hexadecimal characters"),
        ("detail", ["not", "an", "object"], "its details are not an object"),
        ("detail", {"rate": 0.5}, "it has no canonical form (detail.rate: a float"),
    ],
)
def test_a_malformed_event_is_named_as_such(field: str, value: object, why: str) -> None:
    events = make_chain(3)
    events[1] = dataclasses.replace(events[1], **cast(dict[str, Any], {field: value}))
    result = run(events)
    assert WELL_FORMED in failing(result)
    [offender] = result[WELL_FORMED].offenders
    assert (offender.sequence, offender.detail.startswith(why)) == (2, True)
    assert HASHES not in failing(result)


def test_an_empty_trail_is_whole_and_all_ok_needs_checks() -> None:
    assert failing(run([])) == []
    assert all_ok([]) is False


# ---------------------------------------------------------------- heads as JSON


def good_head() -> dict[str, Any]:
    return dict(head_to_json(sign_head(Head(3, 7, "ab" * 32, T0), KEY)))


def test_a_head_survives_its_json_and_verifies() -> None:
    parsed = head_from_json(good_head())
    assert head_to_json(parsed) == good_head()
    assert verify_head(parsed, PUBLIC)
    other = OTHER.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert not verify_head(parsed, other)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sequence": None}, "head.sequence: missing"),
        ({"extra": 1}, "head.extra: unknown field"),
        ({"version": "ggzy-ledger-head-v1"}, "head.version: must be 'ggzy-audit-head-v1'"),
        ({"sequence": 0}, "head.sequence: must be a whole number from 1"),
        ({"sequence": True}, "head.sequence: must be a whole number from 1"),
        ({"sequence": 2**63}, "head.sequence: must be a whole number from 1"),
        ({"sequence": "7"}, "head.sequence: must be a whole number from 1"),
        ({"events": -1}, "head.events: must be a whole number from 0"),
        ({"events": 0}, "head.chain_hash: of an empty trail is 64 zeros"),
        ({"chain_hash": "AB" * 32}, "head.chain_hash: must be 64 lowercase hexadecimal"),
        (
            {"signed_at": "2026-03-02T01:00:00.000Z"},
            "head.signed_at: must read like 2026-03-02T01:00:00.000000Z",
        ),
        ({"signed_at": "2026-02-30T01:00:00.000000Z"}, "head.signed_at: not a calendar instant"),
        ({"key_id": "XYZ"}, "head.key_id: must be 16 lowercase"),
        ({"signature": "!!"}, "head.signature: must be the base64 of 64 bytes"),
        (
            {"signature": base64.b64encode(bytes(10)).decode()},
            "head.signature: must be the base64 of 64 bytes",
        ),
        ({"signature": 5}, "head.signature: must be the base64 of 64 bytes"),
    ],
)
def test_a_head_that_is_not_a_head_is_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    head = {**good_head(), **change}
    if change.get("sequence", 0) is None:
        del head["sequence"]
    with pytest.raises(ValueError) as caught:
        head_from_json(head, "head.")
    assert str(caught.value).startswith(message)


def test_a_transparency_tree_head_is_not_an_audit_head() -> None:
    tree_head = {
        "log_id": "ggzy/bids/v1",
        "tree_size": 3,
        "root_hash": "x",
        "timestamp": "t",
        "kind": "head",
        "key_id": "56475aa75463474c",
        "signature": "x",
    }
    with pytest.raises(ValueError, match=r"^version: missing"):
        head_from_json(tree_head)
    with pytest.raises(ValueError, match=r"^head: must be a JSON object"):
        head_from_json([1, 2], "head.")
