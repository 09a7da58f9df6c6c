"""Inputs and outputs of the trading API (msgspec Structs; unknown fields are refused)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

Fen = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
PositiveFen = Annotated[int, msgspec.Meta(ge=1, le=10**15)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
Title = Annotated[str, msgspec.Meta(min_length=2, max_length=300)]
CreditCode = Annotated[str, msgspec.Meta(min_length=18, max_length=18)]
# The procurement methods and the works tender's open tendering (rules.profiles.PROFILES); a procurement that
# failed for too few suppliers changes to any but a framework agreement, which is no fallback (G-13).
SwitchableMethod = Literal["open", "invited", "rfq", "single_source", "negotiation", "consultation"]
Method = Literal["open", "invited", "rfq", "single_source", "negotiation", "consultation", "framework"]
ObjectKey = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Filename = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^/\\\x00]+$")]
Hex64 = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[0-9a-f]{64}$")]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for request bodies: an unknown field is an error."""


class LotIn(Strict):
    """A lot (标段) of a new tender: its title, estimated price and bid deposit, in fen, and optionally its
    ceiling price (最高投标限价 / 最高限价), which in procurement may not exceed the budget: a bid declaring
    more than the ceiling, or in procurement than the budget, is rejected at the opening."""

    title: Title
    estimated_price_fen: PositiveFen
    deposit_fen: Fen
    ceiling_price_fen: PositiveFen | None = None


