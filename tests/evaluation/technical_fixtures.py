"""A committee seated for the technical evaluation of a tender of two envelopes (双信封): drawn, invited,
declared and chaired in its room, so its chair can record the technical result through the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from httpx import Response

from tests.helpers import Actor, Api

BASE = "/api/v1/evaluation"


@dataclass
class Seated:
    """A tender's committee in its open room, by seat (seat 1 chairs); `spare` are pool experts not drawn."""

    room_id: str
    members: dict[int, Actor]
    spare: list[Actor]

    @property
    def url(self) -> str:
        return f"{BASE}/rooms/{self.room_id}"

    @property
    def chair(self) -> Actor:
        return self.members[1]


async def seat_committee(
    api: Api, agency: Actor, tender: dict[str, Any], known: Sequence[Actor] = ()
) -> Seated:
    """A committee of five for `tender` drawn from seven new experts and the `known` ones (the pool is
    everyone's), every invitation accepted, the room open an hour later, every member declared and seat 1
    elected chair."""
    pool = [*known, *[await api.expert() for _ in range(7)]]
    opens_at = api.clock.now() + timedelta(hours=1)
    r = await api.post(
        f"{BASE}/tenders/{tender['id']}/draws",
        agency,
        json={"evaluation_at": opens_at.isoformat(), "quotas": [{"specialty": "A02", "seats": 5}]},
    )
    assert r.status_code == 201, r.text
    await api.witnessed(r.json()["id"])
    members: dict[int, Actor] = {}
    spare: list[Actor] = []
    room_id = ""
    for actor in pool:
        for invitation in (await api.get(f"{BASE}/invitations", actor)).json():
            if invitation["status"] == "invited":
                answer = await api.post(
                    f"{BASE}/invitations/{invitation['id']}/answer", actor, json={"accept": True}
                )
                assert answer.status_code == 200, answer.text
    for actor in pool:
        rooms = [r for r in (await api.get(f"{BASE}/rooms", actor)).json() if r["tender_id"] == tender["id"]]
        if not rooms:
            spare.append(actor)
            continue
        room_id = rooms[0]["id"]
        members[(await api.get(f"{BASE}/rooms/{room_id}", actor)).json()["my_seat"]] = actor
    assert sorted(members) == [1, 2, 3, 4, 5]
    seated = Seated(room_id, members, spare)
    await api.at(opens_at)
    for actor in members.values():
        declared = await api.post(f"{seated.url}/declaration", actor, json={"no_conflict": True})
        assert declared.status_code == 200, declared.text
    for voter in (1, 2, 3):
        voted = await api.post(f"{seated.url}/chair", members[voter], json={"seat": 1})
        assert voted.status_code == 200, voted.text
    return seated


def verdicts(
    passed: list[str], failed: list[str], reason: str = "技术方案不满足实质性要求"
) -> dict[str, Any]:
    """A technical result's body: the bids of `passed` pass, those of `failed` do not, each with a reason."""
    return {
        "verdicts": [{"bid_id": b, "passed": True, "reason": "满足招标文件技术要求"} for b in passed]
        + [{"bid_id": b, "passed": False, "reason": reason} for b in failed]
    }


async def judge(api: Api, seated: Seated, passed: list[str], failed: list[str]) -> Response:
    """The chair records the technical result in the room."""
    return await api.post(f"{seated.url}/technical-result", seated.chair, json=verdicts(passed, failed))


async def judged_and_opened(
    api: Api, agency: Actor, tender: dict[str, Any], passed: list[str], failed: list[str]
) -> Response:
    """The committee records the technical result (`passed` pass, `failed` do not) and the agency opens
    the commercial envelopes: the agency's answer."""
    seated = await seat_committee(api, agency, tender)
    r = await judge(api, seated, passed, failed)
    assert r.status_code == 200, r.text
    return await api.post(f"/api/v1/tenders/{tender['id']}/commercial-opening", agency)
