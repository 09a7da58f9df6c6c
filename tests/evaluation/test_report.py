"""Tests for evaluation.report: canonical bytes, hash, signatures, and the HTML and PDF renderings."""

from __future__ import annotations

import copy
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from evaluation.report import (
    REPORT_VERSION,
    ReportError,
    canonical,
    points,
    render_html,
    render_pdf,
    report_hash,
    signing_message,
    verify_signature,
    yuan,
)

SCRIPT_BIDDER = "<script>alert('x')</script> & Co"
HEADINGS = (
    "评标报告 (Evaluation report)",
    "专家抽取 (Expert draw)",
    "评标委员会 (Committee)",
    "评审因素 (Criteria)",
    "资格审查 (Qualification criteria)",
    "否决投标 (Rejected bids)",
    "评分明细 (Scores by member and criterion)",
    "汇总得分 (Final scores by criterion)",
    "异常评分 (Abnormal scores, G-10)",
    "中标候选人 (Ranked candidates)",
    "澄清 (Clarifications)",
    "签署 (Signatures, W-11)",
)


def make_report(bids: int = 4, criteria: int = 3, members: int = 5) -> dict[str, Any]:
    """A report of the shape the service builds: one lot, the last bid rejected, the others ranked."""
    codes = [f"T{i + 1:02d}" for i in range(criteria)]
    lot_criteria = [{"code": "T", "title": "技术部分", "kind": "group", "max_cp": 6000, "depth": 0}]
    lot_criteria += [
        {"code": code, "title": f"评审因素 {code}", "kind": "subjective", "max_cp": 500, "depth": 1}
        for code in codes
    ]
    lot_criteria.append({"code": "P", "title": "投标报价", "kind": "price", "max_cp": 3000, "depth": 0})
    bid_rows = []
    for j in range(bids):
        rejected = j == bids - 1
        bid_rows.append(
            {
                "bid_id": f"bid-{j}",
                "bidder": SCRIPT_BIDDER if j == 0 else f"投标人 {j} 有限公司",
                "credit_code": f"9135010000000000{j:02d}",
                "price_fen": 1_234_567 + j,
                "qualified": not rejected,
                "rejections": (
                    [
                        {
                            "criterion": "Q1",
                            "reasons": ["营业执照已过期", "无安全生产许可证"],
                            "fail_votes": 4,
                            "members": 5,
                        }
                    ]
                    if rejected
                    else []
                ),
                "rank": None if rejected else j + 1,
                "total_cp": None if rejected else 9000 - 7 * j,
                "leaf_cp": {} if rejected else {**{code: 400 + j for code in codes}, "P": 2900},
                "tie_broken": False,
            }
        )
    ranked = [b for b in bid_rows if b["rank"] is not None]
    return {
        "version": REPORT_VERSION,
        "tender": {
            "id": "0a1b2c3d-0000-4000-8000-000000000001",
            "code": "GGZY-2026-0001",
            "title": "某市第一中学教学楼施工",
            "tenderer": "某市第一中学",
            "evaluation_method": "综合评估法 (comprehensive)",
        },
        "generated_at": "2026-03-02T10:00:00+08:00",
        "draw": {"id": "draw-1", "commitment": "c" * 64, "seed": "5eed" * 16},
        "committee": [
            {
                "seat": seat,
                "name": f"专家{seat}",
                "kind": "representative" if seat == members else "expert",
                "specialty": "房屋建筑",
                "chair": seat == 1,
            }
            for seat in range(1, members + 1)
        ],
        "lots": [
            {
                "lot_id": "lot-1",
                "number": 1,
                "title": "施工总承包",
                "method": "综合评估法",
                "criteria": lot_criteria,
                "qualification": [{"code": "Q1", "title": "营业执照及资质"}],
                "bids": bid_rows,
                "sheets": [
                    {
                        "seat": seat,
                        "bid_id": b["bid_id"],
                        "scores": {code: 300 + seat + k for k, code in enumerate(codes)},
                        "total_cp": 8800 + seat,
                    }
                    for seat in range(1, members + 1)
                    for b in ranked
                ],
                "abnormal": [
                    {
                        "seat": 2,
                        "bid_id": "bid-1",
                        "total_cp": 5000,
                        "others_mean_cp": 8700,
                        "justification": "该投标人施工组织设计缺少关键工序",
                        "revised": False,
                    }
                ],
                # Out of rank order on purpose: the rendering puts them in order.
                "candidates": [
                    {
                        "rank": b["rank"],
                        "bid_id": b["bid_id"],
                        "bidder": b["bidder"],
                        "price_fen": b["price_fen"],
                        "total_cp": b["total_cp"],
                    }
                    for b in reversed(ranked[:3])
                ],
            }
        ],
        "clarifications": [
            {
                "bidder": "投标人 1 有限公司",
                "question": "请说明工期安排",
                "answer": "总工期 300 日历天",
                "asked_at": "2026-03-02T09:10:00+08:00",
                "answered_at": "2026-03-02T09:40:00+08:00",
            }
        ],
        "notes": ["评标过程全程录像"],
    }


