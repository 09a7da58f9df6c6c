"""The escrow bank's files: camt.053 and CSV statements, signed arrival notices, pain.001 and CSV refund
instructions, pain.002 and CSV results. Realistic samples with exact outcomes, every error code, and
properties (exact amounts, hostile bytes, signatures)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escrow import bankfiles
from escrow.bankfiles import (
    CHINA_TIME,
    ERROR_CODES,
    FORMATS,
    BankFileError,
    Direction,
    LineKind,
    PaymentBatch,
    PaymentInstruction,
    PaymentResult,
    Statement,
    StatementLine,
    format_amount,
    parse_amount,
    parse_results,
    parse_statement,
    payment_csv,
    payment_xml,
    sign_notification,
    verify_notification,
)
from escrow.ledger import MAX_AMOUNT_FEN

MARCH_1 = date(2025, 3, 1)
NOW = datetime(2025, 3, 1, 10, 30, tzinfo=CHINA_TIME)
SECRET = b"escrow-bank-notification-secret-2025"
PAIN001 = "{urn:iso:std:iso:20022:tech:xsd:pain.001.001.03}"


def refused(code: str, call: Callable[[], object]) -> BankFileError:
    """Run `call`, expect a BankFileError with `code`, and return it for further checks."""
    with pytest.raises(BankFileError) as caught:
        call()
    assert caught.value.code == code, caught.value
    return caught.value


CAMT_V02 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <BkToCstmrStmt>
    <GrpHdr>
      <MsgId>ICBC-BJ-053-20250301-0001</MsgId>
      <CreDtTm>2025-03-02T06:10:00+08:00</CreDtTm>
    </GrpHdr>
    <Stmt>
      <Id>STMT-0200001409-20250301</Id>
      <ElctrncSeqNb>59</ElctrncSeqNb>
      <CreDtTm>2025-03-02T06:10:00+08:00</CreDtTm>
      <FrToDt>
        <FrDtTm>2025-03-01T00:00:00+08:00</FrDtTm>
        <ToDtTm>2025-03-01T23:59:59+08:00</ToDtTm>
      </FrToDt>
      <Acct>
        <Id><Othr><Id>0200001409020000001</Id></Othr></Id>
        <Ccy>CNY</Ccy>
        <Nm>北京市公共资源交易中心保证金专户</Nm>
      </Acct>
      <Bal>
        <Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="CNY">1000000.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Dt><Dt>2025-03-01</Dt></Dt>
      </Bal>
      <Bal>
        <Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="CNY">1090123.95</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Dt><Dt>2025-03-01</Dt></Dt>
      </Bal>
      <Ntry>
        <NtryRef>1</NtryRef>
        <Amt Ccy="CNY">50000.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>2025-03-01</Dt></BookgDt>
        <ValDt><Dt>2025-03-01</Dt></ValDt>
        <AcctSvcrRef>E20250301000101</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs>
              <AcctSvcrRef>T20250301000101</AcctSvcrRef>
              <EndToEndId>NOTPROVIDED</EndToEndId>
            </Refs>
            <AmtDtls><TxAmt><Amt Ccy="CNY">50000.00</Amt></TxAmt></AmtDtls>
            <RltdPties>
              <Dbtr><Nm>北京城建集团有限责任公司</Nm></Dbtr>
              <DbtrAcct><Id><Othr><Id>0200049619200018888</Id></Othr></Id></DbtrAcct>
              <CdtrAcct><Id><Othr><Id>020000140902000000188001</Id></Othr></Id></CdtrAcct>
            </RltdPties>
            <RltdAgts>
              <DbtrAgt><FinInstnId><Nm>中国工商银行北京西单支行</Nm></FinInstnId></DbtrAgt>
            </RltdAgts>
            <RmtInf>
              <Ustrd>投标保证金</Ustrd>
              <Ustrd>BJGG-2025-0301 第1标段</Ustrd>
            </RmtInf>
          </TxDtls>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <NtryRef>2</NtryRef>
        <Amt Ccy="CNY">60000.50</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>2025-03-01</Dt></BookgDt>
        <ValDt><Dt>2025-03-01</Dt></ValDt>
        <AcctSvcrRef>E20250301000102</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>BOOK</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls>
          <Btch><NbOfTxs>3</NbOfTxs><TtlAmt Ccy="CNY">60000.50</TtlAmt></Btch>
          <TxDtls>
            <Refs><AcctSvcrRef>T20250301000102-1</AcctSvcrRef><EndToEndId>HX2025030100017</EndToEndId></Refs>
            <AmtDtls><TxAmt><Amt Ccy="CNY">10000.00</Amt></TxAmt></AmtDtls>
            <RltdPties>
              <Dbtr><Nm>中铁十四局集团有限公司</Nm></Dbtr>
              <DbtrAcct><Id><Othr><Id>37001616601050150999</Id></Othr></Id></DbtrAcct>
              <CdtrAcct><Id><Othr><Id>020000140902000000188002</Id></Othr></Id></CdtrAcct>
            </RltdPties>
            <RltdAgts><DbtrAgt><FinInstnId><Nm>中国建设银行济南分行</Nm></FinInstnId></DbtrAgt></RltdAgts>
            <RmtInf><Ustrd>保证金</Ustrd></RmtInf>
          </TxDtls>
          <TxDtls>
            <Refs><AcctSvcrRef>T20250301000102-2</AcctSvcrRef></Refs>
            <AmtDtls><TxAmt><Amt Ccy="CNY">20000.00</Amt></TxAmt></AmtDtls>
            <RltdPties>
              <Dbtr><Nm>河北建设集团股份有限公司</Nm></Dbtr>
              <DbtrAcct><Id><Othr><Id>13001635508050500123</Id></Othr></Id></DbtrAcct>
              <CdtrAcct><Id><Othr><Id>020000140902000000188003</Id></Othr></Id></CdtrAcct>
            </RltdPties>
            <RltdAgts><DbtrAgt><FinInstnId><BIC>PCBCCNBJHEB</BIC></FinInstnId></DbtrAgt></RltdAgts>
          </TxDtls>
          <TxDtls>
            <Refs><AcctSvcrRef>T20250301000102-3</AcctSvcrRef></Refs>
            <AmtDtls><TxAmt><Amt Ccy="CNY">30000.50</Amt></TxAmt></AmtDtls>
            <RltdPties>
              <Dbtr><Nm>天津   市政工程
                 有限公司</Nm></Dbtr>
              <DbtrAcct><Id><Othr><Id>12050161660000000456</Id></Othr></Id></DbtrAcct>
              <CdtrAcct><Id><Othr><Id>020000140902000000188004</Id></Othr></Id></CdtrAcct>
            </RltdPties>
            <RltdAgts><DbtrAgt><FinInstnId><ClrSysMmbId><MmbId>105110000019</MmbId></ClrSysMmbId></FinInstnId></DbtrAgt></RltdAgts>
            <AddtlTxInf>跨行转账</AddtlTxInf>
          </TxDtls>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="CNY">123.45</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>2025-03-01</Dt></BookgDt>
        <ValDt><Dt>2025-02-28</Dt></ValDt>
        <AcctSvcrRef>E20250301000103</AcctSvcrRef>
        <BkTxCd><Domn><Cd>ACMT</Cd><Fmly><Cd>MCOP</Cd><SubFmlyCd>INTR</SubFmlyCd></Fmly></Domn></BkTxCd>
        <AddtlNtryInf>结息 2024-12-21至2025-02-28</AddtlNtryInf>
      </Ntry>
      <Ntry>
        <Amt Ccy="CNY">20000.00</Amt>
        <CdtDbtInd>DBIT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><DtTm>2025-03-01T15:42:07+08:00</DtTm></BookgDt>
        <ValDt><Dt>2025-03-01</Dt></ValDt>
        <AcctSvcrRef>E20250301000104</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs>
              <MsgId>RB20250301A</MsgId>
              <EndToEndId>RF7d1c2a9e0b5f4c3e8a6b</EndToEndId>
            </Refs>
            <RltdPties>
              <Cdtr><Nm>中铁十四局集团有限公司</Nm></Cdtr>
              <CdtrAcct><Id><Othr><Id>37001616601050150999</Id></Othr></Id></CdtrAcct>
            </RltdPties>
            <RmtInf><Ustrd>退还投标保证金 BJGG-2024-1187</Ustrd></RmtInf>
          </TxDtls>
        </NtryDtls>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""

# camt.053.001.08: the entry status, the debtor and the agent's BIC are nested differently from .02, and
# transaction amounts and directions stand on the transaction itself.
CAMT_V08 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>BOC-053-20250303-17</MsgId><CreDtTm>2025-03-04T05:00:00+08:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>BOC-STMT-20250303</Id>
      <CreDtTm>2025-03-04T05:00:00+08:00</CreDtTm>
      <Acct><Id><Othr><Id>344556677889</Id></Othr></Id><Ccy>CNY</Ccy></Acct>
      <Bal>
        <Tp><CdOrPrtry><Cd>PRCD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="CNY">0.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2025-03-02</Dt></Dt>
      </Bal>
      <Bal>
        <Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="CNY">4500.08</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2025-03-03</Dt></Dt>
      </Bal>
      <Ntry>
        <Amt Ccy="CNY">8000.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2025-03-03</Dt></BookgDt>
        <ValDt><Dt>2025-03-03</Dt></ValDt>
        <AcctSvcrRef>BOC-E-0303-01</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>BOOK</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs><AcctSvcrRef>BOC-T-0303-01</AcctSvcrRef><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
            <Amt Ccy="CNY">3000.00</Amt>
            <CdtDbtInd>CRDT</CdtDbtInd>
            <RltdPties>
              <Dbtr><Pty><Nm>上海隧道工程股份有限公司</Nm></Pty></Dbtr>
              <DbtrAcct><Id><Othr><Id>31001500001050000001</Id></Othr></Id></DbtrAcct>
              <CdtrAcct><Id><Othr><Id>3445566778890001</Id></Othr></Id></CdtrAcct>
            </RltdPties>
            <RltdAgts><DbtrAgt><FinInstnId><BICFI>PCBCCNBJSHX</BICFI></FinInstnId></DbtrAgt></RltdAgts>
            <RmtInf><Ustrd>SHGG-2025-0042 保证金</Ustrd></RmtInf>
          </TxDtls>
          <TxDtls>
            <Refs><AcctSvcrRef>BOC-T-0303-02</AcctSvcrRef></Refs>
            <Amt Ccy="CNY">2000.00</Amt>
            <RltdPties>
              <Dbtr><Pty><Nm>浙江交工集团股份有限公司</Nm></Pty></Dbtr>
              <CdtrAcct><Id><Othr><Id>3445566778890002</Id></Othr></Id></CdtrAcct>
            </RltdPties>
          </TxDtls>
          <TxDtls>
            <Refs><AcctSvcrRef>BOC-T-0303-03</AcctSvcrRef></Refs>
            <Amt Ccy="CNY">3000.00</Amt>
            <CdtDbtInd>CRDT</CdtDbtInd>
            <RltdPties>
              <Dbtr><Pty><Nm>江苏中南建筑产业集团有限责任公司</Nm></Pty></Dbtr>
              <CdtrAcct><Id><Othr><Id>3445566778890003</Id></Othr></Id></CdtrAcct>
            </RltdPties>
          </TxDtls>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="CNY">0.08</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2025-03-03</Dt></BookgDt>
        <AcctSvcrRef>BOC-E-0303-02</AcctSvcrRef>
        <BkTxCd><Domn><Cd>ACMT</Cd><Fmly><Cd>MCOP</Cd><SubFmlyCd>INTR</SubFmlyCd></Fmly></Domn></BkTxCd>
      </Ntry>
      <Ntry>
        <Amt Ccy="CNY">3500.00</Amt>
        <CdtDbtInd>DBIT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2025-03-03</Dt></BookgDt>
        <ValDt><Dt>2025-03-03</Dt></ValDt>
        <AcctSvcrRef>BOC-E-0303-03</AcctSvcrRef>
        <NtryDtls>
          <TxDtls>
            <Refs><AcctSvcrRef>BOC-T-0303-09</AcctSvcrRef><EndToEndId>RF0c6f3d2b9a8e4f71</EndToEndId></Refs>
            <Amt Ccy="CNY">3500.00</Amt>
            <CdtDbtInd>DBIT</CdtDbtInd>
            <RltdPties>
              <Cdtr><Pty><Nm>上海隧道工程股份有限公司</Nm></Pty></Cdtr>
              <CdtrAcct><Id><Othr><Id>31001500001050000001</Id></Othr></Id></CdtrAcct>
            </RltdPties>
            <RmtInf><Ustrd>退还保证金</Ustrd></RmtInf>
          </TxDtls>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="CNY">9999.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>PDNG</Cd></Sts>
        <AcctSvcrRef>BOC-E-0303-04</AcctSvcrRef>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""


def line(**fields: object) -> StatementLine:
    """A statement line with the defaults of a plain credit; tests name what differs."""
    base: dict[str, object] = {
        "reference": "R1",
        "direction": Direction.CREDIT,
        "amount_fen": 100,
        "booked_on": MARCH_1,
        "value_on": None,
        "payer_name": "",
        "payer_account": "",
        "payer_bank": "",
        "credited_account": "",
        "remittance": "",
        "end_to_end_id": "",
        "kind": LineKind.TRANSFER,
    }
    base.update(fields)
    return StatementLine(**base)  # type: ignore[arg-type]


def camt(entries: str, *, version: str = "02", balances: str = "", account: str = "") -> bytes:
    """A minimal camt.053 around `entries`, for the error paths."""
    acct = account or "<Acct><Id><Othr><Id>0200001409020000001</Id></Othr></Id><Ccy>CNY</Ccy></Acct>"
    return (
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>M1</MsgId></GrpHdr><Stmt><Id>S1</Id>{acct}{balances}{entries}</Stmt>"
        "</BkToCstmrStmt></Document>"
    ).encode()


def entry(
    ref: str = "E1",
    amount: str = "100.00",
    ccy: str = "CNY",
    ind: str = "CRDT",
    booked: str = "2025-03-01",
    body: str = "",
) -> str:
    return (
        f'<Ntry><Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>{ind}</CdtDbtInd><Sts>BOOK</Sts>'
        f"<BookgDt><Dt>{booked}</Dt></BookgDt><AcctSvcrRef>{ref}</AcctSvcrRef>{body}</Ntry>"
    )


def tx(ref: str, amount: str | None) -> str:
    amt = f'<Amt Ccy="CNY">{amount}</Amt>' if amount is not None else ""
    refs = f"<Refs><AcctSvcrRef>{ref}</AcctSvcrRef></Refs>" if ref else "<Refs/>"
    return f"<TxDtls>{refs}{amt}</TxDtls>"


# ---------------------------------------------------------------- camt.053: the realistic samples


def test_camt053_v02_reads_the_statement_account_and_balances() -> None:
    got = parse_statement(CAMT_V02.encode(), "camt053")
    assert (got.statement_id, got.account, got.currency) == (
        "STMT-0200001409-20250301",
        "0200001409020000001",
        "CNY",
    )
    assert (got.opening_balance_fen, got.closing_balance_fen) == (100_000_000, 109_012_395)
    assert len(got.lines) == 6


def test_camt053_v02_a_single_credit_reads_payer_sub_account_and_joined_remittance() -> None:
    first = parse_statement(CAMT_V02.encode(), "camt053").lines[0]
    assert first == StatementLine(
        reference="T20250301000101",
        direction=Direction.CREDIT,
        amount_fen=5_000_000,
        booked_on=MARCH_1,
        value_on=MARCH_1,
        payer_name="北京城建集团有限责任公司",
        payer_account="0200049619200018888",
        payer_bank="中国工商银行北京西单支行",
        credited_account="020000140902000000188001",
        remittance="投标保证金 BJGG-2025-0301 第1标段",
        end_to_end_id="",  # NOTPROVIDED is ISO's placeholder, not an id
        kind=LineKind.TRANSFER,
    )


def test_camt053_v02_a_batched_entry_gives_one_line_per_transaction() -> None:
    batch = parse_statement(CAMT_V02.encode(), "camt053").lines[1:4]
    common = {"booked_on": MARCH_1, "value_on": MARCH_1}
    assert batch == (
        line(
            reference="T20250301000102-1",
            amount_fen=1_000_000,
            payer_name="中铁十四局集团有限公司",
            payer_account="37001616601050150999",
            payer_bank="中国建设银行济南分行",
            credited_account="020000140902000000188002",
            remittance="保证金",
            end_to_end_id="HX2025030100017",
            **common,
        ),
        line(
            reference="T20250301000102-2",
            amount_fen=2_000_000,
            payer_name="河北建设集团股份有限公司",
            payer_account="13001635508050500123",
            payer_bank="PCBCCNBJHEB",  # no name given: the BIC
            credited_account="020000140902000000188003",
            **common,
        ),
        line(
            reference="T20250301000102-3",
            amount_fen=3_000_050,
            payer_name="天津 市政工程 有限公司",  # the bank's line wrap is not part of the name
            payer_account="12050161660000000456",
            payer_bank="105110000019",  # no name, no BIC: the CNAPS member id
            credited_account="020000140902000000188004",
            remittance="跨行转账",  # no Ustrd: the additional transaction information
            **common,
        ),
    )


def test_camt053_v02_an_interest_entry_without_details_is_an_interest_line() -> None:
    interest = parse_statement(CAMT_V02.encode(), "camt053").lines[4]
    assert interest == line(
        reference="E20250301000103",
        amount_fen=12_345,
        value_on=date(2025, 2, 28),
        remittance="结息 2024-12-21至2025-02-28",
        kind=LineKind.INTEREST,
    )


def test_camt053_v02_a_refund_debit_keeps_our_end_to_end_id_and_the_entry_reference() -> None:
    refund = parse_statement(CAMT_V02.encode(), "camt053").lines[5]
    assert refund == line(
        reference="E20250301000104",  # the transaction has no AcctSvcrRef of its own
        direction=Direction.DEBIT,
        amount_fen=2_000_000,
        booked_on=MARCH_1,  # the date of BookgDt/DtTm as written
        value_on=MARCH_1,
        credited_account="37001616601050150999",
        remittance="退还投标保证金 BJGG-2024-1187",
        end_to_end_id="RF7d1c2a9e0b5f4c3e8a6b",
    )


def test_camt053_v08_reads_nested_parties_transaction_amounts_and_leaves_pending_entries_out() -> None:
    got = parse_statement(CAMT_V08.encode(), "camt053")
    day = date(2025, 3, 3)
    assert got == Statement(
        statement_id="BOC-STMT-20250303",
        account="344556677889",
        currency="CNY",
        opening_balance_fen=0,  # PRCD stands in for a missing OPBD
        closing_balance_fen=450_008,
        lines=(
            line(
                reference="BOC-T-0303-01",
                amount_fen=300_000,
                booked_on=day,
                value_on=day,
                payer_name="上海隧道工程股份有限公司",
                payer_account="31001500001050000001",
                payer_bank="PCBCCNBJSHX",
                credited_account="3445566778890001",
                remittance="SHGG-2025-0042 保证金",
            ),
            line(
                reference="BOC-T-0303-02",
                amount_fen=200_000,
                booked_on=day,
                value_on=day,
                payer_name="浙江交工集团股份有限公司",
                credited_account="3445566778890002",
            ),
            line(
                reference="BOC-T-0303-03",
                amount_fen=300_000,
                booked_on=day,
                value_on=day,
                payer_name="江苏中南建筑产业集团有限责任公司",
                credited_account="3445566778890003",
            ),
            line(reference="BOC-E-0303-02", amount_fen=8, booked_on=day, kind=LineKind.INTEREST),
            line(
                reference="BOC-T-0303-09",
                direction=Direction.DEBIT,
                amount_fen=350_000,
                booked_on=day,
                value_on=day,
                credited_account="31001500001050000001",
                remittance="退还保证金",
                end_to_end_id="RF0c6f3d2b9a8e4f71",
            ),
        ),
    )


@pytest.mark.parametrize("version", ["02", "03", "04", "05", "06", "07", "08"])
def test_camt053_versions_02_to_08_are_read(version: str) -> None:
    assert parse_statement(camt(entry(), version=version), "camt053").lines == (
        line(reference="E1", amount_fen=10_000),
    )


@pytest.mark.parametrize("version", ["01", "09", "10"])
def test_camt053_other_versions_are_refused(version: str) -> None:
    refused("xml.unsupported_message", lambda: parse_statement(camt(entry(), version=version), "camt053"))


def test_camt053_matches_local_names_whatever_the_prefix() -> None:
    prefixed = CAMT_V02.replace("<Document xmlns=", "<c:Document xmlns:c=").replace(
        "</Document>", "</c:Document>"
    )
    prefixed = prefixed.replace("<BkToCstmrStmt>", "<c:BkToCstmrStmt>").replace(
        "</BkToCstmrStmt>", "</c:BkToCstmrStmt>"
    )
    # the children stay in no namespace; what counts is the Document's namespace and the local names
    assert parse_statement(prefixed.encode(), "camt053") == parse_statement(CAMT_V02.encode(), "camt053")


def test_camt053_a_byte_order_mark_is_accepted() -> None:
    assert (
        parse_statement(b"\xef\xbb\xbf" + CAMT_V02.encode(), "camt053").statement_id
        == "STMT-0200001409-20250301"
    )


def test_camt053_the_reference_falls_back_to_the_entry_then_to_ntryref() -> None:
    with_ntry_ref = (
        '<Ntry><NtryRef>N-77</NtryRef><Amt Ccy="CNY">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
        "<BookgDt><Dt>2025-03-01</Dt></BookgDt><NtryDtls><TxDtls><Refs><EndToEndId>X</EndToEndId></Refs>"
        "</TxDtls></NtryDtls></Ntry>"
    )
    got = parse_statement(camt(entry("E-5", "2.00") + with_ntry_ref), "camt053").lines
    assert [(item.reference, item.end_to_end_id) for item in got] == [("E-5", ""), ("N-77", "X")]


def test_camt053_an_iban_identifies_accounts_when_there_is_no_other_id() -> None:
    parties = (
        "<NtryDtls><TxDtls><RltdPties><DbtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></DbtrAcct>"
        "</RltdPties></TxDtls></NtryDtls>"
    )
    got = parse_statement(
        camt(entry(body=parties), account="<Acct><Id><IBAN>CN0000000000001</IBAN></Id></Acct>"), "camt.053"
    )
    assert (got.account, got.currency, got.lines[0].payer_account) == (
        "CN0000000000001",
        "CNY",
        "DE89370400440532013000",
    )


def test_camt053_a_debit_balance_is_negative_and_other_balances_are_ignored() -> None:
    balances = (
        '<Bal><Tp><CdOrPrtry><Cd>ITBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">7.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>'
        '<Bal><Tp><CdOrPrtry><Cd>CLAV</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">7.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>'
        '<Bal><Tp><CdOrPrtry><Cd>PRCD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>'
        '<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">5.00</Amt><CdtDbtInd>DBIT</CdtDbtInd></Bal>'
        '<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">95.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>'
    )
    got = parse_statement(camt(entry(), balances=balances), "camt053")
    assert (got.opening_balance_fen, got.closing_balance_fen) == (-500, 9_500)  # OPBD before PRCD


def test_camt053_a_batched_debit_transaction_counts_against_the_entry() -> None:
    # a credit entry of 70 netting a 100 credit and a 30 debit (a returned item in the same batch)
    body = (
        '<NtryDtls><TxDtls><Refs><AcctSvcrRef>A</AcctSvcrRef></Refs><Amt Ccy="CNY">100.00</Amt></TxDtls>'
        '<TxDtls><Refs><AcctSvcrRef>B</AcctSvcrRef></Refs><Amt Ccy="CNY">30.00</Amt><CdtDbtInd>DBIT</CdtDbtInd>'
        "</TxDtls></NtryDtls>"
    )
    got = parse_statement(camt(entry(amount="70.00", body=body)), "camt053").lines
    assert [(item.reference, item.direction, item.amount_fen) for item in got] == [
        ("A", Direction.CREDIT, 10_000),
        ("B", Direction.DEBIT, 3_000),
    ]


# ---------------------------------------------------------------- camt.053: refusals


def test_camt053_malformed_xml_is_refused_with_its_line() -> None:
    err = refused("xml.malformed", lambda: parse_statement(b"<Document>\n<Stmt>\n</Document>", "camt053"))
    assert err.line == 3


@pytest.mark.parametrize(
    "prolog",
    [
        '<!DOCTYPE Document [<!ENTITY lol "lol">]>',
        '<!DOCTYPE Document SYSTEM "http://example.com/evil.dtd">',
        "<!doctype Document>",
    ],
)
def test_camt053_a_doctype_or_entity_is_refused_before_parsing(prolog: str) -> None:
    refused("xml.forbidden", lambda: parse_statement(prolog.encode() + camt(entry()), "camt053"))


def test_camt053_a_billion_laughs_is_refused_without_expanding_anything() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>'
        "<Document>&lol2;</Document>"
    )
    refused("xml.forbidden", lambda: parse_statement(bomb.encode(), "camt053"))


def test_camt053_xinclude_is_refused() -> None:
    doc = camt(entry()).replace(
        b"<GrpHdr>", b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd"/><GrpHdr>'
    )
    refused("xml.forbidden", lambda: parse_statement(doc, "camt053"))


def test_camt053_deep_nesting_is_refused_while_parsing() -> None:
    deep = b"<a>" * 10_000 + b"</a>" * 10_000
    refused("xml.too_deep", lambda: parse_statement(deep, "camt053"))


def test_camt053_too_many_elements_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bankfiles, "MAX_XML_ELEMENTS", 20)
    refused("xml.too_many_elements", lambda: parse_statement(camt(entry() * 3), "camt053"))


@pytest.mark.parametrize(
    "data",
    [
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.02"/>',
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"/>',
        b"<Statement/>",
        b"<Document/>",
    ],
)
def test_camt053_another_message_is_refused(data: bytes) -> None:
    refused("xml.unsupported_message", lambda: parse_statement(data, "camt053"))


def test_a_csv_given_as_camt053_is_refused_as_malformed_xml() -> None:
    refused("xml.malformed", lambda: parse_statement(CSV_STATEMENT, "camt053"))


def test_a_file_over_20_mib_is_refused_before_reading() -> None:
    refused("file.too_large", lambda: parse_statement(b" " * (20 * 1024 * 1024 + 1), "camt053"))


def test_a_file_in_gbk_is_refused_with_the_line_of_the_first_bad_byte() -> None:
    err = refused("file.encoding", lambda: parse_statement(CAMT_V02.encode("gb18030"), "camt053"))
    first_chinese = next(n for n, text in enumerate(CAMT_V02.splitlines(), 1) if not text.isascii())
    assert err.line == first_chinese == 19  # the account's name


@pytest.mark.parametrize("data", [b"", b"  \r\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    refused("file.empty", lambda: parse_statement(data, "camt053"))
    refused("file.empty", lambda: parse_statement(data, "csv"))


def test_too_many_lines_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bankfiles, "MAX_LINES", 5)
    refused("file.too_many_lines", lambda: parse_results(pain002(status("A", "ACSC") * 6), "pain002"))
    refused("file.too_many_lines", lambda: parse_statement(CAMT_V02.encode(), "camt053"))
    refused("file.too_many_lines", lambda: parse_statement(CSV_STATEMENT * 1 + CSV_MORE, "csv"))


def test_a_camt053_without_a_statement_is_refused() -> None:
    doc = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt/></Document>'
    refused("statement.missing", lambda: parse_statement(doc, "camt053"))


def test_a_camt053_with_two_statements_is_refused() -> None:
    doc = camt(entry()).replace(b"</Stmt>", b"</Stmt><Stmt><Id>S2</Id></Stmt>")
    refused("statement.multiple", lambda: parse_statement(doc, "camt053"))


def test_camt053_two_lines_with_one_reference_are_refused_naming_both() -> None:
    err = refused(
        "statement.duplicate_reference", lambda: parse_statement(camt(entry("E1") + entry("E1")), "camt053")
    )
    assert err.field == "Stmt/Ntry[2]" and "Stmt/Ntry[1]" in err.message


def test_camt053_a_line_with_no_reference_at_all_is_refused() -> None:
    doc = camt(entry(ref=""))
    err = refused("field.missing", lambda: parse_statement(doc, "camt053"))
    assert err.field == "Stmt/Ntry[1]/Refs/AcctSvcrRef"


def test_camt053_a_batched_transaction_without_its_own_reference_is_refused() -> None:
    body = f"<NtryDtls>{tx('A', '60.00')}{tx('', '40.00')}</NtryDtls>"
    err = refused("statement.batch_reference", lambda: parse_statement(camt(entry(body=body)), "camt053"))
    assert err.field == "Stmt/Ntry[1]/NtryDtls/TxDtls[2]/Refs/AcctSvcrRef"


def test_camt053_a_batched_transaction_without_an_amount_is_refused() -> None:
    body = f"<NtryDtls>{tx('A', '60.00')}{tx('B', None)}</NtryDtls>"
    refused("statement.batch_amount", lambda: parse_statement(camt(entry(body=body)), "camt053"))


def test_camt053_batched_transactions_that_do_not_add_up_are_refused() -> None:
    body = f"<NtryDtls>{tx('A', '60.00')}{tx('B', '40.01')}</NtryDtls>"
    err = refused("statement.batch_amount", lambda: parse_statement(camt(entry(body=body)), "camt053"))
    assert "10001 fen, not the entry's 10000 fen" in err.message


def test_camt053_balances_that_the_lines_do_not_carry_are_refused() -> None:
    doc = CAMT_V02.replace("1090123.95", "1090123.96").encode()
    err = refused("statement.balance_mismatch", lambda: parse_statement(doc, "camt053"))
    assert "109012395 fen, not the closing balance 109012396 fen" in err.message


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (camt(entry(ccy="USD")), "Stmt/Ntry[1]/Amt/@Ccy"),
        (
            camt(entry(), account="<Acct><Id><Othr><Id>1</Id></Othr></Id><Ccy>HKD</Ccy></Acct>"),
            "Stmt/Acct/Ccy",
        ),
        (
            camt(entry().replace(' Ccy="CNY"', "")),
            "Stmt/Ntry[1]/Amt/@Ccy",
        ),  # missing: same answer, another code
    ],
)
def test_camt053_currencies_other_than_cny_are_refused(doc: bytes, field: str) -> None:
    with pytest.raises(BankFileError) as caught:
        parse_statement(doc, "camt053")
    assert caught.value.code in ("amount.currency", "field.missing") and caught.value.field == field


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("100.001", "amount.precision"),
        ("100.000", "amount.precision"),
        ("-100.00", "amount.invalid"),
        ("1e3", "amount.invalid"),
        ("1,000.00", "amount.invalid"),
        ("１００", "amount.invalid"),  # full-width digits are not what the bank's software writes
        ("0.00", "amount.invalid"),
        ("NaN", "amount.invalid"),
        ("99999999999999999999", "amount.too_large"),
        ("", "field.missing"),
    ],
)
def test_camt053_amounts_are_exact_yuan_to_the_fen(amount: str, code: str) -> None:
    err = refused(code, lambda: parse_statement(camt(entry(amount=amount)), "camt053"))
    assert err.field == "Stmt/Ntry[1]/Amt"


def test_camt053_a_missing_amount_or_booking_date_is_refused() -> None:
    no_amount = camt(entry().replace('<Amt Ccy="CNY">100.00</Amt>', ""))
    assert refused("field.missing", lambda: parse_statement(no_amount, "camt053")).field == "Stmt/Ntry[1]/Amt"
    no_date = camt(entry().replace("<BookgDt><Dt>2025-03-01</Dt></BookgDt>", ""))
    assert (
        refused("field.missing", lambda: parse_statement(no_date, "camt053")).field == "Stmt/Ntry[1]/BookgDt"
    )


@pytest.mark.parametrize("booked", ["2025-02-30", "20250301", "2025-W09-6", "01/03/2025"])
def test_camt053_an_impossible_or_foreign_date_is_refused(booked: str) -> None:
    refused("date.invalid", lambda: parse_statement(camt(entry(booked=booked)), "camt053"))


def test_camt053_an_unknown_direction_is_refused() -> None:
    refused("direction.invalid", lambda: parse_statement(camt(entry(ind="CR")), "camt053"))


def test_camt053_a_control_character_in_a_reference_is_refused() -> None:
    refused("field.control_character", lambda: parse_statement(camt(entry(ref="E&#x7f;1")), "camt053"))


def test_camt053_an_overlong_reference_is_refused() -> None:
    refused("field.too_long", lambda: parse_statement(camt(entry(ref="E" * 257)), "camt053"))


def test_formats_may_be_named_in_the_iso_spelling_too() -> None:
    assert parse_statement(CAMT_V02.encode(), "camt.053") == parse_statement(CAMT_V02.encode(), "camt053")
    assert parse_results(PAIN002.encode(), "pain.002") == parse_results(PAIN002.encode(), "pain002")


@pytest.mark.parametrize("fmt", ["CAMT053", "camt.052", "mt940", "pain002", "pain.002", "xml", ""])
def test_an_unknown_statement_format_is_refused(fmt: str) -> None:
    refused("format.unknown", lambda: parse_statement(CAMT_V02.encode(), fmt))


# ---------------------------------------------------------------- statement CSV

CSV_STATEMENT = (
    "\ufeffreference,booked_on,value_on,direction,amount,currency,payer_name,payer_account,payer_bank,"
    "credited_account,remittance,end_to_end_id,kind\r\n"
    "20250301-0001,2025-03-01,2025-03-01,C,50000.00,CNY,北京城建集团有限责任公司,0200049619200018888,"
    "中国工商银行北京西单支行,020000140902000000188001,投标保证金 BJGG-2025-0301,,transfer\r\n"
    '20250301-0002,2025-03-01,,credit,12000.5,CNY,"中建三局集团有限公司,北京分公司",4200012345,'
    '招商银行武汉分行,020000140902000000188002,"保证金\r\n第2标段",NOTPROVIDED,\r\n'
    "\r\n"
    "20250301-0003,2025-03-01,2025-02-28,C,0.35,CNY,,,,,结息,,interest\r\n"
    "20250301-0004,2025-03-01,2025-03-01,D,20000,CNY,,,,37001616601050150999,退还保证金,RF7d1c2a9e0b5f4c3e8a6b,\r\n"
).encode()
CSV_MORE = b"20250301-0005,2025-03-01,,C,1.00,CNY,,,,,,,\r\n20250301-0006,2025-03-01,,C,1.00,CNY,,,,,,,\r\n"
CSV_HEADER = "reference,booked_on,direction,amount,currency"


def test_statement_csv_with_bom_and_chinese_names_reads_every_line_exactly() -> None:
    got = parse_statement(CSV_STATEMENT, "csv")
    assert got.statement_id == "sha256:" + hashlib.sha256(CSV_STATEMENT).hexdigest()
    assert (got.account, got.currency, got.opening_balance_fen, got.closing_balance_fen) == (
        "",
        "CNY",
        None,
        None,
    )
    assert got.lines == (
        line(
            reference="20250301-0001",
            amount_fen=5_000_000,
            value_on=MARCH_1,
            payer_name="北京城建集团有限责任公司",
            payer_account="0200049619200018888",
            payer_bank="中国工商银行北京西单支行",
            credited_account="020000140902000000188001",
            remittance="投标保证金 BJGG-2025-0301",
        ),
        line(
            reference="20250301-0002",
            amount_fen=1_200_050,
            payer_name="中建三局集团有限公司,北京分公司",
            payer_account="4200012345",
            payer_bank="招商银行武汉分行",
            credited_account="020000140902000000188002",
            remittance="保证金 第2标段",  # a quoted line break reads as a space
        ),
        line(
            reference="20250301-0003",
            amount_fen=35,
            value_on=date(2025, 2, 28),
            remittance="结息",
            kind=LineKind.INTEREST,
        ),
        line(
            reference="20250301-0004",
            direction=Direction.DEBIT,
            amount_fen=2_000_000,
            value_on=MARCH_1,
            credited_account="37001616601050150999",
            remittance="退还保证金",
            end_to_end_id="RF7d1c2a9e0b5f4c3e8a6b",
        ),
    )


def test_statement_csv_columns_may_come_in_any_order_and_optional_ones_may_be_left_out() -> None:
    data = b"Currency , AMOUNT,direction,booked_on,reference\nCNY,7,d,2025-03-01,R1\n"
    assert parse_statement(data, "csv").lines == (line(direction=Direction.DEBIT, amount_fen=700),)


def test_statement_csv_without_bom_reads_the_same() -> None:
    assert parse_statement(CSV_STATEMENT[3:], "csv").lines == parse_statement(CSV_STATEMENT, "csv").lines


def test_statement_csv_with_only_a_header_has_no_lines() -> None:
    assert parse_statement(f"{CSV_HEADER}\n,,,,\n".encode(), "csv").lines == ()


@pytest.mark.parametrize(
    ("header", "code", "field"),
    [
        ("reference,booked_on,direction,amount", "csv.missing_column", "currency"),
        ("reference,booked_on,direction,amount,currency,memo", "csv.unknown_column", "memo"),
        ("reference,booked_on,direction,amount,currency,reference", "csv.duplicate_column", "reference"),
        ("交易流水号,记账日期,借贷,金额,币种", "csv.unknown_column", "交易流水号"),
    ],
)
def test_statement_csv_header_problems_name_the_column(header: str, code: str, field: str) -> None:
    err = refused(code, lambda: parse_statement(f"{header}\nR1,2025-03-01,C,1,CNY\n".encode(), "csv"))
    assert (err.line, err.field) == (1, field)


def test_statement_csv_a_broken_header_is_refused() -> None:
    err = refused("csv.malformed", lambda: parse_statement(b'"reference,booked_on', "csv"))
    assert err.line == 1


def test_a_file_that_is_not_bytes_is_refused() -> None:
    refused("field.invalid", lambda: parse_statement("reference\n", "csv"))  # type: ignore[arg-type]


def test_a_camt053_given_as_csv_is_refused_by_its_header() -> None:
    refused("csv.unknown_column", lambda: parse_statement(CAMT_V02.encode(), "csv"))


def test_statement_csv_a_line_with_too_few_fields_is_refused_with_its_line_number() -> None:
    data = f"{CSV_HEADER}\nR1,2025-03-01,C,1,CNY\n\nR2,2025-03-01,C,1\n".encode()
    assert refused("csv.field_count", lambda: parse_statement(data, "csv")).line == 4


def test_statement_csv_broken_quoting_is_refused_with_its_line_number() -> None:
    data = f'{CSV_HEADER}\nR1,2025-03-01,C,1,CNY\nR2,2025-03-01,C,"1"x,CNY\n'.encode()
    assert refused("csv.malformed", lambda: parse_statement(data, "csv")).line == 3


def test_statement_csv_the_line_number_counts_physical_lines_across_quoted_breaks() -> None:
    data = f'{CSV_HEADER},remittance\nR1,2025-03-01,C,1,CNY,"a\nb\nc"\nR2,2025-03-01,X,1,CNY,\n'.encode()
    err = refused("direction.invalid", lambda: parse_statement(data, "csv"))
    assert (err.line, err.field) == (5, "direction")


@pytest.mark.parametrize(
    ("values", "code", "field"),
    [
        (",2025-03-01,C,1,CNY", "field.missing", "reference"),
        ("R1,,C,1,CNY", "field.missing", "booked_on"),
        ("R1,2025-3-1,C,1,CNY", "date.invalid", "booked_on"),
        ("R1,2025-03-01,,1,CNY", "field.missing", "direction"),
        ("R1,2025-03-01,in,1,CNY", "direction.invalid", "direction"),
        ("R1,2025-03-01,C,,CNY", "field.missing", "amount"),
        ("R1,2025-03-01,C,1.234,CNY", "amount.precision", "amount"),
        ("R1,2025-03-01,C,-1,CNY", "amount.invalid", "amount"),
        ("R1,2025-03-01,C,￥1.00,CNY", "amount.invalid", "amount"),
        ("R1,2025-03-01,C,1,RMB", "amount.currency", "currency"),
        ("R1,2025-03-01,C,1,", "field.missing", "currency"),
        ("R\x001,2025-03-01,C,1,CNY", "field.control_character", "reference"),
        ("R" * 300 + ",2025-03-01,C,1,CNY", "field.too_long", "reference"),
    ],
)
def test_statement_csv_a_bad_value_names_its_line_and_column(values: str, code: str, field: str) -> None:
    err = refused(
        code, lambda: parse_statement(f"{CSV_HEADER}\nR0,2025-03-01,C,1,CNY\n{values}\n".encode(), "csv")
    )
    assert (err.line, err.field) == (3, field)


def test_statement_csv_value_on_and_kind_are_checked_too() -> None:
    header = f"{CSV_HEADER},value_on,kind"
    bad_date = f"{header}\nR1,2025-03-01,C,1,CNY,2025-13-01,\n".encode()
    assert refused("date.invalid", lambda: parse_statement(bad_date, "csv")).field == "value_on"
    bad_kind = f"{header}\nR1,2025-03-01,C,1,CNY,,fee\n".encode()
    assert refused("kind.invalid", lambda: parse_statement(bad_kind, "csv")).field == "kind"


def test_statement_csv_an_overlong_remittance_is_refused() -> None:
    data = f"{CSV_HEADER},remittance\nR1,2025-03-01,C,1,CNY,{'字' * 2049}\n".encode()
    refused("field.too_long", lambda: parse_statement(data, "csv"))


def test_statement_csv_control_characters_in_names_read_as_spaces() -> None:
    data = f"{CSV_HEADER},payer_name\nR1,2025-03-01,C,1,CNY,甲\x07乙\t丙\n".encode()
    assert parse_statement(data, "csv").lines[0].payer_name == "甲 乙 丙"


def test_statement_csv_a_repeated_reference_is_refused_at_its_second_line() -> None:
    data = f"{CSV_HEADER}\nR1,2025-03-01,C,1,CNY\nR2,2025-03-01,C,1,CNY\nR1,2025-03-02,C,2,CNY\n".encode()
    err = refused("statement.duplicate_reference", lambda: parse_statement(data, "csv"))
    assert err.line == 4 and "line 2" in err.message


# ---------------------------------------------------------------- signed arrival notices

NOTICE = {
    "reference": "20250301-0001",
    "booked_on": "2025-03-01",
    "value_on": "2025-03-01",
    "direction": "credit",
    "amount_fen": 5_000_000,
    "currency": "CNY",
    "payer_name": "北京城建集团有限责任公司",
    "payer_account": "0200049619200018888",
    "payer_bank": "中国工商银行北京西单支行",
    "credited_account": "020000140902000000188001",
    "remittance": "投标保证金",
    "end_to_end_id": None,
    "kind": "transfer",
}
NOTICE_BODY = json.dumps(NOTICE, ensure_ascii=False).encode()


def notice(body: bytes = NOTICE_BODY, **changes: object) -> BankFileError | StatementLine:
    """Verify `body` (or NOTICE with `changes`) signed now with SECRET; the line or the error."""
    if changes:
        body = json.dumps({**NOTICE, **changes}, ensure_ascii=False).encode()
    try:
        return verify_notification(body, sign_notification(body, SECRET, NOW), SECRET, NOW)
    except BankFileError as error:
        return error


def test_a_signed_notice_gives_its_statement_line() -> None:
    header = sign_notification(NOTICE_BODY, SECRET, NOW)
    assert header.startswith(f"t={int(NOW.timestamp())},v1=") and len(header) == len("t=1740796200,v1=") + 64
    assert verify_notification(NOTICE_BODY, header, SECRET, NOW) == line(
        reference="20250301-0001",
        amount_fen=5_000_000,
        value_on=MARCH_1,
        payer_name="北京城建集团有限责任公司",
        payer_account="0200049619200018888",
        payer_bank="中国工商银行北京西单支行",
        credited_account="020000140902000000188001",
        remittance="投标保证金",
    )


def test_a_notice_may_leave_optional_keys_out() -> None:
    body = b'{"reference":"R1","booked_on":"2025-03-01","direction":"C","amount_fen":100,"currency":"CNY"}'
    assert notice(body) == line()


def test_during_a_secret_rotation_any_v1_may_match() -> None:
    old = sign_notification(NOTICE_BODY, b"the-old-secret", NOW)
    new = sign_notification(NOTICE_BODY, SECRET, NOW)
    header = f"{old}, v1={new.split('v1=')[1]} ,v0=ignored"
    assert isinstance(verify_notification(NOTICE_BODY, header, SECRET, NOW), StatementLine)


@pytest.mark.parametrize("skew", [timedelta(minutes=5), -timedelta(minutes=5), timedelta(0)])
def test_a_notice_within_the_tolerance_is_accepted(skew: timedelta) -> None:
    header = sign_notification(NOTICE_BODY, SECRET, NOW + skew)
    assert isinstance(verify_notification(NOTICE_BODY, header, SECRET, NOW), StatementLine)


@pytest.mark.parametrize(
    "skew", [timedelta(minutes=5, seconds=1), -timedelta(minutes=5, seconds=1), timedelta(days=400)]
)
def test_a_notice_signed_too_long_ago_or_ahead_is_stale(skew: timedelta) -> None:
    header = sign_notification(NOTICE_BODY, SECRET, NOW - skew)
    refused("notification.stale", lambda: verify_notification(NOTICE_BODY, header, SECRET, NOW))


def test_the_tolerance_is_the_callers() -> None:
    header = sign_notification(NOTICE_BODY, SECRET, NOW - timedelta(minutes=20))
    assert isinstance(
        verify_notification(NOTICE_BODY, header, SECRET, NOW, timedelta(minutes=30)), StatementLine
    )


def test_the_stale_check_compares_instants_whatever_the_zone() -> None:
    header = sign_notification(NOTICE_BODY, SECRET, NOW.astimezone(UTC))
    assert isinstance(verify_notification(NOTICE_BODY, header, SECRET, NOW), StatementLine)


def test_a_notice_signed_with_another_secret_is_refused() -> None:
    header = sign_notification(NOTICE_BODY, b"not-our-secret", NOW)
    refused("notification.signature", lambda: verify_notification(NOTICE_BODY, header, SECRET, NOW))


def test_a_changed_timestamp_breaks_the_signature() -> None:
    header = sign_notification(NOTICE_BODY, SECRET, NOW)
    moved = header.replace(f"t={int(NOW.timestamp())}", f"t={int(NOW.timestamp()) + 1}")
    refused("notification.signature", lambda: verify_notification(NOTICE_BODY, moved, SECRET, NOW))


def test_the_signature_is_checked_before_the_time() -> None:
    # a forged notice learns nothing about the clock
    header = sign_notification(NOTICE_BODY, b"forger", NOW - timedelta(days=1))
    refused("notification.signature", lambda: verify_notification(NOTICE_BODY, header, SECRET, NOW))


@pytest.mark.parametrize(
    "header",
    [
        "",
        "v1=" + "0" * 64,
        "t=1740796200",
        "t=1740796200,v1=abc",
        "t=1740796200,v1=" + "g" * 64,
        "t=-5,v1=" + "0" * 64,
        "t=1.5,v1=" + "0" * 64,
        "t=1,t=2,v1=" + "0" * 64,
        "t=1740796200;v1=" + "0" * 64,
        "t=1740796200,v1=" + "0" * 64 + "," * 5000,
    ],
)
def test_a_malformed_signature_header_is_refused(header: str) -> None:
    refused("notification.header", lambda: verify_notification(NOTICE_BODY, header, SECRET, NOW))


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"not json", "notification.body", None),
        (b"[1, 2]", "notification.body", None),
        ("{}".encode("utf-16"), "notification.body", None),
        (b'{"reference": "R1", "reference": "R2"}', "notification.body", "reference"),
        (b'{"amount_fen": NaN}', "notification.body", None),
        (b"[" * 30_000 + b"]" * 30_000, "notification.body", None),  # nesting, not size
        (b" " * (64 * 1024 + 1), "notification.body", None),
    ],
)
def test_a_notice_body_that_is_not_one_json_object_is_refused(
    body: bytes, code: str, field: str | None
) -> None:
    got = notice(body)
    assert isinstance(got, BankFileError) and (got.code, got.field) == (code, field)


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"memo": "x"}, "notification.unknown_field", "memo"),
        ({"amount": "50000.00"}, "notification.unknown_field", "amount"),
        ({"amount_fen": None}, "field.missing", "amount_fen"),
        ({"reference": None}, "field.missing", "reference"),
        ({"reference": ""}, "field.missing", "reference"),
        ({"amount_fen": 5000.0}, "amount.invalid", "amount_fen"),
        ({"amount_fen": "5000"}, "amount.invalid", "amount_fen"),
        ({"amount_fen": True}, "amount.invalid", "amount_fen"),
        ({"amount_fen": 0}, "amount.invalid", "amount_fen"),
        ({"amount_fen": -1}, "amount.invalid", "amount_fen"),
        ({"amount_fen": 2**63}, "amount.too_large", "amount_fen"),
        ({"payer_name": 12}, "field.invalid", "payer_name"),
        ({"currency": "USD"}, "amount.currency", "currency"),
        ({"booked_on": "2025-02-29"}, "date.invalid", "booked_on"),
        ({"direction": "in"}, "direction.invalid", "direction"),
        ({"kind": "fee"}, "kind.invalid", "kind"),
    ],
)
def test_a_notice_with_a_bad_value_is_refused(changes: dict[str, Any], code: str, field: str) -> None:
    got = notice(**changes)
    assert isinstance(got, BankFileError) and (got.code, got.field) == (code, field)


def test_notices_need_an_aware_now_a_secret_and_a_non_negative_tolerance() -> None:
    header = sign_notification(NOTICE_BODY, SECRET, NOW)
    naive = NOW.replace(tzinfo=None)
    refused("time.naive", lambda: verify_notification(NOTICE_BODY, header, SECRET, naive))
    refused("time.naive", lambda: sign_notification(NOTICE_BODY, SECRET, naive))
    refused("notification.config", lambda: verify_notification(NOTICE_BODY, header, b"", NOW))
    refused("notification.config", lambda: sign_notification(NOTICE_BODY, b"", NOW))
    refused(
        "notification.config",
        lambda: verify_notification(NOTICE_BODY, header, SECRET, NOW, -timedelta(seconds=1)),
    )


# ---------------------------------------------------------------- refund instructions out

REFUND_1 = PaymentInstruction(
    end_to_end_id="RF7d1c2a9e0b5f4c3e8a6b",
    amount_fen=2_000_000,
    payee_name="中铁十四局集团有限公司",
    payee_account="37001616601050150999",
    payee_bank="中国建设银行济南分行",
    remittance="退还投标保证金 BJGG-2024-1187",
)
REFUND_2 = PaymentInstruction(
    end_to_end_id="RF0c6f3d2b9a8e4f71",
    amount_fen=123_450,
    payee_name='A&B <"Trading"> Co., Ltd.',
    payee_account="6222020200112233445",
    payee_bank="中国工商银行上海分行",
)
BATCH = PaymentBatch(
    batch_id="RB20250301A",
    created_at=datetime(2025, 3, 1, 1, 15, 30, 123456, tzinfo=UTC),
    debtor_name="北京市公共资源交易中心",
    debtor_account="0200001409020000001",
    debtor_bank="中国工商银行北京分行营业部",
    instructions=(REFUND_1, REFUND_2),
)


def ours(data: bytes) -> ET.Element:
    """Parse a file this module wrote (trusted: no DOCTYPE is ever written)."""
    return ET.fromstring(data)  # noqa: S314 - our own output, see the docstring


def pain001_text(root: ET.Element, path: str) -> str:
    found = root.find("/".join(PAIN001 + part for part in path.split("/")))
    assert found is not None and found.text is not None, path
    return found.text


def test_pain001_round_trips_through_elementtree_field_by_field() -> None:
    root = ours(payment_xml(BATCH))
    assert root.tag == PAIN001 + "Document"
    group = "CstmrCdtTrfInitn/GrpHdr"
    assert pain001_text(root, f"{group}/MsgId") == "RB20250301A"
    assert (
        pain001_text(root, f"{group}/CreDtTm") == "2025-03-01T09:15:30+08:00"
    )  # Beijing time, to the second
    assert pain001_text(root, f"{group}/NbOfTxs") == "2"
    assert pain001_text(root, f"{group}/InitgPty/Nm") == "北京市公共资源交易中心"
    block = "CstmrCdtTrfInitn/PmtInf"
    assert pain001_text(root, f"{block}/PmtInfId") == "RB20250301A"
    assert pain001_text(root, f"{block}/PmtMtd") == "TRF"
    assert pain001_text(root, f"{block}/ReqdExctnDt") == "2025-03-01"
    assert pain001_text(root, f"{block}/Dbtr/Nm") == "北京市公共资源交易中心"
    assert pain001_text(root, f"{block}/DbtrAcct/Id/Othr/Id") == "0200001409020000001"
    assert pain001_text(root, f"{block}/DbtrAcct/Ccy") == "CNY"
    assert pain001_text(root, f"{block}/DbtrAgt/FinInstnId/Nm") == "中国工商银行北京分行营业部"
    transfers = root.findall(f"{PAIN001}CstmrCdtTrfInitn/{PAIN001}PmtInf/{PAIN001}CdtTrfTxInf")
    got = []
    for transfer in transfers:
        amount = transfer.find(f"{PAIN001}Amt/{PAIN001}InstdAmt")
        assert amount is not None
        ustrd = transfer.find(f"{PAIN001}RmtInf/{PAIN001}Ustrd")
        got.append(
            (
                pain001_text(transfer, "PmtId/EndToEndId"),
                amount.text,
                amount.get("Ccy"),
                pain001_text(transfer, "Cdtr/Nm"),
                pain001_text(transfer, "CdtrAcct/Id/Othr/Id"),
                pain001_text(transfer, "CdtrAgt/FinInstnId/Nm"),
                None if ustrd is None else ustrd.text,
            )
        )
    assert got == [
        (
            "RF7d1c2a9e0b5f4c3e8a6b",
            "20000.00",
            "CNY",
            "中铁十四局集团有限公司",
            "37001616601050150999",
            "中国建设银行济南分行",
            "退还投标保证金 BJGG-2024-1187",
        ),
        (
            "RF0c6f3d2b9a8e4f71",
            "1234.50",
            "CNY",
            'A&B <"Trading"> Co., Ltd.',
            "6222020200112233445",
            "中国工商银行上海分行",
            None,
        ),
    ]


def test_pain001_is_well_formed_and_its_control_sums_equal_the_instructions() -> None:
    data = payment_xml(BATCH)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ours(data)
    amounts = [Decimal(e.text or "") for e in root.iter(PAIN001 + "InstdAmt")]
    sums = [Decimal(e.text or "") for e in root.iter(PAIN001 + "CtrlSum")]
    assert sums == [sum(amounts), sum(amounts)] == [Decimal("21234.50")] * 2
    assert [e.text for e in root.iter(PAIN001 + "NbOfTxs")] == ["2", "2"]


def test_pain001_escapes_markup_in_names() -> None:
    data = payment_xml(BATCH)
    assert b'A&amp;B &lt;"Trading"&gt; Co., Ltd.' in data and b'<"Trading">' not in data


def test_pain001_elements_stand_in_schema_order() -> None:
    root = ours(payment_xml(BATCH))
    transfer = root.find(f"{PAIN001}CstmrCdtTrfInitn/{PAIN001}PmtInf/{PAIN001}CdtTrfTxInf")
    assert transfer is not None
    assert [child.tag.removeprefix(PAIN001) for child in transfer] == [
        "PmtId",
        "Amt",
        "CdtrAgt",
        "Cdtr",
        "CdtrAcct",
        "RmtInf",
    ]
    block = root.find(f"{PAIN001}CstmrCdtTrfInitn/{PAIN001}PmtInf")
    assert block is not None
    assert [child.tag.removeprefix(PAIN001) for child in block][:9] == [
        "PmtInfId",
        "PmtMtd",
        "NbOfTxs",
        "CtrlSum",
        "ReqdExctnDt",
        "Dbtr",
        "DbtrAcct",
        "DbtrAgt",
        "CdtTrfTxInf",
    ]


def test_payment_files_are_the_same_bytes_for_the_same_batch() -> None:
    twin = dataclasses.replace(BATCH, instructions=tuple(dataclasses.replace(i) for i in BATCH.instructions))
    assert payment_xml(twin) == payment_xml(BATCH)
    assert payment_csv(twin) == payment_csv(BATCH)


def test_the_execution_date_is_the_batch_day_in_beijing() -> None:
    late_utc = dataclasses.replace(BATCH, created_at=datetime(2025, 3, 1, 16, 30, tzinfo=UTC))
    root = ours(payment_xml(late_utc))
    assert pain001_text(root, "CstmrCdtTrfInitn/PmtInf/ReqdExctnDt") == "2025-03-02"


def test_payment_csv_writes_the_documented_layout_exactly() -> None:
    assert payment_csv(BATCH).decode() == (
        "batch_id,end_to_end_id,debtor_account,amount,currency,payee_name,payee_account,payee_bank,remittance\r\n"
        "RB20250301A,RF7d1c2a9e0b5f4c3e8a6b,0200001409020000001,20000.00,CNY,中铁十四局集团有限公司,"
        "37001616601050150999,中国建设银行济南分行,退还投标保证金 BJGG-2024-1187\r\n"
        'RB20250301A,RF0c6f3d2b9a8e4f71,0200001409020000001,1234.50,CNY,"A&B <""Trading""> Co., Ltd.",'
        "6222020200112233445,中国工商银行上海分行,\r\n"
    )


def test_payment_csv_reads_back_with_the_csv_module() -> None:
    rows = list(csv.DictReader(io.StringIO(payment_csv(BATCH).decode(), newline="")))
    assert [(r["end_to_end_id"], r["amount"], r["payee_name"]) for r in rows] == [
        ("RF7d1c2a9e0b5f4c3e8a6b", "20000.00", "中铁十四局集团有限公司"),
        ("RF0c6f3d2b9a8e4f71", "1234.50", 'A&B <"Trading"> Co., Ltd.'),
    ]


def test_a_batch_takes_any_sequence_of_instructions_and_keeps_a_tuple() -> None:
    batch = dataclasses.replace(BATCH, instructions=[REFUND_1])  # type: ignore[arg-type]
    assert batch.instructions == (REFUND_1,) and batch.total_fen == 2_000_000


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"end_to_end_id": ""}, "field.invalid", "end_to_end_id"),
        ({"end_to_end_id": "R" * 36}, "field.invalid", "end_to_end_id"),
        ({"end_to_end_id": "7d1c2a9e-0b5f-4c3e-8a6b-1234567890ab"}, "field.invalid", "end_to_end_id"),
        ({"end_to_end_id": "RF 1"}, "field.invalid", "end_to_end_id"),
        ({"amount_fen": 0}, "amount.invalid", "amount_fen"),
        ({"amount_fen": -100}, "amount.invalid", "amount_fen"),
        ({"amount_fen": True}, "amount.invalid", "amount_fen"),
        ({"amount_fen": 100.0}, "amount.invalid", "amount_fen"),
        ({"amount_fen": MAX_AMOUNT_FEN + 1}, "amount.too_large", "amount_fen"),
        ({"payee_name": ""}, "field.missing", "payee_name"),
        ({"payee_name": "   "}, "field.missing", "payee_name"),
        ({"payee_name": None}, "field.invalid", "payee_name"),
        ({"payee_name": "中铁\n十四局"}, "field.control_character", "payee_name"),
        ({"payee_name": "中铁\x00十四局"}, "field.control_character", "payee_name"),
        (
            {"payee_name": "中铁\u202e局四十"},
            "field.control_character",
            "payee_name",
        ),  # right-to-left override
        ({"payee_name": "中铁\ud800"}, "field.control_character", "payee_name"),
        ({"payee_name": "中铁\uffff"}, "field.control_character", "payee_name"),
        ({"payee_name": "公" * 141}, "field.too_long", "payee_name"),
        ({"payee_name": '=HYPERLINK("http://x")'}, "field.formula_prefix", "payee_name"),
        ({"payee_bank": "@SUM(A1)"}, "field.formula_prefix", "payee_bank"),
        ({"payee_bank": ""}, "field.missing", "payee_bank"),
        ({"payee_account": "6222 0202"}, "field.invalid", "payee_account"),
        ({"payee_account": ""}, "field.invalid", "payee_account"),
        ({"payee_account": "1" * 35}, "field.invalid", "payee_account"),
        ({"remittance": "+退款"}, "field.formula_prefix", "remittance"),
        ({"remittance": "退款\r\n"}, "field.control_character", "remittance"),
    ],
)
def test_an_instruction_with_a_bad_value_is_refused_when_built(
    changes: dict[str, Any], code: str, field: str
) -> None:
    err = refused(code, lambda: dataclasses.replace(REFUND_1, **changes))
    assert err.field == field


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"batch_id": "批次1"}, "field.invalid", "batch_id"),
        ({"created_at": datetime(2025, 3, 1, 9, 0)}, "time.naive", None),
        ({"created_at": "2025-03-01T09:00:00+08:00"}, "time.naive", None),
        ({"debtor_name": "交易中心\t"}, "field.control_character", "debtor_name"),
        ({"debtor_account": "x y"}, "field.invalid", "debtor_account"),
        ({"debtor_bank": ""}, "field.missing", "debtor_bank"),
        ({"instructions": ()}, "payment.empty", None),
        (
            {"instructions": (REFUND_1, REFUND_2, REFUND_1)},
            "payment.duplicate_end_to_end_id",
            "instructions[3].end_to_end_id",
        ),
        ({"instructions": (REFUND_1, "RF2")}, "field.invalid", "instructions"),
        (
            {"instructions": (dataclasses.replace(REFUND_1, amount_fen=MAX_AMOUNT_FEN), REFUND_2)},
            "amount.too_large",
            "total",
        ),
    ],
)
def test_a_batch_with_a_bad_value_is_refused_when_built(
    changes: dict[str, Any], code: str, field: str | None
) -> None:
    err = refused(code, lambda: dataclasses.replace(BATCH, **changes))
    assert err.field == field


def test_a_batch_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bankfiles, "MAX_PAYMENTS", 1)
    refused("payment.too_many", lambda: dataclasses.replace(BATCH))


def test_format_amount_refuses_what_is_not_fen() -> None:
    for bad in (-1, 1.5, True, "100"):
        refused("amount.invalid", lambda bad=bad: format_amount(bad))  # type: ignore[misc]
    assert [format_amount(n) for n in (0, 1, 10, 100, 123_450, MAX_AMOUNT_FEN)] == [
        "0.00",
        "0.01",
        "0.10",
        "1.00",
        "1234.50",
        "92233720368547758.07",
    ]


# ---------------------------------------------------------------- refund results in

PAIN002 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>ICBC-002-20250301-88</MsgId><CreDtTm>2025-03-01T16:05:00+08:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts>
      <OrgnlMsgId>RB20250301A</OrgnlMsgId>
      <OrgnlMsgNmId>pain.001.001.03</OrgnlMsgNmId>
      <GrpSts>PART</GrpSts>
    </OrgnlGrpInfAndSts>
    <OrgnlPmtInfAndSts>
      <OrgnlPmtInfId>RB20250301A</OrgnlPmtInfId>
      <TxInfAndSts>
        <StsId>S-1</StsId>
        <OrgnlEndToEndId>RF7d1c2a9e0b5f4c3e8a6b</OrgnlEndToEndId>
        <TxSts>ACSC</TxSts>
        <AccptncDtTm>2025-03-01T15:42:07+08:00</AccptncDtTm>
        <AcctSvcrRef>E20250301000104</AcctSvcrRef>
      </TxInfAndSts>
      <TxInfAndSts>
        <StsId>S-2</StsId>
        <OrgnlEndToEndId>RF0c6f3d2b9a8e4f71</OrgnlEndToEndId>
        <TxSts>RJCT</TxSts>
        <StsRsnInf>
          <Rsn><Cd>AC04</Cd></Rsn>
          <AddtlInf>收款账户已销户</AddtlInf>
          <AddtlInf>请核实后重新发起</AddtlInf>
        </StsRsnInf>
      </TxInfAndSts>
      <TxInfAndSts>
        <OrgnlEndToEndId>RF00000000000000000003</OrgnlEndToEndId>
        <TxSts>ACTC</TxSts>
      </TxInfAndSts>
      <TxInfAndSts>
        <OrgnlEndToEndId>RF00000000000000000004</OrgnlEndToEndId>
        <TxSts>ACSP</TxSts>
      </TxInfAndSts>
      <TxInfAndSts>
        <OrgnlEndToEndId>RF00000000000000000005</OrgnlEndToEndId>
        <TxSts>RJCT</TxSts>
        <StsRsnInf><Rsn><Prtry>B017</Prtry></Rsn></StsRsnInf>
      </TxInfAndSts>
    </OrgnlPmtInfAndSts>
  </CstmrPmtStsRpt>
</Document>
"""


