"""The evaluation report (评标报告): canonical bytes, hash, signing message, HTML and PDF renderings.

The platform builds the report as a plain JSON-able dict (str, int, bool, None, lists, dicts; money in fen
and points in hundredths, never floats), hashes its canonical bytes, and every committee member signs
that hash with Ed25519 or writes a dissent down (W-11). The signing record is appended to the rendered
document but is not covered by the hash: it is what happens to the report, not part of it.

Both renderings are built from one list of blocks (headings, paragraphs, tables), so the HTML and the
PDF always carry the same sections in the same order. The PDF is deterministic: the same report and
signing record give the same bytes. Pure logic: no I/O, no clock; CPU-bound, so the service calls the
renderers off the event loop.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

REPORT_VERSION: Final = "ggzy-evaluation-report-v1"

_MESSAGE_DOMAIN: Final = REPORT_VERSION.encode("ascii") + b"\n"
_HASH_RE: Final = re.compile(r"[0-9a-f]{64}")
_NONE: Final = "—"
_EMPTY: Final = "无 (none)"
_CHUNK: Final = 10  # criteria columns per score table: ten fit a landscape A4 page at 8 pt

_CJK_FONT: Final = "STSong-Light"  # Adobe's built-in CID font: Chinese without embedding a font file
_MONO_FONT: Final = "Courier"
_MARGIN: Final = 15 * mm


class ReportError(ValueError):
    """The report cannot be hashed or rendered as given; the message names the offending field."""


# ---------------------------------------------------------------- canonical bytes, hash, signatures


def canonical(report: dict[str, Any]) -> bytes:
    """The canonical bytes of a report: UTF-8 JSON, keys sorted, no spaces, not \\u-escaped.

    Only str, int, bool, None, lists and dicts with str keys are allowed; floats (NaN included), tuples,
    bytes and anything else raise ReportError, because two platforms would not agree on their bytes."""
    if not isinstance(report, dict):
        raise ReportError(f"a report is a dict, not {type(report).__name__}")
    try:
        _check_json(report, "report", set())
    except RecursionError:
        raise ReportError("the report is nested too deeply to be canonicalised") from None
    text = json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ReportError(f"the report holds text that is not valid Unicode ({exc.reason})") from None


def _check_json(value: Any, path: str, open_containers: set[int]) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        raise ReportError(
            f"{path} is a float ({value!r}); carry money in fen and points in hundredths, as int"
        )
    if isinstance(value, dict | list):
        if id(value) in open_containers:
            raise ReportError(f"{path} contains itself")
        open_containers.add(id(value))
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ReportError(f"{path} has a non-string key {key!r}")
                _check_json(item, f"{path}.{key}", open_containers)
        else:
            for index, item in enumerate(value):
                _check_json(item, f"{path}[{index}]", open_containers)
        open_containers.discard(id(value))
        return
    raise ReportError(f"{path} is a {type(value).__name__}, which a report cannot carry")


def report_hash(report: dict[str, Any]) -> str:
    """SHA-256 of the report's canonical bytes, as 64 lowercase hex digits: what the members sign."""
    return hashlib.sha256(canonical(report)).hexdigest()


def signing_message(hash_hex: str) -> bytes:
    """The bytes a member signs: the report version and a newline, then the hash in lowercase hex.

    The version prefix keeps a report signature from being valid for any other kind of signed hash."""
    if not isinstance(hash_hex, str) or not _HASH_RE.fullmatch(hash_hex):
        raise ReportError("a report hash is 64 lowercase hex digits (SHA-256)")
    return _MESSAGE_DOMAIN + hash_hex.encode("ascii")


def verify_signature(public_key: bytes, hash_hex: str, signature: bytes) -> bool:
    """Whether `signature` is the Ed25519 signature of `signing_message(hash_hex)` under the raw 32-byte key.

    Never raises: a malformed key, hash or signature is simply not a valid signature."""
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key)
        key.verify(signature, signing_message(hash_hex))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# ---------------------------------------------------------------- figures


def yuan(fen: int) -> str:
    """An amount in fen as yuan with thousands separators: 1234567 -> "12,345.67"."""
    _require_int(fen, "an amount in fen")
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole:,}.{cents:02d}"