SIGNATURES: list[dict[str, Any]] = [
    {
        "seat": 1,
        "name": "专家1",
        "outcome": "signed",
        "at": "2026-03-02T11:00:00+08:00",
        "key_fingerprint": "ab" * 16,
        "dissent": None,
    },
    {
        "seat": 2,
        "name": "专家2",
        "outcome": "dissent",
        "at": "2026-03-02T11:05:00+08:00",
        "key_fingerprint": "cd" * 16,
        "dissent": "我认为第二名的技术方案 <不可行>",
    },
    {
        "seat": 3,
        "name": "专家3",
        "outcome": "deemed_agreed",
        "at": None,
        "key_fingerprint": None,
        "dissent": None,
    },
    {"seat": 4, "name": "专家4", "outcome": "pending", "at": None, "key_fingerprint": None, "dissent": None},
]


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaf_paths(item, (*path, index))
    else:
        yield path


def changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    return "x"  # None


def keypair() -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.generate()
    return key, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


# ---------------------------------------------------------------- canonical bytes and hash


def test_canonical_is_sorted_compact_utf8_json() -> None:
    assert canonical({"b": [1, True, None], "a": "评标"}) == '{"a":"评标","b":[1,true,null]}'.encode()


def test_canonical_does_not_depend_on_key_order() -> None:
    report = make_report()
    reordered = {key: report[key] for key in reversed(list(report))}
    reordered["tender"] = dict(reversed(list(report["tender"].items())))
    assert list(reordered) != list(report)
    assert canonical(reordered) == canonical(report)
    assert report_hash(reordered) == report_hash(report)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"price": 1.5}, r"report\.price is a float"),
        ({"lots": [{"total": float("nan")}]}, r"report\.lots\[0\]\.total is a float"),
        ({"x": float("inf")}, "float"),
        ({"x": b"bytes"}, r"report\.x is a bytes"),
        ({"x": (1, 2)}, "tuple"),
        ({"x": {1: "a"}}, "non-string key"),
        ({"x": "\ud800"}, "not valid Unicode"),
    ],
)
def test_canonical_refuses_what_json_cannot_carry_canonically(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ReportError, match=message):
        canonical(bad)


def test_canonical_refuses_a_report_that_contains_itself() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = [loop]
    with pytest.raises(ReportError, match="contains itself"):
        canonical(loop)


def test_report_hash_is_sha256_of_the_canonical_bytes() -> None:
    report = make_report()
    assert report_hash(report) == hashlib.sha256(canonical(report)).hexdigest()


def test_report_hash_changes_when_any_field_changes() -> None:
    report = make_report()
    original = report_hash(report)
    seen = {original}
    paths = list(leaf_paths(report))
    assert len(paths) > 150
    for path in paths:
        mutated = copy.deepcopy(report)
        container = mutated
        for step in path[:-1]:
            container = container[step]
        container[path[-1]] = changed(container[path[-1]])
        digest = report_hash(mutated)
        assert digest not in seen, path
        seen.add(digest)


# ---------------------------------------------------------------- signing


def test_signing_message_is_the_version_line_then_the_hash() -> None:
    assert signing_message("0f" * 32) == b"ggzy-evaluation-report-v1\n" + b"0f" * 32


@pytest.mark.parametrize(
    "bad",
    [
        "0F" * 32,
        "0f" * 31 + "0",
        "0f" * 32 + "0",
        "zz" * 32,
        "",
        "0f" * 32 + "\n",
        " " + "0f" * 31 + "0",
        b"0f" * 32,
        None,
    ],
)
def test_signing_message_refuses_anything_but_64_lowercase_hex(bad: Any) -> None:
    with pytest.raises(ReportError, match="64 lowercase hex"):
        signing_message(bad)


