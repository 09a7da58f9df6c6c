"""The bid validity period (投标有效期): stated by the documents, checked against the profile, counted from the
day after the deadline (P-01). A guarantee given as the deposit must stay in force through its last day
(W-19, 条例 26)."""

from __future__ import annotations

from datetime import date

from tests.helpers import DEADLINE, Api, shanghai
from trading import tenders

T = "/api/v1/tenders"
VALID_THROUGH = "2026-06-21"  # deadline Mon 2026-03-23 + 90 days (the default bid validity period)


async def test_the_bid_validity_period_defaults_to_the_profiles_and_is_stated_in_the_notice(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    assert tender["bid_validity_days"] == 90
    [notice] = (await api.get("/api/v1/notices", params={"kind": "tender_notice"})).json()["items"]
    assert (notice["body"]["bid_validity_days"], notice["body"]["bid_valid_through"]) == (90, VALID_THROUGH)
    longer = await api.draft(agency, bid_validity_days=120)
    assert longer["bid_validity_days"] == 120


async def test_a_bid_validity_period_below_the_profiles_minimum_is_refused_naming_it(api: Api) -> None:
    from tests.test_bad_input import snapshot

    agency = await api.organisation("agency")
    before = await snapshot(api)
    r = await api.post(T, agency, json=api.tender_body(bid_validity_days=29, custodians=[]))
    assert r.status_code == 422, r.text
    assert "rule" not in r.json()
    assert r.json()["errors"] == [{"field": "bid_validity_days", "message": "at least 30 days"}]
    assert await snapshot(api) == before
    draft = await api.draft(agency)
    url = f"{T}/{draft['id']}"
    etag = (await api.get(url, agency)).headers["etag"]
    r = await api.patch(url, agency, json={"bid_validity_days": 10}, headers={"If-Match": etag})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "bid_validity_days", r.text
    assert (await api.get(url, agency)).json()["bid_validity_days"] == 90


def test_the_bid_validity_period_ends_the_given_number_of_days_after_the_deadline_day() -> None:
    from trading.models import Tender

    tender = Tender(bid_deadline=DEADLINE, bid_validity_days=90)
    assert tenders.bid_valid_through(tender) == date(2026, 6, 21)
    late_evening = Tender(bid_deadline=shanghai(2026, 3, 23, 23, 30), bid_validity_days=1)
    assert tenders.bid_valid_through(late_evening) == date(2026, 3, 24)


def test_the_profiles_validity_figures_are_house_values_a_centre_may_only_raise() -> None:
    import pytest

    from rules.profiles import WORKS_OPEN, ProfileError, bid_validity_problem, tighten

    assert (WORKS_OPEN.bid_validity_days, WORKS_OPEN.bid_validity_min_days) == (90, 30)
    assert bid_validity_problem(WORKS_OPEN, 30) is None
    assert bid_validity_problem(WORKS_OPEN, 29) == "at least 30 days"
    with pytest.raises(
        ProfileError, match=r"bid_validity_min_days may not go below 30 \(a house value\)"
    ) as e:
        tighten(WORKS_OPEN, bid_validity_min_days=20)
    assert e.value.rule is None
    assert bid_validity_problem(tighten(WORKS_OPEN, bid_validity_min_days=60), 59) == "at least 60 days"
