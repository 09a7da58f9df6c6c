"""The seams of the procedure engine: what a trade's steps ask of the packages above trading.

Trading walks a trade through its profile's steps; the bids themselves belong to `bidding/`, which sits
above trading and answers when the engine asks at the deadline, at the end of the decryption window, and
when a tender is published with its custodians; the committee belongs to `evaluation/`, which answers when
an upheld challenge or complaint sends the trade back to it (重新评审). Each plugs its answers in here when
it is imported (the composition root imports them), so trading never imports either; a step that runs
before anything is plugged in fails loudly instead of skipping the bids or the committee.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from storage.signing import LogSigner
from trading.models import Tender
from trading.schemas import CustodianRead


class BidStage(Protocol):
    """What the engine asks of the package that holds a trade's bids from upload to opening."""

    async def appoint_custodians(
        self, session: AsyncSession, tender: Tender, organisations: Sequence[uuid.UUID], now: datetime
    ) -> list[dict[str, Any]]:
        """Name the opening custodians of a tender being published (sets its Shamir threshold); answer
        each custodian's line for the notice."""
        ...

    async def check_custodians(
        self, session: AsyncSession, tender: Tender, organisations: Sequence[uuid.UUID]
    ) -> None:
        """Refuse, as `appoint_custodians` would, custodians that cannot be appointed; record nothing."""
        ...

    async def custodians(self, session: AsyncSession, tender: Tender) -> list[CustodianRead]:
        """The custodians of a tender as its readers see them."""
        ...

    async def opening_event(
        self, session: AsyncSession, tender_id: uuid.UUID, kind: str, detail: dict[str, Any], now: datetime
    ) -> None:
        """Append one line to the tender's opening log (an objection raised or answered in the hall)."""
        ...

    async def close_bidding(
        self, session: AsyncSession, tender: Tender, signer: LogSigner, now: datetime
    ) -> str:
        """The deadline has come: close bidding and open the hall; answer what the tender became."""
        ...

    async def decryption_done(self, session: AsyncSession, tender: Tender, now: datetime) -> bool:
        """Whether the decryption window (and custody) has ended with every envelope settled."""
        ...

    async def close_opening(self, session: AsyncSession, tender: Tender, now: datetime) -> None:
        """Close the opening hall and publish its record."""
        ...


class EvaluationStage(Protocol):
    """What the engine asks of the package that holds a trade's committee and evaluation rooms."""

    async def reconvene(self, session: AsyncSession, tender: Tender, fresh: bool, now: datetime) -> int:
        """A re-evaluation is ordered (重新评审, 87号令 64): seat the committee of the last signed report in a
        room of the next evaluation round, open from `now`, or, when `fresh`, leave the seats to a new draw
        the agency asks for. Answer the new round's number."""
        ...


class EngineNotPlugged(RuntimeError):
    """A step asked for a stage nobody plugged in: the process did not import the package that owns it."""


_bids: list[BidStage] = []


def plug_bids(stage: BidStage) -> None:
    """Plug in the bid stage (bidding/ does so when it is imported); plugging again replaces it."""
    _bids[:] = [stage]


def bids() -> BidStage:
    """The plugged bid stage."""
    if not _bids:
        raise EngineNotPlugged("no bid stage is plugged in: import bidding.stage in the composition root")
    return _bids[0]


_evaluation: list[EvaluationStage] = []


def plug_evaluation(stage: EvaluationStage) -> None:
    """Plug in the evaluation stage (evaluation/ does so when it is imported); plugging again replaces it."""
    _evaluation[:] = [stage]


def evaluation() -> EvaluationStage:
    """The plugged evaluation stage."""
    if not _evaluation:
        raise EngineNotPlugged(
            "no evaluation stage is plugged in: import evaluation.stage in the composition root"
        )
    return _evaluation[0]
