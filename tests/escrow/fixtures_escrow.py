"""Shared set-up for the deposit tests that drive escrow's use cases directly (the state machine, the crash
tests and the concurrency tests): a tender with lots and registered bidders inserted as plain rows, bank
files from the sandbox bank, and the checks every one of them runs after each step — `audit.verify`, and a
scan for half-written state that no crash or race may leave behind."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.models import Organisation, User
from accounts.security import Principal
from escrow import audit, batches, ledger, refunds, sandbox, subaccounts
from escrow.models import (
    BankLine,
    BankStatement,
    Deposit,
    JournalEntry,
    Obligation,
    Posting,
    RefundBatch,
    RefundInstruction,
)
from rules.calendar import WorkingCalendar
from storage.db import create_engine
from storage.objects import LocalObjectStore
from storage.settings import Settings
from storage.signing import LogSigner
from trading.models import Lot, Tender

ESCROW_ACCOUNT = Settings.escrow_account
SIGNER = LogSigner.from_secret("escrow-tests-log-key")  # signs the ledger's heads in these tests
DEPOSIT_RATE = "0.35"  # percent a year, in force from RATE_SINCE: every holding period is covered
RATE_SINCE = date(2015, 10, 24)


@dataclass(frozen=True)
class Trade:
    """A tender whose bidders registered for every lot: one deposit position per bidder per lot."""

    tender_id: uuid.UUID
    lots: tuple[uuid.UUID, ...]
    bidders: tuple[uuid.UUID, ...]
    deposits: tuple[Deposit, ...]  # lot-major: every bidder's deposit of lot 0, then of lot 1, …
    officer: Principal  # a centre officer who is also the supervisor deciding forfeitures

    def payer(self, deposit: Deposit) -> str:
        """The account each bidder pays its deposits from (refunds go back there)."""
        return f"62220000{self.bidders.index(deposit.organisation_id):08d}"


def _org(kind: str, now: datetime) -> Organisation:
    return Organisation(
        name=f"{kind} {secrets.token_hex(3)}",
        credit_code=f"91320100{secrets.token_hex(5).upper()}",
        kind=kind,
        status="approved",
        created_at=now,
        approved_at=now,
    )


async def open_trade(
    session: AsyncSession, now: datetime, required_fen: Sequence[int], bidders: int, *, rate: bool = True
) -> Trade:
    """The least a deposit needs: organisations, a tender, its lots (each requiring its deposit), every
    bidder registered for every lot through `subaccounts.open_deposits`, and the deposit rate table (M-02)."""
    agency = _org("agency", now)
    orgs = [_org("bidder", now) for _ in range(bidders)]
    session.add_all([agency, *orgs])
    await session.flush()
    officer = User(
        organisation_id=agency.id,
        username=f"officer-{secrets.token_hex(4)}",
        display_name="中心经办人",
        password_hash="-",
        roles=["centre", "supervisor"],
        created_at=now,
    )
    tender = Tender(
        code=f"T{secrets.token_hex(6).upper()}",
        title="保证金测试项目",
        sector="works",
        method="open",
        status="tendering",
        agency_organisation_id=agency.id,
        tenderer_name="某招标人",
        region_code="320100",
        qualification="-",
        evaluation_method="lowest_price",
        documents_from=now,
        bid_deadline=now + timedelta(days=20),
        opening_window_minutes=30,
        publicity_days=3,
        created_at=now,
    )
    session.add_all([officer, tender])
    await session.flush()
    lots = [
        Lot(
            tender_id=tender.id,
            number=n + 1,
            title=f"标段{n + 1}",
            estimated_price_fen=fen * 50,
            deposit_fen=fen,
        )
        for n, fen in enumerate(required_fen)
    ]
    session.add_all(lots)
    await session.flush()
    deposits: list[Deposit] = []
    for lot in lots:
        for org in orgs:
            label = f"{tender.code}/{lot.number}/{org.credit_code}"
            lot_deposit = subaccounts.LotDeposit(lot.id, label, lot.deposit_fen)
            deposits += await subaccounts.open_deposits(
                session, tender.id, org.id, [lot_deposit], Settings.escrow_virtual_prefix, now
            )
    if rate:
        await batches.set_rate(session, None, "deposit", RATE_SINCE, DEPOSIT_RATE, "中国人民银行 活期", now)
    principal = Principal(officer.id, agency.id, frozenset({"centre", "supervisor"}), officer.username)
    return Trade(
        tender.id, tuple(lot.id for lot in lots), tuple(o.id for o in orgs), tuple(deposits), principal
    )


def payment(
    reference: str, virtual_number: str, amount_fen: int, payer: str, booked_on: date
) -> sandbox.Credit:
    """A bidder's transfer into a virtual sub-account, as the bank books it."""
    return sandbox.Credit(
        reference=reference,
        amount_fen=amount_fen,
        booked_on=booked_on,
        payer_name=f"付款人 {payer[-4:]}",
        payer_account=payer,
        payer_bank="中国工商银行南京分行",
        credited_account=virtual_number,
        remittance="投标保证金",
    )


