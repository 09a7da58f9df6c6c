"""`ggzy framework`: framework agreements (框架协议采购, G-01) over the HTTP API — the purchaser admits
suppliers at their caps, or opens an open framework (开放式) and decides who joins, and places orders directly,
by mini-competition (二次竞价) or by rotation (顺序轮候); a supplier applies, leaves, lowers its cap and quotes."""

from __future__ import annotations

from collections.abc import Callable

import click

from trading.api_client import echo_json, server_url, session, username_opt


def _f(tender_id: str) -> str:
    return f"/api/v1/tenders/{tender_id}/framework"


def _order_line(o: dict[str, object]) -> str:
    who = f" to {o['supplier']} at {o['price_fen']} fen" if o.get("supplier") else ""
    closes = f", closes {o['closes_at']}" if o.get("closes_at") and o["status"] == "open" else ""
    return f"{o['kind']} order {o['id']} on lot {o['lot']}: {o['status']}{who}{closes}"


tender_opt = click.option("--tender", "tender_id", required=True, help="The framework tender's id.")
allocation_opt = click.option(
    "--allocation",
    type=click.Choice(["choice", "rotation"]),
    default="choice",
    show_default=True,
    help="How orders find their supplier: the purchaser's choice, or rotation (顺序轮候).",
)


def agreement_opts(command: Callable[..., None]) -> Callable[..., None]:
    """The agreement's term, its other purchasers, its allocation, and the server to ask."""
    for option in reversed(
        (
            click.option(
                "--valid-until", required=True, help="The last day of the agreement's term (YYYY-MM-DD)."
            ),
            click.option(
                "--purchaser",
                "purchasers",
                multiple=True,
                help="Another organisation ordering under it (repeat).",
            ),
            allocation_opt,
            server_url,
            username_opt,
        )
    ):
        command = option(command)
    return command


@click.group("framework")
def framework_group() -> None:
    """Framework agreements (框架协议, G-01): admissions at capped prices, orders, mini-competitions."""


@framework_group.command("show")
@tender_opt
@server_url
@username_opt
def framework_show(tender_id: str, url: str, username: str | None) -> None:
    """The agreement (its term, purchasers and admitted suppliers with their caps) and the orders you may
    see, as JSON."""
    api = session(url, username)
    agreement = api.get(_f(tender_id))
    agreement["orders"] = api.get(f"{_f(tender_id)}/orders")
    echo_json(agreement)


@framework_group.command("admit")
@tender_opt
@click.option(
    "--lot",
    "lots",
    multiple=True,
    required=True,
    help="LOT_ID=BID_ID[,BID_ID…]: the candidates admitted on a lot (repeat for every open lot).",
)
@agreement_opts
def framework_admit(
    tender_id: str,
    lots: tuple[str, ...],
    valid_until: str,
    purchasers: tuple[str, ...],
    allocation: str,
    url: str,
    username: str | None,
) -> None:
    """Admit the suppliers of every lot, each capped at its evaluated price (the agency)."""
    entries = []
    for lot in lots:
        lot_id, sep, bids = lot.partition("=")
        if not sep or not bids:
            raise click.BadParameter(f"{lot!r} is not LOT_ID=BID_ID[,BID_ID…]", param_hint="--lot")
        entries.append({"lot_id": lot_id, "bid_ids": bids.split(",")})
    body = {
        "lots": entries,
        "valid_until": valid_until,
        "purchasers": list(purchasers),
        "allocation": allocation,
    }
    agreement = session(url, username).post(f"{_f(tender_id)}/admissions", body)
    for a in agreement["admissions"]:
        click.echo(f"admitted {a['supplier']} at a cap of {a['cap_fen']} fen (admission {a['id']})")
    click.echo(f"the agreement runs until {agreement['valid_until']}")


