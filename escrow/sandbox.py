"""A sandbox bank: writes the files the escrow bank would send us, for the demo, the tests and a centre's
own rehearsal before going live. `statement` renders a camt.053.001.08 statement of credits and debits;
`results` answers a payment batch with a pain.002.001.10 status report, paying every instruction except
those it is told to reject. Pure: bytes out, no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

CAMT = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
PAIN002 = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"


@dataclass(frozen=True)
class Credit:
    """One line the sandbox bank books: a credit into a virtual sub-account (or the escrow account), or a
    debit paying out one of our instructions."""

    reference: str
    amount_fen: int
    booked_on: date
    payer_name: str = ""
    payer_account: str = ""
    payer_bank: str = ""
    credited_account: str = ""
    remittance: str = ""
    direction: str = "credit"
    end_to_end_id: str = ""
    interest: bool = False


def _amount(fen: int) -> str:
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


def _e(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def _entry(line: Credit) -> str:
    family = (
        "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>INTR</SubFmlyCd></Fmly></Domn></BkTxCd>"
        if line.interest
        else ""
    )
    parties = ""
    if line.direction == "credit" and (line.payer_name or line.payer_account or line.credited_account):
        parties = (
            "<RltdPties>"
            f"<Dbtr><Nm>{_e(line.payer_name)}</Nm></Dbtr>"
            f"<DbtrAcct><Id><Othr><Id>{_e(line.payer_account)}</Id></Othr></Id></DbtrAcct>"
            f"<CdtrAcct><Id><Othr><Id>{_e(line.credited_account)}</Id></Othr></Id></CdtrAcct>"
            "</RltdPties>"
            f"<RltdAgts><DbtrAgt><FinInstnId><Nm>{_e(line.payer_bank)}</Nm></FinInstnId></DbtrAgt></RltdAgts>"
        )
    refs = f"<AcctSvcrRef>{_e(line.reference)}</AcctSvcrRef>"
    if line.end_to_end_id:
        refs += f"<EndToEndId>{_e(line.end_to_end_id)}</EndToEndId>"
    remittance = f"<RmtInf><Ustrd>{_e(line.remittance)}</Ustrd></RmtInf>" if line.remittance else ""
    indicator = "CRDT" if line.direction == "credit" else "DBIT"
    return (
        "<Ntry>"
        f'<Amt Ccy="CNY">{_amount(line.amount_fen)}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>'
        "<Sts><Cd>BOOK</Cd></Sts>"
        f"<BookgDt><Dt>{line.booked_on.isoformat()}</Dt></BookgDt>"
        f"<ValDt><Dt>{line.booked_on.isoformat()}</Dt></ValDt>"
        f"<AcctSvcrRef>{_e(line.reference)}</AcctSvcrRef>"
        f"{family}"
        f"<NtryDtls><TxDtls><Refs>{refs}</Refs>"
        f'<Amt Ccy="CNY">{_amount(line.amount_fen)}</Amt>'
        f"{parties}{remittance}</TxDtls></NtryDtls>"
        "</Ntry>"
    )


def statement(account: str, statement_id: str, created_at: datetime, lines: Iterable[Credit]) -> bytes:
    """A camt.053.001.08 statement of the escrow account holding `lines`."""
    entries = "".join(_entry(line) for line in lines)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<Document xmlns="{CAMT}"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>{_e(statement_id)}</MsgId><CreDtTm>{created_at.isoformat()}</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{_e(statement_id)}</Id><CreDtTm>{created_at.isoformat()}</CreDtTm>"
        f"<Acct><Id><Othr><Id>{_e(account)}</Id></Othr></Id><Ccy>CNY</Ccy></Acct>"
        f"{entries}</Stmt></BkToCstmrStmt></Document>"
    ).encode()


def results(
    message_id: str,
    created_at: datetime,
    end_to_end_ids: Sequence[str],
    rejected: Mapping[str, str] | None = None,
) -> bytes:
    """A pain.002.001.10 report: every end-to-end id accepted and settled (ACSC) except those in
    `rejected`, which are refused (RJCT) with the given reason code (e.g. AC04: account closed)."""
    rejected = rejected or {}
    items = []
    for e2e in end_to_end_ids:
        if e2e in rejected:
            status = (
                "<TxSts>RJCT</TxSts>"
                f"<StsRsnInf><Rsn><Cd>{_e(rejected[e2e])}</Cd></Rsn>"
                "<AddtlInf>收款账户状态异常 (payee account closed or blocked)</AddtlInf></StsRsnInf>"
            )
        else:
            status = "<TxSts>ACSC</TxSts>"
        items.append(f"<TxInfAndSts><OrgnlEndToEndId>{_e(e2e)}</OrgnlEndToEndId>{status}</TxInfAndSts>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<Document xmlns="{PAIN002}"><CstmrPmtStsRpt>'
        f"<GrpHdr><MsgId>{_e(message_id)}</MsgId><CreDtTm>{created_at.isoformat()}</CreDtTm></GrpHdr>"
        f"<OrgnlGrpInfAndSts><OrgnlMsgId>{_e(message_id)}</OrgnlMsgId>"
        "<OrgnlMsgNmId>pain.001.001.03</OrgnlMsgNmId></OrgnlGrpInfAndSts>"
        f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{_e(message_id)}</OrgnlPmtInfId>{''.join(items)}</OrgnlPmtInfAndSts>"
        "</CstmrPmtStsRpt></Document>"
    ).encode()
