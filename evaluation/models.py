"""Tables of the evaluation package: the expert pool (专家库: specialties, experts, their relationships,
unavailability and credit record), the draws (抽取) with their invitations, and the evaluation rooms
(评标室) with their members, qualification votes, clarifications, score sheets, events and report."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, IdMixin


class Specialty(Base):
    """A node of the specialty code tree the centre maintains (专业分类): works, goods, services…"""

    __tablename__ = "specialties"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    parent_code: Mapped[str | None] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)


class Expert(IdMixin, Base):
    """An evaluation expert of the pool. `pending` holds profile changes the expert proposed and the centre
    has not yet approved; the draw only ever sees approved values."""

    __tablename__ = "experts"

    number: Mapped[str] = mapped_column(String(20), unique=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    employer_credit_code: Mapped[str] = mapped_column(String(18), index=True)
    employer_name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(6))
    title: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20), index=True)
    term_start: Mapped[date | None] = mapped_column(Date)
    term_end: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    approved_at: Mapped[datetime | None]
    pending: Mapped[dict[str, Any] | None]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class ExpertSpecialty(Base):
    """An expert's specialty code."""

    __tablename__ = "expert_specialties"
    __table_args__ = (Index("ix_expert_specialties_code", "code"),)

    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(20), primary_key=True)


class ExpertRelationship(IdMixin, Base):
    """A declared relationship that may call for avoidance (回避, G-08): a former employer (with dates) or
    an organisation where a close relative works."""

    __tablename__ = "expert_relationships"
    __table_args__ = (Index("ix_expert_relationships_code", "credit_code"),)

    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    credit_code: Mapped[str] = mapped_column(String(18))
    organisation_name: Mapped[str] = mapped_column(String(200))
    relation: Mapped[str | None] = mapped_column(String(100))
    start_on: Mapped[date | None] = mapped_column(Date)
    end_on: Mapped[date | None] = mapped_column(Date)
    declared_at: Mapped[datetime]


class ExpertUnavailability(IdMixin, Base):
    """Days an expert has said they cannot evaluate (inclusive)."""

    __tablename__ = "expert_unavailability"

    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id"), index=True)
    start_on: Mapped[date] = mapped_column(Date)
    end_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(String(200))
    declared_at: Mapped[datetime]


class CreditEvent(IdMixin, Base):
    """One line of an expert's credit record: attendance, late arrival, a declined or unanswered invitation,
    an abnormal score, an upheld complaint. Points are deducted from the score the draw checks."""

    __tablename__ = "expert_credit_events"

    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    points: Mapped[int]
    tender_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenders.id"))
    at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(80))


class EvaluationScheme(Base):
    """The tender's evaluation scheme (评标办法): method, qualification criteria, the scoring tree. Part of
    the tender documents, so it is fixed once bidding closes."""

    __tablename__ = "evaluation_schemes"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), primary_key=True)
    scheme: Mapped[dict[str, Any]]
    set_at: Mapped[datetime]
    set_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


