"""Tests for evaluation.scoring: schemes (G-05), score sheets, price scores (G-06), abnormal scores (G-10)
and the ranking with its tie lottery and candidates (W-11), with figures worked out by hand."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.scoring import (
    COMPREHENSIVE,
    GROUP,
    LOWEST_EVALUATED_PRICE,
    METHODS,
    PRICE,
    REASONABLE_LOWEST_PRICE,
    SUBJECTIVE,
    Abnormal,
    BidPrice,
    Criterion,
    Outcome,
    Ranked,
    Scheme,
    SchemeError,
    ScoreError,
    Sheet,
    abnormal_scores,
    aggregate,
    check_sheet,
    cp_text,
    default_scheme,
    leaves,
    price_scores,
    scheme_from_json,
    scheme_to_json,
    subjective_max,
    validate,
)

QUAL = (("Q1", "Business licence"),)
SEED = b"published tie seed"


def leaf(code: str, max_cp: int, kind: str = SUBJECTIVE) -> Criterion:
    return Criterion(code, f"criterion {code}", kind, max_cp)


def group(code: str, *children: Criterion) -> Criterion:
    return Criterion(code, f"group {code}", GROUP, sum(c.max_cp for c in children), children)


# Business 20 (B1), technical 50 (T1 30, T2 20), price 30: subjective maximum 7000 cp.
HAND = Scheme(
    COMPREHENSIVE,
    (group("B", leaf("B1", 2000)), group("T", leaf("T1", 3000), leaf("T2", 2000)), leaf("P", 3000, PRICE)),
    QUAL,
)


def scheme_with(price_cp: int, category: str) -> Scheme:
    """A comprehensive scheme whose price leaf is worth `price_cp`, the rest one subjective leaf."""
    return Scheme(COMPREHENSIVE, (leaf("S", 10000 - price_cp), leaf("P", price_cp, PRICE)), QUAL, category)


def marks(b1: int, t1: int, t2: int) -> dict[str, int]:
    return {"B1": b1, "T1": t1, "T2": t2}


def refusal(error: SchemeError | ScoreError) -> tuple[str, str | None]:
    return error.path, error.rule


# ---------------------------------------------------------------- reading a scheme


def edited(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = scheme_to_json(HAND)
    change(data)
    return data


@pytest.mark.parametrize(
    ("data", "path"),
    [
        pytest.param([], "", id="not-an-object"),
        pytest.param(edited(lambda d: d.update(colour="red")), "colour", id="unknown-field"),
        pytest.param(edited(lambda d: d.pop("method")), "method", id="missing-method"),
        pytest.param(edited(lambda d: d.update(method=3)), "method", id="method-not-text"),
        pytest.param(edited(lambda d: d.update(method="auction")), "method", id="unknown-method"),
        pytest.param(edited(lambda d: d.update(criteria={})), "criteria", id="criteria-not-a-list"),
        pytest.param(
            edited(lambda d: d["criteria"][1]["children"][0].update(max_cp="3000")),
            "criteria[1].children[0].max_cp",
            id="max-cp-text",
        ),
        pytest.param(
            edited(lambda d: d["criteria"][1]["children"][0].update(max_cp=3000.0)),
            "criteria[1].children[0].max_cp",
            id="max-cp-float",
        ),
        pytest.param(
            edited(lambda d: d["criteria"][2].update(max_cp=True)), "criteria[2].max_cp", id="max-cp-bool"
        ),
        pytest.param(
            edited(lambda d: d["criteria"][0].update(weight=20)), "criteria[0].weight", id="unknown-key"
        ),
        pytest.param(
            edited(lambda d: d["criteria"][0].pop("title")), "criteria[0].title", id="missing-title"
        ),
        pytest.param(
            edited(lambda d: d["criteria"][1]["children"][0].update(code="T 1")),
            "criteria[1].children[0].code",
            id="bad-code",
        ),
        pytest.param(
            edited(lambda d: d["criteria"][1]["children"][1].update(code="T1")),
            "criteria[1].children[1].code",
            id="duplicate-code",
        ),
        pytest.param(
            edited(lambda d: d["criteria"][1]["children"][0].update(kind="objective")),
            "criteria[1].children[0].kind",
            id="unknown-kind",
        ),
        pytest.param(
            edited(lambda d: d["criteria"][1].update(children="T1")),
            "criteria[1].children",
            id="children-not-a-list",
        ),
        pytest.param(
            edited(lambda d: d.update(qualification=[["Q1", "Licence"]])), "qualification[0]", id="pair"
        ),
        pytest.param(
            edited(lambda d: d["qualification"][0].pop("title")), "qualification[0].title", id="qual-title"
        ),
        pytest.param(edited(lambda d: d.update(qualification=[])), "qualification", id="no-qualification"),
        pytest.param(edited(lambda d: d.update(abnormal_percent="20")), "abnormal_percent", id="percent"),
        pytest.param(edited(lambda d: d.update(max_candidates=4)), "max_candidates", id="candidates"),
    ],
)
def test_scheme_from_json_refuses_malformed_input_at_its_path(data: Any, path: str) -> None:
    with pytest.raises(SchemeError) as caught:
        scheme_from_json(data)
    assert caught.value.path == path


def test_scheme_from_json_refuses_nesting_beyond_four_levels_while_reading() -> None:
    deep: dict[str, Any] = {"code": "L5", "title": "five", "kind": "subjective", "max_cp": 6000}
    for level in (4, 3, 2, 1):
        deep = {"code": f"L{level}", "title": "level", "kind": "group", "max_cp": 6000, "children": [deep]}
    data = edited(
        lambda d: d.update(criteria=[deep, {"code": "P", "title": "p", "kind": "price", "max_cp": 4000}])
    )
    with pytest.raises(SchemeError) as caught:
        scheme_from_json(data)
    assert caught.value.path == "criteria[0].children[0].children[0].children[0].children[0]"


def test_scheme_json_round_trips_with_defaults_filled_in() -> None:
    data = scheme_to_json(HAND)
    assert scheme_from_json(data) == HAND
    assert data["qualification"] == [{"code": "Q1", "title": "Business licence"}]
    assert data["criteria"][2] == {
        "code": "P",
        "title": "criterion P",
        "kind": "price",
        "max_cp": 3000,
        "children": [],
    }
    minimal = {"method": "lowest_evaluated_price", "qualification": [{"code": "Q1", "title": "Licence"}]}
    assert scheme_from_json(minimal) == Scheme(LOWEST_EVALUATED_PRICE, (), (("Q1", "Licence"),))


# ---------------------------------------------------------------- validating a scheme


def criteria_of(*top: Criterion) -> Scheme:
    return Scheme(COMPREHENSIVE, top, QUAL)


@pytest.mark.parametrize(
    ("scheme", "path", "rule"),
    [
        pytest.param(
            criteria_of(
                group("B", leaf("B1", 2000)),
                Criterion("T", "t", GROUP, 5000, (leaf("T1", 3000), leaf("T2", 1999))),
                leaf("P", 3000, PRICE),
            ),
            "criteria[1].max_cp",
            None,
            id="group-sum-mismatch",
        ),
        pytest.param(criteria_of(leaf("S", 7000), leaf("P", 2999, PRICE)), "criteria", None, id="total-9999"),
        pytest.param(
            criteria_of(leaf("S", 6000), leaf("P", 2000, PRICE), leaf("P2", 2000, PRICE)),
            "criteria[2].kind",
            None,
            id="two-price-leaves",
        ),
        pytest.param(criteria_of(leaf("S", 10000)), "criteria", None, id="no-price-leaf"),
        pytest.param(
            criteria_of(leaf("S", 6000), Criterion("P", "p", PRICE, 4000, (leaf("S2", 4000),))),
            "criteria[1].children",
            None,
            id="subjective-under-price",
        ),
        pytest.param(
            criteria_of(leaf("S", 6000), Criterion("G", "g", GROUP, 4000, ())),
            "criteria[1].children",
            None,
            id="empty-group",
        ),
        pytest.param(
            criteria_of(leaf("S", 10000), leaf("P", 0, PRICE)), "criteria[1].max_cp", None, id="zero-leaf"
        ),
        pytest.param(
            criteria_of(
                group("A", group("B", group("C", group("D", leaf("E", 6000))))), leaf("P", 4000, PRICE)
            ),
            "criteria[0].children[0].children[0].children[0].children[0]",
            None,
            id="depth-5",
        ),
        pytest.param(
            criteria_of(group("G", *(leaf(f"S{i}", 30) for i in range(200))), leaf("P", 4000, PRICE)),
            "criteria",
            None,
            id="201-leaves",
        ),
        pytest.param(
            criteria_of(leaf("S", 6000), leaf("S", 4000, PRICE)),
            "criteria[1].code",
            None,
            id="duplicate-code",
        ),
        pytest.param(scheme_with(2999, "goods"), "criteria[1].max_cp", "G-05", id="goods-29.99-points"),
        pytest.param(scheme_with(999, "services"), "criteria[1].max_cp", "G-05", id="services-9.99-points"),
        pytest.param(Scheme(COMPREHENSIVE, HAND.criteria, QUAL, "land"), "category", None, id="category"),
        pytest.param(Scheme(COMPREHENSIVE, HAND.criteria, ()), "qualification", None, id="no-qualification"),
        pytest.param(
            Scheme(COMPREHENSIVE, HAND.criteria, (("Q1", "a"), ("Q1", "b"))),
            "qualification[1].code",
            None,
            id="duplicate-qualification",
        ),
        pytest.param(
            Scheme(COMPREHENSIVE, HAND.criteria, QUAL, abnormal_percent=0),
            "abnormal_percent",
            "G-10",
            id="0%",
        ),
        pytest.param(
            Scheme(COMPREHENSIVE, HAND.criteria, QUAL, abnormal_percent=101),
            "abnormal_percent",
            "G-10",
            id="101%",
        ),
        pytest.param(
            Scheme(COMPREHENSIVE, HAND.criteria, QUAL, max_candidates=4), "max_candidates", "W-11", id="4"
        ),
        pytest.param(
            Scheme(COMPREHENSIVE, HAND.criteria, QUAL, max_candidates=0), "max_candidates", "W-11", id="0"
        ),
        pytest.param(
            Scheme(REASONABLE_LOWEST_PRICE, HAND.criteria, QUAL), "criteria", None, id="price-method"
        ),
    ],
)
def test_validate_refuses_at_the_path_and_rule(scheme: Scheme, path: str, rule: str | None) -> None:
    with pytest.raises(SchemeError) as caught:
        validate(scheme)
    assert refusal(caught.value) == (path, rule)


@pytest.mark.parametrize(
    ("price_cp", "category"), [(3000, "goods"), (1000, "services"), (1, "works"), (10000, "goods")]
)
def test_validate_accepts_the_g05_price_floor_and_above(price_cp: int, category: str) -> None:
    scheme = Scheme(COMPREHENSIVE, (leaf("P", price_cp, PRICE),), QUAL, category)
    if price_cp < 10000:
        scheme = scheme_with(price_cp, category)
    validate(scheme)


def test_validate_accepts_depth_4_and_200_leaves() -> None:
    validate(criteria_of(group("A", group("B", group("C", leaf("D", 6000)))), leaf("P", 4000, PRICE)))
    validate(criteria_of(group("G", *(leaf(f"S{i}", 30) for i in range(199))), leaf("P", 4030, PRICE)))


@pytest.mark.parametrize("category", ["works", "goods", "services"])
@pytest.mark.parametrize("method", METHODS)
def test_default_schemes_validate(method: str, category: str) -> None:
    scheme = default_scheme(method, category)
    validate(scheme)
    assert (scheme.method, scheme.category, scheme.max_candidates, scheme.abnormal_percent) == (
        method,
        category,
        3,
        20,
    )
    assert scheme_from_json(scheme_to_json(scheme)) == scheme


@pytest.mark.parametrize(("category", "price_cp"), [("works", 4000), ("goods", 4000), ("services", 3000)])
def test_default_comprehensive_scheme_weighs_business_technical_and_price(
    category: str, price_cp: int
) -> None:
    scheme = default_scheme(COMPREHENSIVE, category)
    assert [(c.code, c.kind, c.max_cp) for c in scheme.criteria] == [
        ("B", GROUP, 2000),
        ("T", GROUP, 8000 - price_cp),
        ("P", PRICE, price_cp),
    ]
    assert [leaf.code for leaf in leaves(scheme)] == ["B1", "B2", "B3", "T1", "T2", "T3", "T4", "P"]
    assert subjective_max(scheme) == 10000 - price_cp


def test_default_price_schemes_have_qualification_only() -> None:
    scheme = default_scheme(REASONABLE_LOWEST_PRICE)
    assert (scheme.criteria, len(scheme.qualification), leaves(scheme), subjective_max(scheme)) == (
        (),
        5,
        [],
        0,
    )


def test_default_scheme_refuses_an_unknown_method() -> None:
    with pytest.raises(SchemeError) as caught:
        default_scheme("auction")
    assert caught.value.path == "method"


# ---------------------------------------------------------------- score sheets


def junk(value: object) -> Any:
    """A value of the wrong type, as a hostile or buggy caller would send it."""
    return value


def good_sheet() -> Sheet:
    return {"a": marks(2000, 0, 1500), "b": marks(0, 3000, 2000)}


def sheet_with(change: Callable[[Sheet], object]) -> Sheet:
    sheet = good_sheet()
    change(sheet)
    return sheet


def test_check_sheet_accepts_every_qualified_bid_scored_from_zero_to_the_maximum() -> None:
    check_sheet(HAND, ["a", "b"], good_sheet())


@pytest.mark.parametrize(
    ("sheet", "path", "rule"),
    [
        pytest.param(sheet_with(lambda s: s["a"].update(T1=3001)), "scores[a][T1]", None, id="above-max"),
        pytest.param(sheet_with(lambda s: s["b"].update(B1=-1)), "scores[b][B1]", None, id="negative"),
        pytest.param(sheet_with(lambda s: s["b"].pop("T2")), "scores[b][T2]", None, id="missing-leaf"),
        pytest.param(sheet_with(lambda s: s["a"].update(X9=0)), "scores[a][X9]", None, id="unknown-leaf"),
        pytest.param(sheet_with(lambda s: s["a"].update(T=0)), "scores[a][T]", None, id="group-scored"),
        pytest.param(sheet_with(lambda s: s["a"].update(P=3000)), "scores[a][P]", "G-06", id="price-by-hand"),
        pytest.param(sheet_with(lambda s: s.update(z=marks(1, 1, 1))), "scores[z]", None, id="failed-bid"),
        pytest.param(sheet_with(lambda s: s.pop("b")), "scores[b]", None, id="missing-bid"),
        pytest.param(sheet_with(lambda s: s["a"].update(B1=junk(1500.0))), "scores[a][B1]", None, id="float"),
        pytest.param(sheet_with(lambda s: s["a"].update(B1=junk("1500"))), "scores[a][B1]", None, id="text"),
        pytest.param(sheet_with(lambda s: s["a"].update(B1=junk(True))), "scores[a][B1]", None, id="bool"),
        pytest.param(
            sheet_with(lambda s: s["a"].update(B1=junk(Fraction(3, 2)))), "scores[a][B1]", None, id="fraction"
        ),
    ],
)
def test_check_sheet_refuses_at_the_score(sheet: Sheet, path: str, rule: str | None) -> None:
    with pytest.raises(ScoreError) as caught:
        check_sheet(HAND, ["a", "b"], sheet)
    assert refusal(caught.value) == (path, rule)


def test_check_sheet_under_a_price_method_takes_no_scores() -> None:
    scheme = default_scheme(LOWEST_EVALUATED_PRICE)
    check_sheet(scheme, ["a"], {"a": {}})
    with pytest.raises(ScoreError) as caught:
        check_sheet(scheme, ["a"], {"a": {"T1": 100}})
    assert caught.value.path == "scores[a][T1]"


# ---------------------------------------------------------------- price scores (G-06)


def test_price_scores_follow_the_base_price_method_by_hand() -> None:
    bids = [BidPrice("a", 10000), BidPrice("b", 12500), BidPrice("c", 20000)]  # 100, 125, 200 yuan
    assert price_scores(HAND, bids) == {"a": Fraction(3000), "b": Fraction(2400), "c": Fraction(1500)}


def test_price_scores_are_exact_fractions() -> None:
    assert price_scores(HAND, [BidPrice("a", 13000), BidPrice("b", 10000)]) == {
        "a": Fraction(30000, 13),
        "b": Fraction(3000),
    }


def test_price_scores_are_empty_under_the_price_methods_and_for_no_bids() -> None:
    assert price_scores(default_scheme(LOWEST_EVALUATED_PRICE), [BidPrice("a", 100)]) == {}
    assert price_scores(HAND, []) == {}


@pytest.mark.parametrize(
    ("bids", "path"),
    [
        ([BidPrice("a", 100), BidPrice("b", 0)], "bids[1].price_fen"),
        ([BidPrice("a", 100), BidPrice("a", 200)], "bids[1].bid_id"),
    ],
)
def test_price_scores_refuse_a_bad_bid_list(bids: list[BidPrice], path: str) -> None:
    with pytest.raises(ScoreError) as caught:
        price_scores(HAND, bids)
    assert caught.value.path == path


# ---------------------------------------------------------------- abnormal scores (G-10)


def test_abnormal_scores_flag_the_member_far_from_the_others_with_exact_fractions() -> None:
    # HAND: subjective maximum 7000 cp, 20 % of it is 1400 cp.
    sheets: dict[str, Sheet] = {
        "m1": {"a": marks(1500, 2001, 1500), "b": marks(1500, 2000, 1500)},  # 5001, 5000
        "m2": {"a": marks(1600, 2000, 1500), "b": marks(1500, 2000, 1500)},  # 5100, 5000
        "m3": {"a": marks(1700, 2000, 1500), "b": marks(1500, 2000, 1500)},  # 5200, 5000
        "m4": {"a": marks(1500, 2000, 1500), "b": marks(1500, 2000, 1500)},  # 5000, 5000
        "m5": {"a": marks(1000, 1000, 1000), "b": marks(2000, 3000, 2000)},  # 3000 low, 7000 high
    }
    # m5 on a: others' mean (5001 + 5100 + 5200 + 5000) / 4 = 20301/4, off by 3000 - 20301/4 = -8301/4.
    # m5 on b: others' mean 5000, off by +2000. The others on b: mean 5500, off by -500 only.
    assert abnormal_scores(HAND, sheets) == [
        Abnormal("m5", "a", 3000, Fraction(20301, 4), Fraction(-8301, 4)),
        Abnormal("m5", "b", 7000, Fraction(5000), Fraction(2000)),
    ]


def boundary_sheets(low_total_b1: int) -> dict[str, Sheet]:
    return {
        "m1": {"a": marks(1500, 2000, 1500)},
        "m2": {"a": marks(1500, 2000, 1500)},
        "m3": {"a": marks(low_total_b1, 2000, 1500)},
    }


def test_abnormal_scores_exactly_at_the_threshold_are_not_abnormal() -> None:
    assert abnormal_scores(HAND, boundary_sheets(100)) == []  # 3600 against 5000: off by exactly 1400


def test_abnormal_scores_one_cp_past_the_threshold_are_abnormal() -> None:
    assert abnormal_scores(HAND, boundary_sheets(99)) == [
        Abnormal("m3", "a", 3599, Fraction(5000), Fraction(-1401))
    ]


def test_abnormal_scores_use_the_schemes_percentage() -> None:
    scheme = Scheme(COMPREHENSIVE, HAND.criteria, QUAL, abnormal_percent=5)  # 350 cp
    sheets = boundary_sheets(1149)  # 4649 against 5000: off by 351
    assert [(a.member, a.deviation) for a in abnormal_scores(scheme, sheets)] == [("m3", Fraction(-351))]


def test_abnormal_scores_need_three_members() -> None:
    sheets = boundary_sheets(0)
    del sheets["m2"]
    assert abnormal_scores(HAND, sheets) == []


def test_abnormal_scores_refuse_a_member_who_skipped_a_bid() -> None:
    sheets = boundary_sheets(1500)
    sheets["m1"]["b"] = marks(1, 1, 1)
    with pytest.raises(ScoreError) as caught:
        abnormal_scores(HAND, sheets)
    assert caught.value.path == "sheets[m2].scores[b]"


# ---------------------------------------------------------------- ranking


def test_aggregate_ranks_comprehensive_bids_by_hand() -> None:
    bids = [BidPrice("a", 10000), BidPrice("b", 12500), BidPrice("c", 20000)]  # price 3000, 2400, 1500
    sheets: dict[str, Sheet] = {
        "m1": {"a": marks(1500, 2500, 1800), "b": marks(1800, 2800, 1900), "c": marks(2000, 3000, 2000)},
        "m2": {"a": marks(1600, 2400, 1700), "b": marks(1700, 2900, 1800), "c": marks(2000, 3000, 2000)},
        "m3": {"a": marks(1400, 2600, 1500), "b": marks(1900, 2700, 1901), "c": marks(2000, 3000, 1999)},
    }
    # a: 1500 + 2500 + 5000/3 + 3000 = 26000/3 (8666.67); b: 1800 + 2800 + 5601/3 + 2400 = 8867;
    # c: 2000 + 3000 + 5999/3 + 1500 = 25499/3 (8499.67).
    assert aggregate(HAND, bids, sheets, SEED) == Outcome(
        ranking=(
            Ranked("b", 1, 12500, 8867, {"B1": 1800, "T1": 2800, "T2": 1867, "P": 2400}, False),
            Ranked("a", 2, 10000, 8667, {"B1": 1500, "T1": 2500, "T2": 1667, "P": 3000}, False),
            Ranked("c", 3, 20000, 8500, {"B1": 2000, "T1": 3000, "T2": 2000, "P": 1500}, False),
        ),
        candidates=("b", "a", "c"),
    )


def test_aggregate_orders_by_the_exact_total_not_the_rounded_one() -> None:
    # Three members, equal prices: x's exact total 4000 + 4/3 and y's 4000 + 1 both show as 4001 cp,
    # yet x is ahead on the exact total, so neither the price nor the lottery is needed.
    scheme = criteria_of(leaf("S1", 3000), leaf("S2", 3000), leaf("P", 4000, PRICE))
    bids = [BidPrice("y", 10000), BidPrice("x", 10000)]
    sheets: dict[str, Sheet] = {
        "m1": {"x": {"S1": 2, "S2": 0}, "y": {"S1": 1, "S2": 0}},
        "m2": {"x": {"S1": 1, "S2": 0}, "y": {"S1": 0, "S2": 1}},
        "m3": {"x": {"S1": 0, "S2": 1}, "y": {"S1": 0, "S2": 1}},
    }
    outcome = aggregate(scheme, bids, sheets, SEED)
    assert [(r.bid_id, r.total_cp, r.leaf_cp, r.tie_broken) for r in outcome.ranking] == [
        ("x", 4001, {"S1": 1, "S2": 0, "P": 4000}, False),
        ("y", 4001, {"S1": 0, "S2": 1, "P": 4000}, False),
    ]


def test_equal_totals_are_decided_by_the_lower_price_without_the_lottery() -> None:
    bids = [BidPrice("y", 12500), BidPrice("x", 10000)]  # price scores 2400 and 3000
    sheets: dict[str, Sheet] = {
        m: {"x": marks(1000, 2000, 1000), "y": marks(1200, 2200, 1200)} for m in ("m1", "m2", "m3")
    }
    outcome = aggregate(HAND, bids, sheets, SEED)
    assert [(r.bid_id, r.total_cp, r.tie_broken) for r in outcome.ranking] == [
        ("x", 7000, False),
        ("y", 7000, False),
    ]


def lottery(seed: bytes, bid_ids: list[str]) -> list[str]:
    return sorted(bid_ids, key=lambda b: hashlib.sha256(seed + b.encode()).digest())


def test_equal_total_and_price_are_decided_by_the_published_lottery() -> None:
    bids = [BidPrice(b, 10000) for b in ("bid-1", "bid-2", "bid-3")] + [BidPrice("bid-4", 20000)]
    sheets: dict[str, Sheet] = {
        m: {b.bid_id: marks(1000, 2000, 1000) for b in bids} for m in ("m1", "m2", "m3")
    }
    outcome = aggregate(HAND, bids, sheets, SEED)
    assert [(r.bid_id, r.rank, r.tie_broken) for r in outcome.ranking] == [
        *((b, rank, True) for rank, b in enumerate(lottery(SEED, ["bid-1", "bid-2", "bid-3"]), start=1)),
        ("bid-4", 4, False),
    ]
    assert aggregate(HAND, list(reversed(bids)), sheets, SEED) == outcome  # reproducible
    orders = {
        tuple(r.bid_id for r in aggregate(HAND, bids, sheets, bytes([i])).ranking[:3]) for i in range(12)
    }
    assert len(orders) > 1  # the seed, not the input order, decides


@pytest.mark.parametrize("method", [LOWEST_EVALUATED_PRICE, REASONABLE_LOWEST_PRICE])
def test_price_methods_rank_by_price_then_the_lottery(method: str) -> None:
    scheme = default_scheme(method)
    bids = [BidPrice("c", 30000), BidPrice("a", 10000), BidPrice("d", 20000), BidPrice("b", 10000)]
    outcome = aggregate(scheme, bids, {}, SEED)
    first, second = lottery(SEED, ["a", "b"])
    assert outcome == Outcome(
        ranking=(
            Ranked(first, 1, 10000, None, {}, True),
            Ranked(second, 2, 10000, None, {}, True),
            Ranked("d", 3, 20000, None, {}, False),
            Ranked("c", 4, 30000, None, {}, False),
        ),
        candidates=(first, second, "d"),
    )


@pytest.mark.parametrize(
    ("max_candidates", "bid_count", "expected"), [(2, 4, 2), (1, 4, 1), (3, 2, 2), (3, 0, 0)]
)
def test_candidates_are_capped_at_max_candidates(max_candidates: int, bid_count: int, expected: int) -> None:
    scheme = Scheme(LOWEST_EVALUATED_PRICE, (), QUAL, max_candidates=max_candidates)
    bids = [BidPrice(f"bid-{i}", 10000 + i) for i in range(bid_count)]
    outcome = aggregate(scheme, bids, {}, SEED)
    assert outcome.candidates == tuple(f"bid-{i}" for i in range(expected))
    assert len(outcome.ranking) == bid_count


def test_aggregate_refuses_a_sheet_scoring_a_failed_bid_naming_the_member() -> None:
    bids = [BidPrice("a", 10000)]
    sheets: dict[str, Sheet] = {"m1": {"a": marks(1, 1, 1)}, "m2": {"a": marks(1, 1, 1), "z": marks(1, 1, 1)}}
    with pytest.raises(ScoreError) as caught:
        aggregate(HAND, bids, sheets, SEED)
    assert caught.value.path == "sheets[m2].scores[z]"


def test_aggregate_refuses_comprehensive_scoring_without_sheets() -> None:
    with pytest.raises(ScoreError) as caught:
        aggregate(HAND, [BidPrice("a", 10000)], {}, SEED)
    assert caught.value.path == "sheets"


def test_aggregate_of_nine_members_forty_leaves_thirty_bids_is_fast() -> None:
    subjective = tuple(leaf(f"S{i}", 154 if i < 33 else 153) for i in range(39))
    scheme = criteria_of(group("T", *subjective), leaf("P", 4000, PRICE))
    bids = [BidPrice(f"bid-{b}", 1_000_000 + 7919 * b) for b in range(30)]
    sheets: dict[str, Sheet] = {
        f"m{m}": {
            bid.bid_id: {c.code: (m * 31 + b * 17 + i) % 150 for i, c in enumerate(subjective)}
            for b, bid in enumerate(bids)
        }
        for m in range(9)
    }
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        outcome = aggregate(scheme, bids, sheets, SEED)
        best = min(best, time.perf_counter() - start)
    assert len(outcome.ranking) == 30
    assert best < 0.1


# ---------------------------------------------------------------- display


@pytest.mark.parametrize(
    ("cp", "text"),
    [
        (8735, "87.35"),
        (Fraction(17469, 2), "87.35"),  # 8734.5 rounds half-up
        (Fraction(17467, 2), "87.34"),  # 8733.5
        (Fraction(26000, 3), "86.67"),
        (0, "0.00"),
        (5, "0.05"),
        (10000, "100.00"),
        (Fraction(-8301, 4), "-20.75"),
        (Fraction(-3, 2), "-0.02"),  # halves away from zero
        (Fraction(-1, 3), "0.00"),
    ],
)
def test_cp_text_shows_points_with_two_decimals_half_up(cp: int | Fraction, text: str) -> None:
    assert cp_text(cp) == text


def test_cp_text_refuses_floats() -> None:
    with pytest.raises(TypeError):
        cp_text(87.35)  # type: ignore[arg-type]


# ---------------------------------------------------------------- properties

DEFAULT = default_scheme(COMPREHENSIVE)
SUBJECTIVE_LEAVES = [c for c in leaves(DEFAULT) if c.kind == SUBJECTIVE]


@st.composite
def evaluations(draw: st.DrawFn) -> tuple[Scheme, list[BidPrice], dict[str, Sheet]]:
    """A scheme (comprehensive or a price method), bids with prices that often tie, and members' sheets."""
    scheme = draw(st.sampled_from([DEFAULT, default_scheme(LOWEST_EVALUATED_PRICE)]))
    bids = [
        BidPrice(f"bid-{i}", draw(st.sampled_from([10000, 12500, 20000, 99991])))
        for i in range(draw(st.integers(1, 7)))
    ]
    if scheme is not DEFAULT:
        return scheme, bids, {}
    members = draw(st.integers(1, 5))
    sheets: dict[str, Sheet] = {
        f"m{m}": {
            b.bid_id: {
                c.code: draw(st.one_of(st.sampled_from([0, c.max_cp]), st.integers(0, c.max_cp)))
                for c in SUBJECTIVE_LEAVES
            }
            for b in bids
        }
        for m in range(members)
    }
    return scheme, bids, sheets


