"""Small readings of the bid tables' rows that every stage module shares: an envelope row's parsed header,
and bytes as the base64 text the records and answers carry."""

from __future__ import annotations

import base64

from bidding import envelope
from bidding.models import Envelope, TechnicalEnvelope


def b64(data: bytes) -> str:
    """Standard base64 text (RFC 4648 section 4, with padding)."""
    return base64.b64encode(data).decode()


def header_of(row: Envelope | TechnicalEnvelope) -> envelope.Header:
    """The parsed header of a recorded envelope."""
    return envelope.parse_header(base64.b64decode(row.header))
