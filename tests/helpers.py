"""Test helpers that drive ggzy through its real HTTP API, as a user would."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import secrets
import tempfile
from collections.abc import AsyncIterable, Callable, Collection, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from httpx import Response

from accounts.uscc import make_uscc
from bidding import agekeys, bidfile, envelope
from rules.calendar import SHANGHAI
from storage.objects import DEFAULT_CONTENT_TYPE, LocalObjectStore, ObjectInfo
from trading import jobs as trading_jobs

PASSWORD = "correct horse battery staple"
TENDERER_CREDIT_CODE = make_uscc(
    "91320100MA0000001"
)  # 南京市城南水务有限公司, the tenderer of the default body
HOLD_TIMEOUT = 120  # seconds a test waits on the store's gate; only a hang would reach it, never a verdict
_serial = 0
Answer = TypeVar("Answer")  # what a request held at a store's gate answers


def credit_code() -> str:
    """A fresh valid unified social credit code."""
    global _serial
    _serial += 1
    return make_uscc(f"91320100{_serial:09d}")


def shanghai(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    """An instant given in Asia/Shanghai wall time."""
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI).astimezone(UTC)


@dataclass
class Actor:
    """A signed-in user."""

    username: str
    token: str
    organisation_id: str
    credit_code: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class SealedBid:
    """What a bidder keeps: the bid id, its receipt, its sealed envelope and the keys that open it."""

    bidder: Actor
    lot_id: str
    bid_id: str
    price_fen: int
    duration_days: int
    envelope: bytes
    keys: agekeys.KeyPair
    receipt: dict[str, Any]

    @property
    def file_key(self) -> bytes:
        header = envelope.read_header(io.BytesIO(self.envelope))
        return envelope.unwrap_bidder(header, self.keys.encryption.private_bytes_raw())


@dataclass
class Api:
    """The test client plus the runtime, for moving time and running due jobs."""

    client: httpx.AsyncClient
    runtime: Any
    centre: Actor | None = None
    _n: int = field(default=0)
    keys: dict[str, agekeys.KeyPair] = field(default_factory=dict)
    custodian_actors: list[Actor] = field(default_factory=list)
    projects: dict[tuple[str, str], str] = field(default_factory=dict)

    # ------------------------------------------------------------ plumbing

    async def get(self, path: str, actor: Actor | None = None, **kw: Any) -> Response:
        return await self.client.get(path, headers=actor.headers if actor else None, **kw)

    async def post(self, path: str, actor: Actor | None = None, json: Any = None, **kw: Any) -> Response:
        headers = dict(kw.pop("headers", {}) or {})
        if actor:
            headers.update(actor.headers)
        return await self.client.post(path, json=json, headers=headers, **kw)

    async def patch(self, path: str, actor: Actor | None = None, json: Any = None, **kw: Any) -> Response:
        headers = dict(kw.pop("headers", {}) or {})
        if actor:
            headers.update(actor.headers)
        return await self.client.patch(path, json=json, headers=headers, **kw)

    async def put(self, path: str, actor: Actor | None = None, json: Any = None, **kw: Any) -> Response:
        headers = dict(kw.pop("headers", {}) or {})
        if actor:
            headers.update(actor.headers)
        return await self.client.put(path, json=json, headers=headers, **kw)

    @property
    def clock(self) -> Any:
        return self.runtime.clock

    async def tick(self) -> list[tuple[str, str]]:
        """Run the chronograph and every job the outbox holds, at the clock's time."""
        done: list[tuple[str, str]] = await trading_jobs.chronograph_tick(self.runtime.job_context)
        await self.run_jobs()
        return done

    async def run_jobs(self) -> None:
        await self.runtime.dispatcher.dispatch_once()
        drain = getattr(self.runtime.queue, "drain", None)  # the in-process queue; arq runs in a worker
        if drain is not None:
            await drain()

    async def at(self, instant: datetime) -> list[tuple[str, str]]:
        """Move the clock to `instant` and run what is due."""
        self.clock.set(instant)
        return await self.tick()

    # ------------------------------------------------------------ people

    async def login(self, username: str, password: str = PASSWORD) -> str:
        r = await self.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def bootstrap_centre(self) -> Actor:
        if self.centre is None:
            from accounts import service as accounts
            from storage.db import transaction

            code = credit_code()
            async with transaction(self.runtime.sessionmaker) as session:
                org, _user, _ = await accounts.bootstrap_centre(
                    session,
                    name="测试交易中心",
                    credit_code=code,
                    username="centre",
                    password=PASSWORD,
                    now=self.clock.now(),
                )
                org_id = str(org.id)
            self.centre = Actor("centre", await self.login("centre"), org_id, code)
        return self.centre

    async def organisation(self, kind: str, name: str | None = None, roles: list[str] | None = None) -> Actor:
        """An approved organisation of `kind` with one signed-in user."""
        centre = await self.bootstrap_centre()
        self._n += 1
        code = credit_code()
        r = await self.post(
            "/api/v1/organisations",
            centre,
            json={"name": name or f"{kind} {self._n}", "credit_code": code, "kind": kind},
        )
        assert r.status_code == 201, r.text
        org_id = r.json()["id"]
        username = f"{kind}{self._n}"
        role = {"employer": "expert"}.get(kind, kind)
        r = await self.post(
            "/api/v1/users",
            centre,
            json={
                "organisation_id": org_id,
                "username": username,
                "password": PASSWORD,
                "display_name": username,
                "roles": roles or [role],
            },
        )
        assert r.status_code == 201, r.text
        return Actor(username, await self.login(username), org_id, code)

    # ------------------------------------------------------------ files

    async def upload(self, grant: dict[str, Any], content: bytes) -> None:
        """PUT a file to a presigned URL (the server's own route on the embedded store)."""
        url = grant["upload_url"]
        parts = urlsplit(url)
        if grant.get("method") == "POST":  # an S3 POST policy: the form's fields, then the file
            async with httpx.AsyncClient() as http:
                r = await http.post(url, data=grant["fields"], files={"file": ("file", content)})
            assert r.status_code in (200, 201, 204), r.text
            return
        if parts.netloc == "testserver":
            r = await self.client.put(
                parts.path + (f"?{parts.query}" if parts.query else ""), content=content
            )
        else:
            async with httpx.AsyncClient() as http:
                r = await http.put(url, content=content)
        assert r.status_code in (200, 201), r.text

    async def document(
        self,
        agency: Actor,
        tender_id: str,
        content: bytes,
        kind: str = "tender_documents",
        filename: str = "tender.pdf",
    ) -> dict[str, Any]:
        grant = await self.post(
            f"/api/v1/tenders/{tender_id}/uploads", agency, json={"filename": filename, "size": len(content)}
        )
        assert grant.status_code == 201, grant.text
        await self.upload(grant.json(), content)
        if kind in ("evaluation_report", "contract"):
            return dict(grant.json())
        r = await self.post(
            f"/api/v1/tenders/{tender_id}/documents",
            agency,
            json={"kind": kind, "filename": filename, "object_key": grant.json()["object_key"]},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    # ------------------------------------------------------------ a trade

    def tender_body(self, **overrides: Any) -> dict[str, Any]:
        """A lawful works tender: documents from Mon 2026-03-02, bids close Mon 2026-03-23 10:00 (W-01)."""
        body: dict[str, Any] = {
            "title": "城南污水处理厂提标改造工程施工",
            "tenderer_name": "南京市城南水务有限公司",
            "tenderer_credit_code": TENDERER_CREDIT_CODE,
            "region_code": "320100",
            "qualification": "市政公用工程施工总承包二级及以上资质",
            "evaluation_method": "comprehensive",
            "documents_from": "2026-03-02T09:00:00+08:00",
            "bid_deadline": "2026-03-23T10:00:00+08:00",
            "lots": [{"title": "第一标段", "estimated_price_fen": 5_000_000_000, "deposit_fen": 80_000_000}],
        }
        body.update(overrides)
        return body

    async def register_keys(self, actor: Actor, *, signing: bool = True) -> agekeys.KeyPair:
        """The organisation's key pair, generated and registered once (private half kept here)."""
        if actor.organisation_id not in self.keys:
            keys = agekeys.generate(signing=signing)
            items = [("encryption", agekeys.x25519_public_raw(keys))]
            if signing:
                items.append(("signing", agekeys.ed25519_public_raw(keys)))
            for purpose, raw in items:
                r = await self.post(
                    "/api/v1/keys",
                    actor,
                    json={"purpose": purpose, "public_key": base64.b64encode(raw).decode()},
                )
                assert r.status_code == 201, r.text
            self.keys[actor.organisation_id] = keys
        return self.keys[actor.organisation_id]

    async def custodians(self) -> list[Actor]:
        """The default opening custodians: the centre (the platform) and two supervising organisations, each
        with a registered key. With the default t = 2 (counting the two others), T = 3 shares open."""
        if not self.custodian_actors:
            centre = await self.bootstrap_centre()
            supervisor = await self.organisation("supervisor")
            notary = await self.organisation("supervisor", name=f"notary {self._n + 1}")
            for actor in (centre, supervisor, notary):
                await self.register_keys(actor, signing=False)
            self.custodian_actors = [centre, supervisor, notary]
        return self.custodian_actors

    async def project(self, agency: Actor, sector: str = "works", *, accept: bool = True) -> str:
        """The id of a project of `agency` in `sector` registered with the centre and, unless `accept` is
        False, accepted (项目受理); one accepted project per agency and sector is reused."""
        if accept and (agency.organisation_id, sector) in self.projects:
            return self.projects[(agency.organisation_id, sector)]
        body: dict[str, Any] = {
            "name": "城南污水处理厂提标改造工程",
            "sector": sector,
            "funding_source": "市级财政资金",
            "approval_number": "宁发改审批〔2026〕18号",
        }
        if sector == "procurement":
            body["procurement_plan_number"] = "NJCG-2026-0318"
        r = await self.post("/api/v1/projects", agency, json=body)
        assert r.status_code == 201, r.text
        project_id = str(r.json()["id"])
        if accept:
            centre = await self.bootstrap_centre()
            r = await self.post(
                f"/api/v1/projects/{project_id}/decision", centre, json={"decision": "accepted"}
            )
            assert r.status_code == 200, r.text
            self.projects[(agency.organisation_id, sector)] = project_id
        return project_id

    async def publish(self, agency: Actor, tender_id: str, **kw: Any) -> Response:
        """Submit the tender notice for the centre's review and, when the submission is taken, have the
        centre approve it (公告审核): the approval's answer, or the submission's refusal."""
        r = await self.post(f"/api/v1/tenders/{tender_id}/publish", agency, **kw)
        if r.status_code != 200:
            return r
        centre = await self.bootstrap_centre()
        return await self.post(f"/api/v1/tenders/{tender_id}/review", centre, json={"decision": "approved"})

    async def draft(self, agency: Actor, **overrides: Any) -> dict[str, Any]:
        if "project_id" not in overrides:
            overrides["project_id"] = await self.project(agency, overrides.get("sector", "works"))
        if "custodians" not in overrides:
            overrides["custodians"] = [c.organisation_id for c in await self.custodians()]
        r = await self.post("/api/v1/tenders", agency, json=self.tender_body(**overrides))
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def published(self, agency: Actor, **overrides: Any) -> dict[str, Any]:
        tender = await self.draft(agency, **overrides)
        await self.document(agency, tender["id"], b"%PDF-1.7 tender documents " + secrets.token_bytes(64))
        r = await self.publish(agency, tender["id"])
        assert r.status_code == 200, r.text
        await self.run_jobs()
        return dict(r.json())

    async def bid(
        self,
        bidder: Actor,
        tender: dict[str, Any],
        price_fen: int,
        *,
        lot: int = 0,
        duration_days: int = 365,
        obtain: bool = True,
        deposit: bool = True,
    ) -> SealedBid:
        """`bidder` seals and submits a bid on the tender's `lot`; unless `deposit` is False it first pays the
        lot's deposit (when nothing is held for it yet), as a bidder must (W-19)."""
        tid = tender["id"]
        if obtain:
            r = await self.post(f"/api/v1/tenders/{tid}/documents/obtain", bidder)
            assert r.status_code == 200, r.text
        if deposit:
            await self.pay_deposit(bidder, tender["lots"][lot]["id"], only_if_missing=True)
        keys = await self.register_keys(bidder)
        content = await self.seal(bidder, tender, price_fen, lot=lot, duration_days=duration_days)
        grant = await self.post(
            f"/api/v1/tenders/{tid}/bids/uploads", bidder, json={"filename": "bid.age", "size": len(content)}
        )
        assert grant.status_code == 201, grant.text
        await self.upload(grant.json(), content)
        lot_id = tender["lots"][lot]["id"]
        r = await self.post(
            f"/api/v1/tenders/{tid}/bids",
            bidder,
            json={"lot_id": lot_id, "object_key": grant.json()["object_key"]},
            headers={"Idempotency-Key": f"bid-{secrets.token_hex(8)}"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["envelope_sha256"] == hashlib.sha256(content).hexdigest()
        return SealedBid(
            bidder, lot_id, r.json()["bid_id"], price_fen, duration_days, content, keys, r.json()
        )

    async def deposit_of(self, bidder: Actor, lot_id: str) -> dict[str, Any]:
        """The bidder's deposit sub-account for a lot (it obtained the documents)."""
        r = await self.get("/api/v1/escrow/deposits", bidder)
        assert r.status_code == 200, r.text
        [mine] = [d for d in r.json() if d["lot_id"] == lot_id]
        return dict(mine)

    async def pay_deposit(
        self,
        bidder: Actor,
        lot_id: str,
        *,
        amount_fen: int | None = None,
        only_if_missing: bool = False,
        reference: str | None = None,
    ) -> dict[str, Any]:
        """The bank's signed real-time notification (到账通知) of the bidder's payment into its sub-account for
        the lot, from an account of its own, booked today; answers the import's summary."""
        import json

        from escrow import bankfiles

        mine = await self.deposit_of(bidder, lot_id)
        if only_if_missing and (mine["held_fen"] > 0 or mine["status"] not in ("awaiting", "refunded")):
            return {}
        if mine["required_fen"] == 0 and amount_fen is None:
            return {}
        body = json.dumps(
            {
                "reference": reference or f"DEP-{secrets.token_hex(6)}",
                "booked_on": self.clock.now().astimezone(SHANGHAI).date().isoformat(),
                "direction": "credit",
                "amount_fen": mine["required_fen"] if amount_fen is None else amount_fen,
                "currency": "CNY",
                "payer_name": f"{bidder.username} 基本户",
                # an account of the bidder's own: no two bidders pay from one account (that is a W-18 signal)
                "payer_account": "6222"
                + str(int(hashlib.sha256(bidder.credit_code.encode()).hexdigest(), 16))[:12],
                "payer_bank": "中国工商银行南京分行",
                "credited_account": mine["virtual_number"],
                "remittance": "投标保证金",
            },
            ensure_ascii=False,
        ).encode()
        secret = self.runtime.settings.bank_notify_secret.encode()
        signed = bankfiles.sign_notification(body, secret, self.clock.now())
        r = await self.client.post(
            "/api/v1/escrow/bank/notifications", content=body, headers={"X-Bank-Signature": signed}
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def seal(
        self,
        bidder: Actor,
        tender: dict[str, Any],
        price_fen: int | None,
        *,
        lot: int = 0,
        duration_days: int | None = 365,
        files: dict[str, bytes] | None = None,
        tender_code: str | None = None,
        lot_number: int | None = None,
        credit_code: str | None = None,
    ) -> bytes:
        """A sealed envelope for the tender's lot, as the bidder's client makes it."""
        keys = await self.register_keys(bidder)
        assert keys.signing is not None
        if not tender.get("custodians"):
            tender = (await self.get(f"/api/v1/tenders/{tender['id']}", bidder)).json()
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for name, data in (files or {"bid.pdf": b"%PDF-1.7 bid " + secrets.token_bytes(256)}).items():
                path = Path(tmp) / name
                path.write_bytes(data)
                paths.append(path)
            out = io.BytesIO()
            bidfile.seal_bid(
                paths,
                out,
                tender=tender_code or tender["code"],
                lot=lot_number or tender["lots"][lot]["number"],
                bidder=credit_code or bidder.credit_code,
                kind="commercial",
                declared_price_fen=price_fen,
                duration_days=duration_days,
                signing=keys.signing,
                bidder_public=agekeys.x25519_public_raw(keys),
                custodians=[base64.b64decode(c["public_key"]) for c in tender["custodians"]],
                threshold=tender["shamir_threshold"],
            )
        return out.getvalue()

    async def reveal(self, tender_id: str, bid: SealedBid, *, run: bool = True) -> Response:
        """Reveal the bid's file key in the opening hall, then let the decryption job run."""
        r = await self.post(
            f"/api/v1/tenders/{tender_id}/bids/{bid.bid_id}/decrypt",
            bid.bidder,
            json={"file_key": base64.b64encode(bid.file_key).decode()},
        )
        if run:
            await self.run_jobs()
        return r

    async def release(self, tender_id: str, custodian: Actor) -> list[Response]:
        """A custodian releases its stanza of each envelope in custody, one request per envelope, each with
        its shared secret and proof made locally (`bidding.custody`); the answers, in custody-view order."""
        from bidding import custody

        view = await self.get(f"/api/v1/tenders/{tender_id}/custody", custodian)
        assert view.status_code == 200, view.text
        identity = self.keys[custodian.organisation_id].encryption.private_bytes_raw()
        answers = []
        for item in view.json()["envelopes"]:
            header = envelope.parse_header(base64.b64decode(item["header"]))
            release = custody.make_release(
                identity, header, context=view.json()["tender_code"], x=view.json()["position"]
            )
            answers.append(
                await self.post(
                    f"/api/v1/tenders/{tender_id}/custody/releases",
                    custodian,
                    json={"bid_id": item["bid_id"], "kind": item["kind"], "release": release.to_json()},
                )
            )
        await self.run_jobs()
        return answers

    async def award_lowest(
        self, agency: Actor, tender: dict[str, Any], bids: list[SealedBid]
    ) -> dict[str, Any]:
        """From the deadline: every bid revealed, the committee drawn and the room run with equal scores (so
        the lowest price ranks first), publicity, and the award to the lowest; answers the award."""
        await self.at(DEADLINE)
        for bid in bids:
            assert (await self.reveal(tender["id"], bid)).status_code == 202
        await self.at(AFTER_WINDOW)
        await self.evaluate(agency, tender["id"])
        ranking = [b.bid_id for b in sorted(bids, key=lambda b: b.price_fen)]
        self.clock.set(self.clock.now() + timedelta(days=5))
        r = await self.post(
            f"/api/v1/tenders/{tender['id']}/award",
            agency,
            json={"lots": [{"lot_id": bids[0].lot_id, "bid_id": ranking[0]}]},
        )
        assert r.status_code == 201, r.text
        return dict(r.json()[0])

    # ------------------------------------------------------------ evaluation

    async def in_evaluation(
        self, agency: Actor, bidders: int = 3, **overrides: Any
    ) -> tuple[dict[str, Any], list[SealedBid]]:
        """A published tender (`overrides` to its body) with `bidders` bids, opened and every bid revealed:
        at the end of the opening window, the tender is under evaluation and a committee may be drawn."""
        tender = await self.published(agency, **overrides)
        bids = [
            await self.bid(await self.organisation("bidder"), tender, 4_000_000_000 - i)
            for i in range(bidders)
        ]
        await self.at(DEADLINE)
        for bid in bids:
            assert (await self.reveal(tender["id"], bid)).status_code == 202
        await self.at(AFTER_WINDOW)
        return tender, bids

    async def seed_specialties(self) -> None:
        """The default specialty tree, once."""
        from evaluation.models import Specialty
        from evaluation.taxonomy import DEFAULT_SPECIALTIES
        from storage.db import transaction

        async with transaction(self.runtime.sessionmaker) as session:
            if await session.get(Specialty, "A") is None:
                for code, parent, name in DEFAULT_SPECIALTIES:
                    session.add(Specialty(code=code, parent_code=parent, name=name))

    async def expert(self, specialties: tuple[str, ...] = ("A0201",), name: str | None = None) -> Actor:
        """An active expert of the pool with an account in their own employer and a signing key."""
        from sqlalchemy import select

        from accounts.models import User
        from evaluation.models import Expert, ExpertSpecialty
        from storage.db import transaction

        await self.seed_specialties()
        actor = await self.organisation("employer")
        await self.register_keys(actor)
        async with transaction(self.runtime.sessionmaker) as session:
            user = await session.scalar(select(User).where(User.username == actor.username))
            assert user is not None
            n = len((await session.scalars(select(Expert.id))).all()) + 1
            expert = Expert(
                number=f"E{n:06d}",
                user_id=user.id,
                name=name or f"专家{n}",
                employer_credit_code=actor.credit_code,
                employer_name=f"employer {n}",
                region_code="320100",
                title="高级工程师",
                status="active",
                created_at=self.clock.now(),
                approved_at=self.clock.now(),
            )
            session.add(expert)
            await session.flush()
            for code in specialties:
                session.add(ExpertSpecialty(expert_id=expert.id, code=code))
        return actor

    async def witnessed(self, draw_id: str, supervisor: Actor | None = None) -> dict[str, Any]:
        """A supervisor (a new one unless given) commits to a random witness for the draw, so the platform
        seals its seed, then reveals it, which runs the draw; answers the draw as the run returned it."""
        from evaluation import draw

        supervisor = supervisor or await self.organisation("supervisor")
        witness, nonce = secrets.token_bytes(32), secrets.token_bytes(32)
        url = f"/api/v1/evaluation/draws/{draw_id}"
        r = await self.post(
            f"{url}/witness", supervisor, json={"witness_commitment": draw.witness_commitment(witness, nonce)}
        )
        assert r.status_code == 200, r.text
        r = await self.post(f"{url}/run", supervisor, json={"witness": witness.hex(), "nonce": nonce.hex()})
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def convene(self, agency: Actor, tender_id: str, *, experts: int = 5) -> dict[str, Any]:
        """Draw a committee of `experts` from a fresh pool, accept every invitation, open the room at its
        time, have every member declare no conflict and elect seat 1 chair.
        Answers {"room_id", "draw_id", "members": {seat: Actor}}."""
        pool = [await self.expert() for _ in range(experts + 2)]
        evaluation_at = self.clock.now() + timedelta(hours=2)
        r = await self.post(
            f"/api/v1/evaluation/tenders/{tender_id}/draws",
            agency,
            json={
                "evaluation_at": evaluation_at.isoformat(),
                "quotas": [{"specialty": "A02", "seats": experts}],
            },
        )
        assert r.status_code == 201, r.text
        draw_id = r.json()["id"]
        await self.witnessed(draw_id)
        for actor in pool:
            for inv in (await self.get("/api/v1/evaluation/invitations", actor)).json():
                if inv["status"] == "invited":
                    a = await self.post(
                        f"/api/v1/evaluation/invitations/{inv['id']}/answer", actor, json={"accept": True}
                    )
                    assert a.status_code == 200, a.text
        await self.at(evaluation_at)
        members: dict[int, Actor] = {}
        room_id = ""
        for actor in pool:
            rooms = (await self.get("/api/v1/evaluation/rooms", actor)).json()
            if not rooms:
                continue
            room_id = rooms[0]["id"]
            view = (await self.get(f"/api/v1/evaluation/rooms/{room_id}", actor)).json()
            members[view["my_seat"]] = actor
            d = await self.post(
                f"/api/v1/evaluation/rooms/{room_id}/declaration", actor, json={"no_conflict": True}
            )
            assert d.status_code == 200, d.text
        assert len(members) == experts, members
        for actor in members.values():
            v = await self.post(f"/api/v1/evaluation/rooms/{room_id}/chair", actor, json={"seat": 1})
            assert v.status_code == 200, v.text
            if v.json()["chair_seat"] is not None:
                break
        return {"room_id": room_id, "draw_id": draw_id, "members": members}

    async def evaluate(
        self,
        agency: Actor,
        tender_id: str,
        *,
        experts: int = 5,
        scores: Any = None,
        fail: Collection[str] = (),
        unsigned: Mapping[int, str | None] | None = None,
    ) -> dict[str, Any]:
        """Convene the committee (`convene`), pass every bid the platform did not reject (W-19) on every
        criterion (except the bids in `fail`, which every member fails on Q1 with a reason), score the
        qualified bids (`scores(seat, bid_id, leaf)`,
        by default the same for everyone), have the chair draw up the report and every member sign it (except
        the seats in `unsigned`: each writes its dissent instead, or with None stays silent until the room's
        time box ends). Answers {"room_id", "draw_id", "members": {seat: Actor}, "report_hash"}."""
        committee = await self.convene(agency, tender_id, experts=experts)
        return await self.deliberate(committee, scores=scores, fail=fail, unsigned=unsigned)

    async def deliberate(
        self,
        committee: dict[str, Any],
        *,
        scores: Any = None,
        fail: Collection[str] = (),
        unsigned: Mapping[int, str | None] | None = None,
    ) -> dict[str, Any]:
        """The work of a convened committee in its room (`committee` as `convene` answers it, or a room of a
        later evaluation round with the same members), as `evaluate` describes it."""
        room_id, members = committee["room_id"], committee["members"]
        room = (await self.get(f"/api/v1/evaluation/rooms/{room_id}", members[1])).json()
        scheme = room["scheme"]
        # a lot whose contract is signed is not decided again in a later round
        lots = [lot for lot in room["lots"] if lot["status"] == "open"]
        for actor in members.values():
            for lot in lots:
                votes: list[dict[str, Any]] = []
                for b in lot["bids"]:
                    if b.get("rejected"):  # the platform rejected it (W-19): not the committee's to review
                        continue
                    for q in scheme["qualification"]:
                        vote: dict[str, Any] = {"bid_id": b["bid_id"], "criterion": q["code"], "passed": True}
                        if b["bid_id"] in fail and q["code"] == "Q1":
                            vote.update(passed=False, reason="营业执照已过期")
                        votes.append(vote)
                rv = await self.post(
                    f"/api/v1/evaluation/rooms/{room_id}/reviews",
                    actor,
                    json={"lot_id": lot["id"], "votes": votes},
                )
                assert rv.status_code == 201, rv.text
        if scheme["method"] == "comprehensive":
            leaves = _subjective_leaves(scheme)
            for seat, actor in members.items():
                for lot in lots:
                    sheet = {
                        b["bid_id"]: {
                            code: (scores(seat, b["bid_id"], code) if scores else maximum * 8 // 10)
                            for code, maximum in leaves
                        }
                        for b in lot["bids"]
                        if b["bid_id"] not in fail and not b.get("rejected")
                    }
                    sv = await self.post(
                        f"/api/v1/evaluation/rooms/{room_id}/sheets",
                        actor,
                        json={"lot_id": lot["id"], "scores": sheet},
                    )
                    assert sv.status_code == 201, sv.text
        mr = await self.post(f"/api/v1/evaluation/rooms/{room_id}/report", members[1])
        assert mr.status_code == 200, mr.text
        report_hash = mr.json()["report_hash"]
        from evaluation import report as evaluation_report

        for seat, actor in members.items():
            answer: dict[str, str] = {"report_hash": report_hash}
            if unsigned and seat in unsigned:
                dissent = unsigned[seat]
                if dissent is None:
                    continue
                answer["dissent"] = dissent
            else:
                key = self.keys[actor.organisation_id].signing
                assert key is not None
                signature = key.sign(evaluation_report.signing_message(report_hash))
                answer["signature"] = base64.b64encode(signature).decode()
            sg = await self.post(f"/api/v1/evaluation/rooms/{room_id}/signatures", actor, json=answer)
            assert sg.status_code == 200, sg.text
        return {**committee, "report_hash": report_hash}

    async def contract(self, agency: Actor, tender_id: str, award_id: str, price_fen: int) -> Response:
        """Record the signed contract of an award, signed today, without a performance security."""
        document = await self.document(
            agency, tender_id, b"%PDF contract", kind="contract", filename="contract.pdf"
        )
        return await self.post(
            f"/api/v1/tenders/{tender_id}/contracts",
            agency,
            json={
                "award_id": award_id,
                "object_key": document["object_key"],
                "filename": "contract.pdf",
                "price_fen": price_fen,
                "performance_security_fen": 0,
                "signed_on": self.clock.now().date().isoformat(),
            },
        )


def record_copies(folder: str) -> Callable[[str], bool]:
    """Whether a key is a copy into a tender's record under `folder` (`records/<code>/<folder>/…`)."""
    return lambda key: key.startswith("records/") and f"/{folder}/" in key


class GatedStore(LocalObjectStore):
    """The real local store, whose chosen writes wait at a gate while it holds them, as a large file's copy
    would still be running, so a test acts while they are in flight and no verdict depends on timing.

    `holds` chooses the writes by key. Every write of the local store goes through `put_stream`
    (`put_bytes` included), so the gate stands there. It extends the local store rather than wrapping any
    `ObjectStore` because the server's embedded upload routes serve only a `LocalObjectStore`.
    """

    def __init__(self, *args: Any, holds: Callable[[str], bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.holds = holds
        self._holding = False
        self._gate = asyncio.Event()
        self._arrivals: asyncio.Queue[str] = asyncio.Queue()

    @staticmethod
    def of(api: Api) -> GatedStore:
        """The store of the runtime `api` drives, which its fixture built gated."""
        store = api.runtime.store
        assert isinstance(store, GatedStore)
        return store

    async def hold(self, requests: Iterable[Coroutine[Any, Any, Answer]]) -> list[asyncio.Task[Answer]]:
        """Close the gate, start the requests, and wait until each has one chosen write standing at it."""
        self._gate.clear()
        self._holding = True
        tasks = [asyncio.create_task(r) for r in requests]
        for _ in tasks:
            await asyncio.wait_for(self._arrivals.get(), HOLD_TIMEOUT)
        return tasks

    def stop_holding(self) -> None:
        """Let chosen writes that arrive from now on go through; those at the gate keep waiting."""
        self._holding = False

    async def release(self, tasks: Iterable[asyncio.Task[Answer]]) -> list[Answer]:
        """Open the gate to every write waiting there and return the held requests' answers."""
        self._holding = False
        self._gate.set()
        return list(await asyncio.wait_for(asyncio.gather(*tasks), HOLD_TIMEOUT))

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        if self._holding and self.holds(key):
            self._arrivals.put_nowait(key)
            await self._gate.wait()
        return await super().put_stream(key, chunks, content_type=content_type)


def _subjective_leaves(scheme: dict[str, Any]) -> list[tuple[str, int]]:
    """The criteria members score by hand, with their maxima in centi-points."""
    from evaluation import scoring

    return [
        (c.code, c.max_cp) for c in scoring.leaves(scoring.scheme_from_json(scheme)) if c.kind == "subjective"
    ]


DEADLINE = shanghai(2026, 3, 23, 10)
AFTER_WINDOW = DEADLINE + timedelta(minutes=31)