def pain002(transactions: str, *, version: str = "03", group: str = "", block_status: str = "") -> bytes:
    grp = (
        f"<OrgnlGrpInfAndSts><OrgnlMsgId>RB1</OrgnlMsgId><GrpSts>{group}</GrpSts></OrgnlGrpInfAndSts>"
        if group
        else ""
    )
    sts = f"<PmtInfSts>{block_status}</PmtInfSts>" if block_status else ""
    return (
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.{version}"><CstmrPmtStsRpt>'
        f"<GrpHdr><MsgId>M</MsgId></GrpHdr>{grp}<OrgnlPmtInfAndSts><OrgnlPmtInfId>RB1</OrgnlPmtInfId>{sts}"
        f"{transactions}</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>"
    ).encode()


def status(e2e: str, code: str = "", extra: str = "") -> str:
    sts = f"<TxSts>{code}</TxSts>" if code else ""
    return f"<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>{sts}{extra}</TxInfAndSts>"


def test_pain002_gives_paid_and_failed_results_and_leaves_interim_ones_out() -> None:
    assert parse_results(PAIN002.encode(), "pain002") == [
        PaymentResult("RF7d1c2a9e0b5f4c3e8a6b", True, "", "E20250301000104", MARCH_1, "ACSC"),
        PaymentResult("RF0c6f3d2b9a8e4f71", False, "AC04: 收款账户已销户 请核实后重新发起", "", None, "RJCT"),
        PaymentResult("RF00000000000000000004", True, "", "", None, "ACSP"),
        PaymentResult("RF00000000000000000005", False, "B017", "", None, "RJCT"),
    ]