@framework_group.command("cap")
@tender_opt
@click.option("--admission", "admission_id", required=True, help="Your admission's id.")
@click.option("--cap-fen", type=int, required=True, help="The new, lower cap in fen.")
@server_url
@username_opt
def framework_cap(tender_id: str, admission_id: str, cap_fen: int, url: str, username: str | None) -> None:
    """Lower your own cap (入围价格) as an admitted supplier; a cap is never raised."""
    a = session(url, username).post(f"{_f(tender_id)}/admissions/{admission_id}/cap", {"cap_fen": cap_fen})
    click.echo(f"cap of {a['supplier']} now {a['cap_fen']} fen")


@framework_group.command("order")
@tender_opt
@click.option("--lot", "lot_id", required=True, help="The lot's id.")
@click.option("--supplier", "organisation_id", required=True, help="The admitted supplier's organisation id.")
@click.option("--price-fen", type=int, required=True, help="The price in fen, at most the supplier's cap.")
@click.option("--subject", required=True, help="What is ordered.")
@server_url
@username_opt
def framework_order(
    tender_id: str,
    lot_id: str,
    organisation_id: str,
    price_fen: int,
    subject: str,
    url: str,
    username: str | None,
) -> None:
    """Place a direct order (直接选定) with one admitted supplier at no more than its cap (a purchaser)."""
    body = {"lot_id": lot_id, "organisation_id": organisation_id, "price_fen": price_fen, "subject": subject}
    click.echo(_order_line(session(url, username).post(f"{_f(tender_id)}/orders", body)))


@framework_group.group("competition")
def competition_group() -> None:
    """Mini-competitions (二次竞价) among a lot's admitted suppliers."""


@competition_group.command("open")
@tender_opt
@click.option("--lot", "lot_id", required=True, help="The lot's id.")
@click.option("--closes-at", required=True, help="When quoting closes (ISO 8601 with its offset).")
@click.option("--subject", required=True, help="What is ordered.")
@server_url
@username_opt
def competition_open(
    tender_id: str, lot_id: str, closes_at: str, subject: str, url: str, username: str | None
) -> None:
    """Invite every admitted supplier of the lot to quote once until the close (a purchaser)."""
    body = {"lot_id": lot_id, "closes_at": closes_at, "subject": subject}
    click.echo(_order_line(session(url, username).post(f"{_f(tender_id)}/competitions", body)))


@competition_group.command("quote")
@tender_opt
@click.option("--order", "order_id", required=True, help="The mini-competition's id.")
@click.option("--price-fen", type=int, required=True, help="Your quote in fen, at most your cap.")
@server_url
@username_opt
def competition_quote(tender_id: str, order_id: str, price_fen: int, url: str, username: str | None) -> None:
    """Quote once before the close (an admitted supplier); nobody else sees it until then (W-20)."""
    q = session(url, username).post(
        f"{_f(tender_id)}/competitions/{order_id}/quotes", {"price_fen": price_fen}
    )
    click.echo(f"quoted {q['price_fen']} fen at {q['quoted_at']} (quote {q['id']})")


@competition_group.command("close")
@tender_opt
@click.option("--order", "order_id", required=True, help="The mini-competition's id.")
@server_url
@username_opt
def competition_close(tender_id: str, order_id: str, url: str, username: str | None) -> None:
    """Close at or after its time: the lowest quote wins, the earliest of equal quotes (a purchaser)."""
    click.echo(_order_line(session(url, username).post(f"{_f(tender_id)}/competitions/{order_id}/close")))


@competition_group.command("show")
@tender_opt
@click.option("--order", "order_id", required=True, help="The mini-competition's id.")
@server_url
@username_opt
def competition_show(tender_id: str, order_id: str, url: str, username: str | None) -> None:
    """The quotes you may see, as JSON: before the close your own only; after it, all to those entitled."""
    echo_json(session(url, username).get(f"{_f(tender_id)}/competitions/{order_id}/quotes"))


# ---------------------------------------------------------------- open frameworks and rotation