class Draw(IdMixin, Base):
    """A committee draw for one tender (`evaluation.draw`, version in `rules`). When the agency asks, the
    candidates, the context and the exclusions are kept (objects and digests) and no seed exists; a
    supervisor or notary commits to a witness (`DrawWitness`), and only then is the seed sealed and the
    commitment published (`commitment` and `sealed_seed` stay "" until then); the witness's reveal runs the
    selection. The seed is revealed once every seat is confirmed or the draw is aborted, so anyone can
    replay it. `witness` holds the witness text of first-version draws only."""

    __tablename__ = "draws"
    __table_args__ = (Index("ix_draws_tender", "tender_id", "status"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"))
    status: Mapped[str] = mapped_column(String(20))
    evaluation_at: Mapped[datetime]
    room_hours: Mapped[int]
    committee_size: Mapped[int]
    quotas: Mapped[list[Any]]
    employer_limit: Mapped[int]
    representative_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    invitation_minutes: Mapped[int]
    rules: Mapped[dict[str, Any]]
    pool_digest: Mapped[str] = mapped_column(String(64))
    pool_object_key: Mapped[str] = mapped_column(String(300))
    pool_size: Mapped[int]
    excluded: Mapped[dict[str, Any]]
    commitment: Mapped[str] = mapped_column(String(64))
    sealed_seed: Mapped[str] = mapped_column(String(200))
    seed_hex: Mapped[str | None] = mapped_column(String(64))
    witness: Mapped[str | None] = mapped_column(String(200))
    # The pool before avoidance and the exclusions (ggzy-draw-v2; None on first-version draws).
    candidates_digest: Mapped[str | None] = mapped_column(String(64))
    candidates_object_key: Mapped[str | None] = mapped_column(String(300))
    exclusions_digest: Mapped[str | None] = mapped_column(String(64))
    exclusions_object_key: Mapped[str | None] = mapped_column(String(300))
    avoidance_context: Mapped[dict[str, Any] | None]
    # The platform's Ed25519 signature of its commitment (`draw.commitment_statement`) and the key's id.
    commitment_signature: Mapped[str | None] = mapped_column(String(100))
    signing_key_id: Mapped[str | None] = mapped_column(String(16))
    aborted_at: Mapped[datetime | None]
    requested_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    drawn_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    next_deadline: Mapped[datetime | None] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class DrawWitness(Base):
    """The witness's contribution to a draw: its commitment (made before the platform's seed existed), who
    made it for which organisation (a supervisor or a notary), and the witness and nonce it revealed, which
    ran the selection."""

    __tablename__ = "draw_witnesses"

    draw_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("draws.id"), primary_key=True)
    committed_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    commitment: Mapped[str] = mapped_column(String(64))
    committed_at: Mapped[datetime]
    witness: Mapped[str | None] = mapped_column(String(64))
    nonce: Mapped[str | None] = mapped_column(String(64))
    revealed_at: Mapped[datetime | None]


class DrawAbortRequest(IdMixin, Base):
    """A request to abort a draw, with its reason: made by the tender's agency or the centre, it takes
    effect only when a supervisor who is not the draw's witness approves it (then the seed is revealed at
    once), or is refused. `stage` is the draw's status when it was asked, so an abort asked after the names
    were known shows in the statistics."""

    __tablename__ = "draw_abort_requests"
    __table_args__ = (
        Index("ix_draw_abort_requests_draw", "draw_id", "status"),
        Index("ix_draw_abort_requests_requested_at", "requested_at"),
    )

    draw_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("draws.id"))
    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    requester_organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    requester_role: Mapped[str] = mapped_column(String(20))
    requested_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))  # pending | approved | refused
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)


class Invitation(IdMixin, Base):
    """One invitation the draw made, in order: the initial seats, then a replacement per decline, timeout
    or late-found conflict. `position` is the order the draw function reproduces."""

    __tablename__ = "draw_invitations"
    __table_args__ = (
        UniqueConstraint("draw_id", "position", name="uq_draw_invitations_draw_id_position"),
        UniqueConstraint("draw_id", "expert_id", name="uq_draw_invitations_draw_id_expert_id"),
        Index("ix_draw_invitations_expert", "expert_id", "status"),
    )

    draw_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("draws.id"))
    position: Mapped[int]
    quota_index: Mapped[int]
    round: Mapped[int]
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id"))
    replaces: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(20))
    invited_at: Mapped[datetime]
    respond_by: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    removed_seq: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(Text)


