"""Scoring (评分): the evaluation scheme (评分办法), members' score sheets, price scores, abnormal scores
and the ranking of qualified bids.

A `Scheme` says how bids are evaluated: a list of pass/fail qualification criteria (资格审查) and one of
three methods. Under the two price methods (经评审的最低投标价法, 合理低价法) bids that pass
qualification rank by price alone. Under comprehensive scoring (综合评分法 / 综合评估法) a tree of criteria
totals exactly 100 points: members of the committee score the subjective leaves by hand, one `Sheet`
each, and the single price leaf is computed by the base-price method (基准价法, G-06). G-05 sets the
smallest price weight for goods and services, G-10 flags a member's abnormally high or low scores
(畸高畸低) for correction or a written reason, and W-11 caps the recommended candidates at three.

Scores are whole numbers of hundredths of a point ("cp": 100 points = 10000 cp). Means and price scores
are exact `Fraction`s; a score is rounded half-up to the cp once, only where it is shown, and the
ranking always compares the exact values. Ties that neither the total nor the price decides are broken
by a published lottery, SHA-256 of the tie seed and the bid id, which anyone can recompute.

Pure logic: no I/O, no clock, no floats.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from types import MappingProxyType
from typing import Any, Final, TypeGuard

# ---------------------------------------------------------------- errors


class SchemeError(ValueError):
    """A scheme that is malformed or breaks a rule.

    `path` names the offending field the way the JSON form spells it (``criteria[1].children[0].max_cp``;
    ``""`` is the scheme itself); `rule` is the RULES.md id when a legal rule is broken.
    """

    def __init__(self, message: str, path: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.rule = rule


class ScoreError(ValueError):
    """A score sheet or bid list that cannot be accepted; `path` names the score (``scores[b-1][T1]``)."""

    def __init__(self, message: str, path: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.rule = rule


# ---------------------------------------------------------------- the scheme

LOWEST_EVALUATED_PRICE: Final = "lowest_evaluated_price"  # 经评审的最低投标价法
REASONABLE_LOWEST_PRICE: Final = "reasonable_lowest_price"  # 合理低价法
COMPREHENSIVE: Final = "comprehensive"  # 综合评分法 (procurement) / 综合评估法 (works)
METHODS: Final = (LOWEST_EVALUATED_PRICE, REASONABLE_LOWEST_PRICE, COMPREHENSIVE)

GROUP: Final = "group"
SUBJECTIVE: Final = "subjective"
PRICE: Final = "price"
KINDS: Final = (GROUP, SUBJECTIVE, PRICE)

CATEGORIES: Final = ("works", "goods", "services")

TOTAL_CP: Final = 10000  # 100 points
MAX_DEPTH: Final = 4
MAX_LEAVES: Final = 200
MAX_CANDIDATES: Final = 3  # W-11
# G-05: the smallest price leaf of a comprehensive scheme per procurement category (works: no legal floor).
PRICE_MIN_CP: Final[Mapping[str, int]] = MappingProxyType({"works": 0, "goods": 3000, "services": 1000})

_CODE: Final = re.compile(r"[A-Za-z0-9._-]{1,20}")
_TITLE_MAX: Final = 200


@dataclass(frozen=True)
class Criterion:
    """One criterion of a comprehensive scheme (评分因素).

    A "group" only sums its children (its `max_cp` must equal theirs); a "subjective" leaf is scored by
    each member by hand, from 0 to `max_cp`; the one "price" leaf is computed (G-06).
    """

    code: str
    title: str
    kind: str
    max_cp: int
    children: tuple[Criterion, ...] = ()


@dataclass(frozen=True)
class Scheme:
    """How the bids of one lot are evaluated; see `validate` for what makes a scheme lawful."""

    method: str
    criteria: tuple[Criterion, ...]
    qualification: tuple[tuple[str, str], ...]
    category: str = "works"
    abnormal_percent: int = 20
    max_candidates: int = 3


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_code(code: object, path: str, seen: dict[str, str]) -> None:
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise SchemeError(f"code {code!r} is not valid: use 1 to 20 letters, digits, '.', '_' or '-'", path)
    if code in seen:
        raise SchemeError(f"code {code!r} is already used at {seen[code]}; codes must be unique", path)
    seen[code] = path


def _check_title(title: object, path: str) -> None:
    if not isinstance(title, str) or not title.strip() or len(title) > _TITLE_MAX:
        raise SchemeError(f"a title must be a non-empty text of at most {_TITLE_MAX} characters", path)


def _check_range(value: object, low: int, high: int, path: str, rule: str) -> None:
    if not _is_int(value) or not low <= value <= high:
        raise SchemeError(
            f"{path} must be a whole number from {low} to {high} ({rule}), not {value!r}", path, rule
        )


def _check_nodes(
    nodes: object, path: str, depth: int, seen: dict[str, str], found: list[tuple[str, Criterion]]
) -> None:
    """Check the criteria at `path` and below; collect the leaves (with their paths) in tree order."""
    if not isinstance(nodes, tuple):
        raise SchemeError("criteria must be a sequence of criteria", path)
    for i, node in enumerate(nodes):
        here = f"{path}[{i}]"
        if not isinstance(node, Criterion):
            raise SchemeError("each criterion must be a Criterion", here)
        if depth > MAX_DEPTH:
            raise SchemeError(f"criteria may nest at most {MAX_DEPTH} levels deep", here)
        _check_code(node.code, f"{here}.code", seen)
        _check_title(node.title, f"{here}.title")
        if node.kind not in KINDS:
            raise SchemeError(f"kind {node.kind!r} is unknown; use one of {', '.join(KINDS)}", f"{here}.kind")
        if not _is_int(node.max_cp) or node.max_cp <= 0:
            raise SchemeError(
                f"max_cp must be a whole number of centi-points above 0, not {node.max_cp!r}",
                f"{here}.max_cp",
            )
        if node.kind == GROUP:
            if not isinstance(node.children, tuple) or not node.children:
                raise SchemeError("a group needs at least one child criterion", f"{here}.children")
            _check_nodes(node.children, f"{here}.children", depth + 1, seen, found)
            total = sum(child.max_cp for child in node.children)
            if total != node.max_cp:
                raise SchemeError(
                    f"the group is worth {node.max_cp} cp but its children total {total} cp; make them agree",
                    f"{here}.max_cp",
                )
        else:
            if node.children != ():
                why = "is computed by formula (G-06)" if node.kind == PRICE else "is scored by hand"
                raise SchemeError(
                    f"a {node.kind} criterion {why} and cannot have children; make it a group instead",
                    f"{here}.children",
                )
            found.append((here, node))


def _validate_criteria(scheme: Scheme) -> None:
    found: list[tuple[str, Criterion]] = []
    if not isinstance(scheme.criteria, tuple) or not scheme.criteria:
        raise SchemeError("comprehensive scoring needs criteria totalling 100 points", "criteria")
    _check_nodes(scheme.criteria, "criteria", 1, {}, found)
    if len(found) > MAX_LEAVES:
        raise SchemeError(
            f"a scheme has at most {MAX_LEAVES} scored criteria, this one {len(found)}", "criteria"
        )
    prices = [(path, leaf) for path, leaf in found if leaf.kind == PRICE]
    if not prices:
        raise SchemeError("comprehensive scoring needs exactly one price criterion; add one", "criteria")
    if len(prices) > 1:
        raise SchemeError(
            f"comprehensive scoring has exactly one price criterion; the first is at {prices[0][0]}",
            f"{prices[1][0]}.kind",
        )
    total = sum(node.max_cp for node in scheme.criteria)
    if total != TOTAL_CP:
        raise SchemeError(
            f"the criteria total {total} cp; they must total exactly {TOTAL_CP} cp (100 points)", "criteria"
        )
    price_path, price = prices[0]
    floor = PRICE_MIN_CP[scheme.category]
    if price.max_cp < floor:
        raise SchemeError(
            f"for {scheme.category} the price is worth at least {cp_text(floor)} points (G-05), "
            f"not {cp_text(price.max_cp)}",
            f"{price_path}.max_cp",
            "G-05",
        )


def validate(scheme: Scheme) -> None:
    """Raise SchemeError, with the path of the first fault found, unless `scheme` is lawful and whole.

    - `method` is one of METHODS, `category` one of CATEGORIES;
    - at least one qualification criterion; codes (1–20 of ``A-Za-z0-9._-``) unique, titles non-empty;
    - `abnormal_percent` from 1 to 100 (G-10), `max_candidates` from 1 to 3 (W-11);
    - the price methods score nothing by hand: `criteria` is empty;
    - comprehensive: codes unique in the tree, every group worth the sum of its children, at most
      MAX_DEPTH levels and MAX_LEAVES leaves, exactly one price leaf (a leaf, so nothing subjective sits
      under it), the top level totalling 10000 cp, and the price worth at least 30 points for goods and
      10 points for services (G-05).

    G-05's narrower band for competitive consultation (磋商: 30–60 goods, 10–30 services) depends on the
    procurement method, which the procedure profile knows and a scheme does not; check it there.
    """
    if scheme.method not in METHODS:
        raise SchemeError(f"method {scheme.method!r} is unknown; use one of {', '.join(METHODS)}", "method")
    if scheme.category not in CATEGORIES:
        raise SchemeError(
            f"category {scheme.category!r} is unknown; use one of {', '.join(CATEGORIES)}", "category"
        )
    _check_range(scheme.abnormal_percent, 1, 100, "abnormal_percent", "G-10")
    _check_range(scheme.max_candidates, 1, MAX_CANDIDATES, "max_candidates", "W-11")
    if not isinstance(scheme.qualification, tuple) or not scheme.qualification:
        raise SchemeError("at least one qualification (pass/fail) criterion is required", "qualification")
    seen: dict[str, str] = {}
    for i, item in enumerate(scheme.qualification):
        if not isinstance(item, tuple) or len(item) != 2:
            raise SchemeError("a qualification criterion is a (code, title) pair", f"qualification[{i}]")
        _check_code(item[0], f"qualification[{i}].code", seen)
        _check_title(item[1], f"qualification[{i}].title")
    if scheme.method != COMPREHENSIVE:
        if scheme.criteria != ():
            raise SchemeError(
                f"the {scheme.method} method ranks qualified bids by price alone; leave criteria empty "
                "or use comprehensive scoring",
                "criteria",
            )
        return
    _validate_criteria(scheme)


def leaves(scheme: Scheme) -> list[Criterion]:
    """The scored criteria (subjective and price leaves) in tree order; [] for the price methods."""
    out: list[Criterion] = []
    stack = list(reversed(scheme.criteria))
    while stack:
        node = stack.pop()
        if node.children:
            stack.extend(reversed(node.children))
        else:
            out.append(node)
    return out


def subjective_max(scheme: Scheme) -> int:
    """The most a member can give one bid by hand: the sum of the subjective leaves' max_cp."""
    return sum(leaf.max_cp for leaf in leaves(scheme) if leaf.kind == SUBJECTIVE)


