"""`ggzy bid …`, `ggzy custodian …` and `ggzy verify receipt`: the sealing client on the command line.

Server and credentials come from `--url` / `GGZY_URL` (default the embedded server) and either
`GGZY_TOKEN` (an API token or access token) or `--username` with `GGZY_PASSWORD` (prompted when unset).
Private keys stay in the identity files these commands write; nothing secret is sent before the deadline.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bidding import agekeys, sealing
from bidding.envelope import EnvelopeError
from storage.cli import server_url

if TYPE_CHECKING:
    # Imported by the commands that use them: sealing offline needs no HTTP client, no event loop and
    # none of the verifiers, and a command costs what it imports.
    from bidding import merkle
    from bidding import receipt as receipts
    from bidding.client import GgzyClient, ReleaseOutcome

T = TypeVar("T")
username_opt = click.option(
    "--username",
    envvar="GGZY_USERNAME",
    default=None,
    help="Sign in as this user (or set GGZY_USERNAME), with the password from GGZY_PASSWORD, else "
    "prompted; without a username, GGZY_TOKEN (an API or access token) is sent instead.",
)

identity_out = click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The identity file to write (mode 0600; an existing file is never overwritten).",
)


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], object]]:
    """A progress bar on stderr, its `update` handed to the work; nothing when stderr is not a terminal, so
    piped output and logs stay clean."""
    if not sys.stderr.isatty():
        yield lambda _size: None
        return
    with click.progressbar(length=max(total, 1), label=label, file=sys.stderr, show_eta=True) as bar:
        yield bar.update


def _run(url: str, username: str | None, action: Callable[[GgzyClient], Awaitable[T]]) -> T:
    import asyncio

    from bidding.client import ClientError, GgzyClient

    async def go() -> T:
        async with GgzyClient(
            url, os.environ.get("GGZY_TOKEN"), device_id=os.environ.get("GGZY_DEVICE_ID")
        ) as client:
            if username:
                password = os.environ.get("GGZY_PASSWORD") or click.prompt("password", hide_input=True)
                await client.login(username, password)
            elif not client.token:
                raise click.UsageError(
                    "sign in: pass --username (password from GGZY_PASSWORD) or set GGZY_TOKEN"
                )
            return await action(client)

    try:
        return asyncio.run(go())
    except (ClientError, sealing.SealingRefused) as exc:
        raise click.ClickException(str(exc)) from exc


def _write_private(path: Path, text: str) -> None:
    if path.exists():
        raise click.UsageError(f"{path} exists; refusing to overwrite a key file")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _keys(path: Path) -> agekeys.KeyPair:
    try:
        return agekeys.parse_identity_file(path.read_text())
    except ValueError as exc:
        raise click.UsageError(f"{path}: {exc}") from exc


def _prepared(path: Path, tender_id: str | None, lot: int) -> sealing.Prepared:
    try:
        prepared = sealing.Prepared.from_json(path.read_text())
    except ValueError as exc:
        raise click.UsageError(f"{path}: {exc}") from exc
    if tender_id is not None and tender_id != prepared.tender_id:
        raise click.UsageError(f"{path} was prepared for tender {prepared.tender_id}, not {tender_id}")
    if lot not in prepared.lots:
        raise click.UsageError(f"the tender has lots {sorted(prepared.lots)}")
    return prepared


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _keygen(out: Path, *, signing: bool, register: bool, url: str, username: str | None) -> None:
    from storage.clock import SystemClock

    keys = agekeys.generate(signing=signing)
    _write_private(out, agekeys.identity_file_text(keys, SystemClock().now()))
    click.echo(f"wrote {out} (mode 0600); recipient {agekeys.recipient(agekeys.x25519_public_raw(keys))}")
    if register:
        _run(url, username, lambda c: c.register_keys(keys))
        click.echo("public keys registered with the server")


# ---------------------------------------------------------------- ggzy bid


@click.group("bid")
def bid_group() -> None:
    """Seal, submit and open bids (the private key never leaves this machine)."""


@bid_group.command("keygen")
@identity_out
@click.option("--register", is_flag=True, help="Register the public keys with the server (needs sign-in).")
@server_url
@username_opt
def bid_keygen(out: Path, register: bool, url: str, username: str | None) -> None:
    """Make a bidder's keys: X25519 for envelopes (an age identity; `age -d -i` reads it) and Ed25519 for
    signing manifests."""
    _keygen(out, signing=True, register=register, url=url, username=username)


@bid_group.command("obtain")
@click.option("--tender", "tender_id", required=True, help="The tender's id.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The folder to download the documents into (created if missing; no file in it is overwritten).",
)
@server_url
@username_opt
def bid_obtain(tender_id: str, out: Path, url: str, username: str | None) -> None:
    """Obtain a tender's documents (获取招标文件), which bidding requires: download each, checked against
    its published SHA-256, and print the deposit to pay for each lot (the virtual account number)."""
    import asyncio

    from bidding.sealing import sha256_of

    async def action(client: GgzyClient) -> list[dict[str, Any]]:
        documents = await client.obtain(tender_id)
        await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
        for doc in documents:
            target = out / Path(doc["filename"]).name
            if await asyncio.to_thread(target.exists):
                if await asyncio.to_thread(sha256_of, target) == doc["sha256"]:
                    continue  # obtained before: the same file
                raise click.ClickException(
                    f"{target} exists and differs from the document; nothing was overwritten"
                )
            with progress_bar(f"downloading {target.name}", int(doc["size"] or 0)) as advance:
                await client.download(doc["download_url"], target, doc["sha256"], progress=advance)
            click.echo(f"{target}  sha256 {doc['sha256']}")
        lots = {lot["id"]: lot["number"] for lot in (await client.tender(tender_id))["lots"]}
        return [{**d, "lot": lots.get(d["lot_id"])} for d in await client.deposits() if d["lot_id"] in lots]

    deposits = _run(url, username, action)
    click.echo(f"documents obtained; you may now seal and submit a bid on tender {tender_id}")
    for deposit in deposits:
        if deposit["required_fen"]:
            click.echo(
                f"deposit for lot {deposit['lot']}: pay {deposit['required_fen']} fen into virtual account "
                f"{deposit['virtual_number']} before the bid deadline (W-19)"
            )


@bid_group.command("prepare")
@click.option("--tender", "tender_id", required=True, help="The tender's id.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The sealing context to write (JSON, public data only; an existing file is replaced).",
)
@server_url
@username_opt
def bid_prepare(tender_id: str, out: Path, url: str, username: str | None) -> None:
    """Save what sealing needs from the server (the tender's code, lots and custodian roster, your
    organisation's credit code and registered public keys), so that `ggzy bid seal --prepared FILE` seals
    offline, on a machine with no network."""
    prepared = _run(url, username, lambda c: c.prepare(tender_id))
    out.write_text(prepared.to_json())
    click.echo(
        f"wrote {out}: tender {prepared.tender_code}, lots {list(prepared.lots)}, "
        f"{len(prepared.custodians)} custodians (any {prepared.threshold} open), bidder "
        f"{prepared.bidder_credit_code}, {len(prepared.registered)} registered key(s); seal offline with "
        f"`ggzy bid seal --prepared {out}`"
    )


@bid_group.command("seal")
@click.option(
    "--tender",
    "tender_id",
    default=None,
    help="The tender's id (asked of the server; with --prepared it may be left out).",
)
@click.option(
    "--prepared",
    "prepared_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Seal offline from a sealing context saved by `ggzy bid prepare`: no server is asked, and the "
    "key file must be one of the keys registered when it was saved.",
)
@click.option("--lot", type=click.IntRange(1), default=1, show_default=True, help="The lot's number.")
@click.option(
    "--price-fen",
    type=click.IntRange(0),
    default=None,
    help="The declared price in fen (1 yuan = 100 fen); required for a commercial envelope, refused for "
    "the others.",
)
@click.option(
    "--duration-days", type=click.IntRange(1), default=None, help="The declared duration in days, if any."
)
@click.option(
    "--kind",
    type=click.Choice(["commercial", "technical", "qualification"]),
    default="commercial",
    show_default=True,
    help="Which envelope of the bid this is; only the commercial one declares a price.",
)
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Your identity file (ggzy bid keygen), registered with the server.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The envelope to write (an age file); written beside it and renamed into place when checked.",
)
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@server_url
@username_opt
def bid_seal(
    tender_id: str | None,
    prepared_path: Path | None,
    lot: int,
    price_fen: int | None,
    duration_days: int | None,
    kind: str,
    key_path: Path,
    out: Path,
    files: tuple[Path, ...],
    url: str,
    username: str | None,
) -> None:
    """Seal FILES into an age envelope for the tender's lot: to your key and the tender's custodians.

    The tender's roster and your registered keys are asked of the server, or read from --prepared."""
    if kind == "commercial" and price_fen is None:
        raise click.UsageError("a commercial envelope declares its price: pass --price-fen (in fen)")
    if kind != "commercial" and price_fen is not None:
        raise click.UsageError(f"a {kind} envelope declares no price: leave out --price-fen")
    if tender_id is None and prepared_path is None:
        raise click.UsageError(
            "name the tender: pass --tender, or --prepared with a file from ggzy bid prepare"
        )
    keys = _keys(key_path)
    total = sum(path.stat().st_size for path in files)
    if prepared_path is not None:
        prepared = _prepared(prepared_path, tender_id, lot)
        try:
            with progress_bar(f"sealing {len(files)} file(s)", total) as advance:
                sealed = sealing.seal_to_file(
                    prepared,
                    lot,
                    files,
                    keys,
                    declared_price_fen=price_fen,
                    duration_days=duration_days,
                    out=out,
                    kind=kind,
                    progress=advance,
                )
        except sealing.SealingRefused as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(
            f"sealed {len(files)} file(s) into {out}: {sealed.size} bytes (to you and the tender's "
            "custodians)"
        )
        return
    assert tender_id is not None

    async def action(client: GgzyClient) -> Any:
        tender = await client.tender(tender_id)
        me = await client.me()
        with progress_bar(f"sealing {len(files)} file(s)", total) as advance:
            return await client.seal(
                tender,
                lot,
                files,
                keys,
                bidder_credit_code=me["organisation"]["credit_code"],
                declared_price_fen=price_fen,
                duration_days=duration_days,
                out=out,
                kind=kind,
                progress=advance,
            )

    sealed = _run(url, username, action)
    click.echo(
        f"sealed {len(files)} file(s) into {out}: {sealed.size} bytes (to you and the tender's custodians)"
    )


@bid_group.command("submit")
@click.option("--tender", "tender_id", required=True, help="The tender's id.")
@click.option("--lot", type=click.IntRange(1), default=1, show_default=True, help="The lot's number.")
@click.option(
    "--idempotency-key",
    default=None,
    help="Repeat a submission safely with the same key: the second answers the first receipt.",
)
@click.option(
    "--receipt",
    "receipt_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the receipt to this file instead of printing it.",
)
@click.option(
    "--technical",
    "technical_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="On a tender of two envelopes (双信封): the technical envelope (sealed with --kind technical), "
    "submitted with the commercial one given as ENVELOPE_PATH.",
)
@click.argument("envelope_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@server_url
@username_opt
def bid_submit(
    tender_id: str,
    lot: int,
    idempotency_key: str | None,
    receipt_out: Path | None,
    technical_path: Path | None,
    envelope_path: Path,
    url: str,
    username: str | None,
) -> None:
    """Upload a sealed envelope and finalise the bid; prints (or writes) the receipt. The documents must
    have been obtained first (ggzy bid obtain)."""
    size = envelope_path.stat().st_size + (technical_path.stat().st_size if technical_path else 0)

    async def action(client: GgzyClient) -> dict[str, Any]:
        tender = await client.tender(tender_id)
        lots = {item["number"]: item["id"] for item in tender["lots"]}
        if lot not in lots:
            raise click.UsageError(f"the tender has lots {sorted(lots)}")
        with progress_bar("uploading", size) as advance:
            return await client.submit(
                tender_id,
                lots[lot],
                envelope_path,
                idempotency_key=idempotency_key,
                progress=advance,
                technical=technical_path,
            )

    receipt = _run(url, username, action)
    if receipt_out:
        receipt_out.write_text(json.dumps(receipt, ensure_ascii=False, indent=2))
        click.echo(f"bid {receipt['bid_id']} accepted; receipt written to {receipt_out}")
    else:
        _echo_json(receipt)


@bid_group.command("open")
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The identity file the envelope was sealed to.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The folder to write the bid's files into (created if missing; no file in it is overwritten).",
)
@click.argument("envelope_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def bid_open(key_path: Path, out: Path, envelope_path: Path) -> None:
    """Decrypt your own envelope locally and check its manifest and signature."""
    from bidding.client import open_locally

    keys = _keys(key_path)
    try:
        opened = open_locally(envelope_path, keys, out)
    except EnvelopeError as exc:
        if exc.code == "key.unwrap":
            raise click.ClickException(f"{envelope_path} is not sealed to the key in {key_path}") from exc
        raise click.ClickException(f"{envelope_path}: {exc}") from exc
    except FileExistsError as exc:
        raise click.ClickException(
            f"{out} already holds {Path(exc.filename or '?').name}; open into an empty folder "
            "(nothing was overwritten)"
        ) from exc
    _echo_json(json.loads(opened.manifest.to_bytes()))
    click.echo(f"{len(opened.files)} file(s) written to {out}", err=True)


@bid_group.command("list")
@click.option("--tender", "tender_id", required=True, help="tender id")
@click.option("--json", "as_json", is_flag=True, help="print the API's answer as JSON (with the evidence)")
@server_url
@username_opt
def bid_list(tender_id: str, as_json: bool, url: str, username: str | None) -> None:
    """The bids you may see on a tender, one line each: status, envelope, price once opened, and a
    rejection the platform established (W-19: no deposit at the bid deadline) with its reason."""
    bids = _run(url, username, lambda c: c.bids(tender_id))
    if as_json:
        _echo_json(bids)
        return
    for bid in bids:
        rejection = bid.get("rejection")
        price = bid.get("declared_price_fen")
        click.echo(
            "\t".join(
                (
                    bid["id"],
                    f"lot {bid['lot_id']}",
                    bid["status"],
                    bid.get("envelope_status") or "-",
                    f"{price} fen" if price is not None else "-",
                    f"rejected: {rejection['rule']}, {rejection['detail']}" if rejection else "-",
                )
            )
        )


@bid_group.command("reveal")
@click.option("--tender", "tender_id", required=True, help="The tender's id.")
@click.option("--bid", "bid_id", required=True, help="The bid's id (from its receipt or ggzy bid list).")
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The identity file the envelope was sealed to.",
)
@click.option(
    "--kind",
    type=click.Choice(["commercial", "technical"]),
    default="commercial",
    show_default=True,
    help="Which envelope of a bid of two (双信封): technical at the opening, commercial at the commercial "
    "opening (only for a bid that passed the technical evaluation).",
)
@click.argument("envelope_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@server_url
@username_opt
def bid_reveal(
    tender_id: str,
    bid_id: str,
    key_path: Path,
    kind: str,
    envelope_path: Path,
    url: str,
    username: str | None,
) -> None:
    """In the opening hall, within the decryption window: unwrap the file key locally and reveal it."""
    keys = _keys(key_path)
    _echo_json(_run(url, username, lambda c: c.reveal(tender_id, bid_id, envelope_path, keys, kind)))


@bid_group.group("final-quote")
def final_quote_group() -> None:
    """Sealed final quotes of a negotiated procurement (最后报价): seal before the deadline, open after."""


@final_quote_group.command("seal")
@click.option("--tender", "tender_id", required=True, help="The tender's id.")
@click.option("--lot-id", required=True, help="The lot's id.")
@click.option("--price-fen", type=click.IntRange(1), required=True, help="Your final quote, in fen.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to keep the price and nonce that open the seal (created, mode 0600): keep it until the "
    "deadline has passed.",
)
@server_url
@username_opt
def final_quote_seal(
    tender_id: str, lot_id: str, price_fen: int, out: Path, url: str, username: str | None
) -> None:
    """Seal a final quote: the price and a random nonce stay in --out; only their SHA-256 commitment is
    sent, so nobody learns the price before the deadline."""
    import secrets
    import uuid

    from storage.commitments import final_quote_commitment

    if out.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite a sealed quote's opening")
    nonce = secrets.token_hex(32)

    async def seal(client: GgzyClient) -> Any:
        me = await client.me()
        commitment = final_quote_commitment(
            uuid.UUID(tender_id),
            uuid.UUID(lot_id),
            uuid.UUID(str(me["organisation"]["id"])),
            price_fen,
            nonce,
        )
        _write_private(
            out,
            json.dumps({"tender_id": tender_id, "lot_id": lot_id, "price_fen": price_fen, "nonce": nonce}),
        )
        return await client.request(
            "POST",
            f"/api/v1/tenders/{tender_id}/negotiation/final-quotes",
            json={"lot_id": lot_id, "commitment": commitment},
        )

    _echo_json(_run(url, username, seal))


@final_quote_group.command("open")
@click.argument("sealed", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@server_url
@username_opt
def final_quote_open(sealed: Path, url: str, username: str | None) -> None:
    """After the deadline, within the window: open the sealed final quote kept in SEALED."""
    kept = json.loads(sealed.read_text())
    body = {"lot_id": kept["lot_id"], "price_fen": kept["price_fen"], "nonce": kept["nonce"]}
    path = f"/api/v1/tenders/{kept['tender_id']}/negotiation/final-quotes/open"
    _echo_json(_run(url, username, lambda c: c.request("POST", path, json=body)))


# ---------------------------------------------------------------- ggzy custodian


@click.group("custodian")
def custodian_group() -> None:
    """Opening custodians: keys, and releasing shares after the deadline (E-03)."""


@custodian_group.command("keygen")
@identity_out
@click.option("--register", is_flag=True, help="Register the public key with the server (needs sign-in).")
@server_url
@username_opt
def custodian_keygen(out: Path, register: bool, url: str, username: str | None) -> None:
    """Make a custodian's X25519 key (an age identity file)."""
    _keygen(out, signing=False, register=register, url=url, username=username)


@custodian_group.command("release")
@click.option("--tender", "tender_id", required=True, help="The tender's id.")
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The custodian's identity file (ggzy custodian keygen).",
)
@server_url
@username_opt
def custodian_release(tender_id: str, key_path: Path, url: str, username: str | None) -> None:
    """Release this custodian's stanza of each envelope in custody, one by one, each with the stanza's
    shared secret and a proof that it is the honest one (made locally; the private key stays here). A
    stanza that does not open for us is released all the same: it proves the bidder's fault. One line per
    envelope; exit 1 only if an envelope could not be released."""
    keys = _keys(key_path)
    try:
        results = _run(url, username, lambda c: c.release(tender_id, keys))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if not results:
        click.echo("no envelope is in custody")
    for result in results:
        click.echo(_release_line(result))
    if any(r.error for r in results):
        sys.exit(1)


def _release_line(r: ReleaseOutcome) -> str:
    where = f"lot {r.lot} envelope {r.envelope_sha256[:16]}… (bid {r.bid_id})"
    if r.error:
        return f"{click.style('FAIL', fg='red')} {where}: {r.status}: {r.error}"
    opens = {
        True: "our stanza opens",
        False: "our stanza does NOT open with the proven secret: evidence of the bidder's fault",
        None: "",
    }[r.stanza_opens]
    state = f"envelope {r.envelope_status}" + (f", outcome {r.outcome}" if r.outcome else "")
    return (
        f"{click.style('ok  ', fg='green')} {where}: {r.status}; {', '.join(x for x in (opens, state) if x)}"
    )


# ---------------------------------------------------------------- ggzy verify


@click.group("verify")
def verify_group() -> None:
    """Check platform records offline."""


@verify_group.command("receipt")
@click.argument("receipt_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--closing",
    "closing_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the tender's published closing record (GET /api/v1/tenders/{id}/closing, the 截标 notice's body); "
    "a published document, it pins the key that signed it",
)
@click.option(
    "--consistency",
    "consistency_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="for a version 1 closing record only: the consistency proof from the receipt's head to it "
    "(GET /api/v1/transparency/consistency)",
)
@click.option("--key", "trusted_key", default=None, help="the platform's log key (base64) to pin")
@click.option(
    "--fetch-key",
    is_flag=True,
    help="pin the log key the platform at --url states (printed with its fingerprint, to compare with the "
    "one the centre publishes)",
)
@server_url
def verify_receipt(
    receipt_path: Path,
    closing_path: Path | None,
    consistency_path: Path | None,
    trusted_key: str | None,
    fetch_key: bool,
    url: str,
) -> None:
    """Verify a bid receipt offline, under a pinned platform key.

    Checked are every field it states against its signed leaf, the log's signature
    under a pinned key and the leaf's inclusion; with --closing, that the tender's published closing record
    holds the leaf (an omission fails here). The key is pinned by --key, --fetch-key or --closing; without
    one nothing is proven and the command fails. Exit 1 if any check fails; "skip" marks what the receipt
    states that nothing signed covers (some version 1 receipts)."""
    from bidding import receipt as receipts

    if trusted_key and fetch_key:
        raise click.UsageError("pin one key: --key or --fetch-key, not both")
    try:
        receipt = json.loads(receipt_path.read_text())
        closing = json.loads(closing_path.read_text()) if closing_path else None
        proof = json.loads(consistency_path.read_text()) if consistency_path else None
        key = base64.b64decode(trusted_key, validate=True) if trusted_key else None
        pin = receipts.KeyPin(key, "given with --key") if key is not None else None
    except ValueError as exc:
        raise click.UsageError(f"unreadable input: {exc}") from exc
    if isinstance(proof, dict):
        proof = proof.get("proof")
    if fetch_key:
        pin = _fetch_key(url)
    checks = receipts.verify(receipt, pin=pin, closing=closing, consistency=proof)
    marks = {"ok": click.style("ok  ", fg="green"), "skip": click.style("skip", fg="yellow")}

    def mark(check: merkle.Check) -> str:
        return marks["ok"] if check.ok else marks["skip"] if check.skipped else click.style("FAIL", fg="red")

    for line in receipts.report(checks, mark):
        click.echo(line)
    if not receipts.passed(checks):
        sys.exit(1)


def _fetch_key(url: str) -> receipts.KeyPin:
    import asyncio

    import httpx

    from bidding import receipt as receipts
    from bidding.client import ClientError, GgzyClient

    async def fetch() -> tuple[bytes, str]:
        async with GgzyClient(url) as client:
            return await client.log_key()

    try:
        key, kid = asyncio.run(fetch())
    except (ClientError, httpx.HTTPError, ValueError) as exc:
        raise click.ClickException(f"could not fetch the platform's log key from {url}: {exc}") from exc
    click.echo(
        f"fetched the platform's log key from {url}: key id {kid}, SHA-256 fingerprint "
        f"{receipts.fingerprint(key)}, public key {base64.b64encode(key).decode()} (compare the fingerprint "
        "with the one the centre publishes; pin it next time with --key)"
    )
    return receipts.KeyPin(key, f"fetched from {url}")


@verify_group.command("opening")
@click.argument("record_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "trusted_key", default=None, help="the platform's log key (base64) to pin")
@click.option(
    "--fetch-key",
    is_flag=True,
    help="take the key from the server (--url) instead; compare it with the one the centre publishes",
)
@server_url
def verify_opening(record_path: Path, trusted_key: str | None, fetch_key: bool, url: str) -> None:
    """Verify a published opening record offline, under a pinned platform key.

    The record is GET /tenders/{id}/opening/record/signed; checked are the platform's
    signatures on it, the closing head and the custody statement, every header against the hash signed at
    the deadline, every custodian's proof, every stanza opening and each custody outcome's stated cause.
    Exit 1 naming each failed check."""
    if bool(trusted_key) == fetch_key:
        raise click.UsageError("pin the platform key: pass --key B64, or --fetch-key to take it from --url")
    try:
        record = json.loads(record_path.read_text())
        key = base64.b64decode(trusted_key, validate=True) if trusted_key else _fetch_key(url).key
    except ValueError as exc:
        raise click.UsageError(f"unreadable input: {exc}") from exc
    if len(key) != 32:
        raise click.UsageError("the key must be the base64 of a 32-byte Ed25519 public key")
    from bidding import opening_record

    checks = opening_record.verify(record, key)
    for check in checks:
        mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {check.name}: {check.detail}")
    failed = [c.name for c in checks if not c.ok]
    if failed:
        click.echo(f"{len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)
