"""Attributable custody opening (开标密钥保管人): a custodian's release of its `ggzy-share` stanza of one
envelope, the proof that the release is honest, and the one provable cause of every custody outcome.

A `ggzy-share` stanza wraps a Shamir share to a custodian's X25519 key C under the X25519 shared secret
S = X25519(k, E) of the custodian's private key k and the stanza's ephemeral share E. A release reveals
S for that one stanza: with it anyone derives the stanza key exactly as the custodian would
(HKDF(S, E ‖ C, share_info)) and opens the body, so the released share is exactly what the stanza held.
Revealing S discloses that stanza's share only (computing it for another stanza is the CDH problem), never
k. But a wrong S and a stanza the bidder wrapped to some other key look the same: the body does not open.
So the release carries a Chaum–Pedersen proof of equal discrete logarithms (DLEQ) that S was computed
with the very key whose public half C is on the tender's roster:

  The X25519 values C, E and S are Montgomery u-coordinates. They map to points of the prime-order
  Edwards group (libsodium's ed25519 operations, through PyNaCl): y = (u − 1)/(u + 1) mod p with the
  sign bit 0, refused unless it is a canonical point of the main subgroup (honest ephemerals are: they
  are clamped scalars times the base point). The custodian's scalar is its clamped private key reduced
  mod ℓ, x; then C* = x·B maps back (u = (1 + y)/(1 − y)) to the registered C, and S* = x·E* to S. The
  proof shows log_B C* = log_E* S*: nonce r, R1 = r·B, R2 = r·E*, challenge c = SHA-512 of a
  length-prefixed transcript (the scheme's tag, C*, E*, S*, R1, R2, the tender, the envelope's header
  hash, x) mod ℓ, response s = r + c·x mod ℓ. The verifier checks the points, u(C*) = C, u(S*) = S ≠ 0,
  s·B = R1 + c·C* and s·E* = R2 + c·S*. The sign of the Edwards points is absorbed: only u is compared.

The transcript binds the release to its tender, envelope header and stanza, so a release copied to
another envelope or tender does not verify. A valid proof whose S does not open the stanza proves the
bidder wrapped that stanza to something else. `attribute` turns a header, its roster and the releases
into exactly one outcome per envelope: opened, the bidder's fault, or the custodians' fault.

Pure: no database, no web framework; every refusal is an `EnvelopeError` with a stable code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from nacl import bindings as sodium
from nacl import exceptions as sodium_errors

from bidding import envelope, shamir
from bidding.envelope import EnvelopeError

RELEASE_VERSION: Final = 1
SCHEME: Final = "ggzy/v1/custody-dleq"
_CHALLENGE_TAG: Final = SCHEME.encode("ascii")
_NONCE_TAG: Final = b"ggzy/v1/custody-dleq/nonce"
_P: Final = 2**255 - 19
_L: Final = 2**252 + 27742317777372353535851937790883648493  # the order of the main subgroup
_POINT: Final = 32

Cause = Literal["opened", "bidder_fault", "custodian_fault"]


# --- the group -----------------------------------------------------------------------------------------


def edwards_from_montgomery(u: bytes, what: str = "key") -> bytes:
    """The Edwards point (sign bit 0) of an X25519 u-coordinate; EnvelopeError key.point unless it is a
    canonical point of the prime-order subgroup."""
    if len(u) != _POINT:
        raise EnvelopeError("key.point", f"{what}: an X25519 value is 32 bytes, got {len(u)}")
    value = int.from_bytes(u, "little")
    if value >= _P - 1:  # u ≥ p is not canonical; u = p − 1 has no Edwards image (division by zero)
        raise EnvelopeError("key.point", f"{what}: not a canonical X25519 value")
    y = (value - 1) * pow(value + 1, _P - 2, _P) % _P
    point = y.to_bytes(_POINT, "little")
    if not sodium.crypto_core_ed25519_is_valid_point(point):
        raise EnvelopeError("key.point", f"{what}: not a point of the prime-order subgroup")
    return point


def montgomery_from_edwards(point: bytes) -> bytes:
    """The X25519 u-coordinate of an Edwards point (its sign is irrelevant: ±P have the same u)."""
    y = int.from_bytes(point, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow((1 - y) % _P, _P - 2, _P) % _P
    return u.to_bytes(_POINT, "little")


def is_prime_order_key(u: bytes) -> bool:
    """Whether an X25519 public key lies in the prime-order subgroup, as every honestly made key does."""
    try:
        edwards_from_montgomery(u)
    except EnvelopeError:
        return False
    return True


def _scalar(private_raw: bytes) -> bytes:
    """The X25519 private key clamped (RFC 7748) and reduced mod ℓ: the Edwards scalar of the same key."""
    clamped = bytearray(private_raw)
    clamped[0] &= 248
    clamped[31] &= 127
    clamped[31] |= 64
    return (int.from_bytes(clamped, "little") % _L).to_bytes(_POINT, "little")


def _reduce(data: bytes) -> bytes:
    return sodium.crypto_core_ed25519_scalar_reduce(data)


def check_share_ephemerals(header: envelope.Header) -> None:
    """Every ggzy-share stanza's ephemeral share must be a prime-order point, as an honest one always is;
    EnvelopeError roster.share_ephemeral otherwise (no custodian could prove a release of that stanza)."""
    shares = [s for s in header.stanzas if s.type == envelope.SHARE_TYPE]
    for index, stanza in enumerate(shares):
        parsed = envelope.parse_share_stanza(stanza, index)
        if not is_prime_order_key(parsed.ephemeral):
            raise EnvelopeError(
                "roster.share_ephemeral",
                f"the ggzy-share stanza x={parsed.x} has an ephemeral share outside the prime-order group",
            )


# --- a release -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """A custodian's release of the stanza x of one envelope: the shared secret S and the DLEQ proof
    (C*, S*, R1, R2, s), bound to the tender and the envelope's header hash."""

    tender: str
    header_sha256: str
    x: int
    shared_secret: bytes
    public_point: bytes
    secret_point: bytes
    commitment_base: bytes
    commitment_share: bytes
    response: bytes

    def to_json(self) -> dict[str, Any]:
        """The release as canonical JSON (standard base64): what is sent, stored and published."""
        return {
            "v": RELEASE_VERSION,
            "scheme": SCHEME,
            "tender": self.tender,
            "header_sha256": self.header_sha256,
            "x": self.x,
            "shared_secret": _b64(self.shared_secret),
            "proof": {
                "public_point": _b64(self.public_point),
                "secret_point": _b64(self.secret_point),
                "r1": _b64(self.commitment_base),
                "r2": _b64(self.commitment_share),
                "s": _b64(self.response),
            },
        }


