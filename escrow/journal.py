"""The journal of the deposit ledger on the database: accounts, posting entries (idempotent, gapless,
hash-chained, balances checked in the same transaction), batches of entries, two-phase entries, reversals,
the trial balance and the program that checks every invariant.

Entries are appended under one lock (the ledger head row), so the sequence has no gaps and each entry's
hash chains to the one before. Balance rows are locked in account-code order, the same order everywhere.
`post_many` appends a batch (a bank statement's lines, a refund batch, the bank's results) in one
transaction: one head lock, one idempotency lookup, one balance lock, the pure arithmetic of
`escrow.ledger` entry by entry in memory, then multi-row inserts and one balance update. `post` is a batch
of one and answers exactly as it always has.

`verify` re-derives every invariant from the stored rows. Elsewhere than on PostgreSQL, or with
`reference=True`, it streams the journal once through `ledger.Verifier`, the reference. On PostgreSQL it
asks set-based questions of the session's snapshot, exported to as many connections as PostgreSQL gives
one parallel query processes (the leader and `max_parallel_workers_per_gather` workers; at least two, so
at least two cores) that share a queue of jobs, two per chunk of `chunk` entries (a session that has
written in its transaction asks them itself, so its own writes count):

- per entry (`_entries_sql`): the sequence against the entry stored before; the postings (at least two,
  none zero or −2^63, no account twice, summing to zero); reason, key, context (a jsonb object of
  strings), actor and account codes well formed and the phase known; the request hash and the link hash
  rebuilt from the columns exactly as `ledger.request_text` and `ledger.entry_text` write them and
  compared; the previous hash against the hash stored before. Each check gives its first offender, and
  `ledger.entry_problems` words it, as the reference would.
- per account (`_accounts_sql`): the postings' sums into posted and pending by `ledger.EFFECTS`, and the
  running overdraft check: within the chunk, window sums in sequence and leg order give each account's
  lowest (and highest) signed figure right after a posting that lowered (raised) it; adding the chunks up
  in order tells exactly in which chunk a guarded account's natural posted-and-pending or posted figure
  first went below zero on a lowering posting, and `_overdraft_sql` then finds that posting. So this is
  the reference's running check, posting by posting, not only the stored balances.
- resolutions and reversals: a resolution that passes every rule in its chunk's window (posted or voided,
  naming its target in its context, the target an earlier pending entry that is no resolution, the same
  postings) is only counted, since the unique `resolves` column means no target is resolved twice (one
  query makes sure; if the column's constraint was dropped, every resolution comes back); the others,
  and every reversal, come back as facts and are replayed through `ledger.Lifecycle`.

Both paths answer the same `ledger.CHECKS` in the same order with the same details (the tests compare
them on every kind of tampering and on random journals).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar, cast

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.orm.util import identity_key

from escrow import ledger
from escrow.models import AccountBalance, JournalEntry, LedgerAccount, LedgerHead, Posting
from escrow.schemas import TrialBalanceLine
from storage.db import upsert_ignore
from storage.problems import Conflict, NotFound, Problem, ValidationProblem, field_error

BANK = "bank:escrow"
SUSPENSE = "suspense"
INTEREST_INCOME = "interest:income"

# Above this many entries a batch's hashing and arithmetic run on a worker thread, off the event loop.
OFF_LOOP_ENTRIES: Final = 64
# Bound parameters per IN list (asyncpg allows 32767 per statement, SQLite 32766).
_IN_LIST: Final = 10_000

T = TypeVar("T")

# the tables, for multi-row Core statements (no ORM objects per row)
_ENTRIES = cast(Table, JournalEntry.__table__)
_POSTINGS = cast(Table, Posting.__table__)
_BALANCES = cast(Table, AccountBalance.__table__)
_HEAD = cast(Table, LedgerHead.__table__)


@dataclass(frozen=True)
class Posted:
    """An entry as recorded, and whether this call only replayed an earlier identical request."""

    entry: JournalEntry
    postings: tuple[ledger.Posting, ...]
    replay: bool


@dataclass(frozen=True)
class Request:
    """One entry for `post_many`: the draft, its phase (posted or pending; a resolution is posted or
    voided) and the pending entry it resolves, if any."""

    draft: ledger.EntryDraft
    phase: str = ledger.Phase.POSTED
    resolves: int | None = None


def _problem(exc: ledger.LedgerError) -> ValidationProblem:
    return ValidationProblem(exc.message, errors=[field_error("postings", exc.code)], ledger_error=exc.code)


# ---------------------------------------------------------------- accounts


async def ensure_account(
    session: AsyncSession,
    code: str,
    kind: str,
    now: datetime,
    *,
    tender_id: uuid.UUID | None = None,
    lot_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    virtual_number: str | None = None,
    may_go_negative: bool = False,
) -> LedgerAccount:
    """The account with this code, opened (with a zero balance) if it does not exist yet. A code is one line
    of text (entries' canonical texts separate fields by line feeds)."""
    ledger.AccountSpec(code, kind, may_go_negative).normal  # noqa: B018 - refuses an unknown kind
    if "\n" in code:
        raise ValidationProblem(
            "An account code is one line of text.", errors=[field_error("code", "newline")]
        )
    await session.execute(
        upsert_ignore(
            session,
            LedgerAccount,
            {
                "id": uuid.uuid4(),
                "code": code,
                "kind": kind,
                "may_go_negative": may_go_negative,
                "tender_id": tender_id,
                "lot_id": lot_id,
                "organisation_id": organisation_id,
                "virtual_number": virtual_number,
                "created_at": now,
            },
        )
    )
    await session.execute(
        upsert_ignore(session, AccountBalance, {"account_code": code, "posted": 0, "pending": 0})
    )
    account = await session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    assert account is not None
    if account.kind != kind:
        raise Conflict(f"Account {code} exists with kind {account.kind}, not {kind}.")
    return account


async def lock_head(session: AsyncSession) -> tuple[int, str]:
    """Lock the ledger head (creating it on the first entry): the last sequence number and hash."""
    query = select(LedgerHead.sequence, LedgerHead.hash).where(LedgerHead.id == 1).with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        await session.execute(
            upsert_ignore(session, LedgerHead, {"id": 1, "sequence": 0, "hash": ledger.GENESIS})
        )
        row = (await session.execute(query)).first()
        assert row is not None
    return int(row[0]), str(row[1])


def _in_lists(values: Sequence[T]) -> Iterator[list[T]]:
    for start in range(0, len(values), _IN_LIST):
        yield list(values[start : start + _IN_LIST])


async def _off_loop(size: int, fn: Callable[..., T], *args: Any) -> T:
    """Run pure CPU work (hashing, arithmetic) on a worker thread when the batch is large."""
    if size >= OFF_LOOP_ENTRIES:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)


# ---------------------------------------------------------------- posting


class _Refused(Exception):
    """A ledger refusal of the batch's entry `index`."""

    def __init__(self, index: int, error: ledger.LedgerError) -> None:
        super().__init__(error.message)
        self.index = index
        self.error = error


class _Batch:
    """Names a batch's entries in its problems: "Entry 3 of 500 (key): …" and `entry` = its index. A batch
    of one (`post`) answers exactly as a single entry always has."""

    def __init__(self, requests: Sequence[Request]) -> None:
        self.requests = requests

    def _where(self, index: int) -> tuple[str, dict[str, Any]]:
        if len(self.requests) == 1:
            return "", {}
        key = self.requests[index].draft.idempotency_key
        return f"Entry {index + 1} of {len(self.requests)} ({key}): ", {"entry": index}

    def refused(self, index: int, exc: ledger.LedgerError) -> Problem:
        where, extra = self._where(index)
        if exc.code == "overdraft":
            return Conflict(
                f"{where}Account {exc.detail.get('account')} would be overdrawn: {exc.message}",
                errors=[field_error("postings", "overdraft")],
                **extra,
            )
        if exc.code == "phase.transition":
            return Conflict(where + exc.message, errors=[field_error("phase", exc.code)], **extra)
        return ValidationProblem(
            where + exc.message, errors=[field_error("postings", exc.code)], ledger_error=exc.code, **extra
        )

    def reused(self, index: int) -> Conflict:
        where, extra = self._where(index)
        return Conflict(
            f"{where}This idempotency key was already used for another entry.",
            errors=[field_error("idempotency_key", "reused with another request")],
            **extra,
        )

    def conflict(self, index: int, message: str, field: str, code: str) -> Conflict:
        where, extra = self._where(index)
        return Conflict(where + message, errors=[field_error(field, code)], **extra)

    def invalid(self, index: int, message: str, field: str, code: str) -> ValidationProblem:
        where, extra = self._where(index)
        return ValidationProblem(where + message, errors=[field_error(field, code)], **extra)

    def missing(self, index: int, sequence: int) -> NotFound:
        where, extra = self._where(index)
        return NotFound(f"{where}No journal entry {sequence}.", **extra)


@dataclass
class _Prepared:
    """A batch checked and hashed before the lock: each request's hash and its rows, with the sequence
    number, the previous hash and the link left for `_chain` to fill in under the lock."""

    hashes: list[str] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    legs: list[list[dict[str, Any]]] = field(default_factory=list)