@settings(max_examples=60, deadline=None)
@given(evaluations())
def test_ranking_is_a_permutation_of_the_bids_with_totals_within_100_points(
    case: tuple[Scheme, list[BidPrice], dict[str, Sheet]],
) -> None:
    scheme, bids, sheets = case
    outcome = aggregate(scheme, bids, sheets, SEED)
    assert sorted(r.bid_id for r in outcome.ranking) == sorted(b.bid_id for b in bids)
    assert [r.rank for r in outcome.ranking] == list(range(1, len(bids) + 1))
    assert outcome.candidates == tuple(r.bid_id for r in outcome.ranking[: scheme.max_candidates])
    for r in outcome.ranking:
        assert r.total_cp is None or 0 <= r.total_cp <= 10000


@settings(max_examples=60, deadline=None)
@given(evaluations(), st.data())
def test_permuting_bids_and_sheets_does_not_change_the_outcome(
    case: tuple[Scheme, list[BidPrice], dict[str, Sheet]], data: st.DataObject
) -> None:
    scheme, bids, sheets = case
    shuffled_bids = data.draw(st.permutations(bids))
    members = data.draw(st.permutations(sorted(sheets)))
    shuffled: dict[str, Sheet] = {}
    for member in members:
        order = data.draw(st.permutations(sorted(sheets[member])))
        shuffled[member] = {bid_id: dict(reversed(sheets[member][bid_id].items())) for bid_id in order}
    assert aggregate(scheme, shuffled_bids, shuffled, SEED) == aggregate(scheme, bids, sheets, SEED)
    assert abnormal_scores(scheme, shuffled) == abnormal_scores(scheme, sheets)
