"""Answers of the evaluation API that the service builds as plain JSON objects, described as TypedDicts.

The handlers return these dicts unchanged; the types only document them (the OpenAPI document is generated
from them). Conventions throughout: ids are UUIDs as text; instants are ISO 8601 text with their offset
(the room's and the invitations' in Asia/Shanghai, +08:00); money is integer fen (1/100 yuan); scores are
integer hundredths of a point ("cp": 100 points = 10000 cp); hashes are lowercase hex.

This module does not use postponed annotations: `NotRequired` must be seen when the class is created, or
every key would count as required.
"""

from typing import Any, NotRequired, TypedDict

from bidding.responses import OpeningLine

# ---------------------------------------------------------------- the scheme


class CriterionJson(TypedDict):
    """One criterion of a comprehensive scheme (评分因素): a "group" sums its `children`, a "subjective"
    leaf is scored by each member from 0 to `max_cp`, the one "price" leaf is computed (G-06). `max_cp` is
    in hundredths of a point."""

    code: str
    title: str
    kind: str
    max_cp: int
    children: list["CriterionJson"]


class QualificationCriterion(TypedDict):
    """One pass/fail qualification criterion (资格审查) of a scheme: its code and its title."""

    code: str
    title: str


class EvaluationScheme(TypedDict):
    """A tender's evaluation scheme (评标办法) as published with the documents; the same object, sent back,
    is what `PUT …/scheme` reads. `method` is the tender's evaluation method, `category` works, goods or
    services (G-05), `criteria` the scoring tree of a comprehensive scheme totalling 10000 cp (empty for
    the price methods), `abnormal_percent` the deviation from the others' mean that makes a score abnormal
    (G-10), `max_candidates` how many candidates the report recommends (at most 3, W-11)."""

    method: str
    category: str
    criteria: list[CriterionJson]
    qualification: list[QualificationCriterion]
    abnormal_percent: int
    max_candidates: int


# ---------------------------------------------------------------- the draw


class AbortTally(TypedDict):
    """Counts for one period or party: draws asked for and abort requests, by their decision."""

    draws: int
    requests: int
    approved: int
    refused: int
    pending: int


class AbortMonth(AbortTally):
    """The counts of one calendar month (Asia/Shanghai), as "YYYY-MM"."""

    month: str


class AbortRequester(AbortTally):
    """The counts of one organisation that asked for aborts; `kind` is its organisation kind (the centre
    among them)."""

    organisation_id: str
    name: str
    kind: str


class AbortAgency(AbortTally):
    """The counts of the draws and abort requests on one agency's tenders."""

    organisation_id: str
    name: str


class AbortTender(AbortTally):
    """The counts of one tender, by its code."""

    tender_id: str
    code: str


class AbortLine(TypedDict):
    """One abort request with its reason and decision; `stage` is the draw's status when it was asked
    ("inviting" or "short" mean after the names were drawn); instants are ISO 8601."""

    id: str
    draw_id: str
    tender_code: str
    requester_role: str
    requester: str
    stage: str
    reason: str
    status: str
    requested_at: str
    decided_at: str | None
    decision_note: str | None


class AbortStatistics(TypedDict):
    """Draw aborts for supervisors and auditors over the period asked (`since`/`until`, Asia/Shanghai days
    as YYYY-MM-DD, both included; null when open): the totals, how many approved aborts came after the names
    were drawn, the counts by month, requester, agency and tender (most requests first), and every request."""

    since: str | None
    until: str | None
    totals: AbortTally
    approved_after_names_were_drawn: int
    by_month: list[AbortMonth]
    by_requester: list[AbortRequester]
    by_agency: list[AbortAgency]
    by_tender: list[AbortTender]
    requests: list[AbortLine]


class DrawQuota(TypedDict):
    """A quota of the committee: the specialty code prefix and how many seats it fills."""

    specialty: str
    seats: int


class DrawSeat(TypedDict):
    """One invitation the draw made, in order: the quota it fills (index into `quotas`), the expert's pool
    id, the round (0 for the initial draw, k for the k-th removal's replacement) and the expert it
    replaces."""

    quota_index: int
    expert_id: str
    round: int
    replaces: str | None


class DrawContext(TypedDict):
    """The avoidance context fixed at the request: the evaluation day (YYYY-MM-DD), the bidders' and the
    parties' (agency, tenderer) credit codes sorted, the three thresholds, and for a fresh committee drawn
    for a re-evaluation the earlier committee's expert ids, sorted (excluded from the draw)."""

    bidders: list[str]
    former_employer_years: int
    max_services_for_tenderer: int
    min_credit_score: int
    on: str
    parties: list[str]
    earlier_committee: NotRequired[list[str]]


