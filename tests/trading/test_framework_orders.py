"""Orders under a framework agreement beyond the first ones: the completion of the framework ending an open
mini-competition unawarded, with its quotes unread."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.helpers import Api
from tests.trading.test_framework import YUAN, admitted, competition, notices


async def test_completing_a_framework_ends_an_open_competition_unawarded_with_its_quotes_unread(
    api: Api, tmp_path: Path
) -> None:
    from tests.archive.test_archive import _key, _verify

    fw = await admitted(api)
    order = await competition(api, fw)
    quotes = f"{fw.url}/competitions/{order['id']}/quotes"
    for i, price in ((1, 2_500_000 * YUAN), (2, 2_400_000 * YUAN)):
        q = await api.post(quotes, fw.admitted[i].bidder, json={"price_fen": price})
        assert q.status_code == 201, q.text

    done = await api.post(f"/api/v1/tenders/{fw.tender['id']}/complete", fw.agency)

    assert done.status_code == 200, done.text
    [ended] = (await api.get(f"{fw.url}/orders", fw.agency)).json()
    assert (ended["status"], ended["organisation_id"], ended["price_fen"]) == ("closed", None, None)
    api.clock.set(api.clock.now() + timedelta(hours=25))  # past its closing time: still nobody reads them
    assert (await api.get(quotes, fw.agency)).json() == []
    assert (await api.get(quotes, await api.bootstrap_centre())).json() == []
    mine = (await api.get(quotes, fw.admitted[1].bidder)).json()
    assert [q["price_fen"] for q in mine] == [2_500_000 * YUAN]
    # it can neither be closed into an award nor quoted in any more
    r = await api.post(f"{fw.url}/competitions/{order['id']}/close", fw.agency)
    assert r.status_code == 409, r.text
    r = await api.post(quotes, fw.admitted[0].bidder, json={"price_fen": 2_000_000 * YUAN})
    assert r.status_code == 422 and r.json()["rule"] == "G-01", r.text
    [notice] = await notices(api, fw, "framework_order")
    assert "终止" in notice["title"]
    body = (await api.get(f"/api/v1/notices/{notice['id']}")).text
    assert str(2_400_000 * YUAN) not in body and str(2_500_000 * YUAN) not in body
    # the archive keeps the quotes unread, and checks
    await api.tick()
    got = (await api.get(f"/api/v1/tenders/{fw.tender['id']}/archive", fw.agency)).json()
    [archived] = got["manifest"]["framework"]["orders"]
    assert archived["status"] == "closed" and [q["price_fen"] for q in archived["quotes"]] == [None, None]
    code, output = _verify(tmp_path, got, _key(api))
    assert code == 0 and "0 order(s) under the framework agreement" in output, output
