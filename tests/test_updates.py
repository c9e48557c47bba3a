"""A maker's updates: posted on a launched campaign, public or for backers only, mailed to every backer."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Mail, Pledge
from campaigns.update_mail import fan_out_update
from service.mail import send_update_mails
from service.settings import Settings
from tests.helpers import Actor, create_space, drafted_campaign, launched_campaign, make_admin, sign_up


async def back(
    sessions: async_sessionmaker[AsyncSession], campaign: dict[str, Any], backer: Actor, status: str = "active"
) -> None:
    """A pledge as the pledging rules leave it once the card is on file."""
    tier = campaign["tiers"][1]
    async with sessions.begin() as session:
        session.add(
            Pledge(
                campaign_id=uuid.UUID(campaign["id"]),
                backer_id=uuid.UUID(backer.id),
                tier_id=uuid.UUID(tier["id"]),
                status=status,
                amount=tier["price"],
                currency=campaign["currency"],
            )
        )


async def post(client: httpx.AsyncClient, actor: Actor | None, campaign: dict[str, Any], **body: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/campaigns/{campaign['id']}/updates",
        json={"title": "Update", "body": "News.", **body},
        headers=actor.headers if actor else {},
    )


async def titles(client: httpx.AsyncClient, actor: Actor | None, campaign: dict[str, Any]) -> list[str]:
    response = await client.get(f"/api/v1/campaigns/{campaign['id']}/updates", headers=actor.headers if actor else {})
    assert response.status_code == 200, response.text
    return [u["title"] for u in response.json()["items"]]


async def test_a_maker_posts_an_update_with_sanitised_markdown(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    response = await post(
        client,
        maker,
        campaign,
        title="First batch is out",
        body="## 第一批\n\nThe **first** batch shipped. <img src=x onerror=alert(1)> [log](javascript:alert(1))",
    )
    assert response.status_code == 201, response.text
    update = response.json()
    assert update["visibility"] == "public"
    assert update["campaign_id"] == campaign["id"] and update["author_id"] == maker.id
    assert update["body"].startswith("## 第一批")
    assert "<h2>第一批</h2>" in update["body_html"] and "<strong>first</strong>" in update["body_html"]
    assert "onerror" not in update["body_html"] and "javascript:" not in update["body_html"]
    assert update["created_at"].endswith("Z")


async def test_only_the_maker_posts_and_only_once_launched(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(client, sessions)
    stranger = await sign_up(client, "Stranger")
    assert (await post(client, None, campaign)).status_code == 401
    assert (await post(client, stranger, campaign)).status_code == 403
    assert (await post(client, operator, campaign)).status_code == 403
    assert (await post(client, maker, {"id": str(uuid.uuid4())})).status_code == 404
    bad = await post(client, maker, campaign, title="", body="", visibility="friends")
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"title", "body", "visibility"}

    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    draft = await drafted_campaign(client, maker, await create_space(client, admin))
    early = await post(client, maker, draft)
    assert early.status_code == 409 and early.json()["type"] == "not-launched"
    assert (await post(client, stranger, draft)).status_code == 404


async def test_backers_see_backers_only_updates_and_others_see_public_ones(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(client, sessions)
    backer, walked_away, stranger = [await sign_up(client, name) for name in ("Backer", "Gone", "Stranger")]
    await back(sessions, campaign, backer)
    await back(sessions, campaign, walked_away, status="cancelled")
    for title, visibility in (("Hello world", "public"), ("Backer secret", "backers"), ("Shipping soon", "public")):
        assert (await post(client, maker, campaign, title=title, visibility=visibility)).status_code == 201

    everything = ["Shipping soon", "Backer secret", "Hello world"]
    public = ["Shipping soon", "Hello world"]
    assert await titles(client, backer, campaign) == everything
    assert await titles(client, maker, campaign) == everything
    assert await titles(client, operator, campaign) == everything
    assert await titles(client, walked_away, campaign) == public
    assert await titles(client, stranger, campaign) == public
    assert await titles(client, None, campaign) == public


async def test_every_backer_gets_each_update_by_mail(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    backers = [await sign_up(client, name) for name in ("One", "Two")]
    for backer in backers:
        await back(sessions, campaign, backer)
    await back(sessions, campaign, await sign_up(client, "Unconfirmed"), status="requires_payment_method")
    for title, body, visibility in (("Public news", "Hi", "public"), ("For you", "Thanks **all**", "backers")):
        posted = await post(client, maker, campaign, title=title, body=body, visibility=visibility)
        # What the worker does with the fan-out job the post asked for (tests/test_update_fanout.py has the rest).
        async with sessions.begin() as session:
            await fan_out_update(session, posted.json()["id"], base_url="http://kindling.test")
        await send_update_mails(sessions, settings, posted.json()["id"])  # no SMTP: kept for /dev/mail

    async with sessions() as session:
        sent = list(await session.scalars(select(Mail).where(Mail.kind == "campaign_update").order_by(Mail.created_at)))
    assert sorted((m.to_address, m.facts["update_title"]) for m in sent) == sorted(
        (b.email, title) for b in backers for title in ("Public news", "For you")
    )
    backers_only = next(m for m in sent if m.facts["update_title"] == "For you")
    assert backers_only.facts["visibility"] == "backers"
    assert "<p>Thanks <strong>all</strong></p>" in (backers_only.html_body or "")


async def test_updates_page_with_a_cursor(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    for n in range(3):
        await post(client, maker, campaign, title=f"Update {n}")
    first = (await client.get(f"/api/v1/campaigns/{campaign['id']}/updates?limit=2")).json()
    assert [u["title"] for u in first["items"]] == ["Update 2", "Update 1"]
    rest = await client.get(f"/api/v1/campaigns/{campaign['id']}/updates", params={"cursor": first["next_cursor"]})
    assert [u["title"] for u in rest.json()["items"]] == ["Update 0"] and rest.json()["next_cursor"] is None
    assert (await client.get(f"/api/v1/campaigns/{uuid.uuid4()}/updates")).status_code == 404
