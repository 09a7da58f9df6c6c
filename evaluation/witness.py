"""The witness's side of a committee draw, as an importable client (`ggzy draw witness` and `ggzy draw
reveal` are thin wrappers around it).

The witness (a supervisor or a notary) draws its 32 witness bytes and 32 nonce bytes here, on its own
machine, and sends the server only their commitment; the server then draws its seed and answers its signed
commitment, which the client checks against the platform's published key and keeps with the witness in a
private file. Before revealing, the client checks that the draw still shows the commitment it signed: a
platform that changed its seed after learning anything would be caught before the witness is given away.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bidding.client import GgzyClient
from evaluation import draw

BASE = "/api/v1/evaluation"


class WitnessError(RuntimeError):
    """The platform answered something the witness must not accept (a changed or unsigned commitment)."""


@dataclass(frozen=True)
class Witness:
    """What the witness keeps between committing and revealing: the draw, its witness and nonce (secret
    until the reveal), its commitment, and the platform's commitment with its signature and key id."""

    draw_id: str
    witness: str
    nonce: str
    witness_commitment: str
    commitment: str = ""
    signature: str = ""
    key_id: str = ""

    @classmethod
    def fresh(cls, draw_id: str) -> Witness:
        """New random witness and nonce (32 bytes each, from the operating system) for `draw_id`."""
        witness, nonce = secrets.token_bytes(draw.WITNESS_BYTES), secrets.token_bytes(draw.WITNESS_BYTES)
        return cls(draw_id, witness.hex(), nonce.hex(), draw.witness_commitment(witness, nonce))

    def to_json(self) -> str:
        """The witness file's text (JSON)."""
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Witness:
        """A witness file read back; a file that is not one is a WitnessError."""
        try:
            data = json.loads(text)
            made = cls(**{k: str(data[k]) for k in cls.__dataclass_fields__ if k in data})
            matches = draw.witness_commitment(bytes.fromhex(made.witness), bytes.fromhex(made.nonce)) == (
                made.witness_commitment
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise WitnessError(f"not a witness file: {exc}") from None
        if not matches:
            raise WitnessError("the witness file's witness and nonce do not match its commitment")
        return made


def check_signature(public_key_b64: str, witness: Witness) -> None:
    """The platform's signature of its commitment statement verifies under its published key, or a
    WitnessError."""
    statement = draw.commitment_statement(witness.draw_id, witness.witness_commitment, witness.commitment)
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64, validate=True))
        key.verify(base64.b64decode(witness.signature, validate=True), statement)
    except (ValueError, InvalidSignature) as exc:
        raise WitnessError("the platform's signature of its commitment does not verify") from exc


async def commit(client: GgzyClient, draw_id: str) -> Witness:
    """Commit to a fresh witness for the draw; answers what to keep (the platform's signed commitment
    included, checked against the key the platform publishes)."""
    mine = Witness.fresh(draw_id)
    answer = await client.request(
        "POST", f"{BASE}/draws/{draw_id}/witness", json={"witness_commitment": mine.witness_commitment}
    )
    if answer.get("witness_commitment") != mine.witness_commitment or not answer.get("commitment"):
        raise WitnessError("the draw does not show the witness commitment just made")
    kept = Witness(
        draw_id,
        mine.witness,
        mine.nonce,
        mine.witness_commitment,
        str(answer["commitment"]),
        str(answer.get("commitment_signature") or ""),
        str(answer.get("signing_key_id") or ""),
    )
    key = await client.request("GET", "/api/v1/transparency/key")
    check_signature(str(key["public_key"]), kept)
    return kept


async def reveal(client: GgzyClient, witness: Witness) -> dict[str, Any]:
    """Reveal the witness, which runs the draw, after checking that the draw still shows the witness
    commitment and the platform commitment that were signed; answers the draw."""
    shown = await client.request("GET", f"{BASE}/draws/{witness.draw_id}")
    if shown.get("witness_commitment") != witness.witness_commitment:
        raise WitnessError("the draw shows another witness commitment: not revealing")
    if shown.get("commitment") != witness.commitment:
        raise WitnessError("the platform's commitment changed since it was signed: not revealing")
    answer = await client.request(
        "POST",
        f"{BASE}/draws/{witness.draw_id}/run",
        json={"witness": witness.witness, "nonce": witness.nonce},
    )
    return dict(answer)
