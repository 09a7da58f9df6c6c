"""Deposits through the API, on both databases: sub-accounts at registration, statement intake (exactly
once), suspense, eligibility at the deadline, W-05 and W-14 refunds with interest through bank batches, a
failed transfer retried, W-16 forfeiture only with a supervisor's approval, the auditors' views, and
`verify` passing after each step."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from bidding import signals
from escrow import sandbox
from tests.helpers import DEADLINE, Actor, Api, SealedBid, shanghai

DEPOSIT = 80_000_000  # the helper tender's lot deposit: 800,000.00 yuan
ESCROW = "31050161393600000888"


async def _rates(api: Api) -> Actor:
    centre = await api.bootstrap_centre()
    for kind, pct, since in (("deposit", "0.35", "2015-10-24"), ("lpr", "3.0", "2025-05-20")):
        r = await api.post(
            "/api/v1/escrow/rates",
            centre,
            json={
                "kind": kind,
                "effective_from": since,
                "annual_percent": pct,
                "source": "PBoC / bank notice",
            },
        )
        assert r.status_code == 201, r.text
    return centre


async def _deposit(api: Api, bidder: Actor) -> dict[str, Any]:
    r = await api.get("/api/v1/escrow/deposits", bidder)
    assert r.status_code == 200, r.text
    assert len(r.json()) == 1
    return dict(r.json()[0])


def _pay(ref: str, deposit: dict[str, Any], amount: int, payer: str, booked: date) -> sandbox.Credit:
    return sandbox.Credit(
        reference=ref,
        amount_fen=amount,
        booked_on=booked,
        payer_name=f"付款人 {payer}",
        payer_account=payer,
        payer_bank="中国工商银行南京分行",
        credited_account=deposit["virtual_number"],
        remittance="投标保证金",
    )


async def _import(api: Api, centre: Actor, content: bytes, fmt: str = "camt053") -> dict[str, Any]:
    r = await api.client.post(
        "/api/v1/escrow/statements",
        params={"format": fmt},
        content=content,
        headers={**centre.headers, "Content-Type": "application/xml"},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _verify(api: Api) -> dict[str, bool]:
    auditor = await api.organisation("auditor")
    r = await api.get("/api/v1/escrow/verify", auditor)
    assert r.status_code == 200, r.text
    checks = {c["name"]: c["ok"] for c in r.json()["checks"]}
    assert all(checks.values()), r.json()
    return checks


async def _batch(api: Api, centre: Actor) -> dict[str, Any]:
    r = await api.post("/api/v1/escrow/batches", centre)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _results(
    api: Api, centre: Actor, batch: dict[str, Any], rejected: dict[str, str] | None = None
) -> dict[str, Any]:
    e2e = [i["end_to_end_id"] for i in batch["instructions"]]
    content = sandbox.results(batch["batch"]["number"], api.clock.now(), e2e, rejected)
    r = await api.client.post(
        "/api/v1/escrow/results",
        params={"format": "pain002"},
        content=content,
        headers={**centre.headers, "Content-Type": "application/xml"},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _open_tender(api: Api) -> tuple[Actor, Actor, dict[str, Any], list[Actor]]:
    centre = await _rates(api)
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidders = [await api.organisation("bidder") for _ in range(4)]
    api.clock.set(shanghai(2026, 3, 5, 10))
    for b in bidders:
        r = await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", b)
        assert r.status_code == 200, r.text
    return centre, agency, tender, bidders


async def test_registration_opens_one_sub_account_per_lot_with_a_checked_virtual_number(api: Api) -> None:
    _centre, _agency, _tender, bidders = await _open_tender(api)
    from escrow.subaccounts import valid_virtual_number

    numbers = set()
    for b in bidders:
        d = await _deposit(api, b)
        assert d["required_fen"] == DEPOSIT and d["status"] == "awaiting" and d["held_fen"] == 0
        assert valid_virtual_number(d["virtual_number"]) and d["virtual_number"].startswith("9558")
        numbers.add(d["virtual_number"])
    assert len(numbers) == 4
    # obtaining the documents again opens nothing new
    r = await api.post(f"/api/v1/tenders/{_tender['id']}/documents/obtain", bidders[0])
    assert r.status_code == 200
    assert (await _deposit(api, bidders[0]))["virtual_number"] in numbers


async def test_statement_lines_are_matched_once_and_wrong_amounts_go_to_suspense(api: Api) -> None:
    centre, _agency, tender, bidders = await _open_tender(api)
    deposits = [await _deposit(api, b) for b in bidders]
    day = date(2026, 3, 10)
    lines = [
        _pay("B0001", deposits[0], DEPOSIT, "6222000000000001", day),
        _pay("B0002", deposits[1], DEPOSIT, "6222000000000002", day),
        _pay("B0003", deposits[2], DEPOSIT - 100, "6222000000000003", day),  # short by 1 yuan
        _pay("B0004", deposits[3], DEPOSIT, "6222000000000001", day),  # the same payer as bidder 0
    ]
    content = sandbox.statement(ESCROW, "STMT-20260310", api.clock.now(), lines)
    first = await _import(api, centre, content)
    assert (first["matched"], first["suspense"], first["new_lines"], first["replay"]) == (3, 1, 4, False)
    again = await _import(api, centre, content)
    assert again["replay"] is True and again["new_lines"] == 0
    # the same lines in another file (e.g. the next day's statement repeating them) are known by reference
    overlap = sandbox.statement(ESCROW, "STMT-20260311", api.clock.now(), lines[:2])
    assert (await _import(api, centre, overlap))["already_known"] == 2
    held = [(await _deposit(api, b))["held_fen"] for b in bidders]
    assert held == [DEPOSIT, DEPOSIT, 0, DEPOSIT]

    # the suspense line: refused to a bidder, matched by the centre with a note
    suspense = (await api.get("/api/v1/escrow/suspense", centre)).json()
    assert [x["reference"] for x in suspense] == ["B0003"]
    assert "where 80000000 fen are due" in suspense[0]["note"]
    path = f"/api/v1/escrow/lines/{suspense[0]['id']}/match"
    body = {"deposit_id": deposits[2]["id"], "note": "付款人来电确认，手续费扣减"}
    assert (await api.post(path, bidders[2], json=body)).status_code == 403
    r = await api.post(path, centre, json=body)
    assert r.status_code == 200, r.text
    assert (await api.post(path, centre, json=body)).status_code == 409  # matched once
    assert (await _deposit(api, bidders[2]))["held_fen"] == DEPOSIT - 100

    # W-18: two bidders' deposits from one account, recorded by the job the import queued, shown after the
    # opening (W-20)
    from storage.db import transaction

    await api.run_jobs()
    async with transaction(api.runtime.sessionmaker, read_only=True) as session:
        kinds = {s.kind for s in await signals.signals_of(session, uuid.UUID(tender["id"]))}
    assert "deposit_same_payer" in kinds
    supervisor = await api.organisation("supervisor")
    early = await api.get(f"/api/v1/tenders/{tender['id']}/collusion-signals", supervisor)
    assert (early.status_code, early.json()["rule"]) == (403, "W-20")
    await _verify(api)


async def test_only_the_agency_running_the_tender_may_propose_to_keep_a_deposit(api: Api) -> None:
    _centre, agency, _tender, bidders = await _open_tender(api)
    deposit = await _deposit(api, bidders[0])
    path = f"/api/v1/escrow/deposits/{deposit['id']}/forfeitures"
    body = {"rule": "W-06", "reason": "the bidder refused to sign the contract"}
    # for another agency the deposit does not exist
    other = await api.post(path, await api.organisation("agency"), json=body)
    assert (other.status_code, other.json()["detail"]) == (404, "No such deposit.")
    r = await api.post(path, agency, json=body)
    assert r.status_code == 201, r.text
    assert (r.json()["deposit_id"], r.json()["rule"], r.json()["status"]) == (
        deposit["id"],
        "W-06",
        "proposed",
    )


async def test_a_withdrawn_bid_is_refunded_within_five_days_and_a_failed_transfer_is_retried(
    api: Api,
) -> None:
    centre, _agency, tender, bidders = await _open_tender(api)
    deposits = [await _deposit(api, b) for b in bidders]
    lines = [
        _pay(f"W{i}", d, DEPOSIT, f"62220000000001{i:02d}", date(2026, 3, 10)) for i, d in enumerate(deposits)
    ]
    await _import(api, centre, sandbox.statement(ESCROW, "S1", api.clock.now(), lines))
    bid = await api.bid(bidders[0], tender, 3_900_000_000, obtain=False)
    api.clock.set(shanghai(2026, 3, 12, 15))
    r = await api.post(f"/api/v1/tenders/{tender['id']}/bids/{bid.bid_id}/withdraw", bidders[0])
    assert r.status_code == 200, r.text
    obligations = (await api.get("/api/v1/escrow/obligations", centre)).json()
    assert [(o["rule"], o["due_on"], o["status"]) for o in obligations] == [("W-05", "2026-03-17", "due")]

    batch = await _batch(api, centre)
    assert len(batch["instructions"]) == 1
    ins = batch["instructions"][0]
    assert ins["amount_fen"] == DEPOSIT and ins["interest_fen"] == 0  # W-05: no interest
    assert ins["payee_account"] == "6222000000000100"
    # a second batch finds nothing due: the obligation has a live instruction
    assert (await _batch(api, centre))["batch"] is None

    # the bank file reads the same every time
    f1 = await api.get(
        f"/api/v1/escrow/batches/{batch['batch']['id']}/file", centre, params={"format": "xml"}
    )
    f2 = await api.get(
        f"/api/v1/escrow/batches/{batch['batch']['id']}/file", centre, params={"format": "xml"}
    )
    assert f1.status_code == 200 and f1.content == f2.content and ins["end_to_end_id"].encode() in f1.content

    # the bank refuses it: voided, queued again, paid by the next batch
    out = await _results(api, centre, batch, {ins["end_to_end_id"]: "AC04"})
    assert (out["paid"], out["failed"]) == (0, 1)
    assert (await _deposit(api, bidders[0]))["held_fen"] == DEPOSIT
    retry = await _batch(api, centre)
    assert (
        len(retry["instructions"]) == 1 and retry["instructions"][0]["end_to_end_id"] != ins["end_to_end_id"]
    )
    out = await _results(api, centre, retry)
    assert out["paid"] == 1
    # results imported again change nothing; a contradicting result is reported, not applied
    assert (await _results(api, centre, retry))["unchanged"] == 1
    contradiction = await _results(api, centre, retry, {retry["instructions"][0]["end_to_end_id"]: "AC04"})
    assert contradiction["problems"] and contradiction["failed"] == 0
    mine = await _deposit(api, bidders[0])
    assert mine["held_fen"] == 0 and mine["status"] == "refunded"
    await _verify(api)


async def _contracted(api: Api) -> tuple[Actor, Actor, dict[str, Any], list[SealedBid], list[Actor]]:
    centre, agency, tender, bidders = await _open_tender(api)
    deposits = [await _deposit(api, b) for b in bidders]
    lines = [
        _pay(f"C{i}", d, DEPOSIT, f"62220000000002{i:02d}", date(2026, 3, 10))
        for i, d in enumerate(deposits[:3])
    ]
    # the bank's quarterly interest on the escrow account (结息), which funds the interest paid to bidders
    lines.append(sandbox.Credit("INT-2026Q1", 250_000, date(2026, 3, 21), interest=True))
    await _import(api, centre, sandbox.statement(ESCROW, "S1", api.clock.now(), lines))
    bids = [await api.bid(b, tender, 4_000_000_000 - i, obtain=False) for i, b in enumerate(bidders[:3])]
    await api.award_lowest(agency, tender, bids)
    return centre, agency, tender, bids, bidders


async def test_eligibility_is_recorded_at_the_deadline(api: Api) -> None:
    _centre, _agency, _tender, _bids, bidders = await _contracted(api)
    life = (
        await api.get(f"/api/v1/escrow/deposits/{(await _deposit(api, bidders[0]))['id']}", bidders[0])
    ).json()
    assert [(e["moment"], e["eligible"]) for e in life["eligibility"]] == [("bid_deadline", True)]
    # the fourth bidder registered but never paid nor bid: no eligibility asked, nothing held, nothing owed
    fourth = await _deposit(api, bidders[3])
    assert fourth["held_fen"] == 0 and fourth["status"] == "awaiting"


async def test_the_contract_refunds_every_deposit_with_interest(api: Api) -> None:
    centre, agency, tender, bids, bidders = await _contracted(api)
    award = (await api.get(f"/api/v1/tenders/{tender['id']}/awards")).json()[0]
    r = await api.contract(agency, tender["id"], award["id"], bids[2].price_fen)
    assert r.status_code == 201, r.text
    obligations = (
        await api.get("/api/v1/escrow/obligations", centre, params={"tender_id": tender["id"]})
    ).json()
    assert sorted(o["rule"] for o in obligations) == ["W-14"] * 3
    batch = await _batch(api, centre)
    days = (api.clock.now().date() - date(2026, 3, 10)).days  # arrival day to the day before payment
    expected = (DEPOSIT * 35 * days + 360 * 10_000 // 2) // (360 * 10_000)  # 0.35 % ÷ 360, half-up
    for ins in batch["instructions"]:
        assert ins["interest_fen"] == expected, (days, ins)
        assert ins["amount_fen"] == DEPOSIT + expected
    await _results(api, centre, batch)
    for b in bidders[:3]:
        d = await _deposit(api, b)
        assert d["status"] == "refunded" and d["held_fen"] == 0
    # the auditors' exports
    auditor = await api.organisation("auditor")
    xlsx = await api.get(f"/api/v1/escrow/audit/tenders/{tender['id']}", auditor, params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    csv = await api.get("/api/v1/escrow/trial-balance", auditor, params={"format": "csv"})
    assert csv.status_code == 200 and "bank:escrow" in csv.text
    await _verify(api)


async def test_a_forfeiture_moves_money_only_on_a_supervisors_approval(api: Api) -> None:
    centre, agency, tender, _bids, bidders = await _contracted(api)
    award = (await api.get(f"/api/v1/tenders/{tender['id']}/awards")).json()[0]
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/awards/{award['id']}/decline",
        agency,
        json={"reason": "中标人拒绝签订合同且未说明正当理由"},
    )
    assert r.status_code == 200, r.text
    proposed = (await api.get("/api/v1/escrow/forfeitures", centre, params={"status": "proposed"})).json()
    assert len(proposed) == 1 and proposed[0]["rule"] == "W-16"
    winner = await _deposit(api, bidders[2])
    assert winner["held_fen"] == DEPOSIT and "forfeiture proposed" in winner["hold_reason"]
    path = f"/api/v1/escrow/forfeitures/{proposed[0]['id']}/decision"
    body = {"approve": True, "note": "经核实中标人无正当理由拒签 (W-16)"}
    assert (await api.post(path, agency, json=body)).status_code == 403
    assert (await api.post(path, centre, json=body)).status_code == 403
    supervisor = await api.organisation("supervisor")
    r = await api.post(path, supervisor, json=body)
    assert r.status_code == 200, r.text
    assert (await api.post(path, supervisor, json=body)).status_code == 409
    winner = await _deposit(api, bidders[2])
    assert winner["status"] == "forfeited" and winner["held_fen"] == 0
    trial = (await api.get("/api/v1/escrow/trial-balance", supervisor)).json()
    forfeited = next(a for a in trial["accounts"] if a["account"] == "forfeited")
    assert forfeited["credit_fen"] == DEPOSIT
    await _verify(api)


async def test_overdue_refunds_turn_red_and_are_flagged(api: Api) -> None:
    centre, _agency, tender, bidders = await _open_tender(api)
    d = await _deposit(api, bidders[0])
    await _import(
        api,
        centre,
        sandbox.statement(
            ESCROW, "S1", api.clock.now(), [_pay("R1", d, DEPOSIT, "6222000000000999", date(2026, 3, 6))]
        ),
    )
    bid = await api.bid(bidders[0], tender, 3_900_000_000, obtain=False)
    api.clock.set(shanghai(2026, 3, 12, 15))
    assert (
        await api.post(f"/api/v1/tenders/{tender['id']}/bids/{bid.bid_id}/withdraw", bidders[0])
    ).status_code == 200
    supervisor = await api.organisation("supervisor")

    async def light() -> str:
        rows = (await api.get("/api/v1/escrow/obligations", supervisor)).json()
        return str(rows[0]["light"])

    assert await light() == "green"
    api.clock.set(shanghai(2026, 3, 16, 10))  # Monday; due Tuesday 17th: one working day left
    assert await light() == "yellow"
    await api.at(shanghai(2026, 3, 18, 10))
    assert await light() == "red"
    overdue = (await api.get("/api/v1/escrow/audit/overdue", supervisor)).json()
    assert len(overdue) == 1 and overdue[0]["flagged_at"] is not None
    await _verify(api)


async def test_bidders_see_only_their_own_deposits(api: Api) -> None:
    _centre, agency, _tender, bidders = await _open_tender(api)
    other = await _deposit(api, bidders[1])
    assert (await api.get(f"/api/v1/escrow/deposits/{other['id']}", bidders[0])).status_code == 404
    assert (await api.get(f"/api/v1/escrow/deposits/{other['id']}", agency)).status_code == 403
    assert (await api.get("/api/v1/escrow/deposits", agency)).status_code == 403
    assert (await api.get("/api/v1/escrow/verify", bidders[0])).status_code == 403
    assert (await api.post("/api/v1/escrow/batches", bidders[0])).status_code == 403


async def test_a_signed_notification_credits_at_once_and_the_statement_repeating_it_changes_nothing(
    api: Api,
) -> None:
    import json

    from escrow import bankfiles
    from tests.conftest import BANK_SECRET

    centre, _agency, _tender, bidders = await _open_tender(api)
    d = await _deposit(api, bidders[0])
    body = json.dumps(
        {
            "reference": "N0001",
            "booked_on": "2026-03-06",
            "direction": "credit",
            "amount_fen": DEPOSIT,
            "currency": "CNY",
            "payer_name": "南京某建设集团有限公司",
            "payer_account": "6222000000000777",
            "payer_bank": "中国银行南京分行",
            "credited_account": d["virtual_number"],
            "remittance": "投标保证金",
        },
        ensure_ascii=False,
    ).encode()
    path = "/api/v1/escrow/bank/notifications"
    r = await api.client.post(path, content=body)
    assert r.status_code == 401  # no signature: refused before the body is read
    forged = bankfiles.sign_notification(body, b"not the secret", api.clock.now())
    r = await api.client.post(path, content=body, headers={"X-Bank-Signature": forged})
    assert r.status_code == 401 and r.json()["code"] == "notification.signature"
    signed = bankfiles.sign_notification(body, BANK_SECRET.encode(), api.clock.now())
    r = await api.client.post(path, content=body, headers={"X-Bank-Signature": signed})
    assert r.status_code == 200, r.text
    assert r.json()["matched"] == 1
    assert (await api.client.post(path, content=body, headers={"X-Bank-Signature": signed})).json()[
        "replay"
    ] is True
    assert (await _deposit(api, bidders[0]))["held_fen"] == DEPOSIT
    line = sandbox.Credit(
        "N0001",
        DEPOSIT,
        date(2026, 3, 6),
        "南京某建设集团有限公司",
        "6222000000000777",
        "中国银行南京分行",
        d["virtual_number"],
    )
    day = await _import(api, centre, sandbox.statement(ESCROW, "S0306", api.clock.now(), [line]))
    assert day["already_known"] == 1 and day["matched"] == 0
    assert (await _deposit(api, bidders[0]))["held_fen"] == DEPOSIT
    await _verify(api)


async def test_a_verified_guarantee_makes_a_bidder_eligible_and_is_released_not_refunded(api: Api) -> None:
    centre, _agency, tender, bidders = await _open_tender(api)
    d = await _deposit(api, bidders[0])
    body = {
        "kind": "bank_guarantee",
        "issuer": "中国建设银行南京分行",
        "number": "BG-2026-0001",
        "amount_fen": DEPOSIT,
        "valid_from": "2026-03-01",
        "valid_until": "2026-06-30",
    }
    r = await api.post(f"/api/v1/escrow/deposits/{d['id']}/guarantees", bidders[0], json=body)
    assert r.status_code == 201, r.text
    assert (
        await api.post(f"/api/v1/escrow/deposits/{d['id']}/guarantees", bidders[1], json=body)
    ).status_code == 404
    decision = f"/api/v1/escrow/guarantees/{r.json()['id']}/decision"
    assert (await api.post(decision, bidders[0], json={"approve": True, "note": "x"})).status_code == 403
    r = await api.post(decision, centre, json={"approve": True, "note": "已通过开函银行系统核验"})
    assert r.status_code == 200 and r.json()["status"] == "verified"
    # the verified guarantee backs the bid: no cash is paid
    bid = await api.bid(bidders[0], tender, 3_900_000_000, obtain=False, deposit=False)
    api.clock.set(shanghai(2026, 3, 12, 15))
    assert (
        await api.post(f"/api/v1/tenders/{tender['id']}/bids/{bid.bid_id}/withdraw", bidders[0])
    ).status_code == 200
    life = (await api.get(f"/api/v1/escrow/deposits/{d['id']}", bidders[0])).json()
    assert [g["status"] for g in life["guarantees"]] == ["released"]
    assert life["guarantees"][0]["release_rule"] == "W-05"
    assert life["obligations"] == []  # no money moved, none owed
    await _verify(api)


async def test_a_refund_goes_to_the_paying_account_unless_an_approved_change_is_recorded(api: Api) -> None:
    from sqlalchemy import update

    from escrow.models import RefundInstruction
    from storage.db import transaction

    centre, _agency, tender, bidders = await _open_tender(api)
    d = await _deposit(api, bidders[0])
    paid = _pay("P1", d, DEPOSIT, "6222000000000444", date(2026, 3, 6))
    await _import(api, centre, sandbox.statement(ESCROW, "S1", api.clock.now(), [paid]))
    bid = await api.bid(bidders[0], tender, 3_900_000_000, obtain=False)
    api.clock.set(shanghai(2026, 3, 12, 15))
    assert (
        await api.post(f"/api/v1/tenders/{tender['id']}/bids/{bid.bid_id}/withdraw", bidders[0])
    ).status_code == 200
    change = {
        "payee_name": "南京某建设集团有限公司",
        "payee_account": "6222000000000555",
        "payee_bank": "中国银行南京分行",
        "reason": "原付款账户已销户",
        "approval": "中心审批单 2026-017（附销户证明）",
    }
    path = f"/api/v1/escrow/deposits/{d['id']}/payee"
    assert (await api.post(path, bidders[0], json=change)).status_code == 403
    incomplete = await api.post(path, centre, json={**change, "approval": ""})
    assert incomplete.status_code == 400
    assert (await api.post(path, centre, json=change)).status_code == 201
    batch = await _batch(api, centre)
    assert batch["instructions"][0]["payee_account"] == "6222000000000555"
    assert batch["instructions"][0]["payee_basis"].startswith("change:")
    await _verify(api)

    # an instruction rewritten to another account behind the service's back is caught by the auditor
    async with transaction(api.runtime.sessionmaker) as session:
        await session.execute(update(RefundInstruction).values(payee_account="6222000000000666"))
    auditor = await api.organisation("auditor")
    checks = {c["name"]: c for c in (await api.get("/api/v1/escrow/verify", auditor)).json()["checks"]}
    assert not checks["refunds went to the paying account"]["ok"]
    assert "6222000000000666" in checks["refunds went to the paying account"]["detail"]


async def _withdrawn_and_batched(
    api: Api, payers: list[str]
) -> tuple[Actor, list[dict[str, Any]], dict[str, Any]]:
    """Bidders pay from `payers`, bid and withdraw (W-05); the centre instructs the refunds."""
    centre, _agency, tender, bidders = await _open_tender(api)
    deposits = [await _deposit(api, b) for b in bidders[: len(payers)]]
    paid = [
        _pay(f"P{i}", d, DEPOSIT, payer, date(2026, 3, 6))
        for i, (d, payer) in enumerate(zip(deposits, payers, strict=True))
    ]
    await _import(api, centre, sandbox.statement(ESCROW, "S1", api.clock.now(), paid))
    bids = [await api.bid(b, tender, 3_900_000_000, obtain=False) for b in bidders[: len(payers)]]
    api.clock.set(shanghai(2026, 3, 12, 15))
    for b, bid in zip(bidders[: len(payers)], bids, strict=True):
        r = await api.post(f"/api/v1/tenders/{tender['id']}/bids/{bid.bid_id}/withdraw", b)
        assert r.status_code == 200, r.text
    return centre, deposits, await _batch(api, centre)


async def test_a_refunds_payee_and_the_deposits_payer_rewritten_together_are_caught_by_the_hashed_entries(
    api: Api,
) -> None:
    from sqlalchemy import update

    from escrow.models import Deposit, RefundInstruction
    from storage.db import transaction

    centre, deposits, batch = await _withdrawn_and_batched(api, ["6222000000000444"])
    await _verify(api)
    (instruction,) = batch["instructions"]
    # someone with the database rewrites the refund's payee and, to match, the deposit's payer on record
    async with transaction(api.runtime.sessionmaker) as session:
        await session.execute(
            update(RefundInstruction).values(payee_account="6222000000000666", payee_name="某某贸易商行")
        )
        await session.execute(
            update(Deposit).values(payer_account="6222000000000666", payer_name="某某贸易商行")
        )
    # the tender is still open: the offenders name its sub-accounts, which only the centre sees (W-20)
    result = (await api.get("/api/v1/escrow/verify", centre)).json()
    checks = {c["name"]: c for c in result["checks"]}
    assert result["ok"] is False
    assert {name for name, c in checks.items() if not c["ok"]} == {
        "refunds went to the paying account",
        "each deposit's payer is the one its hashed arrival names",
    }
    entry = instruction["pending_sequence"]
    assert checks["refunds went to the paying account"]["offenders"] == [
        f"instruction {instruction['end_to_end_id']} pays 6222000000000666 (某某贸易商行), but its hashed entry "
        f"{entry} names 6222000000000444 (付款人 6222000000000444)"
    ]
    assert checks["each deposit's payer is the one its hashed arrival names"]["offenders"] == [
        f"{deposits[0]['account_code']} is on record as paid from 6222000000000666 (某某贸易商行), but its "
        "hashed arrival entry 1 names 6222000000000444 (付款人 6222000000000444)"
    ]
    # and the bank is never sent the rewritten payee
    r = await api.get(f"/api/v1/escrow/batches/{batch['batch']['id']}/file", centre, params={"format": "xml"})
    assert r.status_code == 409, r.text
    assert instruction["end_to_end_id"] in r.json()["detail"]


async def test_two_rewritten_refunds_are_both_named(api: Api) -> None:
    from sqlalchemy import update

    from escrow.models import RefundInstruction
    from storage.db import transaction

    centre, _deposits, batch = await _withdrawn_and_batched(api, ["6222000000000444", "6222000000000445"])
    async with transaction(api.runtime.sessionmaker) as session:
        await session.execute(update(RefundInstruction).values(payee_account="6222000000000666"))
    # the tender is still open: the offenders name its sub-accounts, which only the centre sees (W-20)
    checks = {c["name"]: c for c in (await api.get("/api/v1/escrow/verify", centre)).json()["checks"]}
    payee = checks["refunds went to the paying account"]
    named = sorted(i["end_to_end_id"] for i in batch["instructions"])
    assert payee["ok"] is False and payee["total"] == 2
    assert sorted(o.split()[1] for o in payee["offenders"]) == named
    assert payee["detail"].endswith("(and 1 more)")


async def test_bank_files_that_are_not_what_they_claim_are_refused_naming_the_fault(api: Api) -> None:
    from escrow import bankfiles
    from tests.conftest import BANK_SECRET

    centre = await api.bootstrap_centre()
    bad = [
        b"",
        b"\x00\xff" * 50,
        b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><Document>&a;</Document>",
        b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'><BkToCstmrStmt/></Document>",
        b"reference,booked_on\nR1,2026-13-40\n",
    ]
    for fmt in ("camt053", "csv"):
        for content in bad:
            r = await api.client.post(
                "/api/v1/escrow/statements", params={"format": fmt}, content=content, headers=centre.headers
            )
            assert r.status_code in (400, 422), (fmt, content[:30], r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json().get("code"), r.json()
    for fmt in ("pain002", "csv"):
        for content in bad:
            r = await api.client.post(
                "/api/v1/escrow/results", params={"format": fmt}, content=content, headers=centre.headers
            )
            assert r.status_code in (400, 422), (fmt, content[:30], r.status_code, r.text)
    r = await api.client.post(
        "/api/v1/escrow/statements", params={"format": "mt940"}, content=b"x", headers=centre.headers
    )
    assert r.status_code == 400
    body = b'{"reference": "X"}'
    signed = bankfiles.sign_notification(body, BANK_SECRET.encode(), api.clock.now())
    r = await api.client.post(
        "/api/v1/escrow/bank/notifications", content=body, headers={"X-Bank-Signature": signed}
    )
    assert r.status_code == 422 and r.json()["code"].startswith(("field.", "notification."))
    stale = bankfiles.sign_notification(body, BANK_SECRET.encode(), api.clock.now() - timedelta(hours=1))
    r = await api.client.post(
        "/api/v1/escrow/bank/notifications", content=body, headers={"X-Bank-Signature": stale}
    )
    assert r.status_code == 401 and r.json()["code"] == "notification.stale"
    # nothing was taken in
    assert (await api.get("/api/v1/escrow/statements", centre)).json() == []


async def test_too_few_bids_owe_every_deposit_back(api: Api) -> None:
    centre, _agency, tender, bidders = await _open_tender(api)
    deposits = [await _deposit(api, b) for b in bidders]
    lines = [
        _pay(f"F{i}", d, DEPOSIT, f"62220000000003{i:02d}", date(2026, 3, 10)) for i, d in enumerate(deposits)
    ]
    await _import(api, centre, sandbox.statement(ESCROW, "S1", api.clock.now(), lines))
    for b in bidders[:2]:
        await api.bid(b, tender, 3_900_000_000, obtain=False)
    await api.at(DEADLINE)  # two bids: W-09, the lot fails and every deposit is owed back
    rows = (await api.get("/api/v1/escrow/obligations", centre, params={"tender_id": tender["id"]})).json()
    assert sorted((o["rule"], o["status"]) for o in rows) == [("W-09", "due")] * 4
    assert {o["due_on"] for o in rows} == {"2026-03-30"}  # 5 days from Mon 23 March: Sat 28 → Mon 30 (P-02)
    await _verify(api)


async def test_a_terminated_tender_refunds_with_interest(api: Api) -> None:
    centre, agency, other, bidders = await _open_tender(api)
    bidder = bidders[0]
    d = await _deposit(api, bidder)
    await _import(
        api,
        centre,
        sandbox.statement(
            ESCROW,
            "S2",
            api.clock.now(),
            [
                _pay("T1", d, DEPOSIT, "6222000000000888", date(2026, 3, 6)),
                sandbox.Credit("INT-T", 50_000, date(2026, 3, 6), interest=True),
            ],
        ),
    )
    api.clock.set(shanghai(2026, 3, 16, 9))
    r = await api.post(
        f"/api/v1/tenders/{other['id']}/cancel", agency, json={"reason": "项目资金未落实，终止招标"}
    )
    assert r.status_code == 200, r.text
    rows = (await api.get("/api/v1/escrow/obligations", centre, params={"tender_id": other["id"]})).json()
    assert [(o["rule"], o["due_on"]) for o in rows] == [("T-END", "2026-03-23")]
    batch = await _batch(api, centre)
    assert batch["skipped"] == []
    mine = [i for i in batch["instructions"] if i["account_code"] == d["account_code"]]
    assert mine and mine[0]["interest_fen"] > 0  # bank interest for the holding period (条例 31)


async def test_a_rejected_forfeiture_owes_the_deposit_back_under_the_lots_refund_rule(api: Api) -> None:
    centre, agency, tender, bids, bidders = await _contracted(api)
    tid = tender["id"]
    award = (await api.get(f"/api/v1/tenders/{tid}/awards")).json()[0]
    r = await api.post(
        f"/api/v1/tenders/{tid}/awards/{award['id']}/decline",
        agency,
        json={"reason": "中标人未按期提交履约担保"},
    )
    assert r.status_code == 200, r.text
    r = await api.post(
        f"/api/v1/tenders/{tid}/award",
        agency,
        json={"lots": [{"lot_id": bids[0].lot_id, "bid_id": bids[1].bid_id}]},
    )
    assert r.status_code == 201, r.text
    second = r.json()[0]
    r = await api.contract(agency, tid, second["id"], bids[1].price_fen)
    assert r.status_code == 201, r.text
    winner = await _deposit(api, bidders[2])
    rows = (await api.get("/api/v1/escrow/obligations", centre, params={"tender_id": tid})).json()
    assert sorted(o["rule"] for o in rows) == ["W-14", "W-14"]  # the declined winner's waits for the decision
    supervisor = await api.organisation("supervisor")
    [proposal] = (
        await api.get("/api/v1/escrow/forfeitures", supervisor, params={"status": "proposed"})
    ).json()
    r = await api.post(
        f"/api/v1/escrow/forfeitures/{proposal['id']}/decision",
        supervisor,
        json={"approve": False, "note": "履约担保逾期系银行系统故障所致，不予没收"},
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    rows = (await api.get("/api/v1/escrow/obligations", centre, params={"tender_id": tid})).json()
    assert sorted(o["rule"] for o in rows) == ["W-14"] * 3
    assert (await _deposit(api, bidders[2]))["status"] == "refunding"
    assert winner["held_fen"] == DEPOSIT
    await _verify(api)