def test_verify_signature_accepts_a_real_ed25519_signature() -> None:
    key, public = keypair()
    digest = report_hash(make_report())
    assert verify_signature(public, digest, key.sign(signing_message(digest))) is True


def test_verify_signature_rejects_a_signature_over_another_hash() -> None:
    key, public = keypair()
    digest = report_hash(make_report())
    other = report_hash(make_report(bids=5))
    assert verify_signature(public, other, key.sign(signing_message(digest))) is False


def test_verify_signature_rejects_a_signature_of_the_bare_hash() -> None:
    key, public = keypair()
    digest = report_hash(make_report())
    assert verify_signature(public, digest, key.sign(digest.encode())) is False


def test_verify_signature_rejects_another_members_key() -> None:
    key, _ = keypair()
    _, other_public = keypair()
    digest = report_hash(make_report())
    assert verify_signature(other_public, digest, key.sign(signing_message(digest))) is False


@pytest.mark.parametrize(
    "signature",
    [b"", b"\x00" * 64, os.urandom(64), os.urandom(63), os.urandom(65)],
    ids=["empty", "zeros", "random-64", "random-63", "random-65"],  # the same on every xdist worker
)
def test_verify_signature_rejects_garbage_signatures(signature: bytes) -> None:
    _, public = keypair()
    assert verify_signature(public, report_hash(make_report()), signature) is False


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_verify_signature_rejects_a_key_of_the_wrong_length(length: int) -> None:
    key, public = keypair()
    digest = report_hash(make_report())
    signature = key.sign(signing_message(digest))
    assert verify_signature((public * 3)[:length], digest, signature) is False


@pytest.mark.parametrize(
    ("public", "digest"), [("not bytes", "0f" * 32), (None, "0f" * 32), (b"k" * 32, "NOT HEX")]
)
def test_verify_signature_returns_false_instead_of_raising_on_malformed_input(
    public: Any, digest: Any
) -> None:
    assert verify_signature(public, digest, b"\x00" * 64) is False


# ---------------------------------------------------------------- figures


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (1_234_567, "12,345.67"),
        (0, "0.00"),
        (5, "0.05"),
        (100, "1.00"),
        (123_456_789_012, "1,234,567,890.12"),
        (-1_050, "-10.50"),
    ],
)
def test_yuan_formats_fen_as_yuan_with_separators(fen: int, text: str) -> None:
    assert yuan(fen) == text


@pytest.mark.parametrize(
    ("cp", "text"),
    [(8735, "87.35"), (0, "0.00"), (10_000, "100.00"), (7, "0.07"), (-250, "-2.50"), (None, "—")],
)
def test_points_formats_hundredths(cp: int | None, text: str) -> None:
    assert points(cp) == text


@pytest.mark.parametrize("bad", [1.5, "100", True])
def test_figures_refuse_anything_but_int(bad: Any) -> None:
    with pytest.raises(ReportError, match="must be an int"):
        yuan(bad)
    with pytest.raises(ReportError, match="must be an int"):
        points(bad)


# ---------------------------------------------------------------- HTML


def test_render_html_is_a_standalone_chinese_document() -> None:
    page = render_html(make_report())
    assert page.startswith("<!doctype html>\n")
    assert '<html lang="zh-CN">' in page
    assert '<meta charset="utf-8">' in page
    assert "<style>" in page
    assert page.rstrip().endswith("</html>")


def test_render_html_escapes_every_text_from_the_report() -> None:
    report = make_report()
    report["tender"]["title"] = '"><img src=x onerror=alert(1)>'
    report["notes"] = ["<b>bold</b>"]
    page = render_html(report, SIGNATURES)
    assert "<script>" not in page
    assert "<img" not in page
    assert "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Co" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "我认为第二名的技术方案 &lt;不可行&gt;" in page


def test_render_html_shows_the_report_hash_and_every_section() -> None:
    report = make_report()
    page = render_html(report, SIGNATURES)
    assert page.count(report_hash(report)) >= 3  # title block, signatures, footer
    for heading in HEADINGS:
        assert heading in page, heading


def test_render_html_lists_candidates_in_rank_order_with_prices_in_yuan() -> None:
    page = render_html(make_report())
    candidates = page[page.index("中标候选人 (Ranked candidates)") :]
    positions = [
        candidates.index(name) for name in ("&lt;script&gt;", "投标人 1 有限公司", "投标人 2 有限公司")
    ]
    assert positions == sorted(positions)
    assert '<td class="num">12,345.67</td>' in candidates
    assert '<td class="num">12,345.69</td>' in candidates
    assert '<td class="num">90.00</td>' in candidates