class Room(IdMixin, Base):
    """The evaluation room (评标室) of a tender: opened at the scheduled time to the confirmed committee,
    closed when the report is signed or the time box runs out (extendable with a reason). One per draw and
    evaluation round: a room whose committee cannot be completed is cancelled with its draw, and a new draw
    gets a new room; a re-evaluation (重新评审) seats the same committee in a room of the next `round`, and
    the closed room of the earlier round keeps its report. Where the documents ask for one room per lot
    (`Tender.evaluation_rooms` "per_lot"), the committee sits in one room per lot (`lot_id`) of the round."""

    __tablename__ = "evaluation_rooms"
    __table_args__ = (
        Index(
            "uq_evaluation_rooms_single_draw_id_round",
            "draw_id",
            "round",
            unique=True,
            sqlite_where=text("lot_id IS NULL"),
            postgresql_where=text("lot_id IS NULL"),
        ),
        UniqueConstraint("draw_id", "round", "lot_id", name="uq_evaluation_rooms_draw_id_round_lot_id"),
    )

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    draw_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("draws.id"))
    round: Mapped[int] = mapped_column(default=1, server_default="1")
    # the lot this room evaluates alone (one room per lot), or None when one room evaluates every lot
    lot_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lots.id"))
    status: Mapped[str] = mapped_column(String(20), index=True)
    phase: Mapped[str] = mapped_column(String(20))
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    extensions: Mapped[list[Any]]
    chair_member_id: Mapped[uuid.UUID | None]
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(40))
    report: Mapped[dict[str, Any] | None]
    report_hash: Mapped[str | None] = mapped_column(String(64))
    report_html_key: Mapped[str | None] = mapped_column(String(300))
    report_pdf_key: Mapped[str | None] = mapped_column(String(300))
    report_at: Mapped[datetime | None]
    event_seq: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class Member(IdMixin, Base):
    """A seat of the committee in a room: a drawn expert or the tenderer's representative. Enters after
    signing the no-conflict declaration; signs the report or writes a dissent (W-11)."""

    __tablename__ = "room_members"
    __table_args__ = (
        UniqueConstraint("room_id", "seat", name="uq_room_members_room_id_seat"),
        UniqueConstraint("room_id", "user_id", name="uq_room_members_room_id_user_id"),
    )

    room_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evaluation_rooms.id"))
    seat: Mapped[int]
    kind: Mapped[str] = mapped_column(String(20))
    expert_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("experts.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100))
    specialty: Mapped[str] = mapped_column(String(20))
    declared_at: Mapped[datetime | None]
    declaration: Mapped[str | None] = mapped_column(Text)
    chair_vote: Mapped[uuid.UUID | None]
    outcome: Mapped[str | None] = mapped_column(String(20))
    signed_at: Mapped[datetime | None]
    signature: Mapped[str | None] = mapped_column(String(200))
    key_fingerprint: Mapped[str | None] = mapped_column(String(64))
    dissent: Mapped[str | None] = mapped_column(Text)


class QualificationReview(IdMixin, Base):
    """One member's qualification and compliance review of one lot: pass/fail per criterion per bid."""

    __tablename__ = "qualification_reviews"
    __table_args__ = (UniqueConstraint("member_id", "lot_id"),)

    room_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evaluation_rooms.id"), index=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("room_members.id"))
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lots.id"))
    votes: Mapped[list[Any]]
    submitted_at: Mapped[datetime]


class Clarification(IdMixin, Base):
    """A clarification the committee asks of a bidder (澄清), answered by the bidder before its deadline."""

    __tablename__ = "evaluation_clarifications"

    room_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evaluation_rooms.id"), index=True)
    bid_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bids.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    question: Mapped[str] = mapped_column(Text)
    asked_at: Mapped[datetime]
    respond_by: Mapped[datetime]
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]


class ScoreSheet(IdMixin, Base):
    """One member's scores of one lot (bid → subjective criterion → centi-points). Sealed from the other
    members until its own member submits; changed only after the chair reopens it."""

    __tablename__ = "score_sheets"
    __table_args__ = (UniqueConstraint("member_id", "lot_id"),)

    room_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evaluation_rooms.id"), index=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("room_members.id"))
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lots.id"))
    scores: Mapped[dict[str, Any]]
    justifications: Mapped[dict[str, Any]]
    submitted_at: Mapped[datetime | None]
    submissions: Mapped[int] = mapped_column(default=0)
    reopen_reason: Mapped[str | None] = mapped_column(Text)


class RoomEvent(IdMixin, Base):
    """One line of the room's live progress, numbered per room for the event stream. Carries no scores and
    no names a bidder could see."""

    __tablename__ = "room_events"
    __table_args__ = (UniqueConstraint("room_id", "seq"),)

    room_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evaluation_rooms.id"))
    seq: Mapped[int]
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]
