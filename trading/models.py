"""Tables of the trading package: tenders and lots, notices, documents, clarifications, objections,
bids, the opening record, evaluation reports, awards and contracts, notifications."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, IdMixin


class Tender(IdMixin, Base):
    """A tendering project (招标项目) carried from draft to contract under one transaction code."""

    __tablename__ = "tenders"
    __table_args__ = (Index("ix_tenders_next_check", "next_check"),)

    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    sector: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    agency_organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    tenderer_name: Mapped[str] = mapped_column(String(200))
    # The tenderer's unified social credit code: experts employed there are avoided (G-08).
    tenderer_credit_code: Mapped[str | None] = mapped_column(String(18))
    region_code: Mapped[str] = mapped_column(String(6))
    qualification: Mapped[str] = mapped_column(Text)
    evaluation_method: Mapped[str] = mapped_column(String(40))
    documents_from: Mapped[datetime]
    bid_deadline: Mapped[datetime]
    opening_window_minutes: Mapped[int]
    # Sealed-bid custody (E-03): t of the custodians' shares open an envelope whose bidder failed to, when
    # the policy is "custodians"; under "revoke" such a bid is revoked at the end of the window. t counts
    # custodians other than the platform; the Shamir threshold T written in the stanzas is fixed at
    # publication: t + 1 when the platform holds a share (so the platform and t − 1 others never open).
    custody_threshold: Mapped[int] = mapped_column(default=2)
    custody_shamir_threshold: Mapped[int | None]
    opening_policy: Mapped[str] = mapped_column(String(20), default="custodians")
    custody_until: Mapped[datetime | None]
    custodian_organisations: Mapped[list[Any]] = mapped_column(default=list)
    publicity_days: Mapped[int]
    # 投标有效期: days from the bid deadline a bid (and its deposit, 条例 26) must stay valid.
    bid_validity_days: Mapped[int] = mapped_column(default=90, server_default="90")
    # 分包: the most lots one supplier may win, when the documents set a limit.
    max_lots_per_supplier: Mapped[int | None]
    # The suppliers invited, when the procedure admits only those (invited tendering, quotation).
    invited_organisations: Mapped[list[Any]] = mapped_column(default=list)
    # The approving body's consent to a change of procurement method (G-13): body, number, approved_on.
    method_approval: Mapped[dict[str, Any] | None]
    # Negotiated procedures: when the remaining suppliers' sealed final quotes are due (最后报价截止).
    final_quote_deadline: Mapped[datetime | None]
    # 双信封: 2 when each bid is a technical and a commercial envelope, opened at their own times.
    envelopes: Mapped[int] = mapped_column(default=1, server_default="1")
    # 分包评标: "per_lot" when the documents ask for one evaluation room per lot, else "single".
    evaluation_rooms: Mapped[str] = mapped_column(String(10), default="single", server_default="single")
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    documents_issued_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    report_at: Mapped[datetime | None]
    publicity_ends: Mapped[datetime | None]
    awarded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    next_check: Mapped[datetime | None]
    paused_reason: Mapped[str | None] = mapped_column(String(300))
    # The supervising authority's suspension over a complaint (暂停): nothing moves until its decision.
    suspended_reason: Mapped[str | None] = mapped_column(Text)
    suspended_by_complaint_id: Mapped[uuid.UUID | None]
    outcome_reason: Mapped[str | None] = mapped_column(String(500))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenders.id"))
    # The project the centre accepted (项目受理) that this tender carries out; needed to publish.
    project_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id"), index=True)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class Lot(IdMixin, Base):
    """A lot (标段) of a tender: bid, evaluated and awarded on its own."""

    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("tender_id", "number"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(300))
    estimated_price_fen: Mapped[int] = mapped_column(BigInteger)
    # 最高投标限价 / 最高限价: a bid declaring more is rejected at the opening (条例 51(5); 87号令 63(4))
    ceiling_price_fen: Mapped[int | None] = mapped_column(BigInteger)
    deposit_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="open")
    outcome_reason: Mapped[str | None] = mapped_column(String(500))


class Notice(IdMixin, Base):
    """A published notice (公告); immutable once published, superseded only by a correction (S-03)."""

    __tablename__ = "notices"
    __table_args__ = (
        Index("ix_notices_published", "published_at", "id"),
        Index("ix_notices_kind_published", "kind", "published_at", "id"),
        # Substring search of the board (`q`) on PostgreSQL: trigram GIN indexes serve `ILIKE '%…%'`.
        Index(
            "ix_notices_title_trgm",
            "title",
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_notices_tender_code_trgm",
            "tender_code",
            postgresql_using="gin",
            postgresql_ops={"tender_code": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    sector: Mapped[str] = mapped_column(String(20))
    region_code: Mapped[str] = mapped_column(String(6))
    tender_code: Mapped[str] = mapped_column(String(40), index=True)
    title: Mapped[str] = mapped_column(String(400))
    body: Mapped[dict[str, Any]]
    published_at: Mapped[datetime]
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("notices.id"))
    superseded_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("notices.id"))


class NoticeBoardVersion(Base):
    """One row whose token changes, in the same transaction, whenever any notice is written (database
    triggers, migration 0018): a public board answer read while the token was T is still the answer while
    it is T. Tokens are random, never counted, so one deleted and re-created row cannot repeat an old one."""

    __tablename__ = "notice_board_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


class Document(IdMixin, Base):
    """A file of the trade kept in the object store, with the SHA-256 the server computed."""

    __tablename__ = "documents"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    filename: Mapped[str] = mapped_column(String(255))
    object_key: Mapped[str] = mapped_column(String(512), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    uploaded_by: Mapped[uuid.UUID]
    uploaded_at: Mapped[datetime]


class DocumentAccess(IdMixin, Base):
    """A bidder that obtained the tender documents (获取招标文件); it is told of every clarification."""

    __tablename__ = "document_accesses"
    __table_args__ = (UniqueConstraint("tender_id", "organisation_id"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    obtained_at: Mapped[datetime]


class Clarification(IdMixin, Base):
    """A clarification or amendment of the tender documents (澄清/修改), W-02."""

    __tablename__ = "clarifications"
    __table_args__ = (UniqueConstraint("tender_id", "number"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    number: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    affects_bids: Mapped[bool]
    issued_at: Mapped[datetime]
    deadline_before: Mapped[datetime]
    deadline_after: Mapped[datetime]
    objection_id: Mapped[uuid.UUID | None]


class Objection(IdMixin, Base):
    """An objection (异议) by a bidder: to the documents (W-03), the opening, or the candidates (W-12)."""

    __tablename__ = "objections"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    subject: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[datetime]
    answer_due: Mapped[datetime]
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]
    # What an upheld challenge to the result ordered: "reevaluate" (重新评审), or None.
    outcome: Mapped[str | None] = mapped_column(String(20))


class Bid(IdMixin, Base):
    """A bid (投标文件) for one lot: a sealed envelope (bidding.envelope) kept on record with its hash, the
    transparency-log leaf of its submission and, after the opening, the price its manifest declares.

    A rejection the platform establishes itself (`rejection_rule`, e.g. W-19: no deposit at the deadline)
    leaves the bid standing — it counts as submitted, is opened and read out — but it is never evaluated
    as responsive, scored, ranked or awarded; `rejection` keeps the evidence the fact rests on."""

    __tablename__ = "bids"
    __table_args__ = (Index("ix_bids_tender_lot", "tender_id", "lot_id"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"))
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lots.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    object_key: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    submitted_at: Mapped[datetime]
    sequence: Mapped[int]
    # Its leaf in the platform-wide log, for bids logged there before tenders had logs of their own;
    # bidding.receipt_of_bid finds any bid's receipt by the bid.
    log_index: Mapped[int | None] = mapped_column(BigInteger)
    replaces_id: Mapped[uuid.UUID | None]
    withdrawn_at: Mapped[datetime | None]
    declared_price_fen: Mapped[int | None] = mapped_column(BigInteger)
    # Negotiated procedures: the first response's price, kept when the final quote replaces it above.
    first_price_fen: Mapped[int | None] = mapped_column(BigInteger)
    duration_days: Mapped[int | None]
    revealed_at: Mapped[datetime | None]
    rejection_rule: Mapped[str | None] = mapped_column(String(10))
    rejected_at: Mapped[datetime | None]
    rejection: Mapped[dict[str, Any] | None]


class Report(IdMixin, Base):
    """The evaluation committee's signed report (评标报告) of one evaluation round. A re-evaluation (重新评审)
    ordered on an upheld challenge or complaint adds the next round's report; the earlier ones stay on record,
    and the trade goes on from the latest."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("tender_id", "round", name="uq_reports_tender_id_round"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"))
    round: Mapped[int] = mapped_column(default=1, server_default="1")
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"))
    committee: Mapped[list[Any]]
    candidates: Mapped[list[Any]]
    received_at: Mapped[datetime]