def test_render_html_shows_rejections_scores_abnormal_scores_and_the_signing_record() -> None:
    page = render_html(make_report(), SIGNATURES)
    assert "营业执照已过期<br>无安全生产许可证" in page
    assert '<td class="num">4 / 5</td>' in page
    assert "该投标人施工组织设计缺少关键工序" in page
    assert '<td class="num">3.01</td>' in page  # seat 1's score on T01
    assert "不同意，已书面说明 (dissent in writing)" in page
    assert "拒签未说明理由，视为同意 (deemed to agree, W-11)" in page
    assert "T03" in page


def test_render_html_without_signatures_says_none_are_recorded() -> None:
    assert "尚无签署记录 (No signatures recorded yet)" in render_html(make_report())


def test_renderers_tolerate_absent_optional_parts() -> None:
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "tender": {"code": "GGZY-1"},
        "lots": [{"number": 1}],
    }
    page = render_html(report)
    assert "GGZY-1" in page
    assert "无 (none)" in page
    assert render_pdf(report).startswith(b"%PDF-")


def test_renderers_refuse_floats_and_other_versions() -> None:
    report = make_report()
    report["lots"][0]["bids"][0]["price_fen"] = 12345.67
    with pytest.raises(ReportError, match="float"):
        render_html(report)
    with pytest.raises(ReportError, match="float"):
        render_pdf(report)
    other = make_report()
    other["version"] = "ggzy-evaluation-report-v2"
    with pytest.raises(ReportError, match="v2"):
        render_html(other)


# ---------------------------------------------------------------- PDF


def test_render_pdf_is_a_pdf() -> None:
    document = render_pdf(make_report(), SIGNATURES)
    assert document.startswith(b"%PDF-")
    assert document.rstrip().endswith(b"%%EOF")


def test_render_pdf_is_deterministic() -> None:
    report = make_report()
    assert render_pdf(report, SIGNATURES) == render_pdf(copy.deepcopy(report), SIGNATURES)


def test_render_pdf_is_the_same_in_another_process() -> None:
    # A fresh interpreter with another hash seed: nothing may depend on set order, ids or the clock.
    script = (
        "import sys, hashlib;"
        "from tests.evaluation.test_report import make_report, SIGNATURES;"
        "from evaluation.report import render_pdf;"
        "sys.stdout.write(hashlib.sha256(render_pdf(make_report(), SIGNATURES)).hexdigest())"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == hashlib.sha256(render_pdf(make_report(), SIGNATURES)).hexdigest()


def test_render_pdf_prints_the_report_hash_in_every_page_footer() -> None:
    report = make_report()
    document = render_pdf(report, SIGNATURES, compress=False)
    pages = int(re.search(rb"/Count (\d+)", document).group(1))  # type: ignore[union-attr]
    assert pages >= 2
    # Once per page in the footer, and once each in the title block and above the signing record.
    assert document.count(f"({report_hash(report)}) Tj".encode()) == pages + 2


def test_render_pdf_changes_when_the_report_changes() -> None:
    report = make_report()
    other = copy.deepcopy(report)
    other["lots"][0]["bids"][1]["price_fen"] += 1
    assert render_pdf(report) != render_pdf(other)


def test_render_pdf_survives_markup_in_texts_and_text_longer_than_a_page() -> None:
    report = make_report()
    report["lots"][0]["abnormal"][0]["justification"] = "理由<b>&amp;</i>" * 300
    report["lots"][0]["bids"][-1]["rejections"][0]["reasons"].append("<para>" + "x" * 3000)
    signatures = [{**SIGNATURES[1], "dissent": "不同意 <!-- & -->" * 400}]
    assert render_pdf(report, signatures).startswith(b"%PDF-")


def test_a_large_report_renders_in_both_formats() -> None:
    report = make_report(bids=30, criteria=40, members=9)
    page = render_html(report, SIGNATURES)
    assert page.count("<h4>") == 9 + 1  # one score sheet per member, and seat 2's dissent
    assert "T40" in page
    document = render_pdf(report, SIGNATURES, compress=False)
    assert document.startswith(b"%PDF-")
    assert report_hash(report).encode() in document
