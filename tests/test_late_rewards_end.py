"""Late pledges for a reward (and a late add-on) end on their own when the campaign's last open batch holding it is
confirmed: there is no batch left for them to join. Either way they end, by hand or so, the audit log says so."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.late_pledges import LateAddOn, LateReward
from campaigns.models import AddOn, AuditEntry, Campaign, Product
from campaigns.pledges.models import PledgeItem
from fulfillment.models import Allocation
from tests.factories import insert_tier
from tests.test_fulfillment_api import batches_of, open_shop, plan


async def test_confirming_the_last_open_batch_ends_late_pledges_for_its_rewards_and_says_so_in_the_audit_log(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    async with sessions.begin() as session:
        # Boards two to a batch (one spare besides): the three kits make two batches. Nobody backed the case alone.
        await session.execute(
            update(Product).where(Product.sku == "BOARD", Product.campaign_id == shop.campaign_id).values(batch_size=3)
        )
        campaign = await session.get_one(Campaign, shop.campaign_id)
        case_only = await insert_tier(session, campaign, {"CASE": 1}, title="Case alone")
        session.add_all(
            [
                LateReward(tier_id=shop.kit_id, campaign_id=shop.campaign_id, price=25_000),
                LateReward(tier_id=case_only.id, campaign_id=shop.campaign_id, price=5_000),
            ]
        )
    await plan(sessions, shop.campaign_id)
    first, second = await batches_of(client, shop)
    url = f"{shop.base}/late-pledges"
    async with sessions.begin() as session:
        # Two cases sold late as add-ons: one in a pledge of the second batch (a line written straight, as a pre-order
        # with it would hold), the other in none.
        case = await session.scalar(
            select(Product).where(Product.sku == "CASE", Product.campaign_id == shop.campaign_id)
        )
        assert case is not None
        in_batch, in_none = (AddOn(campaign_id=shop.campaign_id, product_id=case.id, price=900) for _ in range(2))
        session.add_all([in_batch, in_none])
        await session.flush()
        session.add_all(
            [LateAddOn(add_on_id=one.id, campaign_id=shop.campaign_id, price=800) for one in (in_batch, in_none)]
        )
        holder = await session.scalar(
            select(Allocation.pledge_id).where(Allocation.batch_id == uuid.UUID(second["id"])).limit(1)
        )
        assert holder is not None
        session.add(
            PledgeItem(
                pledge_id=holder,
                position=90,
                kind="addon",
                ref_id=case.id,
                quantity=1,
                unit_amount=800,
                sku="CASE",
                add_on_id=in_batch.id,
            )
        )

    async def add_ons_on_sale() -> dict[str, bool]:
        offers = (await client.get(url)).json()["add_ons"]
        return {offer["add_on_id"]: offer["open"] for offer in offers}

    async def on_sale() -> dict[str, bool]:
        offers = (await client.get(url)).json()["tiers"]
        return {offer["title"]: offer["open"] for offer in offers}

    confirmed = await client.post(f"{shop.base}/batches/{first['id']}/confirm", headers=shop.maker.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert await on_sale() == {"Starter kit": True, "Case alone": True}  # batch 2 is still open to join
    assert await add_ons_on_sale() == {str(in_batch.id): True, str(in_none.id): True}

    _first, second = await batches_of(client, shop)  # planned again: the line added changed a pledge's contents
    confirmed = await client.post(f"{shop.base}/batches/{second['id']}/confirm", headers=shop.maker.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert await on_sale() == {"Starter kit": False, "Case alone": True}
    assert await add_ons_on_sale() == {str(in_batch.id): False, str(in_none.id): True}

    ended = await client.post(f"{url}/{case_only.id}/end", headers=shop.maker.headers)
    assert ended.status_code == 200 and await on_sale() == {"Starter kit": False, "Case alone": False}
    assert (await client.post(f"{url}/{case_only.id}/end", headers=shop.maker.headers)).status_code == 200

    async with sessions() as session:
        entries = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "late_reward.end").order_by(AuditEntry.created_at)
            )
        )
    assert [(entry.object_id, str(entry.actor_id), entry.details.get("last_batch_confirmed")) for entry in entries] == [
        (str(shop.kit_id), shop.maker.id, 2),
        (str(case_only.id), shop.maker.id, None),
    ]
    assert {entry.space_id for entry in entries} == {campaign.space_id}
    async with sessions() as session:
        add_on_entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "late_add_on.end")))
    assert [(entry.object_id, entry.details.get("last_batch_confirmed")) for entry in add_on_entries] == [
        (str(in_batch.id), 2)
    ]
