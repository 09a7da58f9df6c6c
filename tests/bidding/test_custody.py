"""Custody releases and their proofs (bidding.custody): the point maps, the Chaum–Pedersen proof that a
released secret is the honest one, replays, and `attribute`'s one provable cause per envelope."""

from __future__ import annotations

import base64
import copy
import io
import secrets
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidding import agekeys, custody, envelope
from bidding.envelope import EnvelopeError, Stanza

TENDER = "GGZY-320100-2026-W000001"
OTHER = "GGZY-320100-2026-W000002"
P = 2**255 - 19

BIDDER = agekeys.generate(signing=False)
KEYS = tuple(agekeys.generate(signing=False) for _ in range(4))  # the centre first, then three others
PUBLIC = tuple(agekeys.x25519_public_raw(k) for k in KEYS)
ROSTER = tuple(custody.Custodian(i + 1, PUBLIC[i], i == 0) for i in range(4))
T = 3  # t = 2 of the three others, plus the platform


FILE_KEY = envelope.generate_file_key()


def seal(
    shares: Sequence[Stanza] | None = None, *, threshold: int = T, context: str = TENDER
) -> envelope.Header:
    """An envelope of FILE_KEY to the bidder and the roster; `shares` replace its share stanzas (the bidder
    cheating: the header MAC is made with the real file key, as the bidder can)."""
    out = io.BytesIO()
    envelope.seal(
        io.BytesIO(b"bid"),
        out,
        bidder=agekeys.x25519_public_raw(BIDDER),
        custodians=PUBLIC,
        threshold=threshold,
        context=context,
        file_key=FILE_KEY,
    )
    header = envelope.parse_header(out.getvalue())
    if shares is None:
        return header
    bidder = [s for s in header.stanzas if s.type == envelope.X25519_TYPE]
    return envelope.parse_header(envelope.encode_header([*bidder, *shares], FILE_KEY))


def release(header: envelope.Header, position: int, *, context: str = TENDER) -> dict[str, Any]:
    identity = KEYS[position - 1].encryption.private_bytes_raw()
    return custody.make_release(identity, header, context=context, x=position).to_json()


def every_release(header: envelope.Header, positions: Sequence[int] = (1, 2, 3, 4)) -> dict[int, Any]:
    return {p: release(header, p) for p in positions}


def attribute(header: envelope.Header, releases: dict[int, Any]) -> custody.Outcome:
    return custody.attribute(header, ROSTER, shamir_threshold=T, context=TENDER, releases=releases)


def verify(header: envelope.Header, raw: Any, position: int, *, context: str = TENDER) -> None:
    custody.verify_release(
        custody.parse_release(raw), header, custodian_public=PUBLIC[position - 1], x=position, context=context
    )


def code_of(call: Any) -> str:
    with pytest.raises(EnvelopeError) as caught:
        call()
    return caught.value.code


HEADER = seal()


# ---------------------------------------------------------------- the group


@settings(max_examples=40, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32))
def test_every_honest_x25519_key_maps_to_a_prime_order_point_and_back(seed: bytes) -> None:
    public = X25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    point = custody.edwards_from_montgomery(public)
    assert custody.montgomery_from_edwards(point) == public


@settings(max_examples=40, deadline=None)
@given(k=st.binary(min_size=32, max_size=32))
def test_the_proven_secret_is_exactly_the_x25519_shared_secret(k: bytes) -> None:
    identity = X25519PrivateKey.from_private_bytes(k)
    public = identity.public_key().public_bytes_raw()
    stanzas = envelope.share_stanzas(secrets.token_bytes(16), [public, PUBLIC[1]], 2, TENDER)
    header = envelope.parse_header(
        envelope.encode_header([envelope.x25519_stanza(bytes(16), PUBLIC[0]), *stanzas], bytes(16))
    )
    made = custody.make_release(k, header, context=TENDER, x=1)
    ephemeral = envelope.parse_share_stanza(stanzas[0]).ephemeral
    assert made.shared_secret == identity.exchange(X25519PublicKey.from_public_bytes(ephemeral))
    custody.verify_release(made, header, custodian_public=public, x=1, context=TENDER)


@pytest.mark.parametrize(
    "u",
    [
        (P - 1).to_bytes(32, "little"),  # no Edwards image
        P.to_bytes(32, "little"),  # not canonical
        (2**255 + 9).to_bytes(32, "little"),  # the top bit set
        bytes(32),  # u = 0: a point of order 2
        (1).to_bytes(32, "little"),  # u = 1: on the twist
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),  # order 8
    ],
    ids=["p-1", "p", "top-bit", "zero", "twist", "order-8"],
)
def test_a_value_outside_the_prime_order_group_is_refused(u: bytes) -> None:
    assert code_of(lambda: custody.edwards_from_montgomery(u)) == "key.point"
    assert custody.is_prime_order_key(u) is False