# ---------------------------------------------------------------- JSON form

_SCHEME_KEYS: Final = (
    ("method", True),
    ("criteria", False),
    ("qualification", True),
    ("category", False),
    ("abnormal_percent", False),
    ("max_candidates", False),
)
_CRITERION_KEYS: Final = (
    ("code", True),
    ("title", True),
    ("kind", True),
    ("max_cp", True),
    ("children", False),
)
_QUALIFICATION_KEYS: Final = (("code", True), ("title", True))


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fields(value: object, path: str, keys: tuple[tuple[str, bool], ...], what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SchemeError(f"{what} must be a JSON object", path)
    known = {key for key, _ in keys}
    for key in value:
        if key not in known:
            raise SchemeError(
                f"{key!r} is not a field of {what}; the fields are {', '.join(sorted(known))}",
                _at(path, str(key)),
            )
    for key, required in keys:
        if required and key not in value:
            raise SchemeError(f"{what} needs the field {key!r}", _at(path, key))
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise SchemeError(f"expected a string, not {type(value).__name__}", path)
    return value


def _whole(value: object, path: str) -> int:
    if not _is_int(value):
        raise SchemeError(f"expected a whole number, not {type(value).__name__} {value!r}", path)
    return value


def _items(value: object, path: str) -> Sequence[object]:
    if not isinstance(value, list | tuple):
        raise SchemeError(f"expected a list, not {type(value).__name__}", path)
    return value


def _criterion_from_json(value: object, path: str, depth: int) -> Criterion:
    data = _fields(value, path, _CRITERION_KEYS, "a criterion")
    children: tuple[Criterion, ...] = ()
    if "children" in data:
        items = _items(data["children"], f"{path}.children")
        if items and depth >= MAX_DEPTH:
            # refused while reading, so a hostile document cannot recurse without bound
            raise SchemeError(f"criteria may nest at most {MAX_DEPTH} levels deep", f"{path}.children[0]")
        children = tuple(
            _criterion_from_json(item, f"{path}.children[{i}]", depth + 1) for i, item in enumerate(items)
        )
    return Criterion(
        code=_text(data["code"], f"{path}.code"),
        title=_text(data["title"], f"{path}.title"),
        kind=_text(data["kind"], f"{path}.kind"),
        max_cp=_whole(data["max_cp"], f"{path}.max_cp"),
        children=children,
    )


def scheme_from_json(data: Mapping[str, Any]) -> Scheme:
    """Read and validate a scheme from its JSON form (the shape `scheme_to_json` writes).

    ``{"method", "criteria": [{"code", "title", "kind", "max_cp", "children": [...]}], "qualification":
    [{"code", "title"}], "category", "abnormal_percent", "max_candidates"}``; `method` and
    `qualification` are required, the rest default as in `Scheme` (criteria to none, children to none).
    Any wrong type, unknown or missing field, bad code or broken rule is a SchemeError naming its path.
    """
    fields = _fields(data, "", _SCHEME_KEYS, "a scoring scheme")
    criteria = tuple(
        _criterion_from_json(item, f"criteria[{i}]", 1)
        for i, item in enumerate(_items(fields.get("criteria", []), "criteria"))
    )
    qualification: list[tuple[str, str]] = []
    for i, item in enumerate(_items(fields["qualification"], "qualification")):
        path = f"qualification[{i}]"
        entry = _fields(item, path, _QUALIFICATION_KEYS, "a qualification criterion")
        qualification.append((_text(entry["code"], f"{path}.code"), _text(entry["title"], f"{path}.title")))
    scheme = Scheme(
        method=_text(fields["method"], "method"),
        criteria=criteria,
        qualification=tuple(qualification),
        category=_text(fields.get("category", "works"), "category"),
        abnormal_percent=_whole(fields.get("abnormal_percent", 20), "abnormal_percent"),
        max_candidates=_whole(fields.get("max_candidates", MAX_CANDIDATES), "max_candidates"),
    )
    validate(scheme)
    return scheme


def _criterion_to_json(node: Criterion) -> dict[str, Any]:
    return {
        "code": node.code,
        "title": node.title,
        "kind": node.kind,
        "max_cp": node.max_cp,
        "children": [_criterion_to_json(child) for child in node.children],
    }


def scheme_to_json(scheme: Scheme) -> dict[str, Any]:
    """The JSON form of `scheme`, every field written; `scheme_from_json` reads it back unchanged."""
    return {
        "method": scheme.method,
        "category": scheme.category,
        "criteria": [_criterion_to_json(node) for node in scheme.criteria],
        "qualification": [{"code": code, "title": title} for code, title in scheme.qualification],
        "abnormal_percent": scheme.abnormal_percent,
        "max_candidates": scheme.max_candidates,
    }


# ---------------------------------------------------------------- default schemes

_QUALIFICATION: Final = (
    ("Q1", "Business licence and legal standing (营业执照与主体资格)"),
    ("Q2", "Required qualification certificates (资质证书)"),
    ("Q3", "Bid deposit paid or guaranteed (投标保证金)"),
    ("Q4", "Bid signed, sealed and valid for the required period (签章与投标有效期)"),
    ("Q5", "No debarment or record of serious dishonesty (信用记录)"),
)
# Technical leaves per category, with their share of the technical group in percent.
_TECHNICAL: Final[Mapping[str, tuple[tuple[str, int], ...]]] = {
    "works": (
        ("Construction organisation plan (施工组织设计)", 40),
        ("Quality and safety measures (质量安全保证措施)", 25),
        ("Schedule and resources (进度计划与资源配备)", 20),
        ("Project manager and key staff (项目管理机构)", 15),
    ),
    "goods": (
        ("Response to the technical specifications (技术参数响应)", 40),
        ("Delivery, installation and acceptance plan (供货安装验收方案)", 25),
        ("Quality assurance (质量保证措施)", 20),
        ("After-sales service and training (售后服务与培训)", 15),
    ),
    "services": (
        ("Service plan (服务方案)", 40),
        ("Staffing and qualifications (人员配备)", 25),
        ("Quality control and contingency measures (质量控制与应急措施)", 20),
        ("Service commitments (服务承诺)", 15),
    ),
}
_DEFAULT_PRICE_CP: Final[Mapping[str, int]] = {"works": 4000, "goods": 4000, "services": 3000}


def default_scheme(method: str, category: str = "works") -> Scheme:
    """A lawful starting scheme for `method` and `category`, for the tenderer to adapt.

    Comprehensive: business 20 points (track record 10, finances and credit 5, commercial terms 5),
    technical 40 points (50 for services) in four subjective leaves named for the category, price 40
    points (30 for services, within G-05). The price methods: the qualification criteria only.
    """
    if method not in METHODS:
        raise SchemeError(f"method {method!r} is unknown; use one of {', '.join(METHODS)}", "method")
    if category not in CATEGORIES:
        raise SchemeError(f"category {category!r} is unknown; use one of {', '.join(CATEGORIES)}", "category")
    if method != COMPREHENSIVE:
        return Scheme(method=method, criteria=(), qualification=_QUALIFICATION, category=category)
    price_cp = _DEFAULT_PRICE_CP[category]
    technical_cp = TOTAL_CP - 2000 - price_cp
    business = Criterion(
        "B",
        "Business (商务)",
        GROUP,
        2000,
        (
            Criterion("B1", "Track record of similar contracts (类似业绩)", SUBJECTIVE, 1000),
            Criterion("B2", "Financial standing and credit (财务与信誉)", SUBJECTIVE, 500),
            Criterion("B3", "Response to the commercial terms (商务条款响应)", SUBJECTIVE, 500),
        ),
    )
    technical = Criterion(
        "T",
        "Technical (技术)",
        GROUP,
        technical_cp,
        tuple(
            Criterion(f"T{i}", title, SUBJECTIVE, technical_cp * share // 100)
            for i, (title, share) in enumerate(_TECHNICAL[category], start=1)
        ),
    )
    price = Criterion("P", "Price, base-price method (价格分, 基准价法)", PRICE, price_cp)
    return Scheme(method, (business, technical, price), _QUALIFICATION, category)


# ---------------------------------------------------------------- sheets and price scores


@dataclass(frozen=True)
class BidPrice:
    """A qualified bid and the price it is ranked by (declared or, after evaluation, evaluated), in fen."""

    bid_id: str
    price_fen: int


Sheet = dict[str, dict[str, int]]  # one member's scores: bid_id -> {subjective leaf code -> cp}


def check_sheet(scheme: Scheme, bids: Sequence[str], sheet: Sheet) -> None:
    """Raise ScoreError unless `sheet` scores every bid of `bids` on every subjective leaf, and nothing else.

    `bids` are the bids that passed qualification: a score for a failed or unknown bid is refused. Each
    score is a whole number of cp from 0 to the leaf's max_cp; the price leaf is computed, never scored
    by hand. The path names the score: ``scores[<bid_id>][<leaf code>]``.
    """
    subjective = {leaf.code: leaf.max_cp for leaf in leaves(scheme) if leaf.kind == SUBJECTIVE}
    price_codes = {leaf.code for leaf in leaves(scheme) if leaf.kind == PRICE}
    qualified = set(bids)
    if len(qualified) != len(bids):
        raise ScoreError("the list of qualified bids names a bid twice", "bids")
    if not isinstance(sheet, Mapping):
        raise ScoreError("a score sheet maps each bid id to its scores", "scores")
    for bid_id in sheet:
        if bid_id not in qualified:
            raise ScoreError(
                f"bid {bid_id!r} did not pass qualification or is unknown; only qualified bids are scored",
                f"scores[{bid_id}]",
            )
    for bid_id in bids:
        here = f"scores[{bid_id}]"
        if bid_id not in sheet:
            raise ScoreError(f"bid {bid_id!r} is not scored; score every qualified bid", here)
        scores = sheet[bid_id]
        if not isinstance(scores, Mapping):
            raise ScoreError("the scores of a bid map each subjective criterion's code to cp", here)
        for code, value in scores.items():
            at = f"{here}[{code}]"
            if code in price_codes:
                raise ScoreError(
                    "the price score is computed by formula (G-06), not scored by hand", at, "G-06"
                )
            if code not in subjective:
                raise ScoreError(f"{code!r} is not a subjective criterion of the scheme", at)
            if not _is_int(value):
                raise ScoreError(f"a score is a whole number of centi-points, not {value!r}", at)
            if not 0 <= value <= subjective[code]:
                raise ScoreError(
                    f"{cp_text(value)} is outside 0 to {cp_text(subjective[code])} points for {code}", at
                )
        for code in subjective:
            if code not in scores:
                raise ScoreError(f"criterion {code} is not scored for bid {bid_id!r}", f"{here}[{code}]")


def _check_bids(bids: Sequence[BidPrice]) -> dict[str, int]:
    prices: dict[str, int] = {}
    for i, bid in enumerate(bids):
        if not isinstance(bid, BidPrice) or not isinstance(bid.bid_id, str):
            raise ScoreError("each bid is a BidPrice with a text id", f"bids[{i}]")
        if bid.bid_id in prices:
            raise ScoreError(f"bid {bid.bid_id!r} is listed twice", f"bids[{i}].bid_id")
        if not _is_int(bid.price_fen) or bid.price_fen <= 0:
            raise ScoreError(
                f"a price is a whole number of fen above 0, not {bid.price_fen!r}", f"bids[{i}].price_fen"
            )
        prices[bid.bid_id] = bid.price_fen
    return prices


def price_scores(scheme: Scheme, bids: Sequence[BidPrice]) -> dict[str, Fraction]:
    """The exact price score in cp of each bid by the base-price method (G-06); {} for the price methods.

    The lowest price among `bids` (the qualified bids) is the base and scores the price leaf's max_cp;
    every other bid scores base ÷ its price × max_cp. Prices 100, 125 and 200 yuan with a 30-point
    price leaf score 3000, 2400 and 1500 cp.
    """
    prices = _check_bids(bids)
    price = [leaf for leaf in leaves(scheme) if leaf.kind == PRICE]
    if not price or not prices:
        return {}
    base = min(prices.values())
    return {bid_id: Fraction(base * price[0].max_cp, fen) for bid_id, fen in prices.items()}


# ---------------------------------------------------------------- abnormal scores (G-10)


@dataclass(frozen=True)
class Abnormal:
    """A member's subjective total for a bid that is abnormally high or low against the others' (G-10)."""

    member: str
    bid_id: str
    total_cp: int
    others_mean: Fraction
    deviation: Fraction  # total_cp - others_mean: positive is high (畸高), negative low (畸低)


def _check_sheets(scheme: Scheme, bid_ids: Sequence[str], sheets: Mapping[str, Sheet]) -> None:
    for member in sorted(sheets):
        try:
            check_sheet(scheme, bid_ids, sheets[member])
        except ScoreError as fault:
            raise ScoreError(fault.message, f"sheets[{member}].{fault.path}", fault.rule) from None


def abnormal_scores(scheme: Scheme, sheets: Mapping[str, Sheet]) -> list[Abnormal]:
    """The abnormally high or low subjective totals (畸高畸低, G-10), sorted by member and bid.

    For each bid, each member's subjective total is compared with the mean of the other members' totals
    for that bid; it is abnormal when it is off by more than `abnormal_percent` % of `subjective_max`
    (exactly that much is not). It takes at least 3 members for "the others" to mean something: with
    fewer the answer is []. Every sheet must score the same bids (ScoreError as in `check_sheet`,
    the path prefixed with ``sheets[<member>].``).
    """
    bid_ids = sorted({bid_id for sheet in sheets.values() if isinstance(sheet, Mapping) for bid_id in sheet})
    _check_sheets(scheme, bid_ids, sheets)
    limit = scheme.abnormal_percent * subjective_max(scheme)
    if len(sheets) < 3 or limit == 0:
        return []
    others = len(sheets) - 1
    found: list[Abnormal] = []
    for bid_id in bid_ids:
        totals = {member: sum(sheet[bid_id].values()) for member, sheet in sheets.items()}
        grand = sum(totals.values())
        for member, total in totals.items():
            mean = Fraction(grand - total, others)
            deviation = total - mean
            if abs(deviation) * 100 > limit:
                found.append(Abnormal(member, bid_id, total, mean, deviation))
    found.sort(key=lambda a: (a.member, a.bid_id))
    return found


# ---------------------------------------------------------------- ranking


@dataclass(frozen=True)
class Ranked:
    """A qualified bid's place: rank (1 is best, never shared), price, total and per-leaf cp as shown.

    `total_cp` and `leaf_cp` are rounded half-up from the exact values (so the leaves may not add up
    to the total by a cp or so); under the price methods they are None and {}. `tie_broken` is true when
    the bid's order against a neighbour was decided by the tie lottery alone.
    """

    bid_id: str
    rank: int
    price_fen: int
    total_cp: int | None
    leaf_cp: dict[str, int]
    tie_broken: bool


@dataclass(frozen=True)
class Outcome:
    """Every qualified bid, best first, and the recommended candidates (at most max_candidates, W-11)."""

    ranking: tuple[Ranked, ...]
    candidates: tuple[str, ...]


def tie_key(tie_seed: bytes, bid_id: str) -> bytes:
    """The lottery ticket of a bid: SHA-256(tie_seed ‖ UTF-8 bid id); the smaller ticket ranks first."""
    return hashlib.sha256(tie_seed + bid_id.encode()).digest()


def aggregate(
    scheme: Scheme, bids: Sequence[BidPrice], sheets: Mapping[str, Sheet], tie_seed: bytes
) -> Outcome:
    """Rank the qualified `bids` from the members' `sheets` and name the candidates (W-11).

    Comprehensive: a bid's exact total is, over the subjective leaves, the mean of the members' scores,
    plus its price score (G-06); bids rank by total (highest first), then price (lowest first), then the
    tie lottery (`tie_key`, with a seed published before the ranking). The price methods: by price,
    then the lottery; `sheets` should then be {} (a sheet given must still pass `check_sheet`). Every
    sheet must pass `check_sheet` (paths prefixed with ``sheets[<member>].``). Orders use exact
    fractions; only the cp shown are rounded, half-up, once.
    """
    validate(scheme)
    if not isinstance(tie_seed, bytes):
        raise TypeError("the tie seed is bytes")
    prices = _check_bids(bids)
    bid_ids = list(prices)
    _check_sheets(scheme, bid_ids, sheets)
    comprehensive = scheme.method == COMPREHENSIVE
    scored = leaves(scheme)
    subjective = [leaf.code for leaf in scored if leaf.kind == SUBJECTIVE]
    if comprehensive and subjective and bid_ids and not sheets:
        raise ScoreError(
            "no member has scored yet; every member submits a sheet before aggregation", "sheets"
        )
    members = [sheets[member] for member in sorted(sheets)]
    price_cp = price_scores(scheme, bids)

    n = len(members)
    totals: dict[str, Fraction] = {}
    shown: dict[str, dict[str, int]] = {}
    for bid_id in bid_ids:
        if not comprehensive:
            shown[bid_id] = {}
            continue
        sums = {code: 0 for code in subjective}
        for sheet in members:
            scores = sheet[bid_id]
            for code in subjective:
                sums[code] += scores[code]
        leaf_cp: dict[str, int] = {}
        for leaf in scored:
            leaf_cp[leaf.code] = round_cp(
                price_cp[bid_id] if leaf.kind == PRICE else Fraction(sums[leaf.code], n)
            )
        subjective_total = Fraction(sum(sums.values()), n) if n else Fraction(0)
        totals[bid_id] = subjective_total + price_cp[bid_id]
        shown[bid_id] = leaf_cp

    def merit(bid_id: str) -> tuple[Fraction, int]:
        # what decides the order before the lottery: lower is better
        return (-totals[bid_id] if comprehensive else Fraction(0), prices[bid_id])

    order = sorted(bid_ids, key=lambda b: (merit(b), tie_key(tie_seed, b)))
    by_lottery: set[str] = set()
    for first, second in pairwise(order):
        if merit(first) == merit(second):
            by_lottery.update((first, second))
    ranking = tuple(
        Ranked(
            bid_id=bid_id,
            rank=rank,
            price_fen=prices[bid_id],
            total_cp=round_cp(totals[bid_id]) if comprehensive else None,
            leaf_cp=shown[bid_id],
            tie_broken=bid_id in by_lottery,
        )
        for rank, bid_id in enumerate(order, start=1)
    )
    return Outcome(ranking, tuple(order[: scheme.max_candidates]))


# ---------------------------------------------------------------- display


def round_cp(value: int | Fraction) -> int:
    """`value` rounded half-up (halves away from zero) to a whole cp: the one rounding a score gets."""
    exact = Fraction(value)
    whole, rest = divmod(abs(exact.numerator), exact.denominator)
    if 2 * rest >= exact.denominator:
        whole += 1
    return whole if exact >= 0 else -whole


def cp_text(cp: int | Fraction) -> str:
    """Points with two decimals from cp, rounded half-up: 8735 → "87.35", Fraction(17469, 2) → "87.35"."""
    if isinstance(cp, bool) or not isinstance(cp, int | Fraction):
        raise TypeError(f"a score is an int or a Fraction of cp, not {type(cp).__name__}")
    rounded = round_cp(cp)
    points, hundredths = divmod(abs(rounded), 100)
    return f"{'-' if rounded < 0 else ''}{points}.{hundredths:02d}"
