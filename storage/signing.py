"""The platform's Ed25519 signing key: it signs the transparency log's tree heads, tenders' closing heads
and every other head the platform publishes, so that anyone holding its public key can check offline what
the platform stated and when.

Pure: no database, no web framework.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def key_id(public_raw: bytes) -> str:
    """The id of a platform key: the first 16 hex characters of SHA-256 of the raw Ed25519 public key."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class LogSigner:
    """The platform's Ed25519 key that signs tree heads, closing heads and the other published heads."""

    private: Ed25519PrivateKey

    @classmethod
    def from_secret(cls, secret: str, override: str = "") -> LogSigner:
        """`override` (base64 of a 32-byte seed, `GGZY_LOG_SIGNING_KEY`) or a key derived from the
        installation secret, so the embedded default needs no key file of its own."""
        if override:
            seed = base64.b64decode(override, validate=True)
        else:
            seed = HKDF(SHA256(), 32, salt=None, info=b"ggzy log signing key v1").derive(secret.encode())
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_raw(self) -> bytes:
        """The raw public key that verifies this signer's heads."""
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public key object, for checking a signature made by this signer."""
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        """The short id printed in every head."""
        return key_id(self.public_raw)

    def sign(self, message: bytes) -> bytes:
        """Sign a message with the platform key."""
        return self.private.sign(message)
