"""The bidder's and the custodian's side of sealed bidding, as an importable client (the `ggzy bid …`,
`ggzy custodian …` and `ggzy verify receipt` commands are thin wrappers around it).

Everything secret happens here, on the client: keys are generated and kept in local identity files,
envelopes are sealed locally, file keys and custody shares are unwrapped locally. The server only ever
receives public keys, ciphertext and — after the deadline, in the opening hall — file keys and shares.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from bidding import agekeys, bidfile, custody, envelope, sealing
from bidding.sealing import Progress, Sealed, sha256_of
from bidding.sealing import SealingRefused as SealingRefused  # raised by seal, where callers catch it

if TYPE_CHECKING:
    from bidding import merkle

UPLOAD_CHUNK = 1024 * 1024
UPLOAD_ATTEMPTS = 4


class ClientError(RuntimeError):
    """The server refused a request: carries the RFC 9457 problem it answered."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        title = problem.get("title") or "request refused"
        detail = problem.get("detail") or ""
        rule = f" [{problem['rule']}]" if problem.get("rule") else ""
        errors = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in problem.get("errors") or [])
        super().__init__(f"{status} {title}{rule}: {detail}" + (f" ({errors})" if errors else ""))


@dataclass(frozen=True)
class ReleaseOutcome:
    """What became of one envelope when a custodian released: `status` released, already released,
    refused (the server's problem in `error`) or failed (a local error in `error`); whether our stanza
    opens with the secret (False is the evidence of the bidder's fault, released all the same)."""

    bid_id: str
    lot: int
    envelope_sha256: str
    status: str
    stanza_opens: bool | None = None
    envelope_status: str | None = None
    outcome: str | None = None
    error: str | None = None