class TenderCreate(Strict):
    """A new tender, saved as a draft: a works tender or a government procurement by open tendering
    (`sector`, `method`); in procurement a lot's `estimated_price_fen` is its budget (预算金额)."""

    title: Title
    tenderer_name: Annotated[str, msgspec.Meta(min_length=2, max_length=200)]
    region_code: Annotated[str, msgspec.Meta(max_length=6, pattern=r"^[0-9]{6}$")]
    qualification: Text
    evaluation_method: Literal["comprehensive", "reasonable_lowest_price", "lowest_evaluated_price"]
    documents_from: datetime
    bid_deadline: datetime
    lots: Annotated[list[LotIn], msgspec.Meta(min_length=1, max_length=50)]
    # The tenderer's unified social credit code: the committee draw avoids its staff (G-08). Needed to
    # publish.
    tenderer_credit_code: CreditCode | None = None
    sector: Literal["works", "procurement"] = "works"
    method: Method = "open"
    publicity_days: Annotated[int, msgspec.Meta(ge=1, le=30)] = 3
    opening_window_minutes: Annotated[int, msgspec.Meta(ge=5, le=24 * 60)] = 30
    # 投标有效期 in days from the deadline; left out, the profile's default (checked against its minimum).
    bid_validity_days: Annotated[int, msgspec.Meta(ge=1, le=365)] | None = None
    # Opening custodians (E-03): organisations whose keys receive a Shamir share of every envelope's file
    # key; at least two are needed by publication, when the roster and their keys are frozen. t counts the
    # custodians other than the platform (the centre): its share never stands in for one of theirs.
    custodians: Annotated[list[uuid.UUID], msgspec.Meta(max_length=10)] = msgspec.field(default_factory=list)
    custody_threshold: Annotated[int, msgspec.Meta(ge=2, le=10)] = 2
    opening_policy: Literal["custodians", "revoke"] = "custodians"
    # 分包: the most lots one supplier may win when the documents set a limit (None: no limit).
    max_lots_per_supplier: Annotated[int, msgspec.Meta(ge=1, le=50)] | None = None
    # The suppliers invited (invited tendering, quotation): only they may obtain the documents and bid.
    invited: Annotated[list[uuid.UUID], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    # 双信封: 2 when each bid is a technical envelope (opened at the deadline) and a commercial one (opened
    # only for the bids that pass the technical evaluation); where the procedure's profile allows it.
    envelopes: Annotated[int, msgspec.Meta(ge=1, le=2)] = 1
    # 分包评标: "per_lot" when the documents ask for one evaluation room per lot (two lots or more).
    evaluation_rooms: Literal["single", "per_lot"] = "single"
    # The project the centre accepted (项目受理) that the tender carries out: needed to publish.
    project_id: uuid.UUID | None = None


class TenderUpdate(Strict):
    """Changes to a draft; fields left out stay as they are."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    tenderer_name: Annotated[str, msgspec.Meta(min_length=2, max_length=200)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    tenderer_credit_code: CreditCode | msgspec.UnsetType | None = msgspec.UNSET
    qualification: Text | msgspec.UnsetType = msgspec.UNSET
    evaluation_method: (
        Literal["comprehensive", "reasonable_lowest_price", "lowest_evaluated_price"] | msgspec.UnsetType
    ) = msgspec.UNSET
    documents_from: datetime | msgspec.UnsetType = msgspec.UNSET
    bid_deadline: datetime | msgspec.UnsetType = msgspec.UNSET
    lots: Annotated[list[LotIn], msgspec.Meta(min_length=1, max_length=50)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    publicity_days: Annotated[int, msgspec.Meta(ge=1, le=30)] | msgspec.UnsetType = msgspec.UNSET
    opening_window_minutes: Annotated[int, msgspec.Meta(ge=5, le=24 * 60)] | msgspec.UnsetType = msgspec.UNSET
    bid_validity_days: Annotated[int, msgspec.Meta(ge=1, le=365)] | msgspec.UnsetType = msgspec.UNSET
    custodians: Annotated[list[uuid.UUID], msgspec.Meta(max_length=10)] | msgspec.UnsetType = msgspec.UNSET
    custody_threshold: Annotated[int, msgspec.Meta(ge=2, le=10)] | msgspec.UnsetType = msgspec.UNSET
    opening_policy: Literal["custodians", "revoke"] | msgspec.UnsetType = msgspec.UNSET
    max_lots_per_supplier: Annotated[int, msgspec.Meta(ge=1, le=50)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    invited: Annotated[list[uuid.UUID], msgspec.Meta(max_length=100)] | msgspec.UnsetType = msgspec.UNSET
    evaluation_rooms: Literal["single", "per_lot"] | msgspec.UnsetType = msgspec.UNSET


class CustodianRead(msgspec.Struct):
    """A custodian on a published tender's roster: seal a share of the file key to `recipient`. The
    platform's share (`platform`) never counts toward t. `public_key` is the raw 32-byte X25519 key in
    base64, `recipient` the same key as an age recipient ("age1…", Bech32), `fingerprint` the hex SHA-256
    of the raw key."""

    position: int
    organisation_id: uuid.UUID
    public_key: str
    recipient: str
    platform: bool
    fingerprint: str


class LotRead(msgspec.Struct):
    """A lot of a tender: number (from 1), title, estimated price and bid deposit in fen, its status, why it
    ended when it failed or was terminated, and its ceiling price (最高限价) when it has one."""

    id: uuid.UUID
    number: int
    title: str
    estimated_price_fen: int
    deposit_fen: int
    status: str
    outcome_reason: str | None
    ceiling_price_fen: int | None = None  # 最高限价, when the documents set one


class MethodApprovalRead(msgspec.Struct):
    """The approving body's consent recorded on a procurement re-run by another method (G-13): the method
    it failed under, who approved, the approval's number and day, the rule."""

    from_method: str
    body: str
    number: str
    approved_on: date
    rule: str


class TenderRead(msgspec.Struct):
    """A works tender as the caller may see it. Instants are ISO 8601 in UTC; money is in fen.
    `allowed_actions` lists the operations the caller may ask of it now; `version` is the value to send
    back in If-Match (also the ETag). The custody fields say how envelopes are sealed: seal one share of the
    file key to each of `custodians` (their X25519 `recipient`), with `shamir_threshold` shares needed."""

    id: uuid.UUID
    code: str
    title: str
    sector: str
    method: str
    status: str
    agency_organisation_id: uuid.UUID
    tenderer_name: str
    tenderer_credit_code: str | None
    region_code: str
    qualification: str
    evaluation_method: str
    documents_from: datetime
    bid_deadline: datetime
    opening_window_minutes: int
    publicity_days: int
    lots: list[LotRead]
    created_at: datetime
    published_at: datetime | None
    opened_at: datetime | None
    publicity_ends: datetime | None
    awarded_at: datetime | None
    paused_reason: str | None
    # set while the supervising authority has suspended the trade over a complaint
    suspended_reason: str | None
    outcome_reason: str | None
    parent_id: uuid.UUID | None
    next_check: datetime | None
    allowed_actions: list[str]
    version: int
    custody_threshold: int
    opening_policy: str
    custodian_organisations: list[uuid.UUID]
    max_lots_per_supplier: int | None
    # the invited suppliers, for those who manage or oversee the trade; None for everyone else (W-20)
    invited_organisations: list[uuid.UUID] | None
    # the approving body's consent when the method was changed after too few suppliers (G-13)
    method_approval: MethodApprovalRead | None
    custodians: list[CustodianRead]
    custody_until: datetime | None
    bid_validity_days: int = 90
    # How many sealed envelopes make a bid: 1, or 2 (a technical and a commercial one, 双信封).
    envelopes: int = 1
    # "per_lot" when the committee evaluates each lot in a room of its own, else "single".
    evaluation_rooms: str = "single"
    # The Shamir threshold written in every share stanza (fixed at publication): t, plus one when the
    # platform holds a share. Seal with this one.
    shamir_threshold: int | None = None
    project_id: uuid.UUID | None = None
    # The centre's review of the notice (公告审核): the last submission's, to the tender's agency and overseers.
    review: NoticeReviewRead | None = None
    rehearsal: bool | msgspec.UnsetType = msgspec.UNSET  # true in a rehearsal deployment (演练), else absent


class MethodApproval(Strict):
    """The approving body's consent to change the procurement method (变更采购方式审批, G-13): who approved,
    the approval's number and day."""

    body: Annotated[str, msgspec.Meta(min_length=2, max_length=200)]
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    approved_on: date


class MethodSwitch(Strict):
    """Re-run a procurement that failed for too few suppliers by another method, with the approving body's
    recorded consent (G-13); the suppliers to invite where the new method admits only the invited."""

    method: SwitchableMethod
    approval: MethodApproval
    invited: Annotated[list[uuid.UUID], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)


class CancelRequest(Strict):
    """The agency terminates the tender (终止招标), with the reason published in the notice."""

    reason: Annotated[str, msgspec.Meta(min_length=2, max_length=500)]


class UploadRequest(Strict):
    """A file to upload: its name and its exact size in bytes (the upload is capped at it)."""

    filename: Filename
    size: Annotated[int, msgspec.Meta(ge=1, le=2**34)]


class PartUrl(msgspec.Struct):
    """Where to PUT one part of a multipart upload."""

    number: int
    url: str
    max_bytes: int


class ReceivedPart(msgspec.Struct):
    """A part of a multipart upload the store has received: its number, size in bytes and ETag."""

    number: int
    size: int
    etag: str


class UploadGrant(msgspec.Struct):
    """Where to send the file: `method` PUT to the server's own URL (embedded), or POST to the object
    store as an HTML form (S3): the `fields`, then the file as the field `file`. The store refuses more
    than `max_bytes`. A large file goes in parts instead (`upload_id`, `part_size`, `parts`: PUT each part
    of exactly its `max_bytes`), each retried on its own and resumable."""

    object_key: str
    upload_url: str
    method: str
    expires_at: datetime
    max_bytes: int
    upload_id: str | None = None
    part_size: int | None = None
    parts: list[PartUrl] | None = None
    fields: dict[str, str] | None = None


class UploadProgress(msgspec.Struct):
    """A multipart upload's parts received so far, with fresh URLs for every part (to resume)."""

    object_key: str
    upload_id: str
    part_size: int
    received: list[ReceivedPart]
    parts: list[PartUrl]
    expires_at: datetime


class DocumentRegister(Strict):
    """An uploaded file registered as one of the tender's documents, by its kind."""

    kind: Literal["tender_documents", "amendment", "drawings", "bill_of_quantities"]
    filename: Filename
    object_key: ObjectKey


class DocumentRead(msgspec.Struct):
    """A tender document: its kind, file name, SHA-256 (hex), size in bytes and upload instant; the
    download URL (presigned, short-lived) when the caller may fetch it."""

    id: uuid.UUID
    kind: str
    filename: str
    sha256: str
    size: int
    uploaded_at: datetime
    download_url: str | None = None


class Attachment(Strict):
    """An uploaded file (see `request_document_upload`) that a clarification carries."""

    filename: Filename
    object_key: ObjectKey


class ClarificationCreate(Strict):
    """A clarification or amendment of the documents (澄清或修改); `affects_bids` moves the bid
    deadline when fewer than the legal days remain (W-02; in procurement the method's own period). It may
    answer an objection and carry amended documents."""

    text: Text
    affects_bids: bool
    objection_id: uuid.UUID | None = None
    amended_documents: Attachment | None = None


class ClarificationRead(msgspec.Struct):
    """A clarification issued: its number, text, whether it affects bids, when it was issued, and the
    bid deadline before and after it (`deadline_moved` when it moved)."""

    id: uuid.UUID
    number: int
    text: str
    affects_bids: bool
    issued_at: datetime
    deadline_before: datetime
    deadline_after: datetime
    deadline_moved: bool


class ObjectionCreate(Strict):
    """An objection (异议) a bidder raises to the documents, the opening or the candidates; in procurement a
    challenge (质疑, G-12) to the documents, the opening or the result, or an objection to a single source
    while it is announced (G-14)."""

    subject: Literal["documents", "opening", "candidates", "result", "single_source"]
    text: Text


class ObjectionAnswer(Strict):
    """The agency's answer to an objection. Upholding a procurement challenge to the result whose error the
    committee can correct, it may order a re-evaluation (`outcome` "reevaluate", 重新评审, 87号令 64): the
    awards not yet contracted are annulled and the same committee scores again in a new round."""

    answer: Text
    outcome: Literal["none", "reevaluate"] = "none"


class ObjectionRead(msgspec.Struct):
    """An objection and its answer: the objector's organisation (null while the tender's bids are
    sealed, W-20), the subject, the text, when it was filed, the answer's due instant, the answer."""

    id: uuid.UUID
    tender_id: uuid.UUID
    organisation_id: uuid.UUID | None  # the objector; None while the tender's bids are sealed (W-20)
    subject: str
    text: str
    filed_at: datetime
    answer_due: datetime
    answer: str | None
    answered_at: datetime | None
    outcome: str | None = None  # "reevaluate" when the answer ordered a re-evaluation


class AwardLot(Strict):
    """The winning bid the agency names for one lot."""

    lot_id: uuid.UUID
    bid_id: uuid.UUID


class AwardCreate(Strict):
    """The award decision (定标): one winning bid per lot."""

    lots: Annotated[list[AwardLot], msgspec.Meta(min_length=1, max_length=50)]


class AwardRead(msgspec.Struct):
    """An award: the lot, the winning bid and organisation, the price in fen, when it was made, the day the
    contract is due (W-13), whether the winner declined it (W-16), and the fen of the winner's deposit
    already refunded to it as an unsuccessful supplier (G-04-loser) before it became the winner (null when
    the deposit is held for the contract)."""

    id: uuid.UUID
    lot_id: uuid.UUID
    bid_id: uuid.UUID
    organisation_id: uuid.UUID
    price_fen: int
    awarded_at: datetime
    contract_due: date
    status: str = "active"
    declined_at: datetime | None = None
    decline_reason: str | None = None
    deposit_refunded_fen: int | None = None


class AwardDecline(Strict):
    """The winner refused to sign or to give the performance security (W-16)."""

    reason: Annotated[str, msgspec.Meta(min_length=10, max_length=5000)]


class ComplaintCreate(Strict):
    """A complaint to the supervising authority (投诉, W-17)."""

    subject: Literal["documents", "opening", "evaluation", "candidates", "award", "other"]
    known_on: date
    text: Text


class ComplaintDecision(Strict):
    """The supervising authority's decision on a complaint, with its written reasons; an upheld complaint may
    annul the awards not yet contracted, each lot going to its next candidate (`outcome` "reaward"), order
    the trade re-run ("rerun": it fails and may be re-run), order a re-evaluation before any contract is
    signed ("reevaluate", 重新评审: the committee scores again in a new round; `committee` "same", the
    original members, 87号令 64, or "fresh", a new draw), or change nothing more ("none")."""

    decision: Literal["upheld", "dismissed"]
    text: Text
    outcome: Literal["none", "reaward", "rerun", "reevaluate"] = "none"
    committee: Literal["same", "fresh"] = "same"


class Suspension(Strict):
    """The supervising authority suspends the trade while it decides a complaint (暂停采购活动), with the
    reason; the decision lifts it."""

    reason: Text


class ComplaintRead(msgspec.Struct):
    """A complaint (投诉, W-17): the organisation, subject, the day it learned of the matter, the text,
    when it was filed, the day the decision is due, and the decision."""

    id: uuid.UUID
    tender_id: uuid.UUID
    organisation_id: uuid.UUID
    subject: str
    known_on: date
    text: str
    filed_at: datetime
    decision_due: date
    decision: str | None
    decision_text: str | None
    decided_at: datetime | None
    outcome: str | None


class ContractCreate(Strict):
    """The signed contract: the award, the uploaded file, the price and the performance security in fen,
    the day it was signed, and why it was late if it was (W-13)."""

    award_id: uuid.UUID
    object_key: ObjectKey
    filename: Filename
    price_fen: PositiveFen
    performance_security_fen: Fen
    signed_on: date
    late_reason: Annotated[str, msgspec.Meta(min_length=10, max_length=5000)] | None = None


class ContractRead(msgspec.Struct):
    """A contract on record: the award, the price and performance security in fen, signing day, lateness,
    and the acceptance of its performance (履约验收) once recorded: passed or failed, on which day."""

    id: uuid.UUID
    award_id: uuid.UUID
    price_fen: int
    performance_security_fen: int
    signed_on: date
    late_reason: str | None
    recorded_at: datetime
    acceptance_result: str | None = None
    accepted_on: date | None = None


class ContractAcceptance(Strict):
    """The purchaser's acceptance of a contract's performance (履约验收): passed or failed, the day of the
    acceptance and its report."""

    result: Literal["passed", "failed"]
    accepted_on: date
    report: Text


class NoticeRead(msgspec.Struct):
    """A published notice (公告) of the public board: its kind, the tender, sector and region, title, when
    it was published, and the notices it supersedes or is superseded by."""

    id: uuid.UUID
    tender_id: uuid.UUID
    tender_code: str
    kind: str
    sector: str
    region_code: str
    title: str
    body: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description=(
                "The notice's content, by kind: the fields of the tender notice, of a clarification, the "
                "opening record, the candidates, the award, a termination or failure (with its rule)."
            )
        ),
    ]
    published_at: datetime
    supersedes_id: uuid.UUID | None
    superseded_by_id: uuid.UUID | None


