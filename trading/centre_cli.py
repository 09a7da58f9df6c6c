"""`ggzy project`, `ggzy review` and `ggzy venue`: the trading centre's own steps over the HTTP API —
project acceptance (项目受理), the review of tender notices (公告审核) and the booking of its rooms (场地预约)."""

from __future__ import annotations

import click

from trading.api_client import echo_json, server_url, session, username_opt

P = "/api/v1/projects"


# ---------------------------------------------------------------- ggzy project


@click.group("project")
def project_group() -> None:
    """Projects registered with the centre and its acceptance (项目受理)."""


@project_group.command("register")
@click.option("--name", required=True, help="The project's name.")
@click.option(
    "--sector", type=click.Choice(["works", "procurement"]), required=True, help="Its trading sector."
)
@click.option("--funding-source", required=True, help="Where its money comes from (资金来源).")
@click.option("--approval-number", required=True, help="The approving body's document number (立项批复文号).")
@click.option("--plan-number", default=None, help="The procurement plan it carries out (procurement only).")
@click.option("--budget-fen", type=int, default=None, help="Its budget or estimate in fen.")
@click.option(
    "--document", "documents", multiple=True, help="The object key of an uploaded approval document (repeat)."
)
@server_url
@username_opt
def project_register(
    name: str,
    sector: str,
    funding_source: str,
    approval_number: str,
    plan_number: str | None,
    budget_fen: int | None,
    documents: tuple[str, ...],
    url: str,
    username: str | None,
) -> None:
    """Register a project with its approval documents, pending the centre's acceptance (an agency)."""
    body: dict[str, object] = {
        "name": name,
        "sector": sector,
        "funding_source": funding_source,
        "approval_number": approval_number,
        "documents": list(documents),
    }
    if plan_number is not None:
        body["procurement_plan_number"] = plan_number
    if budget_fen is not None:
        body["budget_fen"] = budget_fen
    project = session(url, username).post(P, body)
    click.echo(f"project {project['id']} registered, {project['status']}")


@project_group.command("list")
@click.option(
    "--status", type=click.Choice(["pending", "accepted", "refused"]), default=None, help="Only these."
)
@server_url
@username_opt
def project_list(status: str | None, url: str, username: str | None) -> None:
    """Projects, newest first, one a line: an agency's own; all of them for the centre and overseers."""
    api = session(url, username)
    cursor: str | None = None
    while True:
        page = api.get(P, status=status, cursor=cursor)
        for p in page["items"]:
            click.echo(f"{p['id']}  {p['status']:<8}  {p['sector']:<11}  {p['name']}")
        cursor = page["next_cursor"]
        if not cursor:
            break


@project_group.command("show")
@click.argument("project_id")
@server_url
@username_opt
def project_show(project_id: str, url: str, username: str | None) -> None:
    """One project as JSON."""
    echo_json(session(url, username).get(f"{P}/{project_id}"))


def _decide_project(
    project_id: str, decision: str, reasons: str | None, url: str, username: str | None
) -> None:
    body = {"decision": decision} | ({"reasons": reasons} if reasons else {})
    project = session(url, username).post(f"{P}/{project_id}/decision", body)
    click.echo(f"project {project['id']} {project['status']}")


@project_group.command("accept")
@click.argument("project_id")
@server_url
@username_opt
def project_accept(project_id: str, url: str, username: str | None) -> None:
    """Accept a registered project: its tenders may then be published (the centre)."""
    _decide_project(project_id, "accepted", None, url, username)


@project_group.command("refuse")
@click.argument("project_id")
@click.option("--reasons", required=True, help="Why the project is refused (the agency reads them).")
@server_url
@username_opt
def project_refuse(project_id: str, reasons: str, url: str, username: str | None) -> None:
    """Refuse a registered project with the reasons (the centre)."""
    _decide_project(project_id, "refused", reasons, url, username)


# ---------------------------------------------------------------- ggzy review


@click.group("review")
def review_group() -> None:
    """The centre's review of tender notices (公告审核)."""


@review_group.command("list")
@server_url
@username_opt
def review_list(url: str, username: str | None) -> None:
    """The notices awaiting review, the longest waiting first, one a line with the day each is due by."""
    for r in session(url, username).get("/api/v1/reviews"):
        click.echo(f"{r['tender_id']}  submitted {r['submitted_at']}  due {r['due_on']}")


def _decide_review(
    tender_id: str, decision: str, reasons: str | None, url: str, username: str | None
) -> None:
    body = {"decision": decision} | ({"reasons": reasons} if reasons else {})
    tender = session(url, username).post(f"/api/v1/tenders/{tender_id}/review", body)
    click.echo(f"{tender['code']} {decision}: the tender is {tender['status']}")


@review_group.command("approve")
@click.option("--tender", "tender_id", required=True, help="The tender's id.")
@server_url
@username_opt
def review_approve(tender_id: str, url: str, username: str | None) -> None:
    """Approve a submitted notice: the tender is published at once, every publishing check run again."""
    _decide_review(tender_id, "approved", None, url, username)


@review_group.command("refuse")
@click.option("--tender", "tender_id", required=True, help="The tender's id.")
@click.option("--reasons", required=True, help="What to fix (the agency reads them).")
@server_url
@username_opt
def review_refuse(tender_id: str, reasons: str, url: str, username: str | None) -> None:
    """Refuse a submitted notice with the reasons: the tender stays a draft to fix and submit again."""
    _decide_review(tender_id, "refused", reasons, url, username)


# ---------------------------------------------------------------- ggzy venue


@click.group("venue")
def venue_group() -> None:
    """The centre's rooms: its calendar, and evaluation rooms booked by the agency (场地预约)."""


@venue_group.command("calendar")
@click.option("--from", "start", required=True, help="From this instant (ISO 8601 with its offset).")
@click.option("--to", "end", required=True, help="To this instant (at most 366 days on).")
@server_url
@username_opt
def venue_calendar(start: str, end: str, url: str, username: str | None) -> None:
    """Every booking of the centre's rooms in the span, by time, one a line (the centre)."""
    for b in session(url, username).get("/api/v1/venues/calendar", **{"from": start, "to": end}):
        click.echo(
            f"{b['starts_at']} – {b['ends_at']}  {b['venue_name']}  {b['kind']:<10}  {b['tender_code']}"
        )


@venue_group.command("book")
@click.option("--tender", "tender_id", required=True, help="The tender's id.")
@click.option(
    "--starts-at", required=True, help="When the evaluation starts (ISO 8601, after the bid deadline)."
)
@click.option("--ends-at", required=True, help="When it ends.")
@click.option("--venue", "venue_id", default=None, help="The room's id; else any evaluation room with space.")
@server_url
@username_opt
def venue_book(
    tender_id: str, starts_at: str, ends_at: str, venue_id: str | None, url: str, username: str | None
) -> None:
    """Book an evaluation room for the tender's evaluation (its agency)."""
    body = {"starts_at": starts_at, "ends_at": ends_at} | ({"venue_id": venue_id} if venue_id else {})
    b = session(url, username).post(f"/api/v1/tenders/{tender_id}/bookings", body)
    click.echo(
        f"booked {b['venue_name']} for {b['tender_code']}: {b['starts_at']} – {b['ends_at']} ({b['id']})"
    )