def test_pain002_statuses_are_inherited_from_the_payment_block_then_the_group() -> None:
    from_block = pain002(status("A") + status("B", "RJCT"), block_status="ACCP", group="PART")
    assert [(r.end_to_end_id, r.paid, r.status) for r in parse_results(from_block, "pain002")] == [
        ("A", True, "ACCP"),
        ("B", False, "RJCT"),
    ]
    from_group = pain002(status("A"), group="RJCT")
    assert parse_results(from_group, "pain002")[0].paid is False


def test_pain002_later_versions_and_the_settlement_date_are_read() -> None:
    settled = (
        "<FctvIntrBkSttlmDt><DtTm>2025-03-03T08:00:00Z</DtTm></FctvIntrBkSttlmDt>"
        "<AccptncDtTm>2025-03-01T10:00:00</AccptncDtTm>"
    )
    got = parse_results(pain002(status("A", "ACCC", settled), version="10"), "pain002")
    assert got == [PaymentResult("A", True, "", "", date(2025, 3, 3), "ACCC")]


def test_pain002_a_cancelled_payment_failed() -> None:
    assert parse_results(pain002(status("A", "CANC")), "pain002")[0].paid is False


def test_pain002_with_only_a_group_status_asks_for_transaction_statuses() -> None:
    err = refused("results.group_status_only", lambda: parse_results(pain002("", group="ACSC"), "pain002"))
    assert "TxInfAndSts" in err.message
    refused("results.group_status_only", lambda: parse_results(pain002("", block_status="RJCT"), "pain002"))