class DrawCandidate(TypedDict):
    """An expert of the pool before avoidance, as its canonical line carries it (`evaluation.draw`
    `candidate_to_json`): `former_employers` as [credit code, end day or null] pairs, `unavailable` as
    [first day, last day] pairs, days as YYYY-MM-DD, every list sorted without repeats."""

    credit_score: int
    employer: str
    expert_id: str
    former_employers: list[list[str | None]]
    has_account: bool
    relatives_at: list[str]
    services_for_tenderer: int
    specialties: list[str]
    status: str
    term_end: str | None
    term_start: str | None
    unavailable: list[list[str]]


class DrawExclusion(TypedDict):
    """An expert kept out of the draw and the avoidance reason codes, in `evaluation.draw.REASONS` order."""

    expert_id: str
    reasons: list[str]


class DrawAbortRecord(TypedDict):
    """The abort of a draw as its record carries it: the reason, the role that asked ("agency" or
    "centre"), the draw's status when it asked, the request's and the approval's instants (ISO 8601)."""

    reason: str
    requested_by: str
    stage: str
    requested_at: str
    approved_at: str


class DrawRecordJson(TypedDict):
    """Everything needed to replay a draw offline (`ggzy verify draw FILE`; the format and every check are
    defined in `evaluation/draw.py`). `version` is "ggzy-draw-v2", or "ggzy-draw-v1" for draws made
    before witnesses committed: a v1 record has only `commitment`, `seed_hex`, `witness` (any text),
    `pool` (the eligible pool's canonical bytes in standard base64), `quotas`, `employer_limit`, `removed`
    and `invitations`. A v2 record has the pool before avoidance (`candidates`), the `context`, the
    `exclusions`, the witness's commitment, witness and nonce, the platform's commitment, its `signature`
    (standard base64 of an Ed25519 signature over the UTF-8 bytes "ggzy-draw-commitment-v2" LF draw_id LF
    witness_commitment LF commitment LF) and the `key_id` of the log key that signed it, and the revealed
    seed; digests, seed, witness and nonce are lowercase hex. What exists depends on how far the draw got
    (an early abort has no seed or invitations)."""

    version: str
    commitment: str | None
    seed_hex: str | None
    witness: str | None
    quotas: list[DrawQuota]
    employer_limit: int
    removed: list[str]
    invitations: list[DrawSeat]
    pool: NotRequired[str]
    draw_id: NotRequired[str]
    status: NotRequired[str]
    context: NotRequired[DrawContext]
    candidates: NotRequired[list[DrawCandidate]]
    exclusions: NotRequired[list[DrawExclusion]]
    witness_commitment: NotRequired[str | None]
    signature: NotRequired[str | None]
    key_id: NotRequired[str | None]
    nonce: NotRequired[str | None]
    abort: NotRequired[DrawAbortRecord | None]


class DrawVerification(TypedDict):
    """The replay of a draw: `ok` when avoidance, the witness, the signed commitment and every invitation
    check out, else one sentence per failed check in `problems`; `invitations` counts those replayed."""

    draw_id: str
    status: str
    ok: bool
    problems: list[str]
    invitations: int


class DrawInvitation(TypedDict):
    """A seat of a draw as `DrawRead.invitations` lists it. Who was drawn (`expert_id`, `expert_name`,
    `replaces`, `reason`) only for the centre, supervisors and auditors, or once the committee is
    published; for the agency before that these keys are absent. `respond_by` is ISO 8601."""

    id: str
    position: int
    quota_index: int
    round: int
    status: str
    respond_by: str
    expert_id: NotRequired[str]
    expert_name: NotRequired[str | None]
    replaces: NotRequired[str | None]
    reason: NotRequired[str | None]


# ---------------------------------------------------------------- invitations


class InvitationTender(TypedDict):
    """The tender an invitation is for: id, code and title."""

    id: str
    code: str
    title: str


class MyInvitation(TypedDict):
    """An invitation to an expert: its status, the instant to answer by (ISO 8601), the tender, when the
    room opens (ISO 8601, +08:00) and for how many hours it sits."""

    id: str
    status: str
    respond_by: str
    tender: InvitationTender
    evaluation_at: str
    room_hours: int


class InvitationAnswered(TypedDict):
    """The invitation after the answer: "accepted" or "declined" (a decline is replaced at once)."""

    id: str
    status: str


# ---------------------------------------------------------------- the room


