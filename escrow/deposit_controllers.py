"""HTTP routes of one deposit: a bidder's own sub-accounts, a deposit's life from arrival to refund,
guarantees lodged instead of cash, a forfeiture proposed by the agency or the centre, and the centre's
recorded change of payee."""

from __future__ import annotations

import uuid
from typing import Protocol, runtime_checkable

from litestar import Controller, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import requires
from accounts.security import Principal
from escrow import audit, forfeiture, responses, schemas, subaccounts
from escrow.controllers import AGENCY_OR_CENTRE, BIDDER, CENTRE, embargo_for
from rules.calendar import local_date
from rules.schedule import working_calendar
from storage.clock import Clock
from storage.problems import NotFound
from storage.signing import LogSigner


@runtime_checkable
class TenderManager(Protocol):
    """The app's `tender_manager` dependency: whether the principal's agency manages the tender. Tenders
    live above escrow, so the app answers it from their package."""

    async def __call__(self, session: AsyncSession, principal: Principal, tender_id: uuid.UUID) -> bool:
        """True when the principal's agency runs the tender; False for any other tender."""
        ...


class DepositController(Controller):
    """Bidders' deposit sub-accounts and guarantees; forfeiture proposals; approved payee changes."""

    path = "/api/v1/escrow/deposits"
    tags = ["escrow"]

    @get("/", operation_id="my_deposits", guards=[BIDDER])
    async def mine(self, session: AsyncSession, principal: Principal) -> list[responses.DepositRead]:
        """The caller's deposit sub-accounts: the virtual number to pay into, what is required, held, owed."""
        return [
            responses.deposit(d, await subaccounts.held_fen(session, d))
            for d in await subaccounts.my_deposits(session, principal)
        ]

    @get(
        "/{deposit_id:uuid}",
        operation_id="deposit_life",
        guards=[requires("bidder", "auditor", "centre", "supervisor")],
    )
    async def life(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        deposit_id: uuid.UUID,
        clock: Clock,
    ) -> responses.DepositLife:
        """A deposit from arrival to refund (the bidder's own, or any for the centre, auditors, supervisors)."""
        deposit = await subaccounts.get_deposit(session, deposit_id)
        own = deposit.organisation_id == principal.organisation_id and principal.has("bidder")
        if not own and (
            not principal.has("auditor", "centre", "supervisor")
            or (await embargo_for(session, principal, sealed_tenders)).hides(deposit.id)
        ):
            raise NotFound("No such deposit.")
        life = await subaccounts.deposit_life(session, deposit.id)
        cal = await working_calendar(session)
        today = local_date(clock.now())
        return {
            "deposit": responses.deposit(deposit, life["held_fen"]),
            "lines": [responses.bank_line(x) for x in life["lines"]],
            "guarantees": [responses.guarantee(g) for g in life["guarantees"]],
            "eligibility": [responses.eligibility(e) for e in life["eligibility"]],
            "obligations": await audit.obligation_rows(session, life["obligations"], cal, today),
            "instructions": [responses.instruction(i) for i in life["instructions"]],
            "forfeitures": [responses.forfeiture(f) for f in life["forfeitures"]],
            "entries": [responses.entry(e) for e in life["entries"]],
        }

    @post("/{deposit_id:uuid}/guarantees", operation_id="lodge_guarantee", guards=[BIDDER])
    async def lodge(
        self,
        session: AsyncSession,
        principal: Principal,
        deposit_id: uuid.UUID,
        data: schemas.GuaranteeIn,
        clock: Clock,
    ) -> responses.GuaranteeRead:
        """Lodge a bank guarantee or guarantee insurance for the deposit; it counts once verified."""
        row = await subaccounts.submit_guarantee(
            session,
            principal,
            deposit_id,
            kind=data.kind,
            issuer=data.issuer,
            number=data.number,
            amount_fen=data.amount_fen,
            valid_from=data.valid_from,
            valid_until=data.valid_until,
            now=clock.now(),
        )
        return responses.guarantee(row)

    @post("/{deposit_id:uuid}/forfeitures", operation_id="propose_forfeiture", guards=[AGENCY_OR_CENTRE])
    async def propose(
        self,
        session: AsyncSession,
        principal: Principal,
        deposit_id: uuid.UUID,
        data: schemas.ForfeitureIn,
        clock: Clock,
        tender_manager: TenderManager,
    ) -> responses.ForfeitureRead:
        """Propose keeping the deposit (W-06, W-16) with the legal reason; a supervisor decides."""
        deposit = await subaccounts.get_deposit(session, deposit_id)
        # not this agency's tender: for it, the deposit does not exist
        manages = principal.has("centre") or await tender_manager(session, principal, deposit.tender_id)
        row = await forfeiture.propose_for_lot(
            session, principal, deposit_id, data.rule, data.reason, clock.now(), manages=manages
        )
        return responses.forfeiture(row)

    @post("/{deposit_id:uuid}/payee", operation_id="change_payee", guards=[CENTRE])
    async def payee(
        self,
        session: AsyncSession,
        principal: Principal,
        deposit_id: uuid.UUID,
        data: schemas.PayeeIn,
        clock: Clock,
        signer: LogSigner,
    ) -> responses.PayeeChangeRead:
        """Record an approved change of the refund account, with the approval it rests on (hashed into the
        journal; refunds are paid to, and checked against, that entry)."""
        row = await forfeiture.record_payee_change(
            session,
            principal,
            deposit_id,
            payee_name=data.payee_name,
            payee_account=data.payee_account,
            payee_bank=data.payee_bank,
            reason=data.reason,
            approval=data.approval,
            now=clock.now(),
            signer=signer,
        )
        return responses.payee_change(row)
