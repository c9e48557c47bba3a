"""PUT one package's tracking number through the JSON API, as the fulfillment page's form and the CSV upload do."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.test_fulfillment_api import mails_of
from tests.test_fulfillment_pages import a_planned_shop, first_batch_id


async def test_the_maker_puts_one_packages_tracking_number_and_its_backer_is_told_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, _slug = await a_planned_shop(client, sessions, addressed=2)
    a, _b, held_back = shop.pledge_ids
    batch = await first_batch_id(sessions, shop)
    packages = f"{shop.base}/batches/{batch}/packages"
    body = {"carrier": "SF Express", "tracking_number": "SF100"}

    early = await client.put(f"{packages}/{a}/tracking", json=body, headers=shop.maker.headers)
    assert early.status_code == 409, early.text
    confirmed = await client.post(f"{shop.base}/batches/{batch}/confirm", headers=shop.maker.headers)
    assert confirmed.status_code == 200, confirmed.text

    saved = await client.put(f"{packages}/{a}/tracking", json=body, headers=shop.maker.headers)
    assert saved.status_code == 200, saved.text
    assert saved.json() == {
        "received": 1,
        "shipped": 1,
        "corrected": 0,
        "unchanged": 0,
        "campaign_status": "fulfilling",
    }
    again = await client.put(f"{packages}/{a}/tracking", json=body, headers=shop.maker.headers)
    assert again.json()["unchanged"] == 1
    [mail] = await mails_of(sessions, "shipped")
    assert mail.facts["tracking_number"] == "SF100"
    mine = (await client.get(f"/api/v1/pledges/{a}", headers=shop.backers[0].headers)).json()
    assert (mine["shipment"]["carrier"], mine["shipment"]["tracking_number"]) == ("SF Express", "SF100")

    empty = await client.put(
        f"{packages}/{a}/tracking", json={"carrier": "EMS", "tracking_number": " "}, headers=shop.maker.headers
    )
    assert empty.status_code == 422
    assert [e["field"] for e in empty.json()["errors"]] == ["tracking_number"]
    # A pledge held back for want of an address has no package on the list; nor has anyone on another batch.
    for pledge, on_batch in ((held_back, batch), (a, str(uuid.uuid4())), (str(uuid.uuid4()), batch)):
        missing = await client.put(
            f"{shop.base}/batches/{on_batch}/packages/{pledge}/tracking", json=body, headers=shop.maker.headers
        )
        assert missing.status_code == 404, (pledge, missing.text)
    operator = await client.put(f"{packages}/{a}/tracking", json=body, headers=shop.operator.headers)
    assert operator.status_code == 403
    assert len(await mails_of(sessions, "shipped")) == 1

    document = (await client.get("/api/v1/openapi.json")).json()
    put = document["paths"]["/api/v1/campaigns/{campaign_id}/batches/{batch_id}/packages/{pledge_id}/tracking"]["put"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(put["responses"])