def points(cp: int | None) -> str:
    """Points held in hundredths as a decimal: 8735 -> "87.35"; None (not scored) -> "—"."""
    if cp is None:
        return _NONE
    _require_int(cp, "points in hundredths")
    whole, hundredths = divmod(abs(cp), 100)
    return f"{'-' if cp < 0 else ''}{whole}.{hundredths:02d}"


def _require_int(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReportError(f"{what} must be an int, got {type(value).__name__} {value!r}")


# ---------------------------------------------------------------- the document, as blocks


@dataclass(frozen=True, slots=True)
class _Cell:
    text: str  # plain text; a newline is a line break
    style: Literal["text", "mono", "num"] = "text"  # mono: ids and hashes; num: right-aligned figures


@dataclass(frozen=True, slots=True)
class _Heading:
    level: int  # 1 the title, 2 a section, 3 a part of a lot, 4 one member's sheet
    text: str


@dataclass(frozen=True, slots=True)
class _Para:
    text: str
    style: Literal["text", "mono", "note"] = "text"


@dataclass(frozen=True, slots=True)
class _Table:
    header: tuple[str, ...]  # empty for a label/value table
    rows: tuple[tuple[_Cell, ...], ...]
    weights: tuple[int, ...]  # relative column widths


@dataclass(frozen=True, slots=True)
class _Landscape:
    on: bool  # the wide score tables go on landscape pages in the PDF


_Block = _Heading | _Para | _Table | _Landscape

_KIND_LABELS: Final = {
    "expert": "评标专家 (expert)",
    "representative": "招标人代表 (tenderer's representative)",
}
_CRITERION_KINDS: Final = {
    "subjective": "评审 (subjective)",
    "price": "价格 (price)",
    "group": "分组 (group)",
}
# Rejections the platform establishes itself, not by the committee's votes (no member can overturn them).
_PLATFORM_GROUNDS: Final = {
    "W-19": "投标保证金未在投标截止时间前到位 (no deposit at the bid deadline, 条例 51(6))",
    "price": "投标报价无效 (no positive price)",
    "ceiling_price_fen": "投标报价高于最高投标限价 (price above the ceiling price, 条例 51(5); 87号令 63(4))",
    "estimated_price_fen": "投标报价超过采购预算 (price above the budget, 87号令 63(4))",
}
_OUTCOMES: Final = {
    "signed": "已签署 (signed)",
    "dissent": "不同意，已书面说明 (dissent in writing)",
    "deemed_agreed": "拒签未说明理由，视为同意 (deemed to agree, W-11)",
    "pending": "待签署 (pending)",
}


def _document(
    report: Mapping[str, Any], hash_hex: str, signatures: Sequence[Mapping[str, Any]]
) -> list[_Block]:
    version = report.get("version")
    if version is not None and version != REPORT_VERSION:
        raise ReportError(
            f"report version {version!r} is not {REPORT_VERSION!r}; this renderer cannot read it"
        )
    committee = _list(report, "committee")
    members = {m.get("seat"): _text(m.get("name")) for m in committee}
    blocks: list[_Block] = [*_title(report, hash_hex), *_draw(report), *_committee(committee)]
    for lot in _list(report, "lots"):
        blocks += _lot(lot, members)
    blocks += _clarifications(_list(report, "clarifications"))
    blocks += _notes(_list(report, "notes", objects=False))
    blocks += _signatures(hash_hex, signatures)
    return blocks


def _title(report: Mapping[str, Any], hash_hex: str) -> Iterator[_Block]:
    tender = _dict(report, "tender")
    yield _Heading(1, "评标报告 (Evaluation report)")
    yield _pairs(
        ("项目编号 (Tender code)", _Cell(_text(tender.get("code")), "mono")),
        ("项目名称 (Title)", _Cell(_text(tender.get("title")))),
        ("招标人 (Tenderer)", _Cell(_text(tender.get("tenderer")))),
        ("评标办法 (Evaluation method)", _Cell(_text(tender.get("evaluation_method")))),
        ("招标项目标识 (Tender id)", _Cell(_text(tender.get("id")), "mono")),
        ("生成时间 (Generated at)", _Cell(_text(report.get("generated_at")), "mono")),
        ("格式版本 (Format)", _Cell(_text(report.get("version")), "mono")),
        ("报告哈希 (Report hash, SHA-256)", _Cell(hash_hex, "mono")),
        *_round(report),
    )


def _round(report: Mapping[str, Any]) -> Iterator[tuple[str, _Cell]]:
    """The evaluation round, on a report after a re-evaluation (重新评审) only."""
    round_ = report.get("round")
    if isinstance(round_, int) and not isinstance(round_, bool) and round_ > 1:
        yield (
            "评审轮次 (Evaluation round)",
            _Cell(f"第 {round_} 轮，重新评审 (round {round_}, re-evaluation)"),
        )


def _draw(report: Mapping[str, Any]) -> Iterator[_Block]:
    draw = _dict(report, "draw")
    yield _Heading(2, "专家抽取 (Expert draw)")
    seed = draw.get("seed")
    yield _pairs(
        ("抽取标识 (Draw id)", _Cell(_text(draw.get("id")), "mono")),
        ("承诺值 (Commitment)", _Cell(_text(draw.get("commitment")), "mono")),
        ("随机种子 (Seed)", _Cell("未公开 (not revealed)") if seed is None else _Cell(_text(seed), "mono")),
    )


def _committee(committee: list[Mapping[str, Any]]) -> Iterator[_Block]:
    yield _Heading(2, "评标委员会 (Committee)")
    if not committee:
        yield _Para(_EMPTY, "note")
        return
    yield _Table(
        ("席位 (Seat)", "姓名 (Name)", "身份 (Role)", "专业 (Specialty)", "组长 (Chair)"),
        tuple(
            (
                _Cell(_text(m.get("seat")), "num"),
                _Cell(_text(m.get("name"))),
                _Cell(_label(_KIND_LABELS, m.get("kind"))),
                _Cell(_text(m.get("specialty"))),
                _Cell("组长 (chair)" if m.get("chair") else ""),
            )
            for m in committee
        ),
        (2, 4, 5, 5, 3),
    )


def _lot(lot: Mapping[str, Any], members: Mapping[Any, str]) -> Iterator[_Block]:
    bids = sorted(_list(lot, "bids"), key=_by_rank)
    bidders = {b.get("bid_id"): _text(b.get("bidder")) for b in bids}
    criteria = _list(lot, "criteria")
    titles = {c.get("code"): _text(c.get("title")) for c in [*_list(lot, "qualification"), *criteria]}
    yield _Heading(
        2, f"标段 {_text(lot.get('number'))}：{_text(lot.get('title'))} (Lot {_text(lot.get('number'))})"
    )
    yield _pairs(
        ("标段标识 (Lot id)", _Cell(_text(lot.get("lot_id")), "mono")),
        ("评标办法 (Method)", _Cell(_text(lot.get("method")))),
    )
    yield from _criteria(criteria)
    yield from _qualification(_list(lot, "qualification"))
    yield from _bids(bids)
    yield from _rejections(bids, titles)
    sheets = _list(lot, "sheets")
    # Score tables are wide: landscape pages in the PDF, but not a page break for an empty section.
    wide = bool(sheets) or any(b.get("leaf_cp") for b in bids)
    if wide:
        yield _Landscape(True)
    yield from _sheets(sheets, criteria, bids, bidders, members)
    yield from _leaf_scores(bids, criteria)
    if wide:
        yield _Landscape(False)
    yield from _abnormal(_list(lot, "abnormal"), bidders, members)
    yield from _candidates(_list(lot, "candidates"))


def _criteria(criteria: list[Mapping[str, Any]]) -> Iterator[_Block]:
    yield _Heading(3, "评审因素 (Criteria)")
    if not criteria:
        yield _Para(_EMPTY, "note")
        return
    yield _Table(
        ("编号 (Code)", "评审因素 (Criterion)", "类别 (Kind)", "分值 (Max points)"),
        tuple(
            (
                _Cell(_text(c.get("code")), "mono"),
                _Cell("　" * _depth(c.get("depth")) + _text(c.get("title"))),  # ideographic spaces indent
                _Cell(_label(_CRITERION_KINDS, c.get("kind"))),
                _Cell(points(c.get("max_cp")), "num"),
            )
            for c in criteria
        ),
        (3, 9, 3, 3),
    )


def _qualification(qualification: list[Mapping[str, Any]]) -> Iterator[_Block]:
    yield _Heading(3, "资格审查 (Qualification criteria)")
    if not qualification:
        yield _Para(_EMPTY, "note")
        return
    yield _Table(
        ("编号 (Code)", "审查因素 (Criterion)"),
        tuple((_Cell(_text(q.get("code")), "mono"), _Cell(_text(q.get("title")))) for q in qualification),
        (3, 12),
    )


def _bids(bids: list[Mapping[str, Any]]) -> Iterator[_Block]:
    yield _Heading(3, "投标人及总分 (Bids and totals)")
    if not bids:
        yield _Para(_EMPTY, "note")
        return
    yield _Table(
        (
            "排名 (Rank)",
            "投标人 (Bidder)",
            "统一社会信用代码 (Credit code)",
            "投标报价，元 (Price, yuan)",
            "资格 (Qualified)",
            "总分 (Total)",
        ),
        tuple(
            (
                _Cell(_text(b.get("rank")) + ("\n并列已决 (tie broken)" if b.get("tie_broken") else "")),
                _Cell(_text(b.get("bidder"))),
                _Cell(_text(b.get("credit_code")), "mono"),
                _Cell(yuan(b["price_fen"]) if "price_fen" in b else _NONE, "num"),
                _Cell(_yes_no(b.get("qualified"), "合格 (yes)", "不合格 (no)")),
                _Cell(points(b.get("total_cp")), "num"),
            )
            for b in bids
        ),
        (3, 7, 5, 4, 3, 3),
    )


def _rejections(bids: list[Mapping[str, Any]], titles: Mapping[Any, str]) -> Iterator[_Block]:
    yield _Heading(3, "否决投标 (Rejected bids)")
    rows = tuple(
        (
            _Cell(_text(b.get("bidder"))),
            _Cell(_text(r.get("criterion")) + _titled(_ground(r, titles))),
            _Cell("\n".join(_text(reason) for reason in _list(r, "reasons", objects=False)) or _NONE),
            _Cell(
                "平台认定 (established by the platform)"
                if r.get("by") == "platform"
                else f"{_text(r.get('fail_votes'))} / {_text(r.get('members'))}",
                "text" if r.get("by") == "platform" else "num",
            ),
        )
        for b in bids
        for r in _list(b, "rejections")
    )
    if not rows:
        yield _Para(_EMPTY, "note")
        return
    yield _Table(
        ("投标人 (Bidder)", "否决条款 (Criterion)", "理由 (Reasons)", "否决票/人数 (Fail votes / members)"),
        rows,
        (5, 5, 9, 3),
    )


def _sheets(
    sheets: list[Mapping[str, Any]],
    criteria: list[Mapping[str, Any]],
    bids: list[Mapping[str, Any]],
    bidders: Mapping[Any, str],
    members: Mapping[Any, str],
) -> Iterator[_Block]:
    yield _Heading(3, "评分明细 (Scores by member and criterion)")
    if not sheets:
        yield _Para(_EMPTY, "note")
        return
    codes = _columns(criteria, [_dict(s, "scores") for s in sheets])
    bid_order = {b.get("bid_id"): index for index, b in enumerate(bids)}
    seats = sorted({s.get("seat") for s in sheets}, key=_sort_key)
    for seat in seats:
        mine = sorted(
            (s for s in sheets if s.get("seat") == seat),
            key=lambda s: (bid_order.get(s.get("bid_id"), len(bid_order)), _sort_key(s.get("bid_id"))),
        )
        yield _Heading(4, f"席位 {_text(seat)} {members.get(seat, _NONE)} (Seat {_text(seat)})")
        yield from _score_tables(
            [(_bid_label(s.get("bid_id"), bidders), _dict(s, "scores"), s.get("total_cp")) for s in mine],
            codes,
        )


def _leaf_scores(bids: list[Mapping[str, Any]], criteria: list[Mapping[str, Any]]) -> Iterator[_Block]:
    yield _Heading(3, "汇总得分 (Final scores by criterion)")
    scored = [b for b in bids if b.get("leaf_cp")]
    if not scored:
        yield _Para(_EMPTY, "note")
        return
    codes = _columns(criteria, [_dict(b, "leaf_cp") for b in scored])
    yield from _score_tables(
        [(_text(b.get("bidder")), _dict(b, "leaf_cp"), b.get("total_cp")) for b in scored], codes
    )


def _score_tables(rows: list[tuple[str, Mapping[str, Any], Any]], codes: list[str]) -> Iterator[_Block]:
    # Forty criteria do not fit one page; ten columns a table do, and the total closes the last one.
    chunks = [codes[i : i + _CHUNK] for i in range(0, len(codes), _CHUNK)] or [[]]
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        header = ("投标人 (Bidder)", *chunk, *(("合计 (Total)",) if last else ()))
        yield _Table(
            header,
            tuple(
                (
                    _Cell(label),
                    *(_Cell(points(scores.get(code)), "num") for code in chunk),
                    *((_Cell(points(total), "num"),) if last else ()),
                )
                for label, scores, total in rows
            ),
            (8, *(2 for _ in chunk), *((3,) if last else ())),
        )


def _abnormal(
    abnormal: list[Mapping[str, Any]], bidders: Mapping[Any, str], members: Mapping[Any, str]
) -> Iterator[_Block]:
    yield _Heading(3, "异常评分 (Abnormal scores, G-10)")
    if not abnormal:
        yield _Para(_EMPTY, "note")
        return
    yield _Table(
        (
            "席位 (Seat)",
            "成员 (Member)",
            "投标人 (Bidder)",
            "该成员总分 (Member's total)",
            "其他成员均分 (Others' mean)",
            "说明 (Justification)",
            "已修改 (Revised)",
        ),
        tuple(
            (
                _Cell(_text(a.get("seat")), "num"),
                _Cell(members.get(a.get("seat"), _NONE)),
                _Cell(_bid_label(a.get("bid_id"), bidders)),
                _Cell(points(a.get("total_cp")), "num"),
                _Cell(points(a.get("others_mean_cp")), "num"),
                _Cell(_text(a.get("justification"))),
                _Cell(_yes_no(a.get("revised"), "是 (yes)", "否 (no)")),
            )
            for a in abnormal
        ),
        (2, 3, 5, 3, 3, 8, 2),
    )


def _candidates(candidates: list[Mapping[str, Any]]) -> Iterator[_Block]:
    yield _Heading(3, "中标候选人 (Ranked candidates)")
    if not candidates:
        yield _Para(_EMPTY, "note")
        return
    yield _Table(
        ("排名 (Rank)", "投标人 (Bidder)", "投标报价，元 (Price, yuan)", "总分 (Total)"),
        tuple(
            (
                _Cell(_text(c.get("rank")), "num"),
                _Cell(_text(c.get("bidder"))),
                _Cell(yuan(c["price_fen"]) if "price_fen" in c else _NONE, "num"),
                _Cell(points(c.get("total_cp")), "num"),
            )
            for c in sorted(candidates, key=_by_rank)
        ),
        (2, 9, 4, 3),
    )


def _clarifications(clarifications: list[Mapping[str, Any]]) -> Iterator[_Block]:
    yield _Heading(2, "澄清 (Clarifications)")
    if not clarifications:
        yield _Para(_EMPTY, "note")
        return
    yield _Table(
        (
            "投标人 (Bidder)",
            "问题 (Question)",
            "答复 (Answer)",
            "提问时间 (Asked at)",
            "答复时间 (Answered at)",
        ),
        tuple(
            (
                _Cell(_text(c.get("bidder"))),
                _Cell(_text(c.get("question"))),
                _Cell("未答复 (no answer)" if c.get("answer") is None else _text(c.get("answer"))),
                _Cell(_text(c.get("asked_at")), "mono"),
                _Cell(_text(c.get("answered_at")), "mono"),
            )
            for c in clarifications
        ),
        (4, 7, 7, 4, 4),
    )


def _notes(notes: list[Any]) -> Iterator[_Block]:
    yield _Heading(2, "备注 (Notes)")
    if not notes:
        yield _Para(_EMPTY, "note")
    for note in notes:
        yield _Para(_text(note))


def _signatures(hash_hex: str, signatures: Sequence[Mapping[str, Any]]) -> Iterator[_Block]:
    yield _Heading(2, "签署 (Signatures, W-11)")
    yield _Para(
        "每位成员以 Ed25519 签署以下报告哈希；签署记录不在哈希范围内。"
        "(Each member signs this report hash with Ed25519; the signing record is not covered by the hash.)"
    )
    yield _Para(hash_hex, "mono")
    if any(not isinstance(s, Mapping) for s in signatures):
        raise ReportError("each signing record entry must be an object")
    if not signatures:
        yield _Para("尚无签署记录 (No signatures recorded yet)", "note")
        return
    yield _Table(
        ("席位 (Seat)", "姓名 (Name)", "结果 (Outcome)", "时间 (At)", "公钥指纹 (Key fingerprint)"),
        tuple(
            (
                _Cell(_text(s.get("seat")), "num"),
                _Cell(_text(s.get("name"))),
                _Cell(_label(_OUTCOMES, s.get("outcome"))),
                _Cell(_text(s.get("at")), "mono"),
                _Cell(_text(s.get("key_fingerprint")), "mono"),
            )
            for s in signatures
        ),
        (2, 3, 6, 4, 6),
    )
    # A dissent can run to pages: it goes below the table, where it can break across them.
    for s in signatures:
        if s.get("dissent") is not None:
            yield _Heading(
                4, f"席位 {_text(s.get('seat'))} {_text(s.get('name'))} 的书面异议 (Written dissent)"
            )
            yield _Para(_text(s.get("dissent")))


# ---------------------------------------------------------------- reading the dict


def _dict(container: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = container.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReportError(f"{key!r} must be an object, got {type(value).__name__}")
    return value


def _list(container: Mapping[str, Any], key: str, *, objects: bool = True) -> list[Any]:
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportError(f"{key!r} must be a list, got {type(value).__name__}")
    for item in value:
        if objects and not isinstance(item, dict):
            raise ReportError(f"each entry of {key!r} must be an object, got {type(item).__name__}")
    return value


def _text(value: Any) -> str:
    if value is None:
        return _NONE
    if isinstance(value, bool):
        return "是 (yes)" if value else "否 (no)"
    if isinstance(value, str | int):
        return str(value)
    raise ReportError(f"expected text or a number, got {type(value).__name__}")


def _label(labels: Mapping[str, str], value: Any) -> str:
    return labels.get(value, _text(value)) if isinstance(value, str) else _text(value)


def _yes_no(value: Any, yes: str, no: str) -> str:
    return _NONE if value is None else yes if value else no


def _ground(rejection: Mapping[str, Any], titles: Mapping[Any, str]) -> str | None:
    """The title of a rejection's criterion, or of the ground the platform established it on."""
    code = rejection.get("criterion")
    if rejection.get("by") == "platform" and isinstance(code, str) and code in _PLATFORM_GROUNDS:
        return _PLATFORM_GROUNDS[code]
    return titles.get(code)


def _titled(title: str | None) -> str:
    return f" {title}" if title else ""


def _depth(value: Any) -> int:
    return min(value, 8) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _sort_key(value: Any) -> tuple[int, int, str]:
    # Seats and ids of mixed or missing types still sort, and always in the same order.
    if isinstance(value, int) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, _text(value))


def _by_rank(entry: Mapping[str, Any]) -> tuple[int, int, str]:
    rank = entry.get("rank")
    return (1, 0, "") if rank is None else _sort_key(rank)


def _bid_label(bid_id: Any, bidders: Mapping[Any, str]) -> str:
    return bidders.get(bid_id) or _text(bid_id)


def _columns(criteria: list[Mapping[str, Any]], score_maps: list[Mapping[str, Any]]) -> list[str]:
    """The criterion codes scored anywhere in `score_maps`: in the criteria's order, then any others sorted."""
    used = {code for scores in score_maps for code in scores}
    ordered = list(dict.fromkeys(code for c in criteria if (code := c.get("code")) in used))
    return ordered + sorted(used - set(ordered))


def _pairs(*rows: tuple[str, _Cell]) -> _Table:
    return _Table((), tuple((_Cell(label), cell) for label, cell in rows), (4, 11))


# ---------------------------------------------------------------- HTML

_CSS: Final = """
@page { size: A4; margin: 15mm; }
@page wide { size: A4 landscape; }
.wide { page: wide; }
body { font-family: "Noto Serif CJK SC", "Source Han Serif SC", "Songti SC", SimSun, serif;
       font-size: 10pt; line-height: 1.45; margin: 0 auto; max-width: 60em; color: #000; }
h1 { font-size: 17pt; text-align: center; }
h2 { font-size: 13pt; border-bottom: 1px solid #000; margin-top: 1.6em; }
h3 { font-size: 11pt; margin-top: 1.2em; }
h4 { font-size: 10pt; margin: .8em 0 .3em; }
table { border-collapse: collapse; width: 100%; margin: .3em 0 .8em; font-size: 9pt; }
th, td { border: 1px solid #777; padding: 2px 4px; vertical-align: top; text-align: left; }
th { background: #eee; font-weight: normal; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.mono { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 8.5pt; word-break: break-all; }
.note { color: #555; }
footer { border-top: 1px solid #000; margin-top: 2em; padding-top: .3em; font-size: 8.5pt; }
"""


def render_html(report: dict[str, Any], signatures: Sequence[dict[str, Any]] = ()) -> str:
    """The report as one standalone HTML document for screen and print, every text HTML-escaped."""
    hash_hex = report_hash(report)
    tender = _dict(report, "tender")
    title = f"评标报告 (Evaluation report) {_text(tender.get('code'))} {_text(tender.get('title'))}"
    body: list[str] = []
    wide = False
    for block in _document(report, hash_hex, signatures):
        if isinstance(block, _Landscape):
            if block.on != wide:
                body.append('<div class="wide">' if block.on else "</div>")
                wide = block.on
        else:
            body.append(_html_block(block))
    if wide:
        body.append("</div>")
    return (
        '<!doctype html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + f'\n<footer>报告哈希 (Report hash, SHA-256) <span class="mono">{hash_hex}</span>'
        f" · {_esc(REPORT_VERSION)}</footer>\n</body>\n</html>\n"
    )


def _html_block(block: _Heading | _Para | _Table) -> str:
    if isinstance(block, _Heading):
        return f"<h{block.level}>{_esc(block.text)}</h{block.level}>"
    if isinstance(block, _Para):
        return f'<p class="{block.style}">{_esc(block.text)}</p>'
    head = ""
    if block.header:
        head = "<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in block.header) + "</tr></thead>"
    rows = "".join(
        "<tr>" + "".join(f'<td class="{c.style}">{_esc(c.text)}</td>' for c in row) + "</tr>"
        for row in block.rows
    )
    return f"<table>{head}<tbody>{rows}</tbody></table>"


def _esc(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "<br>")


# ---------------------------------------------------------------- PDF

pdfmetrics.registerFont(UnicodeCIDFont(_CJK_FONT))

_STYLES: Final = {
    "h1": ParagraphStyle(
        "h1", fontName=_CJK_FONT, fontSize=16, leading=22, alignment=TA_CENTER, spaceAfter=8
    ),
    "h2": ParagraphStyle("h2", fontName=_CJK_FONT, fontSize=13, leading=18, spaceBefore=12, spaceAfter=4),
    "h3": ParagraphStyle("h3", fontName=_CJK_FONT, fontSize=11, leading=15, spaceBefore=8, spaceAfter=3),
    "h4": ParagraphStyle("h4", fontName=_CJK_FONT, fontSize=9.5, leading=13, spaceBefore=5, spaceAfter=2),
    "text": ParagraphStyle("text", fontName=_CJK_FONT, fontSize=9, leading=13, wordWrap="CJK", spaceAfter=3),
    "note": ParagraphStyle(
        "note",
        fontName=_CJK_FONT,
        fontSize=9,
        leading=13,
        wordWrap="CJK",
        textColor=colors.HexColor("#555555"),
    ),
    "mono": ParagraphStyle("mono", fontName=_MONO_FONT, fontSize=8, leading=11, wordWrap="CJK", spaceAfter=3),
    "cell": ParagraphStyle("cell", fontName=_CJK_FONT, fontSize=7.5, leading=9.5, wordWrap="CJK"),
    "cell-mono": ParagraphStyle("cell-mono", fontName=_MONO_FONT, fontSize=7, leading=9.5, wordWrap="CJK"),
}
_TABLE_STYLE: Final = TableStyle(
    [
        ("FONTNAME", (0, 0), (-1, -1), _CJK_FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 7.5),
        ("LEADING", (0, 0), (-1, -1), 9.5),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#777777")),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
)
_PORTRAIT: Final = A4
_LANDSCAPE: Final = landscape(A4)


def render_pdf(
    report: dict[str, Any], signatures: Sequence[dict[str, Any]] = (), *, compress: bool = True
) -> bytes:
    """The report as an A4 PDF, score sheets on landscape pages, the report hash in every page's footer.

    Deterministic: the same report and signing record give the same bytes (fixed dates and document id).
    `compress=False` leaves the page streams readable, for tests and for diffing two renderings."""
    hash_hex = report_hash(report)
    tender = _dict(report, "tender")
    story: list[Flowable] = []
    wide = False
    for block in _document(report, hash_hex, signatures):
        if isinstance(block, _Landscape):
            if block.on != wide:
                story += [NextPageTemplate("landscape" if block.on else "portrait"), PageBreak()]
                wide = block.on
        else:
            story += _pdf_block(block, (_LANDSCAPE if wide else _PORTRAIT)[0] - 2 * _MARGIN)
    out = io.BytesIO()
    document = BaseDocTemplate(
        out,
        pagesize=_PORTRAIT,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN + 5 * mm,
        title=f"评标报告 (Evaluation report) {_text(tender.get('code'))}",
        author="ggzy",
        subject=f"SHA-256 {hash_hex}",
        creator="ggzy",
        producer="ggzy (ReportLab)",
        invariant=1,
        pageCompression=1 if compress else 0,
        lang="zh-CN",
    )
    document.addPageTemplates(
        [_page_template("portrait", _PORTRAIT, hash_hex), _page_template("landscape", _LANDSCAPE, hash_hex)]
    )
    document.build(story)
    return out.getvalue()


def _page_template(name: str, size: tuple[float, float], hash_hex: str) -> PageTemplate:
    width, height = size
    frame = Frame(
        _MARGIN, _MARGIN + 5 * mm, width - 2 * _MARGIN, height - 2 * _MARGIN - 5 * mm, id=name, showBoundary=0
    )
    return PageTemplate(id=name, frames=[frame], pagesize=size, onPage=_footer(width, hash_hex))


def _footer(width: float, hash_hex: str) -> Callable[[Canvas, BaseDocTemplate], None]:
    def draw(canvas: Canvas, document: BaseDocTemplate) -> None:
        canvas.saveState()
        label = "报告哈希 (Report hash, SHA-256) "
        canvas.setFont(_CJK_FONT, 7)
        canvas.drawString(_MARGIN, _MARGIN, label)
        # The hash in a standard font, so its digits are plain ASCII in the page stream.
        canvas.setFont(_MONO_FONT, 7)
        canvas.drawString(_MARGIN + pdfmetrics.stringWidth(label, _CJK_FONT, 7), _MARGIN, hash_hex)
        canvas.setFont(_CJK_FONT, 7)
        page = canvas.getPageNumber()
        canvas.drawRightString(width - _MARGIN, _MARGIN, f"第 {page} 页 (Page {page})")
        canvas.restoreState()

    return draw


def _pdf_block(block: _Heading | _Para | _Table, width: float) -> list[Flowable]:
    if isinstance(block, _Heading):
        return [Paragraph(_markup(block.text), _STYLES[f"h{block.level}"])]
    if isinstance(block, _Para):
        return [Paragraph(_markup(block.text), _STYLES[block.style])]
    total = sum(block.weights)
    widths = [width * weight / total for weight in block.weights]
    rows: list[list[Any]] = []
    if block.header:
        rows.append([Paragraph(_markup(h), _STYLES["cell"]) for h in block.header])
    rows += [[_pdf_cell(cell) for cell in row] for row in block.rows]
    table = Table(rows, colWidths=widths, repeatRows=1 if block.header else 0, splitInRow=1, hAlign="LEFT")
    table.setStyle(_TABLE_STYLE)
    first = 1 if block.header else 0
    commands: list[tuple[Any, ...]] = [
        ("ALIGN", (column, first), (column, -1), "RIGHT")
        for column, cell in enumerate(block.rows[0] if block.rows else ())
        if cell.style == "num"  # the blocks' columns are homogeneous: the first row speaks for each
    ]
    if block.header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#EEEEEE")))
    table.setStyle(TableStyle(commands))
    return [table, Spacer(0, 4)]


def _pdf_cell(cell: _Cell) -> Any:
    if cell.style == "num":
        # A plain string: a figure never wraps, and 10,000 score cells should not each be a Paragraph.
        return cell.text
    return Paragraph(_markup(cell.text), _STYLES["cell-mono" if cell.style == "mono" else "cell"])


def _markup(text: str) -> str:
    # Paragraph parses its text as XML-ish markup: escape it, then keep line breaks as breaks.
    return html.escape(text, quote=False).replace("\n", "<br/>")
