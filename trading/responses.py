"""Answers of the trading and opening API that the services build as plain JSON objects, as TypedDicts.

The handlers return these dicts unchanged; the types only document them (the OpenAPI document is generated
from them). Ids are UUIDs as text, instants ISO 8601 text, money integer fen (1/100 yuan), hashes of
envelopes and headers lowercase hex; signatures, keys and root hashes are standard base64 (RFC 4648
section 4, with padding) unless a field says otherwise.

This module does not use postponed annotations: `NotRequired` must be seen when the class is created, or
every key would count as required.
"""

from collections.abc import Sequence
from typing import NotRequired, TypedDict

from trading.schemas import NoticeRead, TenderRead


class TenderPage(TypedDict):
    """One page of tenders, newest first; pass `next_cursor` as `cursor` for the next (null on the last).
    `rehearsal` is true in a rehearsal deployment (演练) and absent otherwise."""

    items: list[TenderRead]
    next_cursor: str | None
    rehearsal: NotRequired[bool]


class NoticePage(TypedDict):
    """One page of published notices, newest first; pass `next_cursor` as `cursor` for the next (null on
    the last)."""

    items: Sequence[NoticeRead]
    next_cursor: str | None