class Award(IdMixin, Base):
    """The award of a lot (中标) to one bidder. A winner that refuses to sign loses it (W-16): the award is
    `declined` and the lot may go to the next-ranked candidate, so a lot has at most one `active` award."""

    __tablename__ = "awards"
    __table_args__ = (Index("ix_awards_lot", "lot_id", "status"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lots.id"))
    bid_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bids.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    awarded_at: Mapped[datetime]
    contract_due: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="active")
    declined_at: Mapped[datetime | None]
    decline_reason: Mapped[str | None] = mapped_column(Text)
    # the winner's deposit already refunded (or with the bank) as an unsuccessful supplier's (G-04-loser)
    # before a re-evaluation or a passed-on award made it the winner: the contract refunds nothing again
    deposit_refunded_fen: Mapped[int | None] = mapped_column(BigInteger)


class Contract(IdMixin, Base):
    """The signed contract of an awarded lot, with its performance security (W-13, W-15)."""

    __tablename__ = "contracts"
    __table_args__ = (UniqueConstraint("award_id"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    award_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("awards.id"))
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    performance_security_fen: Mapped[int] = mapped_column(BigInteger)
    signed_on: Mapped[date] = mapped_column(Date)
    late_reason: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime]
    # 履约验收: the purchaser's acceptance of the performance — passed or failed, on which day, its report.
    acceptance_result: Mapped[str | None] = mapped_column(String(20))
    accepted_on: Mapped[date | None] = mapped_column(Date)
    acceptance_text: Mapped[str | None] = mapped_column(Text)
    acceptance_recorded_at: Mapped[datetime | None]


class Notification(IdMixin, Base):
    """A message to an organisation (for example: the documents were clarified, the deadline moved)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_org", "organisation_id", "created_at"),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    tender_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenders.id"))
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class CodeCounter(Base):
    """Gapless per-year sequence behind readable transaction codes."""

    __tablename__ = "code_counters"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int]


class Complaint(IdMixin, Base):
    """A complaint (投诉) to the supervising authority: filed within 10 days of when the complainant knew,
    decided within 30 working days (W-17)."""

    __tablename__ = "complaints"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    subject: Mapped[str] = mapped_column(String(20))
    known_on: Mapped[date] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[datetime]
    decision_due: Mapped[date] = mapped_column(Date)
    decision: Mapped[str | None] = mapped_column(String(20))
    decision_text: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None]
    outcome: Mapped[str | None] = mapped_column(String(20))


class TransitionFailure(Base):
    """A tender whose due transition raised: the chronograph retries it with backoff from `retry_at`,
    the other tenders go on meanwhile, and the centre and supervisors see it until it succeeds."""

    __tablename__ = "transition_failures"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int]
    error: Mapped[str] = mapped_column(String(300))
    first_failed_at: Mapped[datetime]
    last_failed_at: Mapped[datetime]
    retry_at: Mapped[datetime]


class StageFailure(Base):
    """A room or a draw whose due step in a later stage of the chronograph raised (`stage` says which:
    `room` to open or close, `invitations` to time out and replace, `archive` to assemble an ended
    tender's archive): retried with backoff from `retry_at`
    like a tender's transition, listed for the centre and supervisors under its tender until it succeeds."""

    __tablename__ = "stage_failures"

    stage: Mapped[str] = mapped_column(String(20), primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int]
    error: Mapped[str] = mapped_column(String(300))
    first_failed_at: Mapped[datetime]
    last_failed_at: Mapped[datetime]
    retry_at: Mapped[datetime]


class NegotiationNote(IdMixin, Base):
    """A record of a negotiated procedure (竞争性谈判/磋商): a round with one supplier (its minutes, seen by
    that supplier, the agency and those who watch, never by the other suppliers), an amendment of the
    requirements sent to every remaining supplier, or a supplier's exclusion with its reason."""

    __tablename__ = "negotiation_notes"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # round | amendment | exclusion
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    round: Mapped[int | None]
    text: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[uuid.UUID]


class FinalQuote(IdMixin, Base):
    """A supplier's sealed final quote (最后报价) on a lot: before the deadline only its commitment, the hex
    SHA-256 of `storage.commitments.final_quote_message`; after it, the price and nonce that open it."""

    __tablename__ = "final_quotes"
    __table_args__ = (UniqueConstraint("lot_id", "organisation_id"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lots.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    commitment: Mapped[str] = mapped_column(String(64))
    committed_at: Mapped[datetime]
    price_fen: Mapped[int | None] = mapped_column(BigInteger)
    nonce: Mapped[str | None] = mapped_column(String(64))
    revealed_at: Mapped[datetime | None]


class FrameworkAgreement(IdMixin, Base):
    """A framework agreement (框架协议, 110号令; G-01) made by the purchaser's decision on a framework tender:
    its term (the last day orders may be placed, Asia/Shanghai) and the other organisations it names as
    purchasers besides the agency that runs it."""

    __tablename__ = "framework_agreements"
    __table_args__ = (UniqueConstraint("tender_id"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"))
    valid_until: Mapped[date] = mapped_column(Date)
    purchasers: Mapped[list[Any]]
    made_at: Mapped[datetime]
    # closed (封闭式: admitted from a competitive first stage) | open (开放式: fixed prices, suppliers join)
    kind: Mapped[str] = mapped_column(String(10), default="closed", server_default="closed")
    # how orders find their supplier: choice (直接选定 or 二次竞价) | rotation (顺序轮候)
    allocation: Mapped[str] = mapped_column(String(20), default="choice", server_default="choice")
    # an open framework's published terms: {lot id: {"price_fen": …, "terms": …}}
    terms: Mapped[dict[str, Any] | None]


class FrameworkAdmission(IdMixin, Base):
    """A supplier admitted to a lot of a framework agreement (入围) with its capped price (入围价格): its
    evaluated bid price, the most it may charge in an order. The cap may be lowered, never raised."""

    __tablename__ = "framework_admissions"
    __table_args__ = (UniqueConstraint("lot_id", "organisation_id"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lots.id"))
    bid_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bids.id"))  # None: joined an open framework
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    cap_fen: Mapped[int] = mapped_column(BigInteger)
    admitted_at: Mapped[datetime]
    left_at: Mapped[datetime | None]  # an open framework's supplier may leave it; no order after


class FrameworkApplication(IdMixin, Base):
    """A supplier's application to join a lot of an open framework during its term: `pending`, then
    `admitted` or `refused` by the purchaser with its reasons."""

    __tablename__ = "framework_applications"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lots.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    status: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[str | None] = mapped_column(Text)
    applied_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class FrameworkOrder(IdMixin, Base):
    """An order under a framework agreement (second stage): a direct order to one admitted supplier
    (直接选定), or a mini-competition (二次竞价) among the lot's admitted suppliers that closes at `closes_at`
    and goes to the lowest quote. `status` is `open` (a competition taking quotes), `placed` (the order is
    made and published), `failed` (a competition closed without a quote) or `closed` (a competition
    still open when the framework was completed: no award, its quotes unread)."""

    __tablename__ = "framework_orders"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lots.id"))
    kind: Mapped[str] = mapped_column(String(20))  # direct | competition | rotation
    status: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(Text)
    purchaser_organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    price_fen: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    closes_at: Mapped[datetime | None]
    placed_at: Mapped[datetime | None]


class FrameworkQuote(IdMixin, Base):
    """One admitted supplier's quote in a mini-competition: once, at most its cap, before the close; seen by
    nobody but its supplier until the close."""

    __tablename__ = "framework_quotes"
    __table_args__ = (UniqueConstraint("order_id", "organisation_id"),)

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("framework_orders.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    quoted_at: Mapped[datetime]


class Project(IdMixin, Base):
    """A project an agency registers with the centre before any of its tenders may start (项目受理): its
    approval documents, and the centre's acceptance or refusal with reasons."""

    __tablename__ = "projects"

    agency_organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    sector: Mapped[str] = mapped_column(String(20))
    budget_fen: Mapped[int | None] = mapped_column(BigInteger)
    # Where the money comes from (资金来源): the budget or the estimate's source.
    funding_source: Mapped[str] = mapped_column(String(300))
    # The approving body's document number (立项批复文号).
    approval_number: Mapped[str] = mapped_column(String(100))
    # Government procurement only: the procurement plan the purchase carries out (采购计划编号).
    procurement_plan_number: Mapped[str | None] = mapped_column(String(100))
    documents: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20))  # pending | accepted | refused
    reasons: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None]


class NoticeReview(IdMixin, Base):
    """The centre's review of a tender notice before it reaches the public board (公告审核): one row per
    submission; a refused one leaves the tender a draft to fix and submit again."""

    __tablename__ = "notice_reviews"
    __table_args__ = (UniqueConstraint("tender_id", "number"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    number: Mapped[int]  # the tender's submissions, 1, 2, …
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending | approved | refused | withdrawn
    submitted_at: Mapped[datetime]
    due_on: Mapped[date]
    submitted_by: Mapped[uuid.UUID]
    reasons: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None]


class Venue(IdMixin, Base):
    """A room of the centre: the online opening hall or an evaluation room, and how many sessions it holds
    at once."""

    __tablename__ = "venues"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # opening | evaluation
    capacity: Mapped[int]
    created_at: Mapped[datetime]


class VenueBooking(IdMixin, Base):
    """A tender's time in one of the centre's rooms (场地预约): its opening at the deadline, or an evaluation."""

    __tablename__ = "venue_bookings"
    __table_args__ = (Index("ix_venue_bookings_venue_start", "venue_id", "starts_at"),)

    venue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("venues.id"))
    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # opening | evaluation
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    booked_by: Mapped[uuid.UUID | None]
    booked_at: Mapped[datetime]