def refund_debit(reference: str, end_to_end_id: str, amount_fen: int, booked_on: date) -> sandbox.Credit:
    """The bank's debit paying out one of our refund instructions, as the statement shows it."""
    return sandbox.Credit(
        reference=reference,
        amount_fen=amount_fen,
        booked_on=booked_on,
        direction="debit",
        end_to_end_id=end_to_end_id,
    )


def statement(statement_id: str, now: datetime, lines: Sequence[sandbox.Credit]) -> bytes:
    """A camt.053 statement of the escrow account holding `lines`."""
    return sandbox.statement(ESCROW_ACCOUNT, statement_id, now, lines)


async def failing_checks(
    session: AsyncSession, cal: WorkingCalendar, now: datetime, signer: LogSigner = SIGNER
) -> dict[str, str]:
    """Every `audit.verify` check that fails, with its offenders (empty when the books are sound); the
    signed heads are checked with `signer`'s public key."""
    return {c.name: c.detail for c in await audit.verify(session, cal, now, signer.public_raw) if not c.ok}


async def half_written(session: AsyncSession) -> list[str]:
    """What a crash or a race must never leave: a pending refund entry without its instruction (or the
    reverse), an instruction whose phase disagrees with the journal, an obligation instructed without a
    live instruction, a batch whose count or total disagrees with its rows, a statement whose line count
    disagrees with its lines, a bank line taken in without its entry, a deposit refunding without an
    open obligation. Empty when everything is whole."""
    out: list[str] = []
    entries = {
        e.sequence: e
        for e in await session.scalars(
            select(JournalEntry).where(
                JournalEntry.reason.in_(["refund_instructed", "refund_confirmed", "refund_failed"])
            )
        )
    }
    instructions = list(await session.scalars(select(RefundInstruction)))
    by_pending = Counter(i.pending_sequence for i in instructions)
    for seq, e in entries.items():
        if e.reason == "refund_instructed" and by_pending[seq] != 1:
            out.append(f"pending refund entry {seq} has {by_pending[seq]} instructions")
    resolutions = {e.resolves: e for e in entries.values() if e.resolves is not None}
    for ins in instructions:
        pending = entries.get(ins.pending_sequence)
        if pending is None or pending.phase != ledger.Phase.PENDING:
            out.append(f"instruction {ins.end_to_end_id} names no pending refund entry")
            continue
        done = resolutions.get(ins.pending_sequence)
        expected = {"sent": None, "paid": ledger.Phase.POSTED, "failed": ledger.Phase.VOIDED}[ins.status]
        if (done.phase if done else None) != expected:
            out.append(
                f"instruction {ins.end_to_end_id} is {ins.status} but its entry is {done and done.phase}"
            )
        elif done is not None and ins.result_sequence != done.sequence:
            out.append(
                f"instruction {ins.end_to_end_id} names result {ins.result_sequence}, not {done.sequence}"
            )
        if (ins.live_key is not None) != (ins.status in ("sent", "paid")):
            out.append(f"instruction {ins.end_to_end_id} is {ins.status} with live key {ins.live_key}")
    live = Counter(i.obligation_id for i in instructions if i.status == "sent")
    for ob in await session.scalars(select(Obligation)):
        if (ob.status == "instructed") != (live[ob.id] == 1) or live[ob.id] > 1:
            out.append(f"obligation {ob.id} is {ob.status} with {live[ob.id]} instructions at the bank")
        if (ob.open_key is not None) != (ob.status in refunds.OPEN_OBLIGATION):
            out.append(f"obligation {ob.id} is {ob.status} with open key {ob.open_key}")
    for batch in await session.scalars(select(RefundBatch)):
        rows = [i for i in instructions if i.batch_id == batch.id]
        if (batch.count, batch.total_fen) != (len(rows), sum(i.amount_fen for i in rows)) or not rows:
            out.append(
                f"batch {batch.number} says {batch.count}/{batch.total_fen} but holds {len(rows)} rows"
            )
    counts = dict(
        (
            await session.execute(select(BankLine.statement_id, func.count()).group_by(BankLine.statement_id))
        ).all()
    )
    for st in await session.scalars(select(BankStatement)):
        if st.new_lines != counts.get(st.id, 0):
            out.append(f"statement {st.id} says {st.new_lines} new lines but brought {counts.get(st.id, 0)}")
    for line in await session.scalars(select(BankLine)):
        if (
            line.status in ("matched", "suspense", "interest", "returning", "returned")
            and line.entry_sequence is None
        ):
            out.append(f"bank line {line.reference} is {line.status} without its entry")
    open_by_deposit = set(
        await session.scalars(
            select(Obligation.deposit_id).where(Obligation.status.in_(refunds.OPEN_OBLIGATION))
        )
    )
    for d in await session.scalars(select(Deposit)):
        if (d.status == "refunding") != (d.id in open_by_deposit):
            out.append(f"deposit {d.account_code} is {d.status}, open obligation: {d.id in open_by_deposit}")
    return out