class NotificationRead(msgspec.Struct):
    """A notification to the caller's organisation, and when someone read it (null if unread)."""

    id: uuid.UUID
    tender_id: uuid.UUID | None
    kind: str
    message: str
    created_at: datetime
    read_at: datetime | None


class ScheduleIn(Strict):
    """A year's official holiday schedule (国务院办公厅 notice), loaded by the centre."""

    year: Annotated[int, msgspec.Meta(ge=2000, le=2100)]
    holidays: Annotated[list[date], msgspec.Meta(max_length=366)]
    makeup_workdays: Annotated[list[date], msgspec.Meta(max_length=366)] = []


class TransitionFailureRead(msgspec.Struct):
    """Something the chronograph fails to move, retried from `retry_at`: `stage` says what: the tender's
    own due transition (`tender`; `subject_id` is the tender), an evaluation room due to open or close
    (`room`; the room) or a draw whose unanswered invitations time out (`invitations`; the draw).
    `status` is the tender's, the room's or the draw's."""

    tender_id: uuid.UUID
    tender_code: str
    status: str
    attempts: int
    error: str
    first_failed_at: datetime
    last_failed_at: datetime
    retry_at: datetime
    stage: Literal["tender", "room", "invitations", "archive"]
    subject_id: uuid.UUID