def test_pain002_with_no_status_at_all_is_refused() -> None:
    refused("results.empty", lambda: parse_results(pain002(""), "pain002"))


def test_pain002_an_unknown_status_is_refused() -> None:
    err = refused("results.status", lambda: parse_results(pain002(status("A", "OKAY")), "pain002"))
    assert err.field == "OrgnlPmtInfAndSts[1]/TxInfAndSts[1]/TxSts"


def test_pain002_a_transaction_without_any_status_is_refused() -> None:
    refused("field.missing", lambda: parse_results(pain002(status("A")), "pain002"))


def test_pain002_a_transaction_without_its_end_to_end_id_is_refused() -> None:
    err = refused("field.missing", lambda: parse_results(pain002(status("", "ACSC")), "pain002"))
    assert err.field == "OrgnlPmtInfAndSts[1]/TxInfAndSts[1]/OrgnlEndToEndId"


def test_pain002_two_results_for_one_instruction_are_refused() -> None:
    doc = pain002(status("A", "ACTC") + status("A", "ACSC"))
    err = refused("results.duplicate_end_to_end_id", lambda: parse_results(doc, "pain002"))
    assert err.field == "OrgnlPmtInfAndSts[1]/TxInfAndSts[2]/OrgnlEndToEndId"


def test_pain002_without_a_report_is_refused() -> None:
    doc = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><Other/></Document>'
    refused("field.missing", lambda: parse_results(doc, "pain002"))


