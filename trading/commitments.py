"""Price commitments: a bidder binds its declared price at submission without revealing it (E-01).

commitment = SHA-256("ggzy-price-v1:" ‖ price_fen ‖ ":" ‖ duration_days ‖ ":" ‖ nonce). The bidder keeps the
nonce and reveals price, duration and nonce in the opening hall; the platform checks them against the
commitment. Until then the platform holds only the hash and the opaque bid file.
"""

from __future__ import annotations

import hashlib
import hmac
import re

NONCE = re.compile(r"^[0-9a-f]{32,128}$")


def price_commitment(price_fen: int, duration_days: int, nonce: str) -> str:
    """The hex commitment to a declared price and duration under a secret nonce (≥ 128 bits, hex)."""
    if price_fen < 0 or duration_days < 0:
        raise ValueError("price and duration must not be negative")
    if not NONCE.fullmatch(nonce):  # fullmatch: `$` alone would let a trailing newline through
        raise ValueError("nonce must be 32 to 128 lowercase hex characters")
    return hashlib.sha256(f"ggzy-price-v1:{price_fen}:{duration_days}:{nonce}".encode()).hexdigest()


def opens(commitment: str, price_fen: int, duration_days: int, nonce: str) -> bool:
    """True when (price, duration, nonce) is what `commitment` was made of."""
    try:
        expected = price_commitment(price_fen, duration_days, nonce)
    except ValueError:
        return False
    return hmac.compare_digest(expected, commitment)
