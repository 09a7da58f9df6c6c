"""The deposit steps of `ggzy demo`: the bank's statement brings the deposits in (one to suspense, matched
by an officer; one paid from another bidder's account, a W-18 signal), a withdrawal is refunded through a
bank batch and the bidder pays again by the bank's signed notification, escrow answers eligibility at the
deadline, the contract refunds every deposit with interest, one transfer fails and is retried, and the
auditor's `verify` passes. The sandbox bank (`escrow/sandbox.py`) writes the bank's files."""

from __future__ import annotations

import json
import secrets
from datetime import date, timedelta
from typing import Any

from rich.table import Table

from demo.common import Actor, Trade, check, yuan
from escrow import bankfiles, heads, sandbox
from rules.calendar import local_date

ESCROW_ACCOUNT = "31050161393600000888"  # the default of GGZY_ESCROW_ACCOUNT
RATES = (
    ("deposit", "2015-10-24", "0.35", "中国人民银行活期存款基准利率 (银发〔2015〕325号); 托管银行确认执行"),
    ("lpr", "2025-05-20", "3.0", "全国银行间同业拆借中心 1年期LPR 公告 (2025-05-20)"),
)


def _payer_account(t: Trade, bidder: Actor) -> str:
    return f"32010{t.bidders.index(bidder) + 1:011d}"


def _payer(t: Trade, bidder: Actor) -> tuple[str, str, str]:
    return (bidder.party.name, _payer_account(t, bidder), "中国工商银行南京城南支行")


async def deposit_of(t: Trade, bidder: Actor) -> dict[str, Any]:
    mine = [d for d in await t.p.call("GET", "/api/v1/escrow/deposits", bidder) if d["tender_id"] == t.tid]
    check(len(mine) == 1, "one deposit sub-account for the one lot", mine)
    return dict(mine[0])


async def _upload(t: Trade, path: str, content: bytes, fmt: str) -> dict[str, Any]:
    r = await t.p.request(
        "POST",
        path,
        t.centre,
        expect=200,
        params={"format": fmt},
        content=content,
        headers={"Content-Type": "application/xml"},
    )
    return dict(r.json())