def test_a_share_stanza_with_a_low_order_ephemeral_is_refused_at_finalize() -> None:
    honest = [s for s in HEADER.stanzas if s.type == envelope.SHARE_TYPE]
    first = honest[0]
    low = base64.b64encode(bytes(32)).decode().rstrip("=")
    forged = Stanza(first.type, (*first.args[:-1], low), first.body)
    assert (
        code_of(lambda: custody.check_share_ephemerals(seal([forged, *honest[1:]])))
        == "roster.share_ephemeral"
    )
    custody.check_share_ephemerals(HEADER)  # every honest ephemeral passes


# ---------------------------------------------------------------- releases and proofs


def test_an_honest_release_verifies_and_opens_its_share() -> None:
    raw = release(HEADER, 2)
    verify(HEADER, raw, 2)
    parsed = custody.parse_release(raw)
    share = custody.open_share(parsed, HEADER, custodian_public=PUBLIC[1], context=TENDER)
    mine = envelope.unwrap_shares(HEADER, KEYS[1].encryption.private_bytes_raw(), TENDER)
    assert share == mine[0]


def test_the_release_json_round_trips_and_refuses_anything_else() -> None:
    raw = release(HEADER, 2)
    assert custody.parse_release(raw).to_json() == raw
    for broken in (
        {**raw, "extra": 1},
        {k: v for k, v in raw.items() if k != "proof"},
        {**raw, "v": 2},
        {**raw, "v": True},
        {**raw, "x": 0},
        {**raw, "shared_secret": raw["shared_secret"][:-2]},
        {**raw, "header_sha256": raw["header_sha256"].upper()},
        {**raw, "proof": {**raw["proof"], "s": "not base64!"}},
        [raw],
    ):
        assert code_of(lambda broken=broken: custody.parse_release(broken)) == "release.encoding"


def test_a_custodian_releasing_a_wrong_secret_is_caught_by_the_proof() -> None:
    raw = release(HEADER, 2)
    other = release(HEADER, 3)
    wrong = {**raw, "shared_secret": other["shared_secret"]}  # someone else's secret
    assert code_of(lambda: verify(HEADER, wrong, 2)) == "release.secret"
    # a secret made up with a matching Edwards point, but no knowledge of the key: the equations fail
    forged = copy.deepcopy(other)
    forged["x"] = 2
    assert code_of(lambda: verify(HEADER, forged, 2)) in ("release.key", "release.proof")
    tampered = copy.deepcopy(raw)
    s = bytearray(base64.b64decode(tampered["proof"]["s"]))
    s[0] ^= 1
    tampered["proof"]["s"] = base64.b64encode(bytes(s)).decode()
    assert code_of(lambda: verify(HEADER, tampered, 2)) == "release.proof"


def test_a_proof_with_another_custodians_key_is_refused() -> None:
    raw = release(HEADER, 3)
    raw["x"] = 2
    # the stanza x=2 is addressed to custodian 2: custodian 3's key cannot prove anything for it
    assert code_of(lambda: verify(HEADER, raw, 2)) in ("release.context", "release.key", "release.proof")


@pytest.mark.parametrize("what", ["envelope", "tender", "stanza"])
def test_a_release_replayed_on_another_envelope_tender_or_stanza_does_not_verify(what: str) -> None:
    raw = release(HEADER, 2)
    if what == "envelope":
        assert code_of(lambda: verify(seal(), raw, 2)) == "release.context"
        # even with the header hash rewritten, the transcript binds the stanza's ephemeral share
        other = seal()
        rewritten = {**raw, "header_sha256": envelope.header_sha256(other)}
        assert code_of(lambda: verify(other, rewritten, 2)) in ("release.secret", "release.proof")
    elif what == "tender":
        assert code_of(lambda: verify(HEADER, raw, 2, context=OTHER)) == "release.context"
        assert code_of(lambda: verify(HEADER, {**raw, "tender": OTHER}, 2, context=OTHER)) == "release.proof"
    else:
        assert code_of(lambda: verify(HEADER, {**raw, "x": 3}, 3)) in ("release.key", "release.proof")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_flipped_bit_of_a_release_is_refused(position: int, bit: int) -> None:
    raw = release(HEADER, 2)
    fields = [raw["shared_secret"], *raw["proof"].values()]
    index = position % len(fields)
    data = bytearray(base64.b64decode(fields[index]))
    data[position % 32] ^= 1 << bit
    flipped = copy.deepcopy(raw)
    value = base64.b64encode(bytes(data)).decode()
    if index == 0:
        flipped["shared_secret"] = value
    else:
        flipped["proof"][list(raw["proof"])[index - 1]] = value
    with pytest.raises(EnvelopeError) as caught:
        verify(HEADER, flipped, 2)
    assert caught.value.code in ("release.point", "release.key", "release.secret", "release.proof")


# ---------------------------------------------------------------- attribution


def test_every_custodian_releasing_opens_the_envelope() -> None:
    outcome = attribute(HEADER, every_release(HEADER))
    assert (outcome.cause, outcome.opened_shares, outcome.complete) == ("opened", (1, 2, 3, 4), True)
    assert outcome.file_key is not None
    envelope.verify_file_key(HEADER, outcome.file_key)