def _prepare(requests: Sequence[Request], now: datetime) -> _Prepared:
    """Check every draft and its phase, hash its request and build its rows (pure; refuses with
    `_Refused`)."""
    prepared = _Prepared()
    for index, request in enumerate(requests):
        draft, phase = request.draft, str(request.phase)
        try:
            ledger.check_entry(draft)
            if request.resolves is None and phase not in (ledger.Phase.POSTED, ledger.Phase.PENDING):
                raise ledger.LedgerError(
                    "phase.unknown", f"A new entry is posted or pending, not {phase!r}.", phase=phase
                )
            if request.resolves is not None and phase not in (ledger.Phase.POSTED, ledger.Phase.VOIDED):
                raise ledger.LedgerError(
                    "phase.transition",
                    f"A pending entry is resolved by posting or voiding it, not {phase!r}.",
                    phase=phase,
                )
            digest = ledger.request_hash(draft)
        except ledger.LedgerError as exc:
            raise _Refused(index, exc) from exc
        except ValueError as exc:  # text that is not valid Unicode has no UTF-8 form
            raise _Refused(
                index, ledger.LedgerError("entry.context", f"The request is not valid text ({exc}).")
            ) from exc
        prepared.hashes.append(digest)
        named = draft.scheme == 3  # a scheme 2 entry names no party: its columns stay NULL
        prepared.entries.append(
            {
                "idempotency_key": draft.idempotency_key,
                "request_hash": digest,
                "reason": draft.reason,
                "phase": phase,
                "resolves": request.resolves,
                "at": now,
                "actor": draft.actor,
                "context": dict(draft.context),
                "scheme": draft.scheme,
                "party_role": draft.party.role if named else None,
                "party_account": draft.party.account if named else None,
                "party_name": draft.party.name if named else None,
                "party_bank": draft.party.bank if named else None,
            }
        )
        prepared.legs.append(
            [
                {"leg": leg, "account_code": p.account, "amount_fen": p.amount_fen}
                for leg, p in enumerate(draft.postings)
            ]
        )
    return prepared


def _apply(
    requests: Sequence[tuple[int, Request]],
    specs: dict[str, ledger.AccountSpec],
    balances: dict[str, ledger.Balance],
) -> set[str]:
    """Apply the entries to `balances` one by one with the ledger's own rules (the same no-overdraft
    check as a single entry); answers the accounts changed, or refuses with `_Refused`."""
    changed: set[str] = set()
    for index, request in requests:
        postings, phase = request.draft.postings, request.phase
        try:
            if request.resolves is None:
                moved = ledger.apply(balances, specs, postings, phase=phase)
            elif phase == ledger.Phase.POSTED:
                moved = ledger.post_pending(balances, specs, postings)
            else:
                moved = ledger.void_pending(balances, specs, postings)
        except ledger.LedgerError as exc:
            raise _Refused(index, exc) from exc
        balances.update(moved)
        changed.update(moved)
    return changed