class DeadlineRead(msgspec.Struct):
    """An open step of a trade with its legal due day and supervision light (S-01): the trade, the step
    (review, decision, contract, answer, complaint_decision), what is due and by whom (centre, agency or
    supervisor), the
    due day (Asia/Shanghai; in time until 24:00, P-03), the rule that sets it (null when the law of the
    step has no id in RULES.md), and green, yellow or red."""

    tender_id: uuid.UUID
    tender_code: str
    title: str
    sector: str
    method: str
    status: str
    step: str
    subject_id: uuid.UUID | None
    what: str
    by: str
    due: date
    rule: str | None
    light: Literal["green", "yellow", "red"]


class NegotiationRound(Strict):
    """The minutes of one negotiation round with one supplier (分别谈判)."""

    organisation_id: uuid.UUID
    round: Annotated[int, msgspec.Meta(ge=1, le=20)]
    minutes: Text


class NegotiationAmendment(Strict):
    """An amendment of the requirements during negotiation, sent to every remaining supplier."""

    text: Text


class NegotiationExclusion(Strict):
    """A supplier whose response leaves the negotiation, with the reason."""

    organisation_id: uuid.UUID
    reason: Text


class NegotiationNoteRead(msgspec.Struct):
    """A negotiation record: a round (with one supplier), an amendment (to all) or an exclusion, with the
    supplier it concerns (null for an amendment), the round's number, the text and when it was recorded."""

    id: uuid.UUID
    tender_id: uuid.UUID
    kind: str
    organisation_id: uuid.UUID | None
    round: int | None
    text: str
    recorded_at: datetime