def test_pain002_an_odd_acceptance_time_is_refused() -> None:
    doc = pain002(status("A", "ACSC", "<AccptncDtTm>yesterday</AccptncDtTm>"))
    refused("date.invalid", lambda: parse_results(doc, "pain002"))


@pytest.mark.parametrize("version", ["02", "13"])
def test_pain002_other_versions_and_statements_are_refused(version: str) -> None:
    refused(
        "xml.unsupported_message",
        lambda: parse_results(pain002(status("A", "ACSC"), version=version), "pain002"),
    )
    refused("xml.unsupported_message", lambda: parse_results(CAMT_V02.encode(), "pain002"))


RESULTS_CSV = (
    "\ufeffend_to_end_id,status,reason,bank_reference,paid_on\r\n"
    "RF7d1c2a9e0b5f4c3e8a6b,paid,,E20250301000104,2025-03-01\r\n"
    "RF0c6f3d2b9a8e4f71,FAILED,AC04 收款账户已销户,,\r\n"
).encode()


def test_results_csv_reads_paid_and_failed_lines() -> None:
    assert parse_results(RESULTS_CSV, "csv") == [
        PaymentResult("RF7d1c2a9e0b5f4c3e8a6b", True, "", "E20250301000104", MARCH_1, "paid"),
        PaymentResult("RF0c6f3d2b9a8e4f71", False, "AC04 收款账户已销户", "", None, "failed"),
    ]


