"""A maker edits or deletes an update they posted, from the API and from the pages: an edit keeps it posted where it
was (marked edited, not mailed again); a deletion asks once more, and the update leaves the page and the list."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Mail
from tests.helpers import launched_campaign, sign_up
from tests.pages import logged_in, post_form
from tests.test_updates import back, post, titles


async def mails_sent(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).where(Mail.kind == "campaign_update")) or 0)


async def test_a_maker_edits_an_update_and_it_stays_posted_without_a_second_mail(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    await back(sessions, campaign, await sign_up(client, "Backer"))
    first = (await post(client, maker, campaign, title="Tooling", body="The mould is **late**.")).json()
    second = (await post(client, maker, campaign, title="Later news")).json()
    mailed = await mails_sent(sessions)

    edited = await client.patch(
        f"/api/v1/campaigns/{campaign['id']}/updates/{first['id']}",
        json={"title": "Tooling done", "body": "The mould is **ready**."},
        headers=maker.headers,
    )
    assert edited.status_code == 200, edited.text
    out: dict[str, Any] = edited.json()
    assert (out["title"], out["visibility"], out["created_at"]) == ("Tooling done", "public", first["created_at"])
    assert "<strong>ready</strong>" in out["body_html"] and out["edited_at"] is not None
    assert await titles(client, None, campaign) == [second["title"], "Tooling done"]
    assert await mails_sent(sessions) == mailed

    refused = await client.patch(
        f"/api/v1/campaigns/{campaign['id']}/updates/{first['id']}", json={"title": ""}, headers=maker.headers
    )
    assert refused.status_code == 422 and [e["field"] for e in refused.json()["errors"]] == ["title"]


async def test_a_deleted_update_leaves_the_list_and_the_campaign_page(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(client, sessions)
    doomed = (await post(client, maker, campaign, title="Wrong date")).json()
    await post(client, maker, campaign, title="Right date")
    path = f"/api/v1/campaigns/{campaign['id']}/updates/{doomed['id']}"
    assert (await client.delete(path, headers=operator.headers)).status_code == 403
    assert (await client.delete(path, headers=maker.headers)).status_code == 204
    assert await titles(client, None, campaign) == ["Right date"]
    assert "Wrong date" not in (await client.get(f"/campaigns/{campaign['slug']}")).text
    assert (await client.delete(path, headers=maker.headers)).status_code == 404
    assert (await client.patch(path, json={"title": "Back"}, headers=maker.headers)).status_code == 404


async def test_the_maker_edits_and_deletes_an_update_from_the_pages_and_deleting_asks_first(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    posted = (await post(client, maker, campaign, title="Tooling", body="Mould ordered.")).json()
    manage = f"/maker/campaigns/{campaign['slug']}"
    edit = f"{manage}/updates/{posted['id']}/edit"
    async with logged_in(client, maker) as browser:
        assert f'href="{edit}"' in (await browser.get(manage)).text
        form = (await browser.get(edit)).text
        assert 'value="Tooling"' in form and "Mould ordered." in form

        refused = await post_form(
            browser, edit, {"title": "", "body": "Mould paid.", "visibility": "public"}, form_page=edit
        )
        assert refused.status_code == 422
        assert "This field is required." in refused.text and "Mould paid." in refused.text

        saved = await post_form(
            browser, edit, {"title": "Tooling paid", "body": "Mould paid.", "visibility": "backers"}, form_page=edit
        )
        assert saved.status_code == 303
        assert "Your update is saved." in (await browser.get(saved.headers["location"])).text
        own_page = (await browser.get(f"/campaigns/{campaign['slug']}")).text
        assert "Tooling paid" in own_page and "edited" in own_page

        delete = f"{manage}/updates/{posted['id']}/delete"
        await browser.get("/?lang=zh_CN")  # signed in, the switch sets the account's language
        asked = await post_form(browser, delete, {}, form_page=edit)
        assert asked.status_code == 200 and "删除这条动态" in asked.text
        assert await titles(client, maker, campaign) == ["Tooling paid"]
        done = await post_form(browser, delete, {"confirm": "yes"}, form_page=edit)
        assert done.status_code == 303
    assert await titles(client, maker, campaign) == []
    assert "Tooling paid" not in (await client.get(f"/campaigns/{campaign['slug']}")).text