class FinalQuoteCall(Strict):
    """The end of the rounds: the remaining suppliers' sealed final quotes are due by `deadline`."""

    deadline: datetime


class FinalQuoteSeal(Strict):
    """A sealed final quote on a lot: the lowercase hex SHA-256 of the final quote's message (see
    `ggzy bid final-quote`), computed where the price stays until the deadline."""

    lot_id: uuid.UUID
    commitment: Annotated[str, msgspec.Meta(min_length=64, max_length=64)]


class FinalQuoteOpen(Strict):
    """A sealed final quote opened after the deadline: the price and the 64-hex-digit nonce it was sealed
    with."""

    lot_id: uuid.UUID
    price_fen: Annotated[int, msgspec.Meta(ge=1, le=10**15)]
    nonce: Annotated[str, msgspec.Meta(min_length=64, max_length=64, pattern="^[0-9a-f]{64}$")]


class FinalQuoteRead(msgspec.Struct):
    """A final quote: its lot and supplier, the commitment and when it was sealed, and — for its supplier
    once opened, for everyone entitled once all are opened together — the price."""

    id: uuid.UUID
    lot_id: uuid.UUID
    organisation_id: uuid.UUID
    commitment: str
    committed_at: datetime
    price_fen: int | None
    revealed_at: datetime | None