def _chain(
    fresh: Sequence[tuple[int, Request]], prepared: _Prepared, sequence: int, previous: str, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The new entries' rows numbered after `sequence` and chained after `previous`, and their postings."""
    entries: list[dict[str, Any]] = []
    legs: list[dict[str, Any]] = []
    for index, _ in fresh:
        sequence += 1
        row = prepared.entries[index]
        link = ledger.link_hash(
            previous, sequence, row["idempotency_key"], row["request_hash"], row["phase"], now, row["scheme"]
        )
        row.update(sequence=sequence, previous_hash=previous, hash=link)
        entries.append(row)
        for leg in prepared.legs[index]:
            leg["sequence"] = sequence
            legs.append(leg)
        previous = link
    return entries, legs


def _apply_and_chain(
    fresh: Sequence[tuple[int, Request]],
    prepared: _Prepared,
    specs: dict[str, ledger.AccountSpec],
    balances: dict[str, ledger.Balance],
    sequence: int,
    previous: str,
    now: datetime,
) -> tuple[set[str], tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    return _apply(fresh, specs, balances), _chain(fresh, prepared, sequence, previous, now)


async def _check_resolutions(
    session: AsyncSession, batch: _Batch, fresh: Sequence[tuple[int, Request]]
) -> None:
    """Each resolution names an existing pending entry (not itself a resolution), carries its postings and
    names it in its context, and no entry resolves it already, in the journal or earlier in the batch.
    The unique `resolves` column makes the last rule hold even against a writer that skipped this."""
    wanted = [(index, request.resolves) for index, request in fresh if request.resolves is not None]
    if not wanted:
        return
    targets = sorted({target for _, target in wanted})
    found: dict[int, tuple[str, int | None]] = {}
    done: dict[int, int] = {}
    legs: dict[int, list[ledger.Posting]] = {}
    resolution = aliased(JournalEntry)
    for part in _in_lists(targets):
        for sequence, phase, resolves, resolved_by in await session.execute(
            select(JournalEntry.sequence, JournalEntry.phase, JournalEntry.resolves, resolution.sequence)
            .outerjoin(resolution, resolution.resolves == JournalEntry.sequence)
            .where(_among(session, JournalEntry.sequence, part))
        ):
            found[sequence] = (phase, resolves)
            if resolved_by is not None:
                done[sequence] = resolved_by
        for sequence, account, amount in await session.execute(
            select(Posting.sequence, Posting.account_code, Posting.amount_fen)
            .where(_among(session, Posting.sequence, part))
            .order_by(Posting.sequence, Posting.leg)
        ):
            legs.setdefault(sequence, []).append(ledger.Posting(account, amount))
    claimed: dict[int, int] = {}
    for index, target in wanted:
        assert target is not None
        request = batch.requests[index]
        if target not in found:
            raise batch.missing(index, target)
        phase, resolves = found[target]
        if resolves is not None:
            raise batch.conflict(
                index,
                f"Entry {target} is itself a resolution; it is not pending.",
                "phase",
                "phase.transition",
            )
        try:
            ledger.transition(phase, str(request.phase))
        except ledger.LedgerError as exc:
            raise batch.refused(index, exc) from exc
        earlier = done.get(target)
        if earlier is None and target in claimed:
            earlier = -1
        if earlier is not None:
            by = f"entry {earlier}" if earlier > 0 else f"entry {claimed[target] + 1} of this batch"
            raise batch.conflict(
                index, f"Entry {target} was already resolved by {by}.", "phase", "phase.transition"
            )
        claimed[target] = index
        if request.draft.postings != tuple(legs.get(target, ())):
            raise batch.invalid(
                index,
                f"A resolution carries the postings of the entry it resolves ({target}).",
                "postings",
                "resolution.postings",
            )
        if request.draft.context.get("resolves") != str(target):
            raise batch.invalid(
                index,
                f"A resolution's context names the entry it resolves ({target}).",
                "context",
                "resolution.context",
            )


async def _lock_accounts(
    session: AsyncSession, batch: _Batch, fresh: Sequence[tuple[int, Request]]
) -> tuple[dict[str, ledger.AccountSpec], dict[str, ledger.Balance]]:
    """The accounts the new entries touch, with their balance rows locked in account-code order."""
    codes = sorted({p.account for _, request in fresh for p in request.draft.postings})
    specs: dict[str, ledger.AccountSpec] = {}
    balances: dict[str, ledger.Balance] = {}
    for part in _in_lists(codes):
        rows = await session.execute(
            select(
                LedgerAccount.code,
                LedgerAccount.kind,
                LedgerAccount.may_go_negative,
                AccountBalance.posted,
                AccountBalance.pending,
            )
            .join(AccountBalance, AccountBalance.account_code == LedgerAccount.code)
            .where(_among(session, LedgerAccount.code, part))
            .order_by(LedgerAccount.code)
            .with_for_update(of=AccountBalance)
        )
        for code, kind, may_go_negative, posted, pending in rows:
            specs[code] = ledger.AccountSpec(code, kind, may_go_negative)
            balances[code] = ledger.Balance(posted, pending)
    for index, request in fresh:
        for p in request.draft.postings:
            if p.account not in specs:
                raise batch.invalid(
                    index, f"Unknown ledger account {p.account}.", "postings", "account.unknown"
                )
    return specs, balances


def _expire_loaded(session: AsyncSession, changed: set[str]) -> None:
    """Balance rows (and the head) this session already holds as objects are expired, since the writes went
    around the identity map: the next `get` or query reads them again, and a savepoint rolled back later
    cannot leave them holding figures that were never committed."""
    for key in [identity_key(AccountBalance, code) for code in changed] + [identity_key(LedgerHead, 1)]:
        loaded = session.identity_map.get(key)
        if loaded is not None:
            session.expire(loaded)


_BALANCES_FROM_ARRAYS: Final = text(
    "UPDATE account_balances AS b SET posted = v.posted, pending = v.pending "
    "FROM unnest(CAST(:codes AS text[]), CAST(:posted AS bigint[]), CAST(:pending AS bigint[])) "
    "AS v(code, posted, pending) WHERE b.account_code = v.code"
)


async def _write_balances(session: AsyncSession, changed: dict[str, ledger.Balance]) -> None:
    """Store the new balances: one statement over arrays on PostgreSQL, one UPDATE per row elsewhere."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await session.execute(
            _BALANCES_FROM_ARRAYS,
            {
                "codes": list(changed),
                "posted": [b.posted for b in changed.values()],
                "pending": [b.pending for b in changed.values()],
            },
        )
        return
    await session.execute(
        update(_BALANCES)
        .where(_BALANCES.c.account_code == bindparam("b_code"))
        .values(posted=bindparam("b_posted"), pending=bindparam("b_pending")),
        [{"b_code": code, "b_posted": b.posted, "b_pending": b.pending} for code, b in changed.items()],
    )


_ENTRY_MANAGER = manager_of_class(JournalEntry)


def _entry_objects(rows: Sequence[dict[str, Any]]) -> list[JournalEntry]:
    """The inserted rows as JournalEntry objects, not attached to the session (`entry()` reads the
    session's own): filled in directly, since the ORM's constructor costs more than the row's insert."""
    out = []
    for row in rows:
        entry = _ENTRY_MANAGER.new_instance()
        entry.__dict__.update(row)
        out.append(entry)
    return out


def _among(session: AsyncSession, column: Any, values: Sequence[Any]) -> Any:
    """`column IN (values)`; on PostgreSQL `column IN (SELECT unnest(array))`, one parameter however long
    the list, and a plan that stays a hash or index lookup once the prepared statement's plan is generic
    (`= ANY(array)` would then test every row against the whole array)."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        return column.in_(select(func.unnest(bindparam(None, list(values), type_=ARRAY(column.type)))))
    return column.in_(values)


async def post_many(session: AsyncSession, requests: Sequence[Request], now: datetime) -> list[Posted]:
    """Append a batch of entries in the caller's transaction, all or none, answering one `Posted` per
    request in order.

    Each entry is checked as `post` checks it. Idempotent per entry: a key already in the journal (or
    earlier in the batch) with the same request answers that entry with `replay=True`; with another
    request the whole batch is a conflict. A resolution names an existing pending entry that nothing
    resolves yet, and carries its postings. The balances move entry by entry in memory with the
    no-overdraft rule; any refused entry refuses the batch, with a problem naming it ("Entry 3 of 500
    (key): …", `entry` = its index). The entries, postings and balances are written with multi-row
    statements and the head moves to the last entry; its lock, taken before the idempotency lookup, is
    held until the caller's transaction ends. Drafts are checked and hashed before the lock, on a worker
    thread for a large batch, as is the arithmetic under it."""
    requests = list(requests)
    if not requests:
        return []
    batch = _Batch(requests)
    try:
        prepared = await _off_loop(len(requests), _prepare, requests, now)
    except _Refused as refused:
        raise batch.refused(refused.index, refused.error) from refused.error
    hashes = prepared.hashes
    first: dict[str, int] = {}  # key → the first request in the batch carrying it
    for index, request in enumerate(requests):
        earlier = first.setdefault(request.draft.idempotency_key, index)
        if hashes[earlier] != hashes[index]:
            raise batch.reused(index)

    head_sequence, head_hash = await lock_head(session)
    existing: dict[str, JournalEntry] = {}
    for part in _in_lists(list(first)):
        for row in await session.scalars(
            select(JournalEntry).where(_among(session, JournalEntry.idempotency_key, part))
        ):
            existing[row.idempotency_key] = row
    for index, request in enumerate(requests):
        stored = existing.get(request.draft.idempotency_key)
        if stored is not None and stored.request_hash != hashes[index]:
            raise batch.reused(index)
    fresh = [
        (index, request)
        for index, request in enumerate(requests)
        if first[request.draft.idempotency_key] == index and request.draft.idempotency_key not in existing
    ]

    created: list[JournalEntry] = []
    if fresh:
        await _check_resolutions(session, batch, fresh)
        specs, balances = await _lock_accounts(session, batch, fresh)
        try:
            changed, (entry_rows, posting_rows) = await _off_loop(
                len(fresh), _apply_and_chain, fresh, prepared, specs, balances, head_sequence, head_hash, now
            )
        except _Refused as refused:
            raise batch.refused(refused.index, refused.error) from refused.error
        # multi-row INSERTs (insertmanyvalues: RETURNING makes SQLAlchemy batch the rows into VALUES lists)
        await session.execute(insert(_ENTRIES).returning(_ENTRIES.c.sequence), entry_rows)
        if posting_rows:  # a batch of memos alone (a change of payee) posts nothing
            await session.execute(insert(_POSTINGS).returning(_POSTINGS.c.sequence), posting_rows)
        if changed:
            await _write_balances(session, {code: balances[code] for code in sorted(changed)})
        last = entry_rows[-1]
        await session.execute(
            update(_HEAD).where(_HEAD.c.id == 1).values(sequence=last["sequence"], hash=last["hash"])
        )
        _expire_loaded(session, changed)
        created = _entry_objects(entry_rows)

    by_key: dict[str, JournalEntry] = dict(existing)
    for (_, request), entry_row in zip(fresh, created, strict=True):
        by_key[request.draft.idempotency_key] = entry_row
    replayed = sorted({by_key[k].sequence for k in first if k in existing})
    legs: dict[int, list[ledger.Posting]] = {}
    for sequences in _in_lists(replayed):
        for sequence, account, amount in await session.execute(
            select(Posting.sequence, Posting.account_code, Posting.amount_fen)
            .where(_among(session, Posting.sequence, sequences))
            .order_by(Posting.sequence, Posting.leg)
        ):
            legs.setdefault(sequence, []).append(ledger.Posting(account, amount))
    out = []
    new = {index for index, _ in fresh}
    for index, request in enumerate(requests):
        stored = by_key[request.draft.idempotency_key]
        if index in new:
            out.append(Posted(stored, request.draft.postings, False))
        else:
            postings = tuple(legs[stored.sequence]) if stored.sequence in legs else request.draft.postings
            out.append(Posted(stored, postings, True))
    return out


async def post(
    session: AsyncSession,
    draft: ledger.EntryDraft,
    now: datetime,
    *,
    phase: str = ledger.Phase.POSTED,
    resolves: int | None = None,
) -> Posted:
    """Append one entry: checked, idempotent (the same key and request answer the first entry; the same
    key with another request is a conflict), balances updated with the no-overdraft check, chained."""
    (posted,) = await post_many(session, [Request(draft, phase, resolves)], now)
    return posted


async def postings_of(session: AsyncSession, sequence: int) -> tuple[ledger.Posting, ...]:
    """An entry's postings in leg order."""
    rows = await session.execute(
        select(Posting.account_code, Posting.amount_fen)
        .where(Posting.sequence == sequence)
        .order_by(Posting.leg)
    )
    return tuple(ledger.Posting(account, amount) for account, amount in rows)


async def first_entry(session: AsyncSession, account: str, reasons: Sequence[str]) -> JournalEntry | None:
    """The earliest entry of one of `reasons` that posts to `account` (by the postings' index)."""
    return await session.scalar(
        select(JournalEntry)
        .join(Posting, Posting.sequence == JournalEntry.sequence)
        .where(Posting.account_code == account, JournalEntry.reason.in_(list(reasons)))
        .order_by(JournalEntry.sequence)
        .limit(1)
    )


async def entry(session: AsyncSession, sequence: int) -> JournalEntry:
    """One journal entry."""
    row = await session.get(JournalEntry, sequence)
    if row is None:
        raise NotFound(f"No journal entry {sequence}.")
    return row


async def resolve(
    session: AsyncSession, pending: int, target: str, *, key: str, reason: str, actor: str, now: datetime
) -> Posted:
    """Post or void a pending entry, at most once: the resolution is an entry of its own, with the same
    postings, that names the pending one (a second resolution is refused; the same request again is a
    replay)."""
    original = await entry(session, pending)
    try:
        ledger.transition(original.phase, target)
    except ledger.LedgerError as exc:
        raise Conflict(exc.message, errors=[field_error("phase", exc.code)]) from exc
    legs = await postings_of(session, pending)
    draft = ledger.EntryDraft(reason, legs, key, {**original.context, "resolves": str(pending)}, actor)
    return await post(session, draft, now, phase=target, resolves=pending)


async def reverse(session: AsyncSession, sequence: int, *, key: str, actor: str, now: datetime) -> Posted:
    """Correct a posted entry by a reversing entry, at most once (nothing is edited or deleted)."""
    original = await entry(session, sequence)
    if original.phase != ledger.Phase.POSTED:
        raise Conflict(f"Entry {sequence} is {original.phase}; only a posted entry is reversed.")
    if original.reason == "reversal":
        raise Conflict(f"Entry {sequence} is itself a reversal; post the correct entry instead.")
    draft = ledger.reversal(
        ledger.EntryDraft(
            original.reason,
            await postings_of(session, sequence),
            original.idempotency_key,
            {str(k): str(v) for k, v in original.context.items()},
            original.actor,
        ),
        key=key,
        actor=actor,
        original_sequence=sequence,
    )
    replayed = await _replay(session, draft)
    if replayed is not None:
        return replayed
    await lock_head(session)  # serialises reversals, so two cannot both pass the check below
    earlier = await session.scalar(
        select(JournalEntry.sequence).where(
            JournalEntry.reason == "reversal", JournalEntry.context["reverses"].as_string() == str(sequence)
        )
    )
    if earlier is not None:
        raise Conflict(
            f"Entry {sequence} was already reversed by entry {earlier}.",
            errors=[field_error("sequence", "already reversed")],
        )
    return await post(session, draft, now)


async def _replay(session: AsyncSession, draft: ledger.EntryDraft) -> Posted | None:
    """The entry already recorded under the draft's key, if its request is the same (another request
    under the key is a conflict)."""
    existing = await session.scalar(
        select(JournalEntry).where(JournalEntry.idempotency_key == draft.idempotency_key)
    )
    if existing is None:
        return None
    if existing.request_hash != ledger.request_hash(draft):
        raise Conflict(
            "This idempotency key was already used for another entry.",
            errors=[field_error("idempotency_key", "reused with another request")],
        )
    return Posted(existing, await postings_of(session, existing.sequence), True)


# ---------------------------------------------------------------- reading


async def balance(session: AsyncSession, code: str) -> ledger.Balance:
    """An account's balance now (signed debit − credit, posted and pending)."""
    row = await session.get(AccountBalance, code)
    if row is None:
        raise NotFound(f"No ledger account {code}.")
    return ledger.Balance(row.posted, row.pending)


async def trial_balance(session: AsyncSession, at: datetime | None = None) -> list[TrialBalanceLine]:
    """Every account's posted balance at an instant (now by default), recomputed from the postings; the
    debit and credit columns of a trial balance always total the same."""
    effective = select(JournalEntry.sequence).where(JournalEntry.phase == ledger.Phase.POSTED)
    if at is not None:
        effective = effective.where(JournalEntry.at <= at)
    sums = await session.execute(
        select(Posting.account_code, func.coalesce(func.sum(Posting.amount_fen), 0))
        .where(Posting.sequence.in_(effective))
        .group_by(Posting.account_code)
    )
    totals = dict(sums.all())
    accounts = await session.scalars(select(LedgerAccount).order_by(LedgerAccount.code))
    out: list[TrialBalanceLine] = []
    for account in accounts:
        signed = int(totals.get(account.code, 0))
        out.append(
            {
                "account": account.code,
                "kind": account.kind,
                "debit_fen": signed if signed > 0 else 0,
                "credit_fen": -signed if signed < 0 else 0,
            }
        )
    return out


# ---------------------------------------------------------------- verifying: the reference, streamed

_ENTRY_COLUMNS = (
    JournalEntry.sequence,
    JournalEntry.idempotency_key,
    JournalEntry.request_hash,
    JournalEntry.reason,
    JournalEntry.phase,
    JournalEntry.at,
    JournalEntry.previous_hash,
    JournalEntry.hash,
    JournalEntry.context,
    JournalEntry.actor,
    JournalEntry.resolves,
    JournalEntry.scheme,
    JournalEntry.party_role,
    JournalEntry.party_account,
    JournalEntry.party_name,
    JournalEntry.party_bank,
)


def _stored(entries: Sequence[Any], legs: dict[int, list[ledger.Posting]]) -> list[ledger.StoredEntry]:
    # a NULL party field reads as "" (PostgreSQL's checks coalesce the same way)
    return [
        ledger.StoredEntry(
            sequence=sequence,
            idempotency_key=key,
            request_hash=request,
            reason=reason,
            phase=phase,
            at=at,
            previous_hash=previous,
            hash=link,
            postings=tuple(legs.get(sequence, ())),
            context=context,  # as stored: the checks refuse anything but text to text
            actor=actor,
            resolves=resolves,
            party=ledger.Party(role or "", account or "", name or "", bank or ""),
            scheme=scheme,
        )
        for (
            sequence,
            key,
            request,
            reason,
            phase,
            at,
            previous,
            link,
            context,
            actor,
            resolves,
            scheme,
            role,
            account,
            name,
            bank,
        ) in entries
    ]


async def _stored_batches(
    session: AsyncSession, batch: int = 5000, where: Any = None
) -> AsyncIterator[tuple[Sequence[Any], dict[int, list[ledger.Posting]]]]:
    """Every entry's row with its postings, in sequence order, a batch at a time (constant memory). Plain
    rows, not ORM objects: the verifier reads a million postings and identity-mapped objects cost more
    than the checks."""
    after: int | None = None
    while True:
        query = select(*_ENTRY_COLUMNS).order_by(JournalEntry.sequence).limit(batch)
        if after is not None:
            query = query.where(JournalEntry.sequence > after)
        if where is not None:
            query = query.where(where)
        entries = (await session.execute(query)).all()
        if not entries:
            return
        first, last = entries[0][0], entries[-1][0]
        legs: dict[int, list[ledger.Posting]] = {}
        rows = await session.execute(
            select(Posting.sequence, Posting.account_code, Posting.amount_fen)
            .where(Posting.sequence >= first, Posting.sequence <= last)
            .order_by(Posting.sequence, Posting.leg)
        )
        for sequence, account, amount in rows:
            legs.setdefault(sequence, []).append(ledger.Posting(account, amount))
        yield entries, legs
        after = last


async def entries_from(
    session: AsyncSession, first: int, batch: int = 5000
) -> AsyncIterator[list[ledger.StoredEntry]]:
    """Every stored entry from sequence `first` on, as the ledger reads them, in sequence order, `batch`
    at a time (constant memory)."""
    async for entries, legs in _stored_batches(session, batch, where=JournalEntry.sequence >= first):
        yield _stored(entries, legs)


def _feed(checker: ledger.Verifier, entries: Sequence[Any], legs: dict[int, list[ledger.Posting]]) -> None:
    for stored in _stored(entries, legs):
        checker.feed(stored)


async def _specs_and_balances(
    session: AsyncSession | AsyncConnection,
) -> tuple[dict[str, ledger.AccountSpec], dict[str, ledger.Balance]]:
    specs = {
        code: ledger.AccountSpec(code, kind, negative)
        for code, kind, negative in await session.execute(
            select(LedgerAccount.code, LedgerAccount.kind, LedgerAccount.may_go_negative)
        )
    }
    balances = {
        code: ledger.Balance(posted, pending)
        for code, posted, pending in await session.execute(
            select(AccountBalance.account_code, AccountBalance.posted, AccountBalance.pending)
        )
    }
    return specs, balances


async def _verify_streaming(
    session: AsyncSession, limit: int = ledger.OFFENDER_LIMIT
) -> tuple[list[ledger.Check], str, Any]:
    specs, balances = await _specs_and_balances(session)
    checker = ledger.Verifier(specs, limit=limit)
    async for entries, legs in _stored_batches(session):
        await asyncio.to_thread(_feed, checker, entries, legs)
    head = (
        await session.execute(select(LedgerHead.sequence, LedgerHead.hash).where(LedgerHead.id == 1))
    ).first()
    return checker.finish(balances), checker.last_hash, head


# ---------------------------------------------------------------- verifying: set-based, on PostgreSQL

VERIFY_CHUNK: Final = 65_536  # entries per chunk; the chunks' queries are shared out between connections
MAX_VERIFY_CONNECTIONS: Final = 4  # connections a verify borrows from its engine's pool, besides its own

_NOT_KEY: Final = "[^A-Za-z0-9_.:-]"  # a character outside ledger.KEY_PATTERN, as a regular expression
_LITERAL = re.compile(r"[A-Za-z0-9_.:]+")  # what may be spliced into the SQL below as a literal


def _literal(value: str) -> str:
    assert _LITERAL.fullmatch(value), value
    return f"'{value}'"


def _effects_sql(column: int) -> str:
    """A CASE over phase and resolves giving `ledger.EFFECTS`' multiplier into posted (0) or pending (1)."""
    arms = " ".join(
        f"WHEN phase = {_literal(phase)} AND resolves IS {'NOT ' if resolution else ''}NULL THEN {moves[column]}"
        for (phase, resolution), moves in ledger.EFFECTS.items()
    )
    return f"CASE {arms} ELSE 0 END"


def _known_phases() -> str:
    return ", ".join(sorted({_literal(phase) for phase, _ in ledger.EFFECTS}))


def _party_sql(column: str) -> str:
    return f"coalesce(r.party_{column}, '')"


def _party_problem_sql() -> str:
    """`ledger._party_problem` as SQL over the flagged row `r` (NULL party fields read as "")."""
    role, account, name, bank = (_party_sql(c) for c in ("role", "account", "name", "bank"))
    fields = (role, account, name, bank)
    arms = " ".join(
        f"WHEN {_literal(reason)} THEN {_literal(want)}" for reason, want in ledger.PARTY_ROLES.items()
    )
    wanted = f"(CASE r.reason {arms} ELSE '' END)"
    any_field = " OR ".join(f"{f} <> ''" for f in fields)
    multiline = " OR ".join(f"strpos({f}, E'\\n') > 0" for f in fields)
    return (
        f"(r.scheme = 2 AND ({any_field})) OR (r.scheme = 3 AND ({role} <> {wanted} OR {multiline} "
        f"OR ({wanted} = '' AND ({any_field})) OR ({wanted} = 'payee' AND {account} = '')))"
    )


def _versions_sql(versions: Mapping[int, str], column: str) -> str:
    arms = " ".join(f"WHEN {scheme} THEN {_literal(version)}" for scheme, version in versions.items())
    return f"CASE {column} {arms} END"


@functools.cache
def rehash_sql() -> str:
    """The irreducible part of verifying, as one SQL pass: every entry's postings read in leg order, its
    request hash and its chain hash recomputed from the stored columns (the texts `_entries_sql` builds),
    and the entries whose hashes differ counted. Nothing else is checked: it is the baseline that says how
    much of `verify`'s time is work no verifier can skip."""
    party = ", ".join(f"coalesce(x.party_{c}, '')" for c in ("role", "account", "name", "bank"))
    request_text = (
        f"concat_ws(E'\\n', {_versions_sql(ledger.REQUEST_VERSIONS, 'x.scheme')}, x.reason, x.actor, "
        f"x.context::text, CASE WHEN x.scheme = 3 THEN concat_ws(E'\\n', {party}) END, l.legs)"
    )
    entry_text = (
        f"concat_ws(E'\\n', {_versions_sql(ledger.ENTRY_VERSIONS, 'r.scheme')}, r.previous_hash, r.sequence, "
        "r.idempotency_key, r.recomputed, r.phase, r.micros)"
    )
    return f"""
WITH legs AS (
    SELECT sequence, string_agg(account_code || E'\\n' || amount_fen, E'\\n' ORDER BY leg) AS legs
    FROM postings GROUP BY sequence
),
rehashed AS (
    SELECT x.sequence, x.scheme, x.previous_hash, x.idempotency_key, x.phase, x.request_hash, x.hash,
           (extract(epoch FROM x.at) * 1000000)::bigint AS micros,
           encode(sha256(convert_to({request_text}, 'UTF8')), 'hex') AS recomputed
    FROM journal_entries AS x LEFT JOIN legs AS l ON l.sequence = x.sequence
)
SELECT count(*) AS entries,
       count(*) FILTER (WHERE r.recomputed IS DISTINCT FROM r.request_hash
                        OR encode(sha256(convert_to({entry_text}, 'UTF8')), 'hex') <> r.hash) AS mismatched
FROM rehashed AS r
"""  # noqa: S608 - assembled from escrow.ledger's constants only


@functools.cache
def _entries_sql() -> str:
    """One chunk's per-entry checks, one row out. Entries `lo`…`hi` are checked; the entry stored before
    `lo` is read too, for the sequence and the chain. Each local check gives how many entries fail it and
    the first `limit` of them in sequence order (the entries the reference names first);
    `ledger.entry_problems` words them later.

    The texts are `ledger.request_text` and `ledger.entry_text` rebuilt from the columns in the entry's
    scheme (`concat_ws` leaves out the legs of an entry without postings, as "\n".join does; an unknown
    scheme has no text); an entry's postings are aggregated from a subquery in leg order. A context is
    text to text ("textual") when it is a jsonb object whose values are all strings: the regular
    expression finds every text where a value might not be a string, and the JSON path decides those.

    The entry stored before is the one at the sequence before, joined (a merge of the primary key on
    itself), or, only where that one is missing (the first entry, a gap), the greatest sequence below,
    looked up: a window function over the chunk's wide rows cost as much as hashing them.

    Resolutions: the target is joined by its sequence when it lies in the same window, from the entry
    stored before `lo` on (a target before the window only sends the resolution to Python's lookup). A resolution that passes every rule here —
    posted or voided, naming its target in its context, the target an earlier pending entry that is not a
    resolution, the same postings — is only counted, unless `all_facts` (some target is named twice; only
    a journal whose unique `resolves` column was dropped gets there); every other one comes back as facts
    for `ledger.Lifecycle`, as does every reversal."""
    known = _known_phases()
    duplicate = (
        "CASE WHEN r.n > 2 THEN EXISTS (SELECT 1 FROM postings AS d WHERE d.sequence = r.sequence "
        "GROUP BY d.account_code HAVING count(*) > 1) ELSE false END"
    )
    exceptional = (
        "(:all_facts OR r.target_sequence IS DISTINCT FROM r.resolves OR r.phase = 'pending' "
        "OR NOT coalesce(r.target_pending, false) OR r.legs IS DISTINCT FROM r.target_legs "
        "OR (r.context -> 'resolves') IS DISTINCT FROM to_jsonb(r.resolves::text))"
    )
    resolution = f"(r.resolves IS NOT NULL AND r.phase IN ({known}))"
    memos = ", ".join(_literal(reason) for reason in sorted(ledger.MEMO_REASONS))
    party = ", ".join(f"coalesce(x.party_{c}, '')" for c in ("role", "account", "name", "bank"))
    request_text = (
        f"concat_ws(E'\\n', {_versions_sql(ledger.REQUEST_VERSIONS, 'x.scheme')}, x.reason, x.actor, "
        f"x.context_text, CASE WHEN x.scheme = 3 THEN concat_ws(E'\\n', {party}) END, x.legs)"
    )
    checks = ("sequence", "balance", "request", "chain", "form")
    offenders = ",\n    ".join(
        f"count(*) FILTER (WHERE bad_{c}) AS {c}_count,\n"
        f"    (array_agg(sequence ORDER BY sequence) FILTER (WHERE bad_{c}))[1:CAST(:limit AS integer)] AS {c}_offenders"
        for c in checks
    )
    return f"""
WITH bounds AS (
    SELECT coalesce((SELECT max(sequence) FROM journal_entries WHERE sequence < :lo), :lo) AS start
),
legs AS (
    SELECT sequence,
           count(*) AS n,
           sum(amount_fen) AS total,
           bool_or(amount_fen = 0 OR amount_fen = -9223372036854775808) AS odd_amount,
           min(account_code COLLATE "C") AS low_account,
           max(account_code COLLATE "C") AS high_account,
           bool_or(strpos(account_code, E'\\n') > 0) AS multiline_account,
           string_agg(account_code || E'\\n' || amount_fen, E'\\n') AS legs
    FROM (SELECT sequence, leg, account_code, amount_fen FROM postings
          WHERE sequence BETWEEN (SELECT start FROM bounds) AND :hi
          ORDER BY sequence, leg) AS ordered
    GROUP BY sequence
),
rendered AS (
    SELECT e.sequence, e.idempotency_key, e.request_hash, e.reason, e.phase, e.resolves, e.actor,
           e.previous_hash, e.hash, e.context, e.context::text AS context_text, e.scheme,
           e.party_role, e.party_account, e.party_name, e.party_bank,
           (extract(epoch FROM e.at) * 1000000)::bigint AS micros,
           l.n, l.total, l.odd_amount, l.low_account, l.high_account, l.multiline_account, l.legs,
           CASE WHEN p.sequence IS NOT NULL THEN p.sequence
                ELSE (SELECT max(b.sequence) FROM journal_entries AS b WHERE b.sequence < e.sequence) END
             AS prior_sequence,
           CASE WHEN p.sequence IS NOT NULL THEN p.hash
                ELSE (SELECT b.hash FROM journal_entries AS b WHERE b.sequence < e.sequence
                      ORDER BY b.sequence DESC LIMIT 1) END AS prior_hash,
           t.sequence AS target_sequence,
           t.phase = 'pending' AND t.resolves IS NULL AS target_pending,
           CASE WHEN t.sequence IS NOT NULL
                THEN (SELECT string_agg(q.account_code || E'\\n' || q.amount_fen, E'\\n' ORDER BY q.leg)
                      FROM postings AS q WHERE q.sequence = t.sequence) END AS target_legs
    FROM journal_entries AS e
    LEFT JOIN legs AS l ON l.sequence = e.sequence
    LEFT JOIN journal_entries AS p ON p.sequence = e.sequence - 1
    LEFT JOIN journal_entries AS t
           ON t.sequence = e.resolves AND e.resolves >= (SELECT start FROM bounds) AND e.resolves < e.sequence
    WHERE e.sequence BETWEEN (SELECT start FROM bounds) AND :hi
),
requested AS (
    SELECT x.*,
           jsonb_typeof(x.context) = 'object'
             AND NOT (x.context_text ~ '": [^"]'
                      AND jsonb_path_exists(x.context, 'strict $.* ? (@.type() != "string")')) AS textual,
           CASE WHEN x.scheme IN (2, 3)
                THEN encode(sha256(convert_to({request_text}, 'UTF8')), 'hex') END AS recomputed
    FROM rendered AS x
    WHERE x.sequence >= :lo
    OFFSET 0
),
flagged AS (
    SELECT r.sequence, r.reason, r.phase, r.resolves, r.context, r.n, r.pending,
           r.sequence <> coalesce(r.prior_sequence, 0) + 1 AS bad_sequence,
           NOT r.textual OR r.recomputed IS DISTINCT FROM r.request_hash AS bad_request,
           r.previous_hash <> coalesce(r.prior_hash, {_literal(ledger.GENESIS)}) OR NOT r.textual
             OR r.recomputed IS NULL
             OR encode(sha256(convert_to(concat_ws(E'\\n', {_versions_sql(ledger.ENTRY_VERSIONS, "r.scheme")},
                                                   r.previous_hash, r.sequence, r.idempotency_key, r.recomputed,
                                                   r.phase, r.micros), 'UTF8')), 'hex') <> r.hash AS bad_chain,
           CASE WHEN r.reason IN ({memos}) THEN coalesce(r.n, 0) <> 0
                ELSE coalesce(r.n, 0) < 2 OR r.odd_amount OR r.total <> 0
                     OR (r.n = 2 AND r.low_account = r.high_account) OR {duplicate} END AS bad_balance,
           r.reason <> ALL (CAST(:reasons AS text[]))
             OR length(r.idempotency_key) NOT BETWEEN 8 AND 128
             OR r.idempotency_key ~ '{_NOT_KEY}'
             OR NOT r.textual
             OR strpos(r.actor, E'\\n') > 0
             OR coalesce(r.multiline_account, false)
             OR r.scheme NOT IN (2, 3)
             OR {_party_problem_sql()}
             OR r.phase NOT IN ({known}) AS bad_form,
           {resolution} AS resolution,
           {resolution} AND {exceptional} AS fact,
           r.target_sequence IS NOT DISTINCT FROM r.resolves AS found,
           coalesce(r.target_pending, false) AS target_pending,
           r.legs IS NOT DISTINCT FROM r.target_legs AS same
    FROM (SELECT x.*, x.phase = 'pending' AND x.resolves IS NULL AS pending FROM requested AS x) AS r
    OFFSET 0
)
SELECT
    count(*) AS entries,
    coalesce(sum(n), 0) AS postings,
    count(*) FILTER (WHERE pending) AS pending,
    {offenders},
    count(*) FILTER (WHERE resolution AND NOT fact) AS resolved,
    array_agg(sequence) FILTER (WHERE fact) AS resolution_sequence,
    array_agg(resolves) FILTER (WHERE fact) AS resolution_target,
    array_agg(phase) FILTER (WHERE fact) AS resolution_phase,
    array_agg((context -> 'resolves')::text) FILTER (WHERE fact) AS resolution_named,
    array_agg(found) FILTER (WHERE fact) AS resolution_found,
    array_agg(target_pending) FILTER (WHERE fact) AS resolution_pending,
    array_agg(same) FILTER (WHERE fact) AS resolution_same,
    array_agg(sequence) FILTER (WHERE reason = 'reversal') AS reversal_sequence,
    array_agg((context -> 'reverses')::text) FILTER (WHERE reason = 'reversal') AS reversal_named
FROM flagged
"""  # noqa: S608 - assembled from escrow.ledger's constants only; every value is a bound parameter


def _moves_sql(amount: str, where: str) -> str:
    """Each posting of `where` with what it does to its account's signed sums (`ledger.EFFECTS`): `dp` to
    the posted sum, `dt` to posted plus pending, and `moves`, whether its entry's phase is known."""
    return f"""
    SELECT p.account_code, p.sequence, p.leg, e.moves,
           {amount} * e.ep AS dp, {amount} * e.eq AS dq, {amount} * (e.ep + e.eq) AS dt
    FROM postings AS p
    JOIN (SELECT sequence, phase IN ({_known_phases()}) AS moves,
                 {_effects_sql(0)} AS ep, {_effects_sql(1)} AS eq
          FROM journal_entries) AS e ON e.sequence = p.sequence
    WHERE {where}"""  # noqa: S608 - assembled from escrow.ledger's constants only; values are bound


@functools.cache
def _accounts_sql(amount: str) -> str:
    """One chunk's postings per account: their sums into posted and pending, whether an entry of a known
    phase moves the account, its first entry in the chunk; and, for the running overdraft check, the
    extremes of the signed running sums (posted plus pending, and posted; relative to the chunk's start,
    in sequence and leg order) right after a posting that moved them down (the lowest) or up (the
    highest): a guarded account's natural figure is the signed one times ±1 (`ledger.account_sign`), so
    one of the two is its lowest point right after a posting that lowered it. Python adds the chunks up in
    order: a figure that stood at `base` before the chunk fell below zero in it exactly when the natural
    `base + extreme` is below zero."""
    moves = _moves_sql(amount, "p.sequence BETWEEN :lo AND :hi AND e.sequence BETWEEN :lo AND :hi")
    return f"""
SELECT account_code,
       sum(dp) AS posted, sum(dq) AS pending, bool_or(moves) AS moves, min(sequence) AS first_sequence,
       min(total) FILTER (WHERE dt < 0) AS total_down, max(total) FILTER (WHERE dt > 0) AS total_up,
       min(posted_sum) FILTER (WHERE dp < 0) AS posted_down, max(posted_sum) FILTER (WHERE dp > 0) AS posted_up
FROM (
    SELECT m.*, sum(m.dt) OVER w AS total, sum(m.dp) OVER w AS posted_sum
    FROM ({moves}) AS m
    WINDOW w AS (PARTITION BY m.account_code COLLATE "C" ORDER BY m.sequence, m.leg ROWS UNBOUNDED PRECEDING)
) AS r
GROUP BY account_code
"""  # noqa: S608 - assembled from escrow.ledger's constants only; every value is a bound parameter


@functools.cache
def _overdraft_sql(amount: str) -> str:
    """For each (account, its sign, chunk, signed sums before the chunk) in which a natural figure fell
    below zero: the first posting after which it stood below zero having just been lowered, with both
    natural figures."""
    moves = _moves_sql(amount, "p.account_code = f.account AND p.sequence BETWEEN f.lo AND f.hi")
    return f"""
SELECT f.account, x.sequence, x.leg, x.total, x.posted, x.total_fell
FROM unnest(CAST(:accounts AS text[]), CAST(:signs AS int[]), CAST(:los AS bigint[]),
            CAST(:his AS bigint[]), CAST(:totals AS numeric[]), CAST(:posteds AS numeric[]))
     AS f(account, sign, lo, hi, total, posted)
CROSS JOIN LATERAL (
    SELECT r.sequence, r.leg, f.sign * (f.total + r.total) AS total, f.sign * (f.posted + r.posted_sum) AS posted,
           f.sign * r.dt < 0 AND f.sign * (f.total + r.total) < 0 AS total_fell
    FROM (SELECT m.*, sum(m.dt) OVER w AS total, sum(m.dp) OVER w AS posted_sum
          FROM ({moves}) AS m
          WINDOW w AS (ORDER BY m.sequence, m.leg ROWS UNBOUNDED PRECEDING)) AS r
    WHERE (f.sign * r.dt < 0 AND f.sign * (f.total + r.total) < 0)
       OR (f.sign * r.dp < 0 AND f.sign * (f.posted + r.posted_sum) < 0)
    ORDER BY r.sequence, r.leg
    LIMIT 1
) AS x
"""  # noqa: S608 - assembled from escrow.ledger's constants only; every value is a bound parameter


_TWICE_SQL: Final = """
SELECT EXISTS (SELECT 1 FROM journal_entries WHERE resolves IS NOT NULL GROUP BY resolves HAVING count(*) > 1)
"""

_LOOKUP_SQL: Final = """
SELECT e.sequence, e.phase = 'pending' AND e.resolves IS NULL AS pending,
       (SELECT string_agg(p.account_code || E'\\n' || p.amount_fen, E'\\n' ORDER BY p.leg)
        FROM postings AS p WHERE p.sequence = e.sequence) AS legs
FROM journal_entries AS e
WHERE e.sequence = ANY (CAST(:sequences AS bigint[]))
"""


@dataclass
class _Chunk:
    """One chunk's per-account figures: account → row of `_accounts_sql`."""

    lo: int
    hi: int
    accounts: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Facts:
    """What the set-based queries found."""

    entries: int = 0
    postings: int = 0
    pending: int = 0
    resolved: int = 0
    limit: int = ledger.OFFENDER_LIMIT
    offenders: dict[str, list[int]] = field(default_factory=dict)  # local check → offending entries
    counts: dict[str, int] = field(default_factory=dict)  # local check → how many entries offend
    resolutions: list[tuple[int, int, str, object, bool, bool, bool]] = field(default_factory=list)
    reversals: list[tuple[int, object]] = field(default_factory=list)
    chunks: list[_Chunk] = field(default_factory=list)

    def offend(self, check: str, sequences: Sequence[int] | None, count: int) -> None:
        """Add one chunk's offenders of a local check: the first `limit` of them and how many in all."""
        if not count:
            return
        self.counts[check] = self.counts.get(check, 0) + count
        named = self.offenders.setdefault(check, [])
        named.extend(sequences or ())
        named.sort()
        del named[self.limit :]


def _json(value: str | None, default: object) -> object:
    return default if value is None else json.loads(value)


async def _check_entries(conn: AsyncConnection, chunk: _Chunk, all_facts: bool, facts: _Facts) -> None:
    params = {
        "lo": chunk.lo,
        "hi": chunk.hi,
        "reasons": sorted(ledger.REASONS),
        "all_facts": all_facts,
        "limit": facts.limit,
    }
    row = (await conn.execute(text(_entries_sql()), params)).one()
    facts.entries += row.entries
    facts.postings += int(row.postings)
    facts.pending += row.pending
    facts.resolved += row.resolved
    facts.offend(ledger.SEQUENCE, row.sequence_offenders, row.sequence_count)
    facts.offend(ledger.BALANCED, row.balance_offenders, row.balance_count)
    facts.offend(ledger.REQUESTS, row.request_offenders, row.request_count)
    facts.offend(ledger.CHAIN, row.chain_offenders, row.chain_count)
    facts.offend(ledger.WELL_FORMED, row.form_offenders, row.form_count)
    if row.resolution_sequence:
        facts.resolutions.extend(
            zip(
                row.resolution_sequence,
                row.resolution_target,
                row.resolution_phase,
                [_json(v, None) for v in row.resolution_named],
                row.resolution_found,
                row.resolution_pending,
                row.resolution_same,
                strict=True,
            )
        )
    if row.reversal_sequence:
        facts.reversals.extend(
            zip(row.reversal_sequence, [_json(v, "") for v in row.reversal_named], strict=True)
        )


async def _numeric_if_needed(
    conn: AsyncConnection, sql: Callable[[str], str], params: dict[str, Any]
) -> list[Any]:
    """Run with int8 arithmetic on the amounts, or, if that overflows (only an amount of −2^63 fen, which
    "every entry balances" refuses, can make it), again with numeric."""
    await conn.execute(text("SAVEPOINT ggzy_int8"))
    try:
        rows = list(await conn.execute(text(sql("p.amount_fen")), params))
    except DBAPIError as exc:
        if "out of range" not in str(exc.orig):
            raise
        await conn.execute(text("ROLLBACK TO SAVEPOINT ggzy_int8"))
        rows = list(await conn.execute(text(sql("p.amount_fen::numeric")), params))
    await conn.execute(text("RELEASE SAVEPOINT ggzy_int8"))
    return rows


async def _check_accounts(conn: AsyncConnection, chunk: _Chunk) -> None:
    rows = await _numeric_if_needed(conn, _accounts_sql, {"lo": chunk.lo, "hi": chunk.hi})
    chunk.accounts = {row.account_code: row for row in rows}


async def _lookup(conn: AsyncConnection, sequences: set[int]) -> dict[int, tuple[bool, str | None]]:
    if not sequences:
        return {}
    rows = await conn.execute(text(_LOOKUP_SQL), {"sequences": sorted(sequences)})
    return {sequence: (pending, legs) for sequence, pending, legs in rows}


def _valid_target(sequence: int, named: object) -> int | None:
    """The entry a reversal's "reverses" names, when it names an earlier one in ASCII digits."""
    if isinstance(named, str) and named.isascii() and named.isdecimal() and 0 < int(named) < sequence:
        return int(named)
    return None


def _replay_lifecycle(
    facts: _Facts, looked_up: dict[int, tuple[bool, str | None]]
) -> tuple[ledger.Lifecycle, list[tuple[str, str]]]:
    """The resolutions and reversals that came back as facts, in sequence order, through
    `ledger.Lifecycle`, as the reference replays them: what the chunk's window saw of a resolution's
    target, or else what `_lookup` read. Answers every problem, in order, with its check."""
    lifecycle = ledger.Lifecycle()
    failures: list[tuple[str, str]] = []

    def pending(sequence: int) -> bool:
        return looked_up.get(sequence, (False, None))[0]

    events: list[tuple[int, int, Any]] = [(fact[0], 0, fact) for fact in facts.reversals]
    events += [(fact[0], 1, fact) for fact in facts.resolutions]
    events.sort(key=lambda event: (event[0], event[1]))  # a reversal is checked before a resolution
    for _, kind, fact in events:
        if kind == 0:
            n, named = fact
            problem = lifecycle.reversal(n, named, pending)
            if problem is not None:
                failures.append((ledger.REVERSED, problem))
            continue
        n, target, phase, named, found, target_pending, same = fact
        if found:  # the chunk's window saw the target
            problem = lifecycle.resolution(n, phase, target, named, bool(target_pending), bool(same))
        else:
            own, theirs = looked_up.get(n, (False, None))[1], looked_up.get(target, (False, None))[1]
            earlier = 0 < target < n and pending(target)
            problem = lifecycle.resolution(n, phase, target, named, earlier, own == theirs)
        if problem is not None:
            failures.append((ledger.RESOLVED, problem))
    return lifecycle, failures


def _fell(sign: int, base: int, down: Any, up: Any) -> bool:
    """Whether a natural figure (sign × signed) that stood at sign × `base` went below zero right after a
    posting lowered it, given the signed running sum's lowest point after a fall (`down`) and highest
    after a rise (`up`) within the chunk."""
    if sign > 0:
        return down is not None and base + down < 0
    return up is not None and base + up > 0


async def _overdrafts(
    conn: AsyncConnection, facts: _Facts, specs: dict[str, ledger.AccountSpec], findings: ledger.Findings
) -> None:
    """Add the chunks up per guarded account; where a natural figure fell below zero in a chunk, find the
    posting (the first per account), and name the accounts in the order of those postings, as
    `ledger.Verifier`'s running check would."""
    signs = {code: ledger.account_sign(spec) for code, spec in specs.items()}
    base: dict[str, list[int]] = {}  # signed posted plus pending, and posted, before the chunk
    fell: list[tuple[str, int, int, int, int, int]] = []  # account, sign, lo, hi, base
    fallen: set[str] = set()
    for chunk in facts.chunks:
        for code, row in chunk.accounts.items():
            sums = base.setdefault(code, [0, 0])
            sign = signs.get(code, 0)
            if (
                sign
                and code not in fallen
                and (
                    _fell(sign, sums[0], row.total_down, row.total_up)
                    or _fell(sign, sums[1], row.posted_down, row.posted_up)
                )
            ):
                fell.append((code, sign, chunk.lo, chunk.hi, sums[0], sums[1]))
                fallen.add(code)
            sums[0] += int(row.posted) + int(row.pending)
            sums[1] += int(row.posted)
    if not fell:
        return
    columns = ("accounts", "signs", "los", "his", "totals", "posteds")
    params = {name: [f[i] for f in fell] for i, name in enumerate(columns)}
    rows = await _numeric_if_needed(conn, _overdraft_sql, params)
    for row in sorted(rows, key=lambda r: (r.sequence, r.leg)):
        findings.fail(
            ledger.OVERDRAWN,
            ledger.overdraft_detail(
                row.account, row.sequence, int(row.total), int(row.posted), total_fell=row.total_fell
            ),
        )


async def _describe(
    conn: AsyncConnection, offenders: dict[str, list[int]], specs: dict[str, ledger.AccountSpec]
) -> dict[tuple[str, int], str]:
    """The reference's own words (`ledger.entry_problems`) for each offender of the local checks: the
    offending entries and the entries stored just before them, read in three queries."""
    wanted = sorted({sequence for sequences in offenders.values() for sequence in sequences})
    if not wanted:
        return {}
    before: dict[int, int | None] = dict(
        (
            await conn.execute(
                text(
                    "SELECT s, (SELECT max(e.sequence) FROM journal_entries AS e WHERE e.sequence < s) "
                    "FROM unnest(CAST(:wanted AS bigint[])) AS s"
                ),
                {"wanted": wanted},
            )
        ).all()
    )
    rows = {
        row[0]: row
        for row in await conn.execute(
            select(*_ENTRY_COLUMNS).where(
                JournalEntry.sequence.in_(sorted({*wanted, *(p for p in before.values() if p is not None)}))
            )
        )
    }
    legs: dict[int, list[ledger.Posting]] = {}
    for sequence, account, amount in await conn.execute(
        select(Posting.sequence, Posting.account_code, Posting.amount_fen)
        .where(Posting.sequence.in_(wanted))
        .order_by(Posting.sequence, Posting.leg)
    ):
        legs.setdefault(sequence, []).append(ledger.Posting(account, amount))
    words: dict[tuple[str, int], str] = {}
    for check, sequences in offenders.items():
        for sequence in sequences:
            (stored,) = _stored([rows[sequence]], legs)
            prior = before.get(sequence)
            previous = (prior, rows[prior][7]) if prior is not None else (0, ledger.GENESIS)
            found = ledger.entry_problems(stored, previous[0], previous[1], specs)
            words[check, sequence] = found.get(
                check, f"entry {sequence}: the database check and the reference disagree"
            )
    return words


async def _unknown_accounts(conn: AsyncConnection, facts: _Facts, codes: list[str]) -> None:
    """The entries that post to an account the ledger does not know (only a journal written around the
    foreign key gets here): how many, and the first `limit`."""
    if not codes:
        return
    count, sequences = (
        await conn.execute(
            text(
                "SELECT count(DISTINCT sequence), "
                "(array_agg(DISTINCT sequence ORDER BY sequence))[1:CAST(:limit AS integer)] "
                "FROM postings WHERE account_code = ANY (CAST(:codes AS text[]))"
            ),
            {"codes": codes, "limit": facts.limit},
        )
    ).one()
    facts.offend(ledger.KNOWN, sequences, int(count))


_SETTINGS: Final = (
    # one query per core (the connections are the parallelism); sorts in memory
    "SET LOCAL max_parallel_workers_per_gather = 0",
    "SET LOCAL work_mem = '64MB'",
    "SET LOCAL jit = off",
    # each chunk's bounds matter to its plan: no generic plans for the prepared statements
    "SET LOCAL plan_cache_mode = force_custom_plan",
)


async def _verify_postgresql(
    session: AsyncSession, chunk: int, limit: int = ledger.OFFENDER_LIMIT
) -> tuple[list[ledger.Check], str, Any]:
    """Every invariant as set-based queries over what the session sees. A session that has written in
    its transaction runs them itself (its writes are visible to it alone), inside a savepoint rolled back
    after so its settings stay its own. Otherwise its snapshot is exported to fresh read-only connections,
    as many as the server processes one parallel query may use (at least two, at most
    `MAX_VERIFY_CONNECTIONS`), that share the queries out through a queue."""
    own = await session.connection()
    if await own.scalar(text("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")):
        await own.execute(text("SAVEPOINT ggzy_verify"))
        try:
            for setting in _SETTINGS:
                await own.execute(text(setting))
            return await _set_based([own], chunk, limit)
        finally:
            await own.execute(text("ROLLBACK TO SAVEPOINT ggzy_verify"))
            await own.execute(text("RELEASE SAVEPOINT ggzy_verify"))
    snapshot = str(await own.scalar(text("SELECT pg_export_snapshot()")))
    if not re.fullmatch(r"[0-9A-F-]+", snapshot):
        raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
    # As many server processes as PostgreSQL gives one parallel query (the leader and its workers), and
    # at least two; each query itself runs without workers (`_SETTINGS`).
    gather = int(await own.scalar(text("SELECT current_setting('max_parallel_workers_per_gather')::int")))
    async with contextlib.AsyncExitStack() as stack:
        connections = [
            await stack.enter_async_context(own.engine.connect())
            for _ in range(min(MAX_VERIFY_CONNECTIONS, max(2, 1 + gather)))
        ]
        for conn in connections:
            await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            await stack.enter_async_context(conn.begin())
            await conn.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            for setting in _SETTINGS:
                await conn.execute(text(setting))
        return await _set_based(connections, chunk, limit)


async def _set_based(
    connections: Sequence[AsyncConnection], chunk: int, limit: int = ledger.OFFENDER_LIMIT
) -> tuple[list[ledger.Check], str, Any]:
    """The queries of `_verify_postgresql` on one snapshot: per chunk of entries, the per-entry checks
    (`_entries_sql`) and the per-account sums and running figures (`_accounts_sql`), run by one worker per
    distinct connection. Only the first `limit` offenders per check, counts and facts come back;
    `ledger`'s own functions word the details and replay the resolutions and reversals, so this and
    `ledger.Verifier` agree check by check, offender by offender."""
    first = connections[0]
    specs, balances = await _specs_and_balances(first)
    low, high = (
        await first.execute(select(func.min(JournalEntry.sequence), func.max(JournalEntry.sequence)))
    ).one()
    all_facts = bool(await first.scalar(text(_TWICE_SQL)))
    facts = _Facts(limit=limit)
    jobs: deque[tuple[bool, _Chunk]] = deque()
    if low is not None:
        parts = max(1, math.ceil((high - low + 1) / chunk))
        width = math.ceil((high - low + 1) / parts)
        for lo in range(low, high + 1, width):
            part = _Chunk(lo, min(high, lo + width - 1))
            facts.chunks.append(part)
            jobs.extend([(True, part), (False, part)])

    async def work(conn: AsyncConnection) -> None:
        while jobs:
            per_entry, part = jobs.popleft()
            if per_entry:
                await _check_entries(conn, part, all_facts, facts)
            else:
                await _check_accounts(conn, part)

    await asyncio.gather(*(work(conn) for conn in connections))

    # resolutions whose target was outside their chunk's window (or behind a gap), and reversals
    wanted = {n for n, t, _, _, found, _, _ in facts.resolutions if not found and 0 < t < n}
    wanted |= {t for n, t, _, _, found, _, _ in facts.resolutions if not found and 0 < t < n}
    wanted |= {t for n, named in facts.reversals if (t := _valid_target(n, named)) is not None}
    looked_up = await _lookup(first, wanted)
    lifecycle, history = await asyncio.to_thread(_replay_lifecycle, facts, looked_up)
    last = (
        await first.execute(
            select(JournalEntry.sequence, JournalEntry.hash).order_by(JournalEntry.sequence.desc()).limit(1)
        )
    ).first()
    head = (
        await first.execute(select(LedgerHead.sequence, LedgerHead.hash).where(LedgerHead.id == 1))
    ).first()

    resolved = facts.resolved + len(lifecycle.resolved)
    findings = ledger.Findings(
        failures=ledger.Offenders(limit),
        entries=facts.entries,
        postings=facts.postings,
        last_sequence=last[0] if last else 0,
        last_hash=last[1] if last else ledger.GENESIS,
        resolved=resolved,
        still_pending=facts.pending - resolved,
        reversed=len(lifecycle.reversed),
    )
    for check, problem in history:
        findings.fail(check, problem)
    unknown: set[str] = set()
    for part in facts.chunks:
        for code, row in part.accounts.items():
            if row.moves:
                sums = findings.sums.setdefault(code, [0, 0])
                sums[0] += int(row.posted)
                sums[1] += int(row.pending)
            if code not in specs:
                unknown.add(code)
    await _unknown_accounts(first, facts, sorted(unknown))
    await _overdrafts(first, facts, specs, findings)
    words = await _describe(first, facts.offenders, specs)
    for check, sequences in facts.offenders.items():
        for sequence in sequences:
            findings.fail(check, words[check, sequence])
        findings.failures.count(check, facts.counts[check] - len(sequences))
    return ledger.conclude(findings, specs, balances), findings.last_hash, head


_LINK_CHECKS: Final = (ledger.SEQUENCE, ledger.REQUESTS, ledger.CHAIN)


async def chain_after(
    session: AsyncSession, after: int, *, limit: int = ledger.OFFENDER_LIMIT, chunk: int = VERIFY_CHUNK
) -> tuple[int, list[str], int]:
    """On PostgreSQL, set-based: the entries after entry `after`, each checked to follow the one before
    without a gap, to name its stored hash as the previous one (the first: entry `after`'s) and to
    recompute (request and link) — `heads.Extension` at the database's speed. Answers how many entries
    were checked, the first `limit` problems in sequence order (each in `ledger.entry_problems`' words,
    sequence before request before chain) and how many problems in all."""
    conn = await session.connection()
    high = await conn.scalar(select(func.max(JournalEntry.sequence)))
    if high is None or high <= after:
        return 0, [], 0
    facts = _Facts(limit=limit)
    await conn.execute(text("SAVEPOINT ggzy_chain"))
    try:
        for setting in _SETTINGS:
            await conn.execute(text(setting))
        for lo in range(after + 1, high + 1, chunk):
            await _check_entries(conn, _Chunk(lo, min(high, lo + chunk - 1)), False, facts)
        wanted = {check: facts.offenders.get(check, []) for check in _LINK_CHECKS}
        words = await _describe(conn, {c: s for c, s in wanted.items() if s}, {})
    finally:
        await conn.execute(text("ROLLBACK TO SAVEPOINT ggzy_chain"))
        await conn.execute(text("RELEASE SAVEPOINT ggzy_chain"))
    found = sorted(
        (sequence, order, words[check, sequence])
        for order, check in enumerate(_LINK_CHECKS)
        for sequence in wanted[check]
    )
    total = sum(facts.counts.get(check, 0) for check in _LINK_CHECKS)
    return facts.entries, [detail for _, _, detail in found[:limit]], total


async def verify(
    session: AsyncSession,
    *,
    reference: bool = False,
    chunk: int = VERIFY_CHUNK,
    limit: int = ledger.OFFENDER_LIMIT,
) -> list[ledger.Check]:
    """Check every ledger invariant from the stored rows, in `ledger.CHECKS` order, then whether the head
    names the last entry. Each check names every offender up to `limit` and counts them all.

    On PostgreSQL the checks run set-based over what this session sees (`_verify_postgresql`; `chunk`
    entries per per-entry query): on its exported snapshot over two more connections, or, once it has
    written in its transaction, on its own connection. Elsewhere, or with `reference=True`, the journal
    streams once through `ledger.Verifier`. Either way the answers are the same."""
    bind = session.bind
    if not reference and bind is not None and bind.dialect.name == "postgresql":
        checks, last_hash, head = await _verify_postgresql(session, chunk, limit)
    else:
        checks, last_hash, head = await _verify_streaming(session, limit)
    checks.append(
        ledger.Check(
            "the head names the last entry",
            (head is None and last_hash == ledger.GENESIS) or (head is not None and head[1] == last_hash),
            f"head at {head[0] if head else 0}, chain ends {last_hash[:16]}…",
        )
    )
    return checks