def test_results_csv_needs_only_the_id_and_the_status() -> None:
    assert parse_results(b"status,end_to_end_id\npaid,A\n", "csv") == [
        PaymentResult("A", True, "", "", None, "paid")
    ]


@pytest.mark.parametrize(
    ("data", "code", "line", "field"),
    [
        (b"end_to_end_id\nA\n", "csv.missing_column", 1, "status"),
        (b"end_to_end_id,status,amount\nA,paid,1\n", "csv.unknown_column", 1, "amount"),
        (b"end_to_end_id,status\nA,ok\n", "results.status", 2, "status"),
        (b"end_to_end_id,status\nA,\n", "field.missing", 2, "status"),
        (b"end_to_end_id,status\n,paid\n", "field.missing", 2, "end_to_end_id"),
        (b"end_to_end_id,status,paid_on\nA,failed,2025-03-01\n", "field.invalid", 2, "paid_on"),
        (b"end_to_end_id,status,paid_on\nA,paid,03/01/2025\n", "date.invalid", 2, "paid_on"),
        (
            b"end_to_end_id,status\nA,paid\nB,paid\nA,failed\n",
            "results.duplicate_end_to_end_id",
            4,
            "end_to_end_id",
        ),
    ],
)
def test_results_csv_refusals_name_line_and_column(data: bytes, code: str, line: int, field: str) -> None:
    err = refused(code, lambda: parse_results(data, "csv"))
    assert (err.line, err.field) == (line, field)


