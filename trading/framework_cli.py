"""`ggzy framework`: framework agreements (框架协议采购, G-01) over the HTTP API — the purchaser admits
suppliers at their caps and places orders, directly or by mini-competition (二次竞价); an admitted supplier
lowers its cap and quotes."""

from __future__ import annotations

import click

from trading.api_client import echo_json, server_url, session, username_opt


def _f(tender_id: str) -> str:
    return f"/api/v1/tenders/{tender_id}/framework"


def _order_line(o: dict[str, object]) -> str:
    who = f" to {o['supplier']} at {o['price_fen']} fen" if o.get("supplier") else ""
    closes = f", closes {o['closes_at']}" if o.get("closes_at") and o["status"] == "open" else ""
    return f"{o['kind']} order {o['id']} on lot {o['lot']}: {o['status']}{who}{closes}"


tender_opt = click.option("--tender", "tender_id", required=True, help="The framework tender's id.")


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
@click.option("--valid-until", required=True, help="The last day of the agreement's term (YYYY-MM-DD).")
@click.option(
    "--purchaser", "purchasers", multiple=True, help="Another organisation ordering under it (repeat)."
)
@server_url
@username_opt
def framework_admit(
    tender_id: str,
    lots: tuple[str, ...],
    valid_until: str,
    purchasers: tuple[str, ...],
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
    body = {"lots": entries, "valid_until": valid_until, "purchasers": list(purchasers)}
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