SectorName = Literal["works", "procurement"]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ProjectCreate(Strict):
    """A project registered with the centre before its tenders (项目受理): what it is, where its money comes
    from (`funding_source`, 资金来源), the approving body's document number (`approval_number`, 立项批复文号);
    in government procurement the procurement plan it carries out (`procurement_plan_number`, required
    there); optionally its budget or estimate in fen and the object keys of its uploaded approval documents."""

    name: Title
    sector: SectorName
    funding_source: Annotated[str, msgspec.Meta(min_length=2, max_length=300)]
    approval_number: Reference
    procurement_plan_number: Reference | None = None
    budget_fen: PositiveFen | None = None
    documents: Annotated[list[ObjectKey], msgspec.Meta(max_length=20)] = msgspec.field(default_factory=list)


class ProjectDecision(Strict):
    """The centre's answer to a registered project: accepted, or refused with the reasons."""

    decision: Literal["accepted", "refused"]
    reasons: Text | None = None


class ProjectRead(msgspec.Struct):
    """A project as its agency and those who oversee the centre's work see it; `status` is pending, accepted
    or refused (then `reasons` says why)."""

    id: uuid.UUID
    agency_organisation_id: uuid.UUID
    name: str
    sector: str
    funding_source: str
    approval_number: str
    procurement_plan_number: str | None
    budget_fen: int | None
    documents: list[str]
    status: str
    reasons: str | None
    created_at: datetime
    decided_at: datetime | None