def test_an_unknown_results_format_is_refused() -> None:
    refused("format.unknown", lambda: parse_results(RESULTS_CSV, "pain.001"))
    refused("format.unknown", lambda: parse_results(RESULTS_CSV, "camt053"))


# ---------------------------------------------------------------- every code has a way to it

_HDR = CSV_HEADER.encode() + b"\n"
ONE_CASE_PER_CODE: dict[str, Callable[[], object]] = {
    "format.unknown": lambda: parse_statement(CSV_STATEMENT, "xlsx"),
    "file.empty": lambda: parse_results(b"", "csv"),
    "file.too_large": lambda: parse_results(b"0" * (20 * 1024 * 1024 + 1), "pain002"),
    "file.encoding": lambda: parse_results(b"end_to_end_id,status\n\xff,paid\n", "csv"),
    "file.too_many_lines": lambda: parse_results(b"end_to_end_id,status\n" + b"A,paid\n" * 1001, "csv"),
    "xml.malformed": lambda: parse_results(b"<Document", "pain002"),
    "xml.forbidden": lambda: parse_results(b"<!DOCTYPE x><Document/>", "pain002"),
    "xml.too_deep": lambda: parse_results(b"<a>" * 65 + b"</a>" * 65, "pain002"),
    "xml.too_many_elements": lambda: parse_results(b"<a>" + b"<b/>" * 1000 + b"</a>", "pain002"),
    "xml.unsupported_message": lambda: parse_statement(payment_xml(BATCH), "camt053"),
    "csv.malformed": lambda: parse_statement(_HDR + b'R1,"2025-03-01,C,1,CNY\n', "csv"),
    "csv.missing_column": lambda: parse_statement(b"reference\nR1\n", "csv"),
    "csv.unknown_column": lambda: parse_statement(b"ref\nR1\n", "csv"),
    "csv.duplicate_column": lambda: parse_results(b"status,status,end_to_end_id\n", "csv"),
    "csv.field_count": lambda: parse_statement(_HDR + b"R1,2025-03-01,C,1,CNY,x\n", "csv"),
    "field.missing": lambda: parse_statement(_HDR + b"R1,2025-03-01,C,1,\n", "csv"),
    "field.invalid": lambda: dataclasses.replace(REFUND_1, payee_account="账号"),
    "field.too_long": lambda: dataclasses.replace(REFUND_1, remittance="款" * 141),
    "field.control_character": lambda: dataclasses.replace(REFUND_1, payee_name="a\x1bb"),
    "field.formula_prefix": lambda: dataclasses.replace(REFUND_1, payee_name="-1+1"),
    "amount.invalid": lambda: parse_amount("1.2.3"),
    "amount.precision": lambda: parse_amount("0.001"),
    "amount.too_large": lambda: parse_amount("92233720368547758.08"),
    "amount.currency": lambda: parse_statement(_HDR + b"R1,2025-03-01,C,1,cny\n", "csv"),
    "date.invalid": lambda: parse_statement(_HDR + b"R1,2025-00-01,C,1,CNY\n", "csv"),
    "direction.invalid": lambda: parse_statement(_HDR + b"R1,2025-03-01,+,1,CNY\n", "csv"),
    "kind.invalid": lambda: parse_statement(
        b"reference,booked_on,direction,amount,currency,kind\nR,2025-03-01,C,1,CNY,INTR\n", "csv"
    ),
    "time.naive": lambda: sign_notification(b"{}", SECRET, datetime(2025, 3, 1)),
    "statement.missing": lambda: parse_statement(
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>', "camt.053"
    ),
    "statement.multiple": lambda: parse_statement(
        camt("").replace(b"</Stmt>", b"</Stmt><Stmt/>"), "camt.053"
    ),
    "statement.duplicate_reference": lambda: parse_statement(_HDR + b"R1,2025-03-01,C,1,CNY\n" * 2, "csv"),
    "statement.batch_reference": lambda: parse_statement(
        camt(entry(amount="2", body=f"<NtryDtls>{tx('', '1')}{tx('', '1')}</NtryDtls>")), "camt.053"
    ),
    "statement.batch_amount": lambda: parse_statement(
        camt(entry(amount="2", body=f"<NtryDtls>{tx('A', '1')}{tx('B', '2')}</NtryDtls>")), "camt.053"
    ),
    "statement.balance_mismatch": lambda: parse_statement(
        CAMT_V08.replace("4500.08", "4500.00").encode(), "camt.053"
    ),
    "notification.header": lambda: verify_notification(NOTICE_BODY, "v1=00", SECRET, NOW),
    "notification.signature": lambda: verify_notification(
        NOTICE_BODY + b" ", sign_notification(NOTICE_BODY, SECRET, NOW), SECRET, NOW
    ),
    "notification.stale": lambda: verify_notification(
        NOTICE_BODY, sign_notification(NOTICE_BODY, SECRET, NOW - timedelta(hours=1)), SECRET, NOW
    ),
    "notification.body": lambda: verify_notification(
        b"null", sign_notification(b"null", SECRET, NOW), SECRET, NOW
    ),
    "notification.unknown_field": lambda: verify_notification(
        b'{"x":1}', sign_notification(b'{"x":1}', SECRET, NOW), SECRET, NOW
    ),
    "notification.config": lambda: verify_notification(NOTICE_BODY, "", b"", NOW),
    "payment.empty": lambda: dataclasses.replace(BATCH, instructions=()),
    "payment.too_many": lambda: dataclasses.replace(
        BATCH,
        instructions=tuple(dataclasses.replace(REFUND_2, end_to_end_id=f"RF{n}") for n in range(11)),
    ),
    "payment.duplicate_end_to_end_id": lambda: dataclasses.replace(BATCH, instructions=(REFUND_2, REFUND_2)),
    "results.status": lambda: parse_results(pain002(status("A", "ACSCX")), "pain002"),
    "results.group_status_only": lambda: parse_results(pain002("", group="RJCT"), "pain002"),
    "results.empty": lambda: parse_results(pain002(""), "pain002"),
    "results.duplicate_end_to_end_id": lambda: parse_results(pain002(status("A", "RJCT") * 2), "pain002"),
}


