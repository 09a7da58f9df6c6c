"""`ggzy verify archive`: an archive bundle checked offline under the platform's key (G-09)."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from pathlib import Path

import click

from archive import bundle


def _summary(manifest: dict[str, object]) -> str:
    tender = manifest.get("tender")
    code = tender.get("code") if isinstance(tender, dict) else "?"
    status = tender.get("status") if isinstance(tender, dict) else "?"

    def count(name: str) -> int:
        value = manifest.get(name)
        return len(value) if isinstance(value, list) else 0

    ledger = manifest.get("deposit_ledger")
    entries = len(ledger.get("entries", [])) if isinstance(ledger, dict) else 0
    return (
        f"tender {code} ({status}), assembled {manifest.get('assembled_at')}: {count('notices')} notice(s), "
        f"{count('documents')} document(s), {count('envelopes')} envelope(s), "
        f"{count('evaluation')} evaluation report(s), {count('awards')} award(s), "
        f"{count('contracts')} contract(s), {entries} deposit ledger entr{'y' if entries == 1 else 'ies'}"
    )


@click.command("archive")
@click.argument("bundle_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    default=None,
    help="the platform's log key (base64 of the raw Ed25519 key, GET /api/v1/transparency/key) to pin; "
    "without it the key the bundle carries is used, which proves only that the bundle agrees with itself",
)
def verify_archive(bundle_path: Path, public_key: str | None) -> None:
    """Verify a trade archive bundle offline: its signature and that its hashes agree (G-09).

    The bundle is GET /tenders/{id}/archive. Checked are the platform's signature over the manifest's SHA-256, and that the manifest agrees with
    itself: notice bodies against their hashes, the closing head's and the opening record's envelope
    hashes against the envelope list, the signed opening record, each evaluation report against the hash
    its members signed and their signatures, the deposit ledger extract's hashes against the signed
    ledger head that covers it, and the transparency log's and audit trail's heads. Exit 1 naming each
    failed check."""
    try:
        document = json.loads(bundle_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"unreadable bundle: {exc}") from exc
    try:
        pinned = public_key or (document.get("public_key") if isinstance(document, dict) else None)
        key = base64.b64decode(str(pinned or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise click.UsageError(f"the key is not base64: {exc}") from exc
    if len(key) != 32:
        raise click.UsageError("the key must be the base64 of a 32-byte Ed25519 public key")
    if public_key is None:
        click.echo(
            "no --public-key given: checking under the key the bundle carries (pin the platform's key)"
        )
    checks = bundle.verify(document, key)
    for check in checks:
        mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {check.name}: {check.detail}")
    failed = [c.name for c in checks if not c.ok]
    if failed:
        click.echo(f"{len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)
    click.echo(_summary(document["manifest"]))