class RoomSummary(TypedDict):
    """A room in the caller's list: its tender, evaluation round (1, or 2… after a re-evaluation, 重新评审),
    status, phase and time box (ISO 8601, +08:00); `lot_id` is the lot a lot's own room evaluates (one room
    per lot, 分包评标), null for a room of every lot."""

    id: str
    tender_id: str
    round: int
    lot_id: str | None
    status: str
    phase: str
    opens_at: str
    closes_at: str


class RoomTender(TypedDict):
    """The tender a room evaluates: id, code, title and the tenderer's name."""

    id: str
    code: str
    title: str
    tenderer: str


class RoomMember(TypedDict):
    """A seat of the committee: the member's name, "expert" or "representative", the specialty drawn for,
    whether they declared, whether they chair, and their outcome (null, "recused", "signed", "dissent",
    "deemed_agreed")."""

    seat: int
    name: str
    kind: str
    specialty: str
    declared: bool
    chair: bool
    outcome: str | None


class BidRejectionLine(TypedDict):
    """A rejection the platform established before the room (W-19: no deposit at the deadline): the rule,
    the reason and detail it gives, and when (ISO 8601); not for the committee to review."""

    rule: str
    reason: str | None
    detail: str | None
    at: str | None


class RoomBid(TypedDict):
    """An opened bid as the room reads it: the bidder, the declared price in fen, the duration in days, the
    envelope's SHA-256 (hex), and the platform's rejection if any."""

    bid_id: str
    bidder: str
    credit_code: str
    price_fen: int | None
    duration_days: int | None
    envelope_sha256: str
    rejected: BidRejectionLine | None


class RoomLot(TypedDict):
    """A lot of the tender with its opened bids."""

    id: str
    number: int
    title: str
    status: str
    bids: list[RoomBid]


class RoomDocument(TypedDict):
    """A published tender document: its kind, file name and SHA-256 (hex)."""

    id: str
    kind: str
    filename: str
    sha256: str


# One line of the opening record as the room shows it: the same lines the opening hall sends.
OpeningLineJson = OpeningLine


class SignalBrief(TypedDict):
    """A W-18 collusion signal by kind and rule (the details are at `…/collusion-signals`)."""

    kind: str
    rule: str


class QualificationRejection(TypedDict):
    """Why a bid fails qualification: the criterion, the members' reasons and the number of fail votes.
    `members` (how many voted) is in the report only; `by` is present when the platform, not the committee,
    established it ("platform"), and then `rule` names the rule (W-19) and `evidence` is the platform's
    evidence as it recorded it (an open object, as in `BidRejection`)."""

    criterion: str
    reasons: list[str]
    fail_votes: int
    members: NotRequired[int]
    by: NotRequired[str]
    rule: NotRequired[str]
    evidence: NotRequired[dict[str, Any] | None]


class RoomClarification(TypedDict):
    """A clarification the committee asked of a bidder: the question, the deadline, the answer and when it
    came (ISO 8601, +08:00; null until answered)."""

    id: str
    bid_id: str
    question: str
    respond_by: str
    answer: str | None
    answered_at: str | None


class RoomExtension(TypedDict):
    """One extension of a room's time box by the centre: when (ISO 8601), by how many hours, and why."""

    at: str
    hours: int
    reason: str


class RoomView(TypedDict):
    """The evaluation room (评标室). Before the caller's no-conflict declaration only the tender, the time
    box, the declaration text to sign and the bidders' names (to check for conflicts); after it, and for
    watchers, also the committee, the scheme, the lots with their opened bids, the documents, the opening
    record, the collusion signals, the qualification outcome so far (`qualification`: lot id → bid id →
    rejections) and the clarifications. `my_seat` and `declared` are null for a watcher; instants are ISO 8601 (+08:00);
    `report_hash` is the hex SHA-256 of the report once drawn up; `round` is the evaluation round (1, or
    2… after a re-evaluation, 重新评审); `lot_id` the lot a lot's own room evaluates alone (its lots and
    bidders are that lot's), null for a room of every lot."""

    id: str
    tender: RoomTender
    round: int
    lot_id: str | None
    status: str
    phase: str
    opens_at: str
    closes_at: str
    extensions: list[RoomExtension]
    my_seat: int | None
    declared: bool | None
    declaration: str
    bidders: list[str]
    report_hash: str | None
    members: NotRequired[list[RoomMember]]
    scheme: NotRequired[EvaluationScheme]
    lots: NotRequired[list[RoomLot]]
    documents: NotRequired[list[RoomDocument]]
    opening_record: NotRequired[list[OpeningLineJson]]
    signals: NotRequired[list[SignalBrief]]
    qualification: NotRequired[dict[str, dict[str, list[QualificationRejection]]]]
    clarifications: NotRequired[list[RoomClarification]]


