"""A person downloads everything Kindling holds about them: account, pledges with their addresses, campaigns, mails,
sessions and tokens, as one JSON document, and nobody else's."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.account_helpers import log_in_form, new_browser
from tests.factories import address, insert_campaign, insert_pledge, insert_product, insert_tier
from tests.helpers import sign_up


async def test_a_user_downloads_everything_held_about_them_and_nothing_of_others(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ada = await sign_up(client, "Ada")
    ben = await sign_up(client, "Ben")
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, title="Grove sensor kit")
        await insert_product(session, campaign, "SKU-A", batch_size=100)
        tier = await insert_tier(session, campaign, {"SKU-A": 1})
        mine = await insert_pledge(
            session, campaign, tier, backer_id=ada.id, given_address=address(name="Ada Lovelace")
        )
        await insert_pledge(session, campaign, tier, backer_id=ben.id, given_address=address(name="Ben Other"))
        made = await insert_campaign(session, maker_id=ada.id, status="draft", title="Ada's lamp")

    async with new_browser(client) as browser:
        await log_in_form(browser, ada.email)
        assert 'href="/api/v1/me/export"' in (await browser.get("/account")).text
        download = await browser.get("/api/v1/me/export")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="kindling-account.json"'
    document = download.json()
    assert document["account"]["email"] == ada.email and document["account"]["email_verified"] is True
    [pledge] = document["pledges"]
    assert pledge["id"] == str(mine.id) and pledge["campaign_title"] == "Grove sensor kit"
    assert pledge["address"]["name"] == "Ada Lovelace" and pledge["currency"] == "CNY"
    assert [c["id"] for c in document["campaigns"]] == [str(made.id)]
    assert {m["kind"] for m in document["mails"]} == {"welcome", "verify_email"}
    assert all(m["to_address"] == ada.email for m in document["mails"])
    assert len(document["sessions"]) == 1 and len(document["tokens"]) == 1
    assert "Ben Other" not in download.text and ben.email not in download.text
    assert uuid.UUID(document["account"]["id"]) == uuid.UUID(ada.id)
    assert (await client.get("/api/v1/me/export")).status_code == 401
