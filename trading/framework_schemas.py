"""Inputs and outputs of framework agreements (框架协议采购, 110号令; G-01): the admission of suppliers with
their caps, direct orders, mini-competitions and their quotes (msgspec Structs; unknown fields refused)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from trading.schemas import PositiveFen, Strict

Subject = Annotated[str, msgspec.Meta(min_length=2, max_length=2_000)]


class AdmittedLot(Strict):
    """The bids the purchaser admits on one lot (入围): each a candidate of the committee's report."""

    lot_id: uuid.UUID
    bid_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=50)]


class AdmissionCreate(Strict):
    """The purchaser's decision on a framework tender: the suppliers admitted on every open lot, the last
    day of the agreement's term, and the other organisations the agreement names as purchasers."""

    lots: Annotated[list[AdmittedLot], msgspec.Meta(min_length=1, max_length=50)]
    valid_until: date
    purchasers: Annotated[list[uuid.UUID], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    # how orders find their supplier: by the purchaser's choice (直接选定, 二次竞价) or by rotation (顺序轮候)
    allocation: Literal["choice", "rotation"] = "choice"


class OpenLot(Strict):
    """An open framework's fixed price for one lot (the most an order may cost) and its other terms."""

    lot_id: uuid.UUID
    price_fen: PositiveFen
    terms: Subject


class OpenFrameworkCreate(Strict):
    """An open framework (开放式框架协议): the fixed price and terms of every open lot, the last day of its term,
    the other purchasers, and how orders are allocated; any qualified supplier may apply to join."""

    lots: Annotated[list[OpenLot], msgspec.Meta(min_length=1, max_length=50)]
    valid_until: date
    purchasers: Annotated[list[uuid.UUID], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    allocation: Literal["choice", "rotation"] = "choice"


class ApplicationCreate(Strict):
    """A supplier applies to join a lot of an open framework at its published price and terms."""

    lot_id: uuid.UUID


class ApplicationDecision(Strict):
    """The purchaser admits the applicant, or refuses it with the reasons."""

    decision: Literal["admitted", "refused"]
    reasons: Annotated[str, msgspec.Meta(min_length=2, max_length=2_000)] | None = None


class ApplicationRead(msgspec.Struct):
    """An application to join an open framework: pending, admitted or refused (with the reasons)."""

    id: uuid.UUID
    tender_id: uuid.UUID
    lot_id: uuid.UUID
    organisation_id: uuid.UUID
    status: str
    reasons: str | None
    applied_at: datetime
    decided_at: datetime | None


class RotationOrderCreate(Strict):
    """An order allocated by rotation (顺序轮候): the platform names the supplier, the next in the lot's queue."""

    lot_id: uuid.UUID
    subject: Subject


class CapLowering(Strict):
    """An admitted supplier lowers its cap (入围价格): never raises it."""

    cap_fen: PositiveFen


class AdmissionRead(msgspec.Struct):
    """An admitted supplier on a lot: its bid (none when it joined an open framework), its cap in fen, when it
    was admitted and when it left."""

    id: uuid.UUID
    lot_id: uuid.UUID
    bid_id: uuid.UUID | None
    organisation_id: uuid.UUID
    supplier: str
    cap_fen: int
    admitted_at: datetime
    left_at: datetime | None = None


class FrameworkRead(msgspec.Struct):
    """A framework agreement: the tender, its term (orders up to and including `valid_until`, Asia/Shanghai),
    the organisations it names as purchasers besides the agency, and the admitted suppliers; its `kind`,
    `closed` (admitted from a first stage) or `open` (suppliers join at fixed prices), and its `allocation`
    of orders, by `choice` (direct or mini-competition) or `rotation` (顺序轮候). An open framework's `terms`
    map each lot's id to its published `price_fen` (every order's cap) and `terms` (text)."""

    tender_id: uuid.UUID
    valid_until: date
    purchasers: list[uuid.UUID]
    made_at: datetime
    admissions: list[AdmissionRead]
    kind: str = "closed"
    allocation: str = "choice"
    terms: dict[str, dict[str, object]] | None = None


class DirectOrderCreate(Strict):
    """A direct order (直接选定) to one admitted supplier of a lot, at a price no higher than its cap."""

    lot_id: uuid.UUID
    organisation_id: uuid.UUID
    price_fen: PositiveFen
    subject: Subject


class CompetitionCreate(Strict):
    """A mini-competition (二次竞价) among every admitted supplier of a lot, taking quotes until `closes_at`."""

    lot_id: uuid.UUID
    closes_at: datetime
    subject: Subject


class QuoteCreate(Strict):
    """An admitted supplier's one quote in a mini-competition, no higher than its cap."""

    price_fen: PositiveFen


class QuoteRead(msgspec.Struct):
    """A quote in a mini-competition: seen by its own supplier, and by the others entitled after the close."""

    id: uuid.UUID
    order_id: uuid.UUID
    organisation_id: uuid.UUID
    price_fen: int
    quoted_at: datetime


class OrderRead(msgspec.Struct):
    """An order under a framework agreement: a direct order, a mini-competition or an order by rotation
    (`kind`), `open` while a competition takes quotes, `placed` once made and published (the supplier and the
    price), `failed` when a competition closed without a quote, `closed` when the framework was completed while it was open (no
    award; its quotes stay unread)."""

    id: uuid.UUID
    tender_id: uuid.UUID
    lot_id: uuid.UUID
    lot: int
    kind: str
    status: str
    subject: str
    purchaser_organisation_id: uuid.UUID
    organisation_id: uuid.UUID | None
    supplier: str | None
    price_fen: int | None
    created_at: datetime
    closes_at: datetime | None
    placed_at: datetime | None