class DeclarationResult(TypedDict):
    """The member's seat after the declaration: declared and entered, or recused (`outcome` "recused",
    the seat is redrawn)."""

    seat: int
    declared: bool
    outcome: str | None


class ChairResult(TypedDict):
    """The chair's seat once a majority elected one, else null."""

    chair_seat: int | None


class ReviewResult(TypedDict):
    """The member's review of a lot on record, and the room's phase after it."""

    id: str
    lot_id: str
    phase: str


class ClarificationAsked(TypedDict):
    """The clarification sent to the bidder and its deadline (ISO 8601, +08:00)."""

    id: str
    respond_by: str


class SheetSubmitted(TypedDict):
    """The member's score sheet on record: how many times it has been submitted (more than once after a
    reopening) and the room's phase after it."""

    id: str
    submissions: int
    phase: str


class SheetView(TypedDict):
    """A member's sheet of one lot as the caller may see it (the others' only after submitting one's own):
    `scores` maps bid id → criterion code → cp, `justifications` bid id → the written reason kept for an
    abnormal score (G-10)."""

    seat: int
    submitted: bool
    submissions: int
    scores: dict[str, dict[str, int]]
    justifications: dict[str, str]


class SheetReopened(TypedDict):
    """The reopened sheet, no longer submitted."""

    id: str
    submitted: bool


class AbnormalScore(TypedDict):
    """A member's abnormal total for a bid (G-10): the total and the other members' mean in cp, the
    justification written for it (null if none) and whether the sheet was revised since."""

    seat: int
    bid_id: str
    total_cp: int
    others_mean_cp: int
    justification: str | None
    revised: bool


class Justified(TypedDict):
    """The sheet and the bid ids whose abnormal scores it now justifies, sorted."""

    id: str
    justified: list[str]


class ReportDrawnUp(TypedDict):
    """The report drawn up for signature. `report` is the evaluation report document (评标报告), version
    "ggzy-evaluation-report-v1" (its content is defined by `evaluation.reporting.build_report` and rendered by
    `evaluation/report.py`): money in fen, points in cp, no floats. `report_hash` is the lowercase hex
    SHA-256 of its canonical bytes (UTF-8 JSON, keys sorted, separators "," and ":" with no spaces,
    non-ASCII characters not escaped): the value each member signs (see `SignIn`)."""

    report_hash: str
    report: dict[str, Any]


class ReportSignature(TypedDict):
    """Where one seat stands on the report: "pending", "signed", "dissent" or "deemed_agreed" (silent
    until the room closed, W-11), when it answered (ISO 8601, +08:00), the hex SHA-256 fingerprint of the
    signing key that verified, and the written dissent."""

    seat: int
    name: str
    outcome: str
    at: str | None
    key_fingerprint: str | None
    dissent: str | None


class ReportView(TypedDict):
    """The `report` (an open document, see `ReportDrawnUp`), its hash, where each seat stands on signing and
    the room's status."""

    report_hash: str | None
    report: dict[str, Any]
    signatures: list[ReportSignature]
    status: str


class SignatureResult(TypedDict):
    """The member's answer on record ("signed" or "dissent") and the room's status after it ("closed"
    once every seat has answered)."""

    seat: int
    outcome: str | None
    room_status: str


class RoomExtended(TypedDict):
    """The room's status and its new closing instant (ISO 8601, +08:00)."""

    status: str
    closes_at: str


class MyClarification(TypedDict):
    """A question the committee asked the caller's organisation about one of its bids (never who asked),
    with the deadline and the answer if given (ISO 8601, +08:00)."""

    id: str
    bid_id: str
    question: str
    respond_by: str
    answer: str | None
    answered_at: str | None


class ClarificationAnswered(TypedDict):
    """The clarification answered, and when (ISO 8601, +08:00)."""

    id: str
    answered_at: str | None


class CollusionSignalRead(TypedDict):
    """A W-18 signal found at the opening (or a deposit paid from one account): its kind (identical files
    or document metadata, one device or network address, one signing key, one paying account), the rule,
    the bidders' credit codes and the bid ids involved (sorted), a sentence for the committee, the shared
    value (at most 300 characters; "field=value" for metadata) and when it was found (ISO 8601)."""

    kind: str
    rule: str
    bidders: list[str]
    bids: list[str]
    evidence: str
    value: str
    found_at: str
