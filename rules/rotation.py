"""Orders by rotation (顺序轮候) under a framework agreement (G-01): who takes the next order, as a pure
function of what is published — the lot's suppliers admitted and not left, each with when it was admitted,
and the supplier of the last rotation order on the lot.

The suppliers take turns in the order they were admitted (then by the admission's id): the next order goes
to the first admitted after the last one served, and after the last admitted back to the first. A supplier
that joins later takes its turn at the end of the round; one that left is out of it. Anyone replays it from
the archive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, order=True)
class Member:
    """A supplier's place in the rotation: when it was admitted, its admission's id, its organisation."""

    admitted_at: datetime
    admission_id: str
    organisation_id: str


def queue(members: Sequence[Member], last: Member | None) -> list[str]:
    """The organisations in the order they take the next orders, the first taking the next one; `last` is
    the admission of the supplier of the last rotation order on the lot (it may have left since)."""
    ordered = sorted(members)
    if last is None:
        return [m.organisation_id for m in ordered]
    after = [m for m in ordered if m > last]
    return [m.organisation_id for m in after + [m for m in ordered if m not in after]]
