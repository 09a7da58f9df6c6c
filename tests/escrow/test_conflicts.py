"""Bank lines the bank later reports otherwise, through the API on both databases: a line with a known
reference but another amount, payer or date is a conflict (both versions and the file kept, never
"already known" and never dropped), auditors see it, the deposit checks fail while it is open, and the centre
resolves it with a recorded decision — the version on record stands, or the bank's later version is taken
with a correcting entry when money must move."""

from __future__ import annotations

from datetime import date
from typing import Any

from escrow import sandbox
from tests.escrow.test_deposits import DEPOSIT, ESCROW, _deposit, _import, _open_tender, _pay
from tests.helpers import Actor, Api, shanghai

STRANGER = "6228480000000001"  # pays into no sub-account: its lines go to suspense
NOT_OPEN = "no bank line conflict left open"


def _stranger(ref: str, amount: int, booked: date, payer: str = STRANGER) -> sandbox.Credit:
    return sandbox.Credit(
        reference=ref,
        amount_fen=amount,
        booked_on=booked,
        payer_name="某某公司",
        payer_account=payer,
        payer_bank="中国农业银行南京分行",
        credited_account="95580000000000000",
        remittance="保证金",
    )


async def _checks(api: Api) -> dict[str, dict[str, Any]]:
    auditor = await api.organisation("auditor")
    r = await api.get("/api/v1/escrow/verify", auditor)
    assert r.status_code == 200, r.text
    return {c["name"]: c for c in r.json()["checks"]}


async def _conflicts(api: Api, actor: Actor, **params: str) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/escrow/conflicts", actor, params=params)
    assert r.status_code == 200, r.text
    return list(r.json())


async def test_a_known_reference_with_another_amount_or_payer_is_a_conflict_not_already_known(
    api: Api,
) -> None:
    centre = await api.bootstrap_centre()
    day = date(2026, 3, 2)
    first = sandbox.statement(
        ESCROW, "S1", api.clock.now(), [_stranger("R1", 500_000, day), _stranger("R2", 700_000, day)]
    )
    assert (await _import(api, centre, first))["new_lines"] == 2
    later = sandbox.statement(
        ESCROW,
        "S2",
        api.clock.now(),
        [
            _stranger("R1", 600_000, day),  # another amount
            _stranger("R2", 700_000, day, payer="6228480000000099"),  # another payer
            _stranger("R3", 100_000, day),  # a new line beside them
        ],
    )
    out = await _import(api, centre, later)
    assert (out["new_lines"], out["already_known"], out["conflicting"]) == (1, 0, 2)
    assert out["conflicts"] == [
        "R1: the bank now says amount_fen 600000, not 500000",
        "R2: the bank now says payer_account 6228480000000099, not 6228480000000001",
    ]

    auditor = await api.organisation("auditor")
    listed = await _conflicts(api, auditor, status="open")
    assert [(c["reference"], c["status"], c["differences"]) for c in listed] == [
        ("R1", "open", {"amount_fen": {"known": 500_000, "incoming": 600_000}}),
        ("R2", "open", {"payer_account": {"known": STRANGER, "incoming": "6228480000000099"}}),
    ]
    # both versions are kept in full, with the statement that brought the other one
    r1 = listed[0]
    assert r1["known"]["amount_fen"] == 500_000 and r1["incoming"]["amount_fen"] == 600_000
    statements = {
        s["bank_statement_id"]: s for s in (await api.get("/api/v1/escrow/statements", auditor)).json()
    }
    assert r1["statement_id"] == statements["S2"]["id"]

    # the same later file again changes nothing; the line on record is unchanged
    again = await _import(api, centre, later)
    assert again["replay"] is True
    assert len(await _conflicts(api, auditor)) == 2

    checks = await _checks(api)
    assert not checks[NOT_OPEN]["ok"]
    assert checks[NOT_OPEN]["total"] == 2
    assert [o.split(":")[0] for o in checks[NOT_OPEN]["offenders"]] == ["bank line R1", "bank line R2"]


