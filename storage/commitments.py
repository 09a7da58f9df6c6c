"""Hash commitments a party makes on its own machine and opens later: a sealed final quote (最后报价) is the
hex SHA-256 of `final_quote_message`, sent before the deadline; the price and the nonce that open it are sent
after. Pure and dependency-free, so the `ggzy bid` client computes exactly what the server checks."""

from __future__ import annotations

import hashlib
import uuid


def final_quote_message(
    tender_id: uuid.UUID, lot_id: uuid.UUID, organisation_id: uuid.UUID, price_fen: int, nonce: str
) -> bytes:
    """The bytes a final quote's commitment hashes: binding the quote to its tender, lot and supplier, so a
    commitment copied from another supplier opens to nothing."""
    return f"ggzy-final-quote-v1|{tender_id}|{lot_id}|{organisation_id}|{price_fen}|{nonce}".encode()


def final_quote_commitment(
    tender_id: uuid.UUID, lot_id: uuid.UUID, organisation_id: uuid.UUID, price_fen: int, nonce: str
) -> str:
    """The lowercase hex SHA-256 commitment a supplier sends before the final quotes' deadline."""
    return hashlib.sha256(
        final_quote_message(tender_id, lot_id, organisation_id, price_fen, nonce)
    ).hexdigest()