@framework_group.command("open")
@tender_opt
@click.option(
    "--lot",
    "lots",
    multiple=True,
    required=True,
    help="LOT_ID=PRICE_FEN=TERMS: a lot's fixed price (every order's cap) and terms (repeat for every lot).",
)
@agreement_opts
def framework_open(
    tender_id: str,
    lots: tuple[str, ...],
    valid_until: str,
    purchasers: tuple[str, ...],
    allocation: str,
    url: str,
    username: str | None,
) -> None:
    """Write an open framework's call (开放式) on its draft and submit it to the centre's review; from the
    approval suppliers apply to join (the agency)."""
    entries = []
    for lot in lots:
        parts = lot.split("=", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            raise click.BadParameter(f"{lot!r} is not LOT_ID=PRICE_FEN=TERMS", param_hint="--lot")
        entries.append({"lot_id": parts[0], "price_fen": int(parts[1]), "terms": parts[2]})
    body = {
        "lots": entries,
        "valid_until": valid_until,
        "purchasers": list(purchasers),
        "allocation": allocation,
    }
    agreement = session(url, username).post(f"{_f(tender_id)}/open", body)
    click.echo(
        f"open framework call submitted to the centre's review: in force until {agreement['valid_until']} "
        f"from the approval, orders by {agreement['allocation']}"
    )


@framework_group.command("apply")
@tender_opt
@click.option("--lot", "lot_id", required=True, help="The lot's id.")
@server_url
@username_opt
def framework_apply(tender_id: str, lot_id: str, url: str, username: str | None) -> None:
    """Apply to join a lot of an open framework at its published price and terms (a supplier)."""
    a = session(url, username).post(f"{_f(tender_id)}/applications", {"lot_id": lot_id})
    click.echo(f"application {a['id']} {a['status']}")


@framework_group.command("applications")
@tender_opt
@server_url
@username_opt
def framework_applications(tender_id: str, url: str, username: str | None) -> None:
    """The applications, one a line: all for the agency, a supplier's own for the supplier."""
    for a in session(url, username).get(f"{_f(tender_id)}/applications"):
        reasons = f"  {a['reasons']}" if a["reasons"] else ""
        click.echo(f"{a['id']}  {a['status']:<8}  {a['organisation_id']}{reasons}")


def _decide(
    tender_id: str, application_id: str, body: dict[str, str], url: str, username: str | None
) -> None:
    a = session(url, username).post(f"{_f(tender_id)}/applications/{application_id}/decision", body)
    click.echo(f"application {a['id']} {a['status']}")


@framework_group.command("accept")
@tender_opt
@click.option("--application", "application_id", required=True, help="The application's id.")
@server_url
@username_opt
def framework_accept(tender_id: str, application_id: str, url: str, username: str | None) -> None:
    """Admit an applicant at the lot's fixed price, published (the agency that runs the framework)."""
    _decide(tender_id, application_id, {"decision": "admitted"}, url, username)


@framework_group.command("refuse")
@tender_opt
@click.option("--application", "application_id", required=True, help="The application's id.")
@click.option("--reasons", required=True, help="Why the applicant is refused (it reads them).")
@server_url
@username_opt
def framework_refuse(
    tender_id: str, application_id: str, reasons: str, url: str, username: str | None
) -> None:
    """Refuse an applicant with the reasons (the agency that runs the framework)."""
    _decide(tender_id, application_id, {"decision": "refused", "reasons": reasons}, url, username)


@framework_group.command("leave")
@tender_opt
@click.option("--admission", "admission_id", required=True, help="Your admission's id.")
@server_url
@username_opt
def framework_leave(tender_id: str, admission_id: str, url: str, username: str | None) -> None:
    """Leave an open framework: no order goes to you after (an admitted supplier)."""
    a = session(url, username).post(f"{_f(tender_id)}/admissions/{admission_id}/leave")
    click.echo(f"{a['supplier']} left on {a['left_at']}")


@framework_group.command("rotate")
@tender_opt
@click.option("--lot", "lot_id", required=True, help="The lot's id.")
@click.option("--subject", required=True, help="What is ordered.")
@server_url
@username_opt
def framework_rotate(tender_id: str, lot_id: str, subject: str, url: str, username: str | None) -> None:
    """Place an order by rotation (顺序轮候): the platform names the supplier whose turn it is (a purchaser)."""
    body = {"lot_id": lot_id, "subject": subject}
    click.echo(_order_line(session(url, username).post(f"{_f(tender_id)}/rotations", body)))