_RELEASE_FIELDS: Final = ("v", "scheme", "tender", "header_sha256", "x", "shared_secret", "proof")
_PROOF_FIELDS: Final = ("public_point", "secret_point", "r1", "r2", "s")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _bad(message: str) -> EnvelopeError:
    return EnvelopeError("release.encoding", message)


def _exact(obj: object, fields: Sequence[str], where: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise _bad(f"{where} must be a JSON object")
    if set(obj) != set(fields):
        missing = sorted(set(fields) - set(obj))
        extra = sorted(str(k) for k in set(obj) - set(fields))
        raise _bad(f"{where}: missing {missing}, unknown {extra}")
    return obj


def _bytes32(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise _bad(f"{name} must be base64 text")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{name} is not base64") from None
    if len(data) != _POINT or _b64(data) != value:
        raise _bad(f"{name} must be the canonical base64 of 32 bytes")
    return data


def parse_release(obj: object) -> Release:
    """A release from its JSON, strictly (every field, nothing else); EnvelopeError release.encoding."""
    fields = _exact(obj, _RELEASE_FIELDS, "the release")
    if fields["v"] != RELEASE_VERSION or isinstance(fields["v"], bool):
        raise _bad(f"v must be {RELEASE_VERSION}")
    if fields["scheme"] != SCHEME:
        raise _bad(f"scheme must be {SCHEME!r}")
    tender, digest, x = fields["tender"], fields["header_sha256"], fields["x"]
    if not isinstance(tender, str) or not 1 <= len(tender) <= envelope.MAX_CONTEXT:
        raise _bad("tender must be the tender's code")
    if not isinstance(digest, str) or len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise _bad("header_sha256 must be 64 lowercase hex digits")
    if isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= shamir.MAX_SHARES:
        raise _bad(f"x must be an integer in 1..{shamir.MAX_SHARES}")
    proof = _exact(fields["proof"], _PROOF_FIELDS, "proof")
    return Release(
        tender=tender,
        header_sha256=digest,
        x=x,
        shared_secret=_bytes32(fields["shared_secret"], "shared_secret"),
        public_point=_bytes32(proof["public_point"], "proof.public_point"),
        secret_point=_bytes32(proof["secret_point"], "proof.secret_point"),
        commitment_base=_bytes32(proof["r1"], "proof.r1"),
        commitment_share=_bytes32(proof["r2"], "proof.r2"),
        response=_bytes32(proof["s"], "proof.s"),
    )


def _transcript(
    tender: str, header_sha256: str, x: int, points: Sequence[bytes], tag: bytes = _CHALLENGE_TAG
) -> hashlib._Hash:
    digest = hashlib.sha512()
    for part in (tag, tender.encode("ascii"), bytes.fromhex(header_sha256), x.to_bytes(2, "big"), *points):
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    return digest


def _challenge(tender: str, header_sha256: str, x: int, points: Sequence[bytes]) -> bytes:
    """c: the transcript's SHA-512 reduced mod ℓ (C*, E*, S*, R1, R2 in that order)."""
    return _reduce(_transcript(tender, header_sha256, x, points).digest())


def _stanza(header: envelope.Header, x: int) -> envelope.ShareStanza:
    shares = [
        envelope.parse_share_stanza(s, i)
        for i, s in enumerate(s for s in header.stanzas if s.type == envelope.SHARE_TYPE)
    ]
    found = [s for s in shares if s.x == x]
    if len(found) != 1:
        raise EnvelopeError("release.stanza", f"the header has {len(found)} ggzy-share stanzas with x={x}")
    return found[0]


def make_release(identity_private_raw: bytes, header: envelope.Header, *, context: str, x: int) -> Release:
    """A custodian's release of its stanza x of this envelope (made on the custodian's machine).

    Whether the stanza opens with the secret does not matter here: a stanza that does not open is exactly
    the evidence of a bidder's fault, and is released (with its proof) all the same.
    """
    identity = X25519PrivateKey.from_private_bytes(identity_private_raw)
    public = identity.public_key().public_bytes_raw()
    stanza = _stanza(header, x)
    if stanza.tag != envelope.share_tag(public):
        raise EnvelopeError("release.stanza", f"the stanza x={x} is not addressed to this custodian key")
    ephemeral = edwards_from_montgomery(stanza.ephemeral, f"the ephemeral share of stanza x={x}")
    try:
        shared = identity.exchange(X25519PublicKey.from_public_bytes(stanza.ephemeral))
    except ValueError:
        raise EnvelopeError("key.point", f"the stanza x={x} has a low-order ephemeral share") from None
    scalar = _scalar(identity_private_raw)
    public_point = sodium.crypto_scalarmult_ed25519_base_noclamp(scalar)
    secret_point = sodium.crypto_scalarmult_ed25519_noclamp(scalar, ephemeral)
    if montgomery_from_edwards(public_point) != public or montgomery_from_edwards(secret_point) != shared:
        raise EnvelopeError("release.key", "the Edwards form of this key does not match its X25519 form")
    digest = envelope.header_sha256(header)
    # Hedged nonce: a function of the key, the statement and fresh randomness, so neither a weak random
    # source nor a repeated statement can repeat r for two challenges.
    seed = _transcript(context, digest, x, (scalar, ephemeral, secret_point), _NONCE_TAG)
    seed.update(secrets.token_bytes(32))
    nonce = _reduce(seed.digest())
    commitment_base = sodium.crypto_scalarmult_ed25519_base_noclamp(nonce)
    commitment_share = sodium.crypto_scalarmult_ed25519_noclamp(nonce, ephemeral)
    challenge = _challenge(
        context, digest, x, (public_point, ephemeral, secret_point, commitment_base, commitment_share)
    )
    response = sodium.crypto_core_ed25519_scalar_add(
        nonce, sodium.crypto_core_ed25519_scalar_mul(challenge, scalar)
    )
    return Release(
        context, digest, x, shared, public_point, secret_point, commitment_base, commitment_share, response
    )


def verify_release(
    release: Release, header: envelope.Header, *, custodian_public: bytes, x: int, context: str
) -> None:
    """Check a release is the honest one for stanza x of this envelope, by the custodian whose registered
    X25519 key is `custodian_public`; EnvelopeError with a stable code naming what is wrong:

    release.context (for another tender, envelope or stanza: a replay), release.stanza (no such stanza
    for this custodian), release.point (a proof value is not a prime-order point or canonical scalar),
    release.key (the proof is for another key), release.secret (the proof is for another secret),
    release.proof (the equations do not hold).
    """
    digest = envelope.header_sha256(header)
    if release.tender != context or release.header_sha256 != digest or release.x != x:
        raise EnvelopeError(
            "release.context",
            f"the release is for stanza x={release.x} of header {release.header_sha256[:12]}… of "
            f"{release.tender!r}, not for stanza x={x} of header {digest[:12]}… of {context!r}",
        )
    stanza = _stanza(header, x)
    if stanza.tag != envelope.share_tag(custodian_public):
        raise EnvelopeError("release.stanza", f"the stanza x={x} is not addressed to this custodian's key")
    try:
        ephemeral = edwards_from_montgomery(stanza.ephemeral, f"the ephemeral share of stanza x={x}")
    except EnvelopeError as exc:
        raise EnvelopeError("release.stanza", exc.message) from None
    points = (release.public_point, release.secret_point, release.commitment_base, release.commitment_share)
    if not all(sodium.crypto_core_ed25519_is_valid_point(p) for p in points):
        raise EnvelopeError("release.point", "a proof point is not a point of the prime-order subgroup")
    if not 0 < int.from_bytes(release.response, "little") < _L:
        raise EnvelopeError("release.point", "the proof's response is not a canonical non-zero scalar")
    if not hmac.compare_digest(montgomery_from_edwards(release.public_point), custodian_public):
        raise EnvelopeError("release.key", "the proof is not for this custodian's registered key")
    if release.shared_secret == bytes(_POINT) or not hmac.compare_digest(
        montgomery_from_edwards(release.secret_point), release.shared_secret
    ):
        raise EnvelopeError("release.secret", "the proof is not for the released shared secret")
    challenge = _challenge(
        context,
        digest,
        x,
        (
            release.public_point,
            ephemeral,
            release.secret_point,
            release.commitment_base,
            release.commitment_share,
        ),
    )
    try:
        left_base = sodium.crypto_scalarmult_ed25519_base_noclamp(release.response)
        right_base = sodium.crypto_core_ed25519_add(
            release.commitment_base, sodium.crypto_scalarmult_ed25519_noclamp(challenge, release.public_point)
        )
        left_share = sodium.crypto_scalarmult_ed25519_noclamp(release.response, ephemeral)
        right_share = sodium.crypto_core_ed25519_add(
            release.commitment_share,
            sodium.crypto_scalarmult_ed25519_noclamp(challenge, release.secret_point),
        )
    except sodium_errors.CryptoError:
        # a zero challenge or a result at the identity: never for an honest proof
        raise EnvelopeError("release.proof", "the proof's equations cannot be evaluated") from None
    if not (hmac.compare_digest(left_base, right_base) and hmac.compare_digest(left_share, right_share)):
        raise EnvelopeError("release.proof", "the proof does not show the secret was computed with this key")


def open_share(
    release: Release, header: envelope.Header, *, custodian_public: bytes, context: str
) -> shamir.Share | None:
    """The share stanza x held, opened with the released secret exactly as the custodian's identity would
    open it; None when it does not open. Only meaningful for a release that `verify_release` accepted."""
    stanza = _stanza(header, release.x)
    info = envelope.share_info(context, stanza.x, stanza.t)
    value = envelope.unwrap_with_secret(
        release.shared_secret, stanza.ephemeral, custodian_public, stanza.body, info
    )
    return None if value is None else shamir.Share(stanza.x, value)


# --- attribution ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Custodian:
    """A custodian on the roster frozen at publication: share position (x), X25519 key, the platform?"""

    position: int
    public_key: bytes
    platform: bool


@dataclass(frozen=True)
class Outcome:
    """The one cause an envelope in custody ends with, and its evidence.

    `opened`: shares of valid releases open the header (`file_key`). `bidder_fault`: a valid release
    proves its stanza does not open (`bad_stanzas`), or at least T valid shares do not combine to the
    header's file key (`combine_failed`). `custodian_fault`: fewer than T valid shares, and the
    custodians who did not release (`not_released`) or released invalidly (`invalid`) are named.
    """

    cause: Cause
    file_key: bytes | None
    opened_shares: tuple[int, ...]
    bad_stanzas: tuple[int, ...]
    invalid: tuple[tuple[int, str], ...]
    not_released: tuple[int, ...]
    combine_failed: bool
    detail: str

    @property
    def complete(self) -> bool:
        """True when no later release can change the outcome: opened, or every custodian released validly."""
        return self.cause == "opened" or not (self.invalid or self.not_released)

    def evidence(self) -> dict[str, Any]:
        """The outcome as JSON, without the file key."""
        return {
            "cause": self.cause,
            "detail": self.detail,
            "opened_shares": list(self.opened_shares),
            "bad_stanzas": list(self.bad_stanzas),
            "combine_failed": self.combine_failed,
            "not_released": list(self.not_released),
            "invalid": [{"position": p, "error": code} for p, code in self.invalid],
        }


def check_release(
    raw: object, header: envelope.Header, custodian: Custodian, context: str
) -> tuple[Release, shamir.Share | None]:
    """Parse and verify a custodian's release (EnvelopeError when it is not valid); the release and the
    share it opens, or None when the proven secret does not open the stanza (the bidder's fault)."""
    release = parse_release(raw)
    verify_release(
        release, header, custodian_public=custodian.public_key, x=custodian.position, context=context
    )
    return release, open_share(release, header, custodian_public=custodian.public_key, context=context)


def attribute(
    header: envelope.Header,
    roster: Sequence[Custodian],
    *,
    shamir_threshold: int,
    context: str,
    releases: Mapping[int, object],
) -> Outcome:
    """Exactly one outcome for an envelope in custody, from its header, the roster and the releases made
    (JSON, by share position). Each release is parsed and verified here, so a published record can be
    attributed again by anyone. The rule:

    1. at least T valid releases open their stanzas and some T of those shares open the header → opened
       (a stanza proven not to open is still named in the evidence);
    2. else at least T opened shares (none of whose T-subsets opens the header: an honest dealer's shares
       all lie on one polynomial, so any T open) → the bidder's fault, "shares combine but do not open";
    3. else a valid release whose stanza does not open → the bidder's fault, naming the stanza;
    4. else → the custodians' fault, naming who did not release and whose release is invalid.
    """
    shares: list[shamir.Share] = []
    bad: list[int] = []
    invalid: list[tuple[int, str]] = []
    missing: list[int] = []
    for custodian in sorted(roster, key=lambda c: c.position):
        raw = releases.get(custodian.position)
        if raw is None:
            missing.append(custodian.position)
            continue
        try:
            _release, share = check_release(raw, header, custodian, context)
        except EnvelopeError as exc:
            invalid.append((custodian.position, exc.code))
            continue
        if share is None:
            bad.append(custodian.position)
        else:
            shares.append(share)
    opened = tuple(s.x for s in shares)

    def outcome(cause: Cause, file_key: bytes | None, combine_failed: bool, detail: str) -> Outcome:
        return Outcome(
            cause, file_key, opened, tuple(bad), tuple(invalid), tuple(missing), combine_failed, detail
        )

    if len(shares) >= shamir_threshold:
        try:
            file_key = envelope.combine_shares(header, shares)
        except EnvelopeError:
            return outcome(
                "bidder_fault",
                None,
                True,
                f"the {len(shares)} shares released with valid proofs combine but do not open the header",
            )
        return outcome("opened", file_key, False, f"opened by the shares of positions {list(opened)}")
    if bad:
        return outcome(
            "bidder_fault",
            None,
            False,
            f"a valid release proves the stanza of position(s) {bad} does not open: it was wrapped to "
            "another key",
        )
    names = [f"custodian {p} did not release" for p in missing]
    names += [f"custodian {p}'s release is invalid ({code})" for p, code in invalid]
    return outcome(
        "custodian_fault",
        None,
        False,
        f"{len(shares)} valid share(s) of the {shamir_threshold} needed: " + "; ".join(names),
    )