async def test_the_centre_resolves_a_conflict_by_keeping_the_version_on_record(api: Api) -> None:
    centre = await api.bootstrap_centre()
    day = date(2026, 3, 2)
    await _import(
        api, centre, sandbox.statement(ESCROW, "S1", api.clock.now(), [_stranger("R1", 500_000, day)])
    )
    await _import(
        api, centre, sandbox.statement(ESCROW, "S2", api.clock.now(), [_stranger("R1", 5_000, day)])
    )
    (conflict,) = await _conflicts(api, centre)
    path = f"/api/v1/escrow/conflicts/{conflict['id']}/resolution"
    supervisor = await api.organisation("supervisor")
    assert (await api.post(path, supervisor, json={"decision": "known", "note": "x"})).status_code == 403
    r = await api.post(path, centre, json={"decision": "known", "note": "银行来函：第二份对账单金额录入错误"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["status"], done["decision"], done["entry_sequence"]) == ("resolved", "known", None)
    assert done["note"] == "银行来函：第二份对账单金额录入错误"
    again = await api.post(path, centre, json={"decision": "incoming", "note": "改判"})
    assert again.status_code == 409
    assert await _conflicts(api, centre, status="open") == []
    assert [c["decision"] for c in await _conflicts(api, centre, status="resolved")] == ["known"]
    checks = await _checks(api)
    assert all(c["ok"] for c in checks.values()), checks


async def test_taking_the_banks_later_amount_moves_the_difference_by_a_correcting_entry(api: Api) -> None:
    centre, _agency, _tender, bidders = await _open_tender(api)
    d = await _deposit(api, bidders[0])
    day = date(2026, 3, 6)
    await _import(
        api,
        centre,
        sandbox.statement(ESCROW, "S1", api.clock.now(), [_pay("P1", d, DEPOSIT, "6222000000000444", day)]),
    )
    short = DEPOSIT - 1_000_000
    out = await _import(
        api,
        centre,
        sandbox.statement(ESCROW, "S2", api.clock.now(), [_pay("P1", d, short, "6222000000000444", day)]),
    )
    assert out["conflicting"] == 1
    (conflict,) = await _conflicts(api, centre)
    r = await api.post(
        f"/api/v1/escrow/conflicts/{conflict['id']}/resolution",
        centre,
        json={"decision": "incoming", "note": "银行更正：实际到账 790,000.00 元"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "incoming" and r.json()["entry_sequence"] is not None
    after = await _deposit(api, bidders[0])
    assert (after["held_fen"], after["received_fen"], after["status"]) == (short, short, "awaiting")
    # the tender is still open: its deposit's life is the escrow officers' alone until the deadline (W-20)
    life = (await api.get(f"/api/v1/escrow/deposits/{d['id']}", centre)).json()
    assert [(e["reason"], e["amount_fen"]) for e in life["entries"]] == [
        ("deposit_received", -DEPOSIT),
        ("line_corrected", 1_000_000),
    ]
    assert [line["amount_fen"] for line in life["lines"]] == [short]
    checks = await _checks(api)
    assert all(c["ok"] for c in checks.values()), checks


async def test_taking_the_banks_later_payer_refunds_the_corrected_payer_as_hashed(api: Api) -> None:
    centre, _agency, tender, bidders = await _open_tender(api)
    d = await _deposit(api, bidders[0])
    day = date(2026, 3, 6)
    await _import(
        api,
        centre,
        sandbox.statement(ESCROW, "S1", api.clock.now(), [_pay("P1", d, DEPOSIT, "6222000000000444", day)]),
    )
    corrected = sandbox.statement(
        ESCROW, "S2", api.clock.now(), [_pay("P1", d, DEPOSIT, "6222000000000999", day)]
    )
    assert (await _import(api, centre, corrected))["conflicting"] == 1
    (conflict,) = await _conflicts(api, centre)
    assert set(conflict["differences"]) == {"payer_account", "payer_name"}
    r = await api.post(
        f"/api/v1/escrow/conflicts/{conflict['id']}/resolution",
        centre,
        json={"decision": "incoming", "note": "银行更正付款账户（原记录录入错误）"},
    )
    assert r.status_code == 200, r.text
    after = await _deposit(api, bidders[0])
    assert (after["payer_account"], after["held_fen"]) == ("6222000000000999", DEPOSIT)
    bid = await api.bid(bidders[0], tender, 3_900_000_000, obtain=False)
    api.clock.set(shanghai(2026, 3, 12, 15))
    assert (
        await api.post(f"/api/v1/tenders/{tender['id']}/bids/{bid.bid_id}/withdraw", bidders[0])
    ).status_code == 200
    batch = (await api.post("/api/v1/escrow/batches", centre)).json()
    (instruction,) = batch["instructions"]
    assert (instruction["payee_account"], instruction["payee_basis"]) == ("6222000000000999", "payer")
    # the tender is still open: its deposit's life is the escrow officers' alone until the deadline (W-20)
    life = (await api.get(f"/api/v1/escrow/deposits/{d['id']}", centre)).json()
    assert [e["reason"] for e in life["entries"]] == ["deposit_received", "refund_instructed"]
    checks = await _checks(api)
    assert all(c["ok"] for c in checks.values()), checks


async def test_a_later_version_that_is_another_payment_or_money_gone_can_only_be_kept_as_known(
    api: Api,
) -> None:
    centre = await api.bootstrap_centre()
    day = date(2026, 3, 2)
    await _import(
        api, centre, sandbox.statement(ESCROW, "S1", api.clock.now(), [_stranger("R1", 500_000, day)])
    )
    moved = sandbox.Credit(
        reference="R1",
        amount_fen=500_000,
        booked_on=day,
        payer_name="某某公司",
        payer_account=STRANGER,
        payer_bank="中国农业银行南京分行",
        credited_account="95580000000000018",
        remittance="保证金",
    )
    await _import(api, centre, sandbox.statement(ESCROW, "S2", api.clock.now(), [moved]))
    (conflict,) = await _conflicts(api, centre)
    path = f"/api/v1/escrow/conflicts/{conflict['id']}/resolution"
    r = await api.post(path, centre, json={"decision": "incoming", "note": "按银行第二份对账单"})
    assert r.status_code == 409
    assert r.json()["errors"] == [{"field": "decision", "message": "not a correction"}]
    assert "credited_account" in r.json()["detail"]
    assert (
        await api.post(path, centre, json={"decision": "known", "note": "另行与银行核对"})
    ).status_code == 200


async def test_a_notification_and_a_statement_that_disagree_are_a_conflict_and_the_notice_is_kept(
    api: Api,
) -> None:
    import hashlib
    import json

    from escrow import bankfiles
    from tests.conftest import BANK_SECRET

    centre = await api.bootstrap_centre()
    body = json.dumps(
        {
            "reference": "N0001",
            "booked_on": "2026-03-02",
            "direction": "credit",
            "amount_fen": 500_000,
            "currency": "CNY",
            "payer_name": "某某公司",
            "payer_account": STRANGER,
            "payer_bank": "中国农业银行南京分行",
            "credited_account": "95580000000000000",
        },
        ensure_ascii=False,
    ).encode()
    signed = bankfiles.sign_notification(body, BANK_SECRET.encode(), api.clock.now())
    r = await api.client.post(
        "/api/v1/escrow/bank/notifications", content=body, headers={"X-Bank-Signature": signed}
    )
    assert r.status_code == 200 and r.json()["suspense"] == 1, r.text
    key = f"escrow/notifications/{hashlib.sha256(body).hexdigest()}.json"
    assert b"".join([chunk async for chunk in api.runtime.store.iter_chunks(key)]) == body
    out = await _import(
        api,
        centre,
        sandbox.statement(ESCROW, "S1", api.clock.now(), [_stranger("N0001", 50_000, date(2026, 3, 2))]),
    )
    assert (out["already_known"], out["conflicting"]) == (0, 1)
    assert out["conflicts"] == ["N0001: the bank now says amount_fen 50000, not 500000"]


async def test_the_conflicts_are_listed_on_the_command_line(api: Api, tmp_path: Any) -> None:
    import json

    from tests.escrow.test_published import ggzy

    centre = await api.bootstrap_centre()
    day = date(2026, 3, 2)
    await _import(
        api, centre, sandbox.statement(ESCROW, "S1", api.clock.now(), [_stranger("R1", 500_000, day)])
    )
    await _import(
        api, centre, sandbox.statement(ESCROW, "S2", api.clock.now(), [_stranger("R1", 600_000, day)])
    )
    run = await ggzy(api, tmp_path, "escrow", "conflicts")
    assert run.exit_code == 0, run.output
    (line,) = [json.loads(x) for x in run.output.splitlines()]
    assert (line["reference"], line["status"]) == ("R1", "open")
    assert line["differences"] == {"amount_fen": {"known": 500_000, "incoming": 600_000}}
    assert line["known"]["amount_fen"] == 500_000 and line["incoming"]["amount_fen"] == 600_000
    assert (await ggzy(api, tmp_path, "escrow", "conflicts", "--status", "resolved")).output == ""


async def test_a_corrected_payer_of_a_later_payment_leaves_the_deposits_payer_as_its_first_arrival_names(
    api: Api,
) -> None:
    centre, _agency, _tender, bidders = await _open_tender(api)
    d = await _deposit(api, bidders[0])
    day = date(2026, 3, 6)
    payer = "6222000000000444"
    first, second = _pay("P1", d, DEPOSIT, payer, day), _pay("P2", d, 1_000, payer, day)
    out = await _import(api, centre, sandbox.statement(ESCROW, "S1", api.clock.now(), [first, second]))
    assert (out["matched"], out["suspense"]) == (1, 1)  # a second payment is not expected: suspense
    line = next(
        x for x in (await api.get("/api/v1/escrow/suspense", centre)).json() if x["reference"] == "P2"
    )
    r = await api.post(
        f"/api/v1/escrow/lines/{line['id']}/match",
        centre,
        json={"deposit_id": d["id"], "note": "同一投标人补缴"},
    )
    assert r.status_code == 200, r.text
    later = _pay("P2", d, 1_000, "6222000000000999", day)
    assert (await _import(api, centre, sandbox.statement(ESCROW, "S2", api.clock.now(), [later])))[
        "conflicting"
    ] == 1
    (conflict,) = await _conflicts(api, centre)
    r = await api.post(
        f"/api/v1/escrow/conflicts/{conflict['id']}/resolution",
        centre,
        json={"decision": "incoming", "note": "银行更正第二笔的付款账户"},
    )
    assert r.status_code == 200 and r.json()["entry_sequence"] is not None, r.text
    assert (await _deposit(api, bidders[0]))["payer_account"] == payer
    checks = await _checks(api)
    assert all(c["ok"] for c in checks.values()), checks


async def test_a_conflict_on_a_sealed_tenders_deposit_is_the_escrow_officers_alone_until_the_deadline(
    api: Api,
) -> None:
    from tests.helpers import DEADLINE

    centre, _agency, _tender, bidders = await _open_tender(api)
    d = await _deposit(api, bidders[0])
    day = date(2026, 3, 6)
    for statement_id, amount in (("S1", DEPOSIT), ("S2", DEPOSIT - 1_000_000)):
        line = _pay("P1", d, amount, "6222000000000444", day)
        await _import(api, centre, sandbox.statement(ESCROW, statement_id, api.clock.now(), [line]))
    (conflict,) = await _conflicts(api, centre)
    watchers = [await api.organisation(role) for role in ("auditor", "supervisor")]
    for watcher in watchers:
        # W-20: the line names a bidder's sub-account of a tender whose bids are sealed
        assert await _conflicts(api, watcher) == []
        r = await api.get(f"/api/v1/escrow/conflicts/{conflict['id']}", watcher)
        assert (r.status_code, r.json()["rule"]) == (403, "W-20")
    await api.at(DEADLINE)
    for watcher in watchers:
        assert [c["id"] for c in await _conflicts(api, watcher)] == [conflict["id"]]
        r = await api.get(f"/api/v1/escrow/conflicts/{conflict['id']}", watcher)
        assert r.status_code == 200 and r.json()["reference"] == "P1"
