"""`ggzy project|review|venue|framework` against a served app: each command's effect through the HTTP API,
and each kind of refusal printed on one line with its status, rule id or field, exit status 1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result

from ggzy import cli
from tests.helpers import PASSWORD, Actor, Api, shanghai
from tests.trading.test_centre_steps import PROJECT, only_room, submitted
from tests.trading.test_framework import YUAN, F, admitted, framework, term_end


@asynccontextmanager
async def served(api: Api, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    from app import create_app
    from demo.common import serving

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        monkeypatch.setattr(api.runtime.store, "_base_url", url)
        async with serving(create_app(api.runtime, manage_runtime=False), sock):
            yield url


async def ggzy(url: str, actor: Actor, *args: str) -> Result:
    """Run `ggzy ARGS` as `actor` against the served app (in a thread: the server runs on this loop)."""
    env = {"GGZY_URL": url, "GGZY_USERNAME": actor.username, "GGZY_PASSWORD": PASSWORD, "GGZY_TOKEN": ""}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def refused(result: Result, status: int, mark: str) -> str:
    """A refusal: exit 1 and one line naming the status and `mark` (the rule id `[X-00]` or a field)."""
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: {status} ") and mark in line, line
    return line


async def test_the_agency_registers_a_project_and_the_centre_accepts_or_refuses_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    agency, centre = await api.organisation("agency"), await api.bootstrap_centre()
    args = ["project", "register", "--name", PROJECT["name"], "--funding-source", PROJECT["funding_source"]]
    args += ["--approval-number", PROJECT["approval_number"]]
    async with served(api, monkeypatch) as url:
        first = ok(await ggzy(url, agency, *args, "--sector", "works")).split()[1]
        second = ok(await ggzy(url, agency, *args, "--sector", "works", "--budget-fen", "100")).split()[1]
        # a procurement project names its procurement plan: the field is printed
        refused(await ggzy(url, agency, *args, "--sector", "procurement"), 422, "procurement_plan_number")
        # only the centre decides
        refused(await ggzy(url, agency, "project", "accept", first), 403, "Forbidden")
        assert ok(await ggzy(url, centre, "project", "accept", first)).strip() == f"project {first} accepted"
        said = ok(await ggzy(url, centre, "project", "refuse", second, "--reasons", "批复文号与附件不符"))
        assert said.strip() == f"project {second} refused"
        refused(await ggzy(url, centre, "project", "accept", second), 409, "already refused")
        pending = ok(await ggzy(url, centre, "project", "list", "--status", "accepted"))
        shown = ok(await ggzy(url, agency, "project", "show", second))
        bidder = await api.organisation("bidder")
        refused(await ggzy(url, bidder, "project", "list"), 403, "Forbidden")
    assert [line.split()[0] for line in pending.splitlines()] == [first]
    assert '"reasons": "批复文号与附件不符"' in shown and '"budget_fen": 100' in shown


async def test_the_centre_reviews_notices_and_a_late_approval_is_refused_under_w01(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    agency, centre = await api.organisation("agency"), await api.bootstrap_centre()
    first, second = await submitted(api, agency), await submitted(api, agency)
    async with served(api, monkeypatch) as url:
        listed = ok(await ggzy(url, centre, "review", "list"))
        refused(await ggzy(url, agency, "review", "approve", "--tender", first["id"]), 403, "Forbidden")
        said = ok(await ggzy(url, centre, "review", "approve", "--tender", first["id"]))
        assert said.strip() == f"{first['code']} approved: the tender is tendering"
        said = ok(
            await ggzy(url, centre, "review", "refuse", "--tender", second["id"], "--reasons", "资格条件缺失")
        )
        assert said.strip() == f"{second['code']} refused: the tender is draft"
        again = await submitted(api, agency)
        api.clock.set(shanghai(2026, 3, 4, 9))  # the 20 days to its deadline no longer fit
        line = refused(await ggzy(url, centre, "review", "approve", "--tender", again["id"]), 422, "[W-01]")
    # both submitted at the same instant: the longest waiting first, either of them
    assert sorted(row.split()[0] for row in listed.splitlines()) == sorted([first["id"], second["id"]])
    assert "earliest" in line or "deadline" in line


async def test_the_agency_books_an_evaluation_room_and_the_centre_sees_its_calendar(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    agency, centre = await api.organisation("agency"), await api.bootstrap_centre()
    await only_room(api, "evaluation", 1)
    first, second = await api.published(agency), await api.published(agency)
    day = ["--starts-at", "2026-03-24T09:00:00+08:00", "--ends-at", "2026-03-24T17:00:00+08:00"]
    clash = ["--starts-at", "2026-03-24T12:00:00+08:00", "--ends-at", "2026-03-24T14:00:00+08:00"]
    span = ["--from", "2026-03-24T00:00:00+08:00", "--to", "2026-03-25T00:00:00+08:00"]
    async with served(api, monkeypatch) as url:
        said = ok(await ggzy(url, agency, "venue", "book", "--tender", first["id"], *day))
        assert said.startswith(f"booked evaluation room for {first['code']}")
        refused(await ggzy(url, agency, "venue", "book", "--tender", second["id"], *clash), 409, "starts_at")
        other = await api.organisation("agency")
        refused(await ggzy(url, other, "venue", "book", "--tender", first["id"], *day), 404, "No such tender")
        calendar = ok(await ggzy(url, centre, "venue", "calendar", *span))
        refused(await ggzy(url, agency, "venue", "calendar", *span), 403, "Forbidden")
    evaluations = [line for line in calendar.splitlines() if " evaluation " in line]
    assert len(evaluations) == 1 and first["code"] in evaluations[0]


async def test_a_framework_is_worked_from_the_command_line(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    fw = await admitted(api)
    cheapest, second, third = fw.admitted[1], fw.admitted[2], fw.admitted[0]  # caps 2.60, 2.65, 2.70 million
    admission = {a["organisation_id"]: a["id"] for a in fw.agreement["admissions"]}
    t = ["--tender", fw.tender["id"]]
    async with served(api, monkeypatch) as url:
        # a cap is only ever lowered: raising it is refused under G-01
        raise_it = [
            "--admission",
            admission[third.bidder.organisation_id],
            "--cap-fen",
            str(third.price_fen + 1),
        ]
        refused(await ggzy(url, third.bidder, "framework", "cap", *t, *raise_it), 422, "[G-01]")
        lower = [
            "--admission",
            admission[third.bidder.organisation_id],
            "--cap-fen",
            str(third.price_fen - YUAN),
        ]
        assert "now" in ok(await ggzy(url, third.bidder, "framework", "cap", *t, *lower))
        order = [
            "--lot",
            fw.lot_id,
            "--supplier",
            cheapest.bidder.organisation_id,
            "--subject",
            "台式计算机 20 台",
        ]
        line = refused(
            await ggzy(
                url, fw.agency, "framework", "order", *t, *order, "--price-fen", str(cheapest.price_fen + 1)
            ),
            422,
            "[G-01]",
        )
        assert "price_fen" in line
        placed = ok(
            await ggzy(
                url, fw.agency, "framework", "order", *t, *order, "--price-fen", str(cheapest.price_fen)
            )
        )
        assert placed.startswith("direct order") and f"at {cheapest.price_fen} fen" in placed
        # a bidder cannot order
        refused(
            await ggzy(url, cheapest.bidder, "framework", "order", *t, *order, "--price-fen", "1"), 403, ""
        )
        closes = (api.clock.now() + timedelta(hours=24)).isoformat()
        opened = ok(
            await ggzy(
                url, fw.agency, "framework", "competition", "open", *t, "--lot", fw.lot_id, "--closes-at", closes,
                "--subject", "台式计算机 200 台",
            )
        )  # fmt: skip
        order_id = opened.split()[2]
        for bid, price in ((cheapest, 2_500_000 * YUAN), (second, 2_400_000 * YUAN)):
            q = ["--order", order_id, "--price-fen", str(price)]
            assert "quoted" in ok(await ggzy(url, bid.bidder, "framework", "competition", "quote", *t, *q))
        # the outsider was never admitted
        q = ["--order", order_id, "--price-fen", "1"]
        refused(
            await ggzy(url, fw.outsider.bidder, "framework", "competition", "quote", *t, *q), 403, "[G-01]"
        )
        # before the close the purchaser sees no quote
        assert (
            ok(
                await ggzy(url, fw.agency, "framework", "competition", "show", *t, "--order", order_id)
            ).strip()
            == "[]"
        )
        refused(
            await ggzy(url, fw.agency, "framework", "competition", "close", *t, "--order", order_id),
            422,
            "[G-01]",
        )
        api.clock.set(api.clock.now() + timedelta(hours=24))
        closed = ok(await ggzy(url, fw.agency, "framework", "competition", "close", *t, "--order", order_id))
        shown = ok(await ggzy(url, fw.agency, "framework", "show", *t))
    names = {a["organisation_id"]: a["supplier"] for a in fw.agreement["admissions"]}
    assert closed.strip().endswith(
        f"placed to {names[second.bidder.organisation_id]} at {2_400_000 * YUAN} fen"
    )
    assert shown.count('"kind": "direct"') == 1 and shown.count('"kind": "competition"') == 1
    assert f'"cap_fen": {third.price_fen - YUAN}' in shown


async def test_an_open_framework_is_worked_from_the_command_line(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    agency = await api.organisation("agency")
    draft = await api.draft(agency, **framework())
    lot = draft["lots"][0]["id"]
    t = ["--tender", draft["id"]]
    first, second = await api.organisation("bidder"), await api.organisation("bidder")
    async with served(api, monkeypatch) as url:
        terms = f"{lot}={2_800_000 * YUAN}=台式计算机 三年上门保修"
        said = ok(
            await ggzy(
                url, agency, "framework", "open", *t, "--lot", terms, "--valid-until", str(term_end(api)),
                "--allocation", "rotation",
            )
        )  # fmt: skip
        assert said.strip() == (
            f"open framework call submitted to the centre's review: in force until {term_end(api)} "
            "from the approval, orders by rotation"
        )
        # nobody joins before the centre approves the call
        refused(await ggzy(url, first, "framework", "apply", *t, "--lot", lot), 409, "Conflict")
        ok(await ggzy(url, await api.bootstrap_centre(), "review", "approve", "--tender", draft["id"]))
        applied = [
            ok(await ggzy(url, who, "framework", "apply", *t, "--lot", lot)).split()[1]
            for who in (first, second)
        ]
        # a supplier cannot admit itself
        refused(
            await ggzy(url, first, "framework", "accept", *t, "--application", applied[0]), 403, "Forbidden"
        )
        assert "admitted" in ok(
            await ggzy(url, agency, "framework", "accept", *t, "--application", applied[0])
        )
        no = ["--application", applied[1], "--reasons", "未提供售后服务承诺"]
        assert "refused" in ok(await ggzy(url, agency, "framework", "refuse", *t, *no))
        listed = ok(await ggzy(url, second, "framework", "applications", *t))
        # the purchaser cannot skip the rotation
        order = [
            "--lot",
            lot,
            "--supplier",
            first.organisation_id,
            "--price-fen",
            "100",
            "--subject",
            "台式计算机",
        ]
        refused(await ggzy(url, agency, "framework", "order", *t, *order), 422, "[G-01]")
        rotated = ok(
            await ggzy(url, agency, "framework", "rotate", *t, "--lot", lot, "--subject", "台式计算机 20 台")
        )
        [admission] = (await api.get(F.format(draft["id"]))).json()["admissions"]
        left = ok(await ggzy(url, first, "framework", "leave", *t, "--admission", admission["id"]))
        refused(
            await ggzy(url, agency, "framework", "rotate", *t, "--lot", lot, "--subject", "台式计算机"),
            422,
            "[G-01]",
        )
    assert listed.split()[:2] == [applied[1], "refused"] and "未提供售后服务承诺" in listed
    assert rotated.startswith("rotation order") and f"at {2_800_000 * YUAN} fen" in rotated
    assert "left on" in left