class GgzyClient:
    """An API client for bidders and custodians. `transport` lets tests talk to the app in-process."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        device_id: str | None = None,
    ) -> None:
        headers = {"User-Agent": "ggzy-client/1"}
        if device_id:
            headers["X-GGZY-Device"] = device_id
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, headers=headers, timeout=120)
        self._transport = transport
        self.token = token

    async def __aenter__(self) -> GgzyClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # ------------------------------------------------------------ plumbing

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        ok: Sequence[int] = (200, 201, 202),
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One API call; a refusal raises ClientError with the server's problem."""
        r = await self._http.request(method, path, json=json, headers=self._headers(headers), params=params)
        if r.status_code not in ok:
            try:
                problem = r.json()
            except ValueError:
                problem = {"title": r.text[:200]}
            raise ClientError(
                r.status_code, problem if isinstance(problem, dict) else {"title": str(problem)}
            )
        return r.json() if r.content else None

    async def login(self, username: str, password: str) -> str:
        """Sign in; the client keeps the access token."""
        body = await self.request(
            "POST", "/api/v1/auth/login", json={"username": username, "password": password}
        )
        self.token = str(body["access_token"])
        return self.token

    async def me(self) -> dict[str, Any]:
        """Who the client is signed in as."""
        return dict(await self.request("GET", "/api/v1/auth/me"))

    async def tender(self, tender_id: str) -> dict[str, Any]:
        """A tender as published, with its custodian roster."""
        return dict(await self.request("GET", f"/api/v1/tenders/{tender_id}"))

    # ------------------------------------------------------------ keys

    async def register_keys(self, keys: agekeys.KeyPair) -> None:
        """Register the public halves of a key pair (encryption, and signing for bidders); a key already
        registered is fine."""
        items = [("encryption", agekeys.x25519_public_raw(keys))]
        if keys.signing is not None:
            items.append(("signing", agekeys.ed25519_public_raw(keys)))
        for purpose, raw in items:
            await self.request(
                "POST",
                "/api/v1/keys",
                json={"purpose": purpose, "public_key": base64.b64encode(raw).decode()},
                ok=(201, 409),
            )

    # ------------------------------------------------------------ sealing and submission

    async def own_keys(self) -> list[dict[str, Any]]:
        """The public keys registered to the signed-in organisation."""
        return list(await self.request("GET", "/api/v1/keys"))

    async def seal(
        self,
        tender: dict[str, Any],
        lot_number: int,
        files: Sequence[Path],
        keys: agekeys.KeyPair,
        *,
        bidder_credit_code: str,
        declared_price_fen: int | None,
        duration_days: int | None,
        out: Path,
        kind: str = "commercial",
        progress: Progress | None = None,
    ) -> Sealed:
        """Seal `files` for a lot of a published tender into `out` (off the event loop).

        Refused (SealingRefused) unless the identity's keys are the ones registered to the signed-in
        organisation: sealed to anyone else's key, a bid could not be opened by its own bidder. After
        sealing the client opens its own header (its stanza, the MAC, the roster, the payload's length)
        before the file is kept; it is written beside `out` and renamed into place only then, so no
        partial or unchecked envelope is ever left at `out`, whatever fails. `progress` is told of every
        block of ciphertext written.
        """
        prepared = sealing.Prepared.from_answers(
            tender, {"organisation": {"credit_code": bidder_credit_code}}, await self.own_keys()
        )
        return await asyncio.to_thread(
            sealing.seal_to_file,
            prepared,
            lot_number,
            files,
            keys,
            declared_price_fen=declared_price_fen,
            duration_days=duration_days,
            out=out,
            kind=kind,
            progress=progress,
        )

    async def prepare(self, tender_id: str) -> sealing.Prepared:
        """What sealing needs from the platform, for sealing offline: the tender's code, lots and custodian
        roster, the signed-in organisation's credit code and its registered public keys."""
        tender = await self.tender(tender_id)
        return sealing.Prepared.from_answers(tender, await self.me(), await self.own_keys())

    async def upload(self, grant: dict[str, Any], path: Path, progress: Progress | None = None) -> None:
        """Send a file as granted (PUT to the URL, or POST the S3 form), streaming it; retried from the start
        on a dropped connection."""
        url = grant["upload_url"]
        size = (await asyncio.to_thread(path.stat)).st_size
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            sent = _Sent(progress)
            try:
                if grant.get("method") == "POST":
                    r = await self._post_form(url, grant.get("fields") or {}, path, size, sent)
                else:
                    r = await self._put(url, path, size, sent)
            except httpx.TransportError:
                sent.rewind()
                if attempt == UPLOAD_ATTEMPTS:
                    raise
                await asyncio.sleep(0.5 * attempt)
                continue
            if r.status_code not in (200, 201, 204):
                raise ClientError(r.status_code, {"title": "upload refused", "detail": r.text[:300]})
            return

    async def _post_form(
        self, url: str, fields: dict[str, str], path: Path, size: int, sent: _Sent
    ) -> httpx.Response:
        """POST the object store's form (an S3 POST policy): its fields, then the file, streamed."""
        with path.open("rb") as file:
            async with httpx.AsyncClient(timeout=300) as http:
                r = await http.post(url, data=fields, files={"file": ("file", file)})
        sent(size)
        return r

    async def _put(self, url: str, path: Path, size: int, sent: _Sent) -> httpx.Response:
        parts = urlsplit(url)
        base = urlsplit(str(self._http.base_url))
        headers = {"Content-Length": str(size)}
        if parts.netloc == base.netloc or (self._transport is not None and parts.netloc in ("", base.netloc)):
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            return await self._http.put(target, content=_file_chunks(path, sent), headers=headers)
        async with httpx.AsyncClient(timeout=300) as http:
            return await http.put(url, content=_file_chunks(path, sent), headers=headers)

    async def submit(
        self,
        tender_id: str,
        lot_id: str,
        sealed: Path,
        *,
        idempotency_key: str | None = None,
        progress: Progress | None = None,
        technical: Path | None = None,
    ) -> dict[str, Any]:
        """Upload a sealed envelope and finalise the bid; answers the receipt. A large envelope goes up in
        parts and a broken upload resumes where it stopped (its state is kept next to the file, in
        `<file>.upload.json`, until the bid is finalised). Re-running with the same idempotency key
        answers the first receipt. On a tender of two envelopes (双信封) `sealed` is the commercial
        envelope and `technical` the technical one, uploaded alike and submitted together."""
        first = await self._put_envelope(tender_id, sealed, progress)
        key = idempotency_key or first.get("idempotency_key") or f"bid-{secrets.token_hex(12)}"
        body: dict[str, Any] = {"lot_id": lot_id, **first["envelope"]}
        states = [first["state_path"]]
        if technical is not None:
            second = await self._put_envelope(tender_id, technical, progress)
            body["technical"] = second["envelope"]
            states.append(second["state_path"])
        receipt = dict(
            await self.request(
                "POST", f"/api/v1/tenders/{tender_id}/bids", json=body, headers={"Idempotency-Key": key}
            )
        )
        for state_path in states:
            await asyncio.to_thread(state_path.unlink, True)
        return receipt

    async def _put_envelope(self, tender_id: str, sealed: Path, progress: Progress | None) -> dict[str, Any]:
        """Upload one sealed envelope (resuming a broken multipart upload); answers what finalises it."""
        size = (await asyncio.to_thread(sealed.stat)).st_size
        digest = await asyncio.to_thread(sha256_of, sealed)
        state_path = sealed.with_name(sealed.name + ".upload.json")
        grant = await self._resume_or_grant(tender_id, sealed, size, digest, state_path)
        if grant.get("upload_id"):
            await self._upload_parts(grant, sealed, progress)
        else:
            await self.upload(grant, sealed, progress)
        envelope_ref = {"object_key": grant["object_key"], "envelope_sha256": digest}
        if grant.get("upload_id"):
            envelope_ref["upload_id"] = grant["upload_id"]
        return {
            "envelope": envelope_ref,
            "idempotency_key": grant.get("idempotency_key"),
            "state_path": state_path,
        }

    async def _resume_or_grant(
        self, tender_id: str, sealed: Path, size: int, digest: str, state_path: Path
    ) -> dict[str, Any]:
        state = await asyncio.to_thread(_read_state, state_path)
        if state and state.get("sha256") == digest and state.get("tender_id") == tender_id:
            try:
                progress = await self.request(
                    "GET",
                    f"/api/v1/tenders/{tender_id}/bids/uploads/{state['upload_id']}",
                    params={"object_key": state["object_key"], "size": size},
                )
                return {**state, "parts": progress["parts"], "received": progress["received"]}
            except ClientError:
                pass  # the upload is gone (expired or completed): start a new one
        grant = dict(
            await self.request(
                "POST",
                f"/api/v1/tenders/{tender_id}/bids/uploads",
                json={"filename": sealed.name, "size": size},
            )
        )
        if grant.get("upload_id"):
            remembered = {
                "tender_id": tender_id,
                "sha256": digest,
                "object_key": grant["object_key"],
                "upload_id": grant["upload_id"],
                "part_size": grant["part_size"],
                "idempotency_key": f"bid-{secrets.token_hex(12)}",
            }
            await asyncio.to_thread(state_path.write_text, json.dumps(remembered))
            grant["idempotency_key"] = remembered["idempotency_key"]
        return grant

    async def _upload_parts(
        self, grant: dict[str, Any], sealed: Path, progress: Progress | None = None
    ) -> None:
        """PUT every part not yet received intact (compared by MD5, the parts' ETag), each retried."""
        received = {p["number"]: p["etag"].strip('"') for p in grant.get("received") or []}
        part_size = int(grant["part_size"])
        for part in grant["parts"]:
            number = int(part["number"])
            data = await asyncio.to_thread(_read_part, sealed, (number - 1) * part_size, part_size)
            if received.get(number) == hashlib.md5(data, usedforsecurity=False).hexdigest():
                if progress is not None:
                    progress(len(data))
                continue
            for attempt in range(1, UPLOAD_ATTEMPTS + 1):
                try:
                    r = await self._put_bytes(part["url"], data)
                except httpx.TransportError:
                    if attempt == UPLOAD_ATTEMPTS:
                        raise
                    await asyncio.sleep(0.5 * attempt)
                    continue
                if r.status_code not in (200, 201, 204):
                    raise ClientError(
                        r.status_code, {"title": f"part {number} refused", "detail": r.text[:300]}
                    )
                if progress is not None:
                    progress(len(data))
                break

    async def _put_bytes(self, url: str, data: bytes) -> httpx.Response:
        parts = urlsplit(url)
        base = urlsplit(str(self._http.base_url))
        if parts.netloc == base.netloc:
            return await self._http.put(parts.path + (f"?{parts.query}" if parts.query else ""), content=data)
        async with httpx.AsyncClient(timeout=300) as http:
            return await http.put(url, content=data)

    async def obtain(self, tender_id: str) -> list[dict[str, Any]]:
        """Obtain a tender's documents (获取招标文件): the organisation becomes a holder, which bidding
        requires, and a deposit sub-account is opened per lot. Answers the documents with download links;
        obtaining again is harmless."""
        return list(await self.request("POST", f"/api/v1/tenders/{tender_id}/documents/obtain"))

    async def deposits(self) -> list[dict[str, Any]]:
        """The organisation's deposit sub-accounts: the virtual number to pay into and what is required."""
        return list(await self.request("GET", "/api/v1/escrow/deposits/"))

    async def download(self, url: str, out: Path, sha256: str, progress: Progress | None = None) -> None:
        """Download a document by its link into `out`, checking the SHA-256 published with it: written
        beside `out` and renamed into place only when it matches, never over an existing file."""
        parts = urlsplit(url)
        base = urlsplit(str(self._http.base_url))
        same = parts.netloc in ("", base.netloc)
        target = parts.path + (f"?{parts.query}" if parts.query else "") if same else url
        http = self._http if same else httpx.AsyncClient(timeout=300)
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
        temporary = Path(name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as sink:
                async with http.stream("GET", target) as r:
                    if r.status_code != 200:
                        await r.aread()
                        raise ClientError(
                            r.status_code, {"title": "download refused", "detail": r.text[:300]}
                        )
                    async for chunk in r.aiter_bytes(UPLOAD_CHUNK):
                        digest.update(chunk)
                        await asyncio.to_thread(sink.write, chunk)
                        if progress is not None:
                            progress(len(chunk))
            if digest.hexdigest() != sha256:
                raise SealingRefused(
                    f"{out.name} does not have the SHA-256 the tender publishes ({sha256}); nothing was kept"
                )
            os.link(temporary, out)  # fails rather than replace a file that appeared meanwhile
        finally:
            await asyncio.to_thread(temporary.unlink, True)
            if http is not self._http:
                await http.aclose()

    async def bids(self, tender_id: str) -> list[dict[str, Any]]:
        """The bids the caller may see: a bidder its own (with their state, a platform rejection such as
        W-19 included); the agency, the centre, supervisors and auditors every bid once the tender opened."""
        return list(await self.request("GET", f"/api/v1/tenders/{tender_id}/bids/"))

    async def withdraw(self, tender_id: str, bid_id: str) -> dict[str, Any]:
        """Withdraw a bid before the deadline; answers the bid with the withdrawal's receipt."""
        return dict(await self.request("POST", f"/api/v1/tenders/{tender_id}/bids/{bid_id}/withdraw"))

    # ------------------------------------------------------------ opening

    async def reveal(
        self, tender_id: str, bid_id: str, sealed: Path, keys: agekeys.KeyPair, kind: str = "commercial"
    ) -> dict[str, Any]:
        """In the opening hall: unwrap the envelope's file key locally and reveal it. On a tender of two
        envelopes `kind` says which: the technical one at the opening, the commercial one at the commercial
        opening."""
        file_key = unwrap_file_key(sealed, keys)
        return dict(
            await self.request(
                "POST",
                f"/api/v1/tenders/{tender_id}/bids/{bid_id}/decrypt",
                json={"file_key": base64.b64encode(file_key).decode(), "kind": kind},
            )
        )

    async def closing(self, tender_id: str) -> dict[str, Any]:
        """The tender's signed closing head."""
        return dict(await self.request("GET", f"/api/v1/tenders/{tender_id}/closing"))

    async def consistency(self, first: int, second: int) -> list[str]:
        """A consistency proof between two sizes of the log."""
        body = await self.request("GET", f"/api/v1/transparency/consistency?first={first}&second={second}")
        return list(body["proof"])

    async def log_key(self) -> tuple[bytes, str]:
        """The platform's log key as the server states it (`GET /transparency/key`, no sign-in): the raw
        Ed25519 public key and its key id. Raises ValueError when the answer is not such a key."""
        body = await self.request("GET", "/api/v1/transparency/key")
        try:
            key = base64.b64decode(body["public_key"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise ValueError("the server's answer holds no base64 public key") from None
        from bidding import merkle  # only here: sealing does not need the log's code

        if len(key) != 32 or body.get("key_id") != merkle.key_id(key):
            raise ValueError("the server's key is not a 32-byte Ed25519 key with the key id it states")
        return key, str(body["key_id"])

    async def check_receipt(
        self, receipt: dict[str, Any], tender_id: str, trusted_key: bytes | None = None
    ) -> list[merkle.Check]:
        """Verify a receipt against the tender's published closing record, fetched from the platform (with,
        for a version 1 record, the consistency proof): the checks run locally, as `ggzy verify receipt
        --closing` runs them offline. The key pinned is `trusted_key`, else the closing record's."""
        closing = await self.closing(tender_id)
        proof = None
        if closing.get("version", 1) == 1:
            log = receipt.get("log", receipt)
            proof = await self.consistency(
                int(log["tree_head"]["tree_size"]), int(closing["head"]["tree_size"])
            )
        from bidding import receipt as receipts

        pin = receipts.KeyPin(trusted_key, "given by the caller") if trusted_key is not None else None
        return receipts.verify(receipt, pin=pin, closing=closing, consistency=proof)

    # ------------------------------------------------------------ custody

    async def release(self, tender_id: str, keys: agekeys.KeyPair) -> list[ReleaseOutcome]:
        """As a custodian: release this organisation's stanza of each envelope in custody, envelope by
        envelope, each with its shared secret and the proof that it is honest (made here, with the private
        key). An envelope whose stanza does not open for us is released all the same (that is the evidence
        of the bidder's fault); one envelope's failure never stops the others. Only envelopes whose header
        the platform signed at the deadline are released, so a release can never come before it."""
        view = await self.request("GET", f"/api/v1/tenders/{tender_id}/custody")
        identity = keys.encryption.private_bytes_raw()
        mine = agekeys.x25519_public_raw(keys)
        statement = (await self.closing(tender_id)).get("custody")
        if not statement:
            raise ValueError(
                "the tender's closing head has no signed custody statement (it closed before they were "
                "signed): no header can be checked against what stood at the deadline"
            )
        signed = {
            str(e["header_sha256"])
            for e in (*statement.get("envelopes", []), *statement.get("technical", []))
        }
        roster = {int(c["position"]): base64.b64decode(c["public_key"]) for c in statement.get("roster", [])}
        position, context = int(view["position"]), str(view["tender_code"])
        if roster.get(position) != mine:
            raise ValueError(
                f"this key is not the one on the tender's roster at position {position}: use the identity "
                "file whose public key was registered when the tender was published"
            )
        results = []
        for item in view["envelopes"]:
            results.append(
                await self._release_one(tender_id, item, identity, mine, position, context, signed)
            )
        return results

    async def _release_one(
        self,
        tender_id: str,
        item: dict[str, Any],
        identity: bytes,
        mine: bytes,
        position: int,
        context: str,
        signed: set[str],
    ) -> ReleaseOutcome:
        who = {
            "bid_id": str(item["bid_id"]),
            "lot": int(item["lot_number"]),
            "envelope_sha256": item["envelope_sha256"],
        }
        if item.get("my_release") == "valid":
            return ReleaseOutcome(**who, status="already released", envelope_status=item["status"])
        try:
            header = envelope.parse_header(base64.b64decode(item["header"]))
            if envelope.header_sha256(header) not in signed:
                raise envelope.EnvelopeError(
                    "release.context", "this header is not among those the platform signed at the deadline"
                )
            release = custody.make_release(identity, header, context=context, x=position)
            opens = custody.open_share(release, header, custodian_public=mine, context=context) is not None
        except envelope.EnvelopeError as exc:
            return ReleaseOutcome(**who, status="failed", error=str(exc))
        try:
            body = await self.request(
                "POST",
                f"/api/v1/tenders/{tender_id}/custody/releases",
                json={
                    "bid_id": item["bid_id"],
                    "kind": item.get("kind", "commercial"),
                    "release": release.to_json(),
                },
                ok=(200, 201),
            )
        except ClientError as exc:
            return ReleaseOutcome(**who, status="refused", stanza_opens=opens, error=str(exc))
        return ReleaseOutcome(
            **who,
            status="already released" if body["replayed"] else "released",
            stanza_opens=body["stanza_opens"],
            envelope_status=body["envelope_status"],
            outcome=body["outcome"],
        )

    async def opening_record(self, tender_id: str) -> dict[str, Any]:
        """The tender's signed opening record (after the opening closed), for `ggzy verify opening`."""
        return dict(await self.request("GET", f"/api/v1/tenders/{tender_id}/opening/record/signed"))


class _Sent:
    """The bytes of one upload attempt told to a progress callback, taken back if the attempt fails."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.count = 0

    def __call__(self, size: int) -> None:
        self.count += size
        if self.progress is not None:
            self.progress(size)

    def rewind(self) -> None:
        if self.progress is not None and self.count:
            self.progress(-self.count)
        self.count = 0


async def _file_chunks(path: Path, sent: Callable[[int], object] | None = None) -> AsyncIterator[bytes]:
    with path.open("rb") as src:
        while chunk := await asyncio.to_thread(src.read, UPLOAD_CHUNK):
            if sent is not None:
                sent(len(chunk))
            yield chunk


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _read_part(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as src:
        src.seek(offset)
        return src.read(size)


def unwrap_file_key(sealed: Path, keys: agekeys.KeyPair) -> bytes:
    """The file key of an envelope, unwrapped with the bidder's identity (the header MAC is checked)."""
    with sealed.open("rb") as src:
        header = envelope.read_header(src)
    return envelope.unwrap_bidder(header, keys.encryption.private_bytes_raw())


def open_locally(sealed: Path, keys: agekeys.KeyPair, out_dir: Path) -> bidfile.OpenedBid:
    """Decrypt one's own envelope locally (what `age -d -i key.txt` and `tar -x` also do)."""
    file_key = unwrap_file_key(sealed, keys)
    out_dir.mkdir(parents=True, exist_ok=True)
    with sealed.open("rb") as src:
        return bidfile.open_bid(src, file_key, out_dir)