def test_every_error_code_is_documented_and_has_a_case() -> None:
    assert set(ONE_CASE_PER_CODE) == set(ERROR_CODES)


@pytest.mark.parametrize("code", sorted(ONE_CASE_PER_CODE))
def test_each_error_code_is_reached(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the counting limits, lowered so the cases stay small; the byte limit is the real one
    monkeypatch.setattr(bankfiles, "MAX_LINES", 1000)
    monkeypatch.setattr(bankfiles, "MAX_XML_ELEMENTS", 1000)
    monkeypatch.setattr(bankfiles, "MAX_PAYMENTS", 10)
    refused(code, ONE_CASE_PER_CODE[code])


def test_formats_name_what_each_function_reads_or_writes() -> None:
    assert dict(FORMATS) == {
        "statement": ("camt053", "csv"),
        "notification": ("json",),
        "payment": ("pain001", "csv"),
        "results": ("pain002", "csv"),
    }


def test_an_error_says_where_in_its_text_and_repr() -> None:
    err = BankFileError("amount.invalid", "Bad.", line=3, field="amount")
    assert (str(err), repr(err)) == (
        "Bad. (line 3, amount)",
        "BankFileError('amount.invalid', 'Bad.', line=3, field='amount')",
    )
    assert str(BankFileError("file.empty", "Empty.")) == "Empty."


# ---------------------------------------------------------------- properties

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.integers(min_value=1, max_value=MAX_AMOUNT_FEN))
def test_fen_to_text_and_back_is_exact(fen: int) -> None:
    text = format_amount(fen)
    assert parse_amount(text) == fen
    assert Decimal(text) * 100 == fen


@FAST
@given(st.from_regex(r"[0-9]{1,15}(\.[0-9]{1,2})?", fullmatch=True))
def test_any_yuan_text_with_at_most_two_decimals_reads_as_its_exact_fen(text: str) -> None:
    if Decimal(text) == 0:
        refused("amount.invalid", lambda: parse_amount(text))
    else:
        assert parse_amount(text) == Decimal(text) * 100
        assert Decimal(format_amount(parse_amount(text))) == Decimal(text)


def only_bank_file_errors(call: Callable[[], object]) -> None:
    try:
        call()
    except BankFileError as error:
        assert error.code in ERROR_CODES


@FAST
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_to_the_parsers_raise_only_bank_file_errors(data: bytes) -> None:
    for fmt in FORMATS["statement"]:
        only_bank_file_errors(lambda fmt=fmt: parse_statement(data, fmt))  # type: ignore[misc]
    for fmt in FORMATS["results"]:
        only_bank_file_errors(lambda fmt=fmt: parse_results(data, fmt))  # type: ignore[misc]
    only_bank_file_errors(
        lambda: verify_notification(data, sign_notification(data, SECRET, NOW), SECRET, NOW)
    )


@FAST
@given(st.text(max_size=500))
def test_arbitrary_text_to_the_csv_parsers_raises_only_bank_file_errors(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    only_bank_file_errors(lambda: parse_statement(_HDR + data, "csv"))
    only_bank_file_errors(
        lambda: parse_results(b"end_to_end_id,status,reason,bank_reference,paid_on\n" + data, "csv")
    )


SAMPLES = [
    (CAMT_V02.encode(), parse_statement, "camt053"),
    (CAMT_V08.encode(), parse_statement, "camt053"),
    (CSV_STATEMENT, parse_statement, "csv"),
    (PAIN002.encode(), parse_results, "pain002"),
    (RESULTS_CSV, parse_results, "csv"),
]


@FAST
@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=6),
    st.integers(min_value=0),
)
def test_damaged_samples_raise_only_bank_file_errors(
    sample: tuple[bytes, Callable[[bytes, str], object], str], flips: list[tuple[int, int]], cut: int
) -> None:
    data, parse, fmt = sample
    damaged = bytearray(data[: len(data) - cut % max(len(data) // 4, 1)])
    for where, value in flips:
        damaged[where % len(damaged)] = value
    only_bank_file_errors(lambda: parse(bytes(damaged), fmt))


@FAST
@given(st.data())
def test_changing_any_byte_of_a_notice_breaks_its_signature(data: st.DataObject) -> None:
    header = sign_notification(NOTICE_BODY, SECRET, NOW)
    where = data.draw(st.integers(min_value=0, max_value=len(NOTICE_BODY) - 1))
    value = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != NOTICE_BODY[where]))
    changed = bytearray(NOTICE_BODY)
    changed[where] = value
    refused("notification.signature", lambda: verify_notification(bytes(changed), header, SECRET, NOW))


@FAST
@given(st.data())
def test_changing_any_hex_digit_of_a_signature_breaks_it(data: st.DataObject) -> None:
    header = sign_notification(NOTICE_BODY, SECRET, NOW)
    start = header.index("v1=") + 3
    where = data.draw(st.integers(min_value=start, max_value=len(header) - 1))
    digit = data.draw(st.sampled_from("0123456789abcdef").filter(lambda d: d != header[where]))
    forged = header[:where] + digit + header[where + 1 :]
    refused("notification.signature", lambda: verify_notification(NOTICE_BODY, forged, SECRET, NOW))


NAME = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs"), blacklist_characters="\ufffe\uffff"),
    min_size=1,
    max_size=140,
).filter(lambda s: s.strip() != "" and not s.startswith(("=", "+", "-", "@")))


@FAST
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=10**12),
            NAME,
            NAME,
            st.from_regex(r"[0-9]{8,30}", fullmatch=True),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_valid_batch_round_trips_through_pain001_and_the_csv_exactly(
    rows: list[tuple[int, str, str, str]],
) -> None:
    instructions = tuple(
        PaymentInstruction(f"RF{n:04d}", fen, name, account, bank, remittance=name)
        for n, (fen, name, bank, account) in enumerate(rows)
    )
    batch = dataclasses.replace(BATCH, instructions=instructions)
    root = ours(payment_xml(batch))
    transfers = list(root.iter(PAIN001 + "CdtTrfTxInf"))
    assert [
        (
            pain001_text(t, "PmtId/EndToEndId"),
            parse_amount(pain001_text(t, "Amt/InstdAmt")),
            pain001_text(t, "Cdtr/Nm"),
            pain001_text(t, "CdtrAgt/FinInstnId/Nm"),
            pain001_text(t, "CdtrAcct/Id/Othr/Id"),
        )
        for t in transfers
    ] == [(i.end_to_end_id, i.amount_fen, i.payee_name, i.payee_bank, i.payee_account) for i in instructions]
    assert parse_amount(pain001_text(root, "CstmrCdtTrfInitn/GrpHdr/CtrlSum")) == batch.total_fen
    rows_back = list(csv.DictReader(io.StringIO(payment_csv(batch).decode(), newline="")))
    assert [(r["payee_name"], r["payee_bank"], r["remittance"]) for r in rows_back] == [
        (i.payee_name, i.payee_bank, i.remittance) for i in instructions
    ]
