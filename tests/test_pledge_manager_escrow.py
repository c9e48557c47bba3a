"""Giving an add-on back after the close is refunded from escrow: when milestone releases have handed escrow to the
maker already, the refund is refused whole (409 `escrow-short`) and nothing changes."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import AddOn, Campaign
from payments.gateway import StripeGateway
from payments.ledger import campaign_ledger, record_release
from payments.milestones import milestones_of
from payments.models import Milestone, Refund
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import many_backers
from tests.money_helpers import run_jobs, stripe_work
from tests.pages import logged_in, post_form
from tests.pledge_manager_helpers import CABLE_PRICE, CABLE_SHIPPING_CN, A, back_lamp, fund, launched_shop

LEFT_IN_ESCROW = 1_000  # less than either add-on's refund


async def release_all_but(sessions: async_sessionmaker[AsyncSession], campaign_id: str, left: int) -> None:
    """The first milestone released to the maker: all that escrow holds but `left`."""
    async with sessions.begin() as session:
        campaign = await session.get_one(Campaign, uuid.UUID(campaign_id))
        held = (await campaign_ledger(session, campaign.id)).escrow_held
        first = (await milestones_of(session, campaign.id))[0]
        await session.execute(
            update(Milestone)
            .where(Milestone.id == first.id)
            .values(status="released", amount=held - left, released_at=text("now()"))
        )
        await session.refresh(first)
        await record_release(session, campaign, first)


async def test_an_add_on_given_back_after_escrow_was_released_is_refused_as_escrow_short_and_nothing_changes(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    shop = await launched_shop(stripe_client, sessions, cables=5)
    [backer] = await many_backers(sessions, 1)
    pledge = await back_lamp(stripe_client, stripe_server, shop, backer)
    items = f"{A}/pledges/{pledge['id']}/items"
    shade = await stripe_client.post(
        items, json={"add_on_id": shop.shade["id"], "variant": {"colour": "black"}}, headers=backer.headers
    )
    assert shade.status_code == 201, shade.text
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)
    cable = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=backer.headers)
    assert cable.status_code == 201, cable.text
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)  # the batches planned again with the cable
    before = (await stripe_client.get(f"{A}/pledges/{pledge['id']}", headers=backer.headers)).json()
    await release_all_but(sessions, shop.campaign["id"], LEFT_IN_ESCROW)

    # The shade was paid with the pledge, the cable by its own charge: both refunds would come out of escrow.
    shade_line = next(item["id"] for item in before["items"] if item["sku"] == "SHADE-BLC")
    cable_line = next(item["id"] for item in before["items"] if item["sku"] == "CABLE")
    for line, needed in ((shade_line, 1_900), (cable_line, CABLE_PRICE + CABLE_SHIPPING_CN)):
        refused = await stripe_client.delete(f"{items}/{line}", headers=backer.headers)
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["type"] == "escrow-short"
        assert f"Escrow holds {LEFT_IN_ESCROW} CNY" in problem["detail"] and f"needs {needed}" in problem["detail"]

    after = (await stripe_client.get(f"{A}/pledges/{pledge['id']}", headers=backer.headers)).json()
    assert after == before  # the lines, the amount and the status as they were
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Refund)) == 0
        assert (await session.get_one(AddOn, uuid.UUID(shop.cable["id"]))).remaining == 4
        assert (await campaign_ledger(session, uuid.UUID(shop.campaign["id"]))).escrow_held == LEFT_IN_ESCROW
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        assert await run_jobs(work, jobs) == []  # no refund job was asked for

    # The manager page says so in the backer's words, and keeps the add-on.
    manage = f"/me/pledges/{pledge['id']}/manage"
    async with logged_in(stripe_client, backer) as browser:
        page = await post_form(browser, f"{manage}/items/{shade_line}/remove", {"confirm": "yes"}, form_page=manage)
    assert page.status_code == 409, page.text
    assert "ask the maker" in page.text and "10.00" in page.text
    assert (await stripe_client.get(f"{A}/pledges/{pledge['id']}", headers=backer.headers)).json() == before