async def paid_per_obligation(session: AsyncSession) -> dict[uuid.UUID, int]:
    """How many paid instructions each obligation has (every obligation listed, 0 when unpaid)."""
    counts = Counter(
        await session.scalars(
            select(RefundInstruction.obligation_id).where(RefundInstruction.status == "paid")
        )
    )
    return {ob: counts[ob] for ob in await session.scalars(select(Obligation.id))}


async def refunds_per_account(session: AsyncSession) -> dict[str, int]:
    """How many posted refunds each deposit account paid out (a deposit is refunded at most once)."""
    rows = await session.execute(
        select(Posting.account_code, func.count())
        .join(JournalEntry, JournalEntry.sequence == Posting.sequence)
        .where(
            JournalEntry.reason == "refund_confirmed",
            JournalEntry.phase == ledger.Phase.POSTED,
            Posting.amount_fen > 0,
            Posting.account_code.like("deposit:%"),
        )
        .group_by(Posting.account_code)
    )
    return {code: int(n) for code, n in rows.all()}


def local_store(root: Path, now: Callable[[], datetime]) -> LocalObjectStore:
    """Where imported statement files are kept, as `ggzy serve` keeps them by default."""
    root.mkdir(parents=True, exist_ok=True)
    return LocalObjectStore(root, "http://testserver", b"escrow-test-object-secret-0123456789", now=now)


async def lock_waiter(url: str, alive: Callable[[], bool], waiting: int = 1) -> None:
    """Return once `waiting` transactions in the PostgreSQL database at `url` wait for a lock (one the test
    holds, or each other's), so a race can be driven into the same interleaving every time. `alive` says
    whether the parties expected to wait are still running: one that finished without waiting fails the
    test at once."""
    engine = create_engine(url, pool=False)
    try:
        async with asyncio.timeout(120), engine.connect() as conn:
            while True:
                assert alive(), "it finished without waiting for the lock"
                blocked = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                    )
                )
                if blocked and blocked >= waiting:
                    return
                await conn.rollback()
                await asyncio.sleep(0.02)
    finally:
        await engine.dispose()