def test_the_platform_and_one_custodian_never_reach_t() -> None:
    outcome = attribute(HEADER, every_release(HEADER, (1, 2)))
    assert (outcome.cause, outcome.not_released, outcome.complete) == ("custodian_fault", (3, 4), False)
    assert outcome.detail == (
        "2 valid share(s) of the 3 needed: custodian 3 did not release; custodian 4 did not release"
    )


def test_a_custodian_whose_release_is_invalid_is_named() -> None:
    releases = every_release(HEADER, (1, 2, 3))
    releases[3] = {**releases[3], "shared_secret": releases[2]["shared_secret"]}
    outcome = attribute(HEADER, releases)
    assert (outcome.cause, outcome.invalid, outcome.not_released) == (
        "custodian_fault",
        ((3, "release.secret"),),
        (4,),
    )


def test_shares_of_a_random_secret_are_the_bidders_fault_though_every_stanza_opens() -> None:
    fake = envelope.share_stanzas(secrets.token_bytes(16), PUBLIC, T, TENDER)
    header = seal(fake)
    outcome = attribute(header, every_release(header))
    assert (outcome.cause, outcome.combine_failed, outcome.opened_shares, outcome.bad_stanzas) == (
        "bidder_fault",
        True,
        (1, 2, 3, 4),
        (),
    )
    assert "combine but do not open the header" in outcome.detail


def stanza_to(header: envelope.Header, position: int, recipient: bytes) -> list[Stanza]:
    """The header's share stanzas with the one of `position` wrapped to `recipient` under the same tag."""
    honest = [s for s in header.stanzas if s.type == envelope.SHARE_TYPE]
    keys = [recipient if i == position else PUBLIC[i - 1] for i in range(1, 5)]
    wrapped = envelope.share_stanzas(secrets.token_bytes(16), keys, T, TENDER)[position - 1]
    out = list(honest)
    out[position - 1] = Stanza(
        wrapped.type, (*honest[position - 1].args[:-1], wrapped.args[-1]), wrapped.body
    )
    return out


def test_a_stanza_wrapped_to_another_key_is_the_bidders_fault_once_proven() -> None:
    stranger = agekeys.x25519_public_raw(agekeys.generate(signing=False))
    header = seal(stanza_to(HEADER, 3, stranger))
    releases = every_release(header, (1, 2, 3))
    verify(header, releases[3], 3)  # custodian 3's release is valid …
    parsed = custody.parse_release(releases[3])
    assert (
        custody.open_share(parsed, header, custodian_public=PUBLIC[2], context=TENDER) is None
    )  # … and proves it
    outcome = attribute(header, releases)
    assert (outcome.cause, outcome.bad_stanzas, outcome.not_released) == ("bidder_fault", (3,), (4,))


def test_an_envelope_that_still_opens_is_opened_and_the_bad_stanza_named() -> None:
    stranger = agekeys.x25519_public_raw(agekeys.generate(signing=False))
    # the stanzas of positions 1–3 hold honest shares of the file key: T = 3 of them open it
    header = seal(stanza_to(HEADER, 4, stranger))
    outcome = attribute(header, every_release(header))
    assert (outcome.cause, outcome.file_key, outcome.bad_stanzas) == ("opened", FILE_KEY, (4,))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    released=st.sets(st.integers(1, 4)),
    broken=st.sets(st.integers(1, 4)),
    cheat=st.sampled_from(["honest", "random_secret", "random_key"]),
)
def test_attribution_has_one_cause_and_blames_custodians_only_when_the_bidder_is_clear(
    released: set[int], broken: set[int], cheat: str
) -> None:
    if cheat == "random_secret":
        header = seal(envelope.share_stanzas(secrets.token_bytes(16), PUBLIC, T, TENDER))
    elif cheat == "random_key":
        header = seal(stanza_to(HEADER, 2, agekeys.x25519_public_raw(agekeys.generate(signing=False))))
    else:
        header = HEADER
    releases = every_release(header, sorted(released))
    for p in broken & released:
        releases[p] = {**releases[p], "shared_secret": base64.b64encode(secrets.token_bytes(32)).decode()}
    outcome = attribute(header, releases)
    valid = released - broken
    assert outcome.not_released == tuple(sorted(set(range(1, 5)) - released))
    assert {p for p, _ in outcome.invalid} == broken & released
    if outcome.cause == "opened":
        assert cheat != "random_secret" and outcome.file_key is not None
    elif outcome.cause == "custodian_fault":
        # never when a valid release proved the bidder's fault
        assert outcome.bad_stanzas == () and len(outcome.opened_shares) < T
        assert outcome.not_released or outcome.invalid
    else:
        assert cheat != "honest"
    if cheat == "honest":
        assert outcome.cause == ("opened" if len(valid) >= T else "custodian_fault")
    elif cheat == "random_secret":
        assert outcome.cause == ("bidder_fault" if len(valid) >= T else "custodian_fault")
        assert outcome.combine_failed == (len(valid) >= T)
    else:
        good = valid - {2}
        expected = "opened" if len(good) >= T else "bidder_fault" if 2 in valid else "custodian_fault"
        assert outcome.cause == expected
        assert outcome.bad_stanzas == ((2,) if 2 in valid else ())