async def bank_round(
    t: Trade, rejected: dict[int, str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The centre makes a refund batch and exports it; the sandbox bank answers (paying all but the
    instructions listed by position); the centre imports the results."""
    batch = await t.p.call("POST", "/api/v1/escrow/batches", t.centre, expect=201)
    check(batch["batch"] is not None, "a batch of the refunds due", batch)
    xml = await t.p.request(
        "GET",
        f"/api/v1/escrow/batches/{batch['batch']['id']}/file",
        t.centre,
        expect=200,
        params={"format": "xml"},
    )
    check(b"pain.001.001.03" in xml.content, "a pain.001 payment file", xml.content[:120])
    e2e = [i["end_to_end_id"] for i in batch["instructions"]]
    refused = {e2e[i]: code for i, code in (rejected or {}).items()}
    report = sandbox.results(batch["batch"]["number"], t.p.clock.now(), e2e, refused)
    results = await _upload(t, "/api/v1/escrow/results", report, "pain002")
    return batch, results


async def deposits_arrive(t: Trade) -> Any:
    """The centre keeps its dated rate tables; each bidder pays its deposit into its own virtual
    sub-account; the bank's camt.053 statement is imported (one line to suspense, matched by an officer),
    and importing it again changes nothing."""
    for kind, since, pct, source in RATES:
        await t.p.call(
            "POST",
            "/api/v1/escrow/rates",
            t.centre,
            expect=201,
            json={"kind": kind, "effective_from": since, "annual_percent": pct, "source": source},
        )
    t.p.clock.advance(timedelta(hours=2))
    day = local_date(t.p.clock.now())
    lines = []
    deposits = {}
    for i, bidder in enumerate(t.bidders):
        d = await deposit_of(t, bidder)
        deposits[bidder.party.username] = d
        check(
            d["required_fen"] == t.plan.deposit_fen, f"{t.plan.deposit_fen} fen required", d["required_fen"]
        )
        name, account, bank = _payer(t, bidder)
        if t.plan.same_author and i == t.plan.same_author[1]:
            # paid from the other hand's account: deposits of two bidders from one account (W-18)
            name, account, bank = _payer(t, t.bidders[t.plan.same_author[0]])
        number = d["virtual_number"]
        if i == t.plan.absent_bidder:
            number = number[:-1] + str((int(number[-1]) + 1) % 10)  # mistyped at the bank counter
        lines.append(
            sandbox.Credit(
                f"ICBC{day:%Y%m%d}{i + 1:04d}",
                t.plan.deposit_fen,
                day,
                name,
                account,
                bank,
                number,
                "投标保证金",
            )
        )
    t.escrow["deposits"] = deposits
    statement = sandbox.statement(ESCROW_ACCOUNT, f"STMT{day:%Y%m%d}", t.p.clock.now(), lines)
    first = await _upload(t, "/api/v1/escrow/statements", statement, "camt053")
    check((first["matched"], first["suspense"]) == (len(lines) - 1, 1), "all matched but one", first)
    again = await _upload(t, "/api/v1/escrow/statements", statement, "camt053")
    check(again["replay"] and again["new_lines"] == 0, "the same statement again: nothing changes", again)
    suspense = await t.p.call("GET", "/api/v1/escrow/suspense", t.centre)
    check(len(suspense) == 1, "one line in suspense", suspense)
    absent = t.bidders[t.plan.absent_bidder]
    matched = await t.p.call(
        "POST",
        f"/api/v1/escrow/lines/{suspense[0]['id']}/match",
        t.centre,
        json={
            "deposit_id": deposits[absent.party.username]["id"],
            "note": "付款凭证核对：子账号两位数字颠倒，付款人、金额与投标人一致",
        },
    )
    check(matched["status"] == "matched", "matched by the officer", matched)
    table = Table(
        "bidder", "virtual sub-account", "paid from", "amount (yuan)", "line", box=None, padding=(0, 2)
    )
    for bidder, line in zip(t.bidders, lines, strict=True):
        held = (await deposit_of(t, bidder))["held_fen"]
        check(held == t.plan.deposit_fen, f"{bidder.party.username} holds its deposit", held)
        via = "suspense → matched" if bidder is absent else "matched"
        table.add_row(
            bidder.party.username,
            deposits[bidder.party.username]["virtual_number"],
            line.payer_account,
            yuan(held),
            via,
        )
    return (
        f"statement {first['lines']} lines: {first['matched']} matched to their sub-accounts, 1 to suspense "
        f"(mistyped sub-account) matched by the centre; the same file again → replay, nothing changed",
        table,
    )


async def refund_withdrawal(t: Trade) -> Any:
    """The withdrawn bid's deposit (W-05) goes back through the centre's refund batch: a pain.001 file to
    the bank, the bank's pain.002 results, posted once."""
    bidder = t.bids[t.plan.withdrawing_bidder].bidder
    obligations = await t.p.call("GET", "/api/v1/escrow/obligations", t.centre, params={"tender_id": t.tid})
    owed = [o for o in obligations if o["rule"] == "W-05"]
    check(len(owed) == 1 and owed[0]["status"] == "due", "one W-05 refund due", obligations)
    t.p.clock.advance(timedelta(hours=1))
    batch, results = await bank_round(t)
    check(results["paid"] == 1, "the bank paid it", results)
    ins = batch["instructions"][0]
    d = await deposit_of(t, bidder)
    check(d["status"] == "refunded" and d["held_fen"] == 0, "refunded", d)
    check(ins["payee_account"] == _payer_account(t, bidder), "to the account it came from", ins)
    return (
        f"{bidder.party.username}: W-05 due {owed[0]['due_on']}; batch {batch['batch']['number']} "
        f"(pain.001, end-to-end {ins['end_to_end_id']}) paid {yuan(ins['amount_fen'])} yuan back to "
        f"{ins['payee_account']}, the paying account; no interest under W-05"
    )


def _arrival(
    t: Trade, bidder: Actor, deposit: dict[str, Any], reference: str, remittance: str
) -> dict[str, Any]:
    """The line of the bank's real-time arrival notice (到账通知) of `bidder`'s deposit paid today."""
    name, account, bank = _payer(t, bidder)
    return {
        "reference": reference,
        "booked_on": local_date(t.p.clock.now()).isoformat(),
        "direction": "credit",
        "amount_fen": t.plan.deposit_fen,
        "currency": "CNY",
        "payer_name": name,
        "payer_account": account,
        "payer_bank": bank,
        "credited_account": deposit["virtual_number"],
        "remittance": remittance,
    }


async def notify_arrival(t: Trade, line: dict[str, Any]) -> None:
    """The bank signs its arrival notice with its key and posts it; it must credit one sub-account at once."""
    body = json.dumps(line, ensure_ascii=False).encode()
    signed = bankfiles.sign_notification(body, t.p.bank_notify_secret.encode(), t.p.clock.now())
    r = await t.p.request(
        "POST",
        "/api/v1/escrow/bank/notifications",
        expect=200,
        headers={"X-Bank-Signature": signed},
        content=body,
    )
    check(r.json()["matched"] == 1, "credited to the sub-account", r.json())


async def pay_by_notification(t: Trade, bidders: list[Actor]) -> list[dict[str, Any]]:
    """Each of `bidders` pays its deposit; the bank's signed arrival notices credit them at once. Answers
    the deposits as held."""
    day = local_date(t.p.clock.now())
    held = []
    for i, bidder in enumerate(bidders):
        d = await deposit_of(t, bidder)
        reference = f"ICBC{day:%Y%m%d}{8001 + i}{t.code[-4:]}"
        await notify_arrival(t, _arrival(t, bidder, d, reference, "投标保证金"))
        d = await deposit_of(t, bidder)
        check(d["held_fen"] == t.plan.deposit_fen, f"{bidder.party.username} holds its deposit", d)
        held.append(d)
    return held


async def pay_again_by_notification(t: Trade) -> Any:
    """To bid again the bidder pays its deposit again; the bank's signed real-time notification (到账通知)
    credits it at once, and the same line in the day's statement later changes nothing."""
    bidder = t.bids[t.plan.withdrawing_bidder].bidder
    d = await deposit_of(t, bidder)
    name, account, bank = _payer(t, bidder)
    day = local_date(t.p.clock.now())
    line = _arrival(t, bidder, d, f"ICBC{day:%Y%m%d}9001", "投标保证金（重新递交）")
    body = json.dumps(line, ensure_ascii=False).encode()
    forged = bankfiles.sign_notification(body, secrets.token_bytes(16), t.p.clock.now())
    await t.p.request(
        "POST",
        "/api/v1/escrow/bank/notifications",
        expect=401,
        headers={"X-Bank-Signature": forged},
        content=body,
    )
    await notify_arrival(t, line)
    later = sandbox.statement(
        ESCROW_ACCOUNT,
        f"STMT{day:%Y%m%d}B",
        t.p.clock.now(),
        [
            sandbox.Credit(
                line["reference"], t.plan.deposit_fen, day, name, account, bank, d["virtual_number"]
            )
        ],
    )
    repeat = await _upload(t, "/api/v1/escrow/statements", later, "camt053")
    check(
        repeat["already_known"] == 1 and repeat["matched"] == 0,
        "the statement repeats it: nothing changes",
        repeat,
    )
    held = (await deposit_of(t, bidder))["held_fen"]
    check(held == t.plan.deposit_fen, "held again", held)
    return (
        f"a forged signature → 401; the signed notice credited {yuan(held)} yuan at once; "
        f"the evening statement repeating line {line['reference']} changed nothing"
    )


async def eligibility_at_deadline(t: Trade) -> Any:
    """At the deadline the trade asked escrow whether each bidder's deposit was in place; the answers and
    their time are on record."""
    table = Table("bidder", "eligible", "asked at", "detail", box=None, padding=(0, 2))
    for bidder in t.bidders:
        d = t.escrow["deposits"][bidder.party.username]
        life = await t.p.call("GET", f"/api/v1/escrow/deposits/{d['id']}", t.centre)
        answers = [e for e in life["eligibility"] if e["moment"] == "bid_deadline"]
        check(
            len(answers) == 1 and answers[0]["eligible"],
            f"{bidder.party.username} eligible",
            life["eligibility"],
        )
        table.add_row(bidder.party.username, "yes", answers[0]["checked_at"][:19], answers[0]["detail"])
    return f"{len(t.bidders)} deposits in place at the deadline, each answer recorded with its time", table


async def credit_interest(t: Trade, amount_fen: int) -> None:
    """The bank's latest quarterly interest credit on the escrow account (结息日: the 21st of the quarter's
    last month) arrives in a statement: it funds the interest the refunds pay (W-14, G-04)."""
    day = local_date(t.p.clock.now())
    quarter_end = date(day.year, ((day.month - 1) // 3) * 3 + 3, 21)
    if quarter_end > day:  # not yet this quarter's: the last one's (December's, in a year's first quarter)
        months = quarter_end.year * 12 + quarter_end.month - 1 - 3
        quarter_end = date(months // 12, months % 12 + 1, 21)
    booked = quarter_end
    # a run on a shared rehearsal server has the quarter's credit of its own (runs never share a reference)
    credit = sandbox.Credit(
        f"INT{booked:%Y%m%d}{t.cast.run or ''}", amount_fen, booked, interest=True, remittance="活期结息"
    )
    got = await _upload(
        t,
        "/api/v1/escrow/statements",
        sandbox.statement(ESCROW_ACCOUNT, f"STMT{day:%Y%m%d}I", t.p.clock.now(), [credit]),
        "camt053",
    )
    check(got["interest"] == 1, "the bank's interest credit", got)


async def contract_refunds(t: Trade) -> Any:
    """The contract refunds every deposit within 5 days with bank interest (W-14): the bank's quarterly
    interest credit funds it; one transfer fails (the payee's account is blocked) and is retried the
    next day to the same account; every refund is posted once."""
    obligations = await t.p.call("GET", "/api/v1/escrow/obligations", t.centre, params={"tender_id": t.tid})
    w14 = [o for o in obligations if o["rule"] == "W-14"]
    # a deposit the supervisor decided to keep (W-06) is not refunded
    refunded = [b for b in t.bidders if b.party.username not in t.escrow.get("forfeited", set())]
    check(len(w14) == len(refunded), "one W-14 refund per bidder whose deposit was not kept", obligations)
    await credit_interest(t, 1_250_000)
    t.p.clock.advance(timedelta(days=1))
    batch, results = await bank_round(t, rejected={1: "AC06"})
    check((results["paid"], results["failed"]) == (len(refunded) - 1, 1), "all paid but one", results)
    failed = batch["instructions"][1]
    t.p.clock.advance(timedelta(days=1))
    retry, again = await bank_round(t)
    check(
        again["paid"] == 1 and retry["instructions"][0]["obligation_id"] == failed["obligation_id"],
        "the retry paid",
        again,
    )
    check(retry["instructions"][0]["payee_account"] == failed["payee_account"], "to the same account", retry)
    table = Table(
        "bidder", "principal (yuan)", "interest (fen)", "paid", "end-to-end", box=None, padding=(0, 2)
    )
    by_account = {
        i["account_code"]: i for i in batch["instructions"] if i["end_to_end_id"] != failed["end_to_end_id"]
    }
    by_account[retry["instructions"][0]["account_code"]] = {
        **retry["instructions"][0],
        "status": "paid (retry)",
    }
    for bidder in refunded:
        d = await deposit_of(t, bidder)
        check(d["status"] == "refunded" and d["held_fen"] == 0, f"{bidder.party.username} refunded", d)
        ins = by_account[d["account_code"]]
        table.add_row(
            bidder.party.username,
            yuan(ins["amount_fen"] - ins["interest_fen"]),
            str(ins["interest_fen"]),
            "paid (retry)" if ins["end_to_end_id"] == retry["instructions"][0]["end_to_end_id"] else "paid",
            ins["end_to_end_id"],
        )
    return (
        f"{len(w14)} W-14 refunds due {w14[0]['due_on']}, with interest at 0.35% ÷ 360 from each arrival; "
        f"{failed['end_to_end_id']} refused by the bank (AC06, blocked) → voided, re-queued, paid next day",
        table,
    )


async def verify_ledger(t: Trade) -> Any:
    """The auditor checks the ledger and the deposits from the stored rows, and takes the trial balance;
    anyone keeps the ledger's newest signed head, checked offline with the pinned platform key (what
    `ggzy verify ledger --head HEAD.json --key …` later proves the journal still holds)."""
    auditor = t.people["auditor"]
    result = await t.p.call("GET", "/api/v1/escrow/verify", auditor)
    failed = [c for c in result["checks"] if not c["ok"]]
    check(result["ok"] and not failed, "every invariant holds", failed)
    kept = heads.parse(await t.p.call("GET", "/api/v1/transparency/ledger/head"))
    check(heads.signature_ok(kept, t.log_key), "the ledger head is signed by the pinned platform key", kept)
    trial = await t.p.call("GET", "/api/v1/escrow/trial-balance", auditor)
    check(trial["debit_fen"] == trial["credit_fen"], "debits equal credits", trial)
    xlsx = await t.p.request(
        "GET", f"/api/v1/escrow/audit/tenders/{t.tid}", auditor, expect=200, params={"format": "xlsx"}
    )
    check(xlsx.content[:2] == b"PK", "an .xlsx workbook", xlsx.content[:8])
    table = Table("check", "result", box=None, padding=(0, 2))
    for c in result["checks"]:
        table.add_row(c["name"], f"ok — {c['detail']}")
    table.add_row(
        "signed head kept", f"ok — head {kept.sequence} at entry {kept.entries}, {kept.chain_hash[:16]}…"
    )
    return (
        f"{len(result['checks'])} checks pass; trial balance {yuan(trial['debit_fen'])} yuan each side; "
        f"tender workbook {len(xlsx.content):,} bytes; ledger head {kept.sequence} signed over "
        f"{kept.entries} entries",
        table,
    )