class ReviewDecision(Strict):
    """The centre's answer to a submitted tender notice: approved (it is published at once), or refused
    with the reasons (the tender stays a draft to fix and submit again)."""

    decision: Literal["approved", "refused"]
    reasons: Text | None = None


class NoticeReviewRead(msgspec.Struct):
    """One submission of a tender notice for the centre's review (公告审核): pending, approved or refused,
    due by `due_on` (Asia/Shanghai)."""

    id: uuid.UUID
    tender_id: uuid.UUID
    status: str
    submitted_at: datetime
    due_on: date
    reasons: str | None
    decided_at: datetime | None


class VenueCreate(Strict):
    """A room of the centre: the online opening hall (`opening`) or an evaluation room (`evaluation`), and how
    many sessions it holds at once."""

    name: Annotated[str, msgspec.Meta(min_length=2, max_length=100)]
    kind: Literal["opening", "evaluation"]
    capacity: Annotated[int, msgspec.Meta(ge=1, le=1000)]


class VenueUpdate(Strict):
    """A room's new capacity (concurrent sessions)."""

    capacity: Annotated[int, msgspec.Meta(ge=1, le=1000)]


class VenueRead(msgspec.Struct):
    """A room of the centre and its capacity."""

    id: uuid.UUID
    name: str
    kind: str
    capacity: int


class BookingCreate(Strict):
    """An evaluation session booked in one of the centre's evaluation rooms (评标室预约), after the bid
    deadline; `venue_id` names the room, or any room with space is taken."""

    starts_at: datetime
    ends_at: datetime
    venue_id: uuid.UUID | None = None


class BookingRead(msgspec.Struct):
    """A tender's time in a room: its opening at the deadline, or an evaluation session."""

    id: uuid.UUID
    venue_id: uuid.UUID
    venue_name: str
    tender_id: uuid.UUID
    tender_code: str
    kind: str
    starts_at: datetime
    ends_at: datetime


class ProjectPage(msgspec.Struct):
    """A page of projects, newest first; `next_cursor` asks for the next page (null on the last)."""

    items: list[ProjectRead]
    next_cursor: str | None
