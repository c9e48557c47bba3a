"""Late pledges, turning them on: the maker chooses, while the campaign is a draft, which tiers (and add-ons) stay on
sale after the deadline (same or new price, optional limit); they open once the campaign is funded."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.late_pledges import LateReward
from campaigns.models import Campaign
from tests.helpers import create_space, drafted_campaign, make_admin, make_operator, sign_up
from tests.pages import logged_in, post_form
from tests.test_batch_dates import put_dates
from tests.test_fulfillment_api import batches_of, open_shop, plan


async def test_the_maker_chooses_late_rewards_in_the_draft_and_they_open_once_funded(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    maker, stranger = await sign_up(client, "Maker"), await sign_up(client, "Stranger")
    campaign = await drafted_campaign(client, maker, space)
    early, pair = campaign["tiers"]
    url = f"/api/v1/campaigns/{campaign['id']}/late-pledges"
    [sensor] = campaign["products"]
    add_on = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/add-ons",
        json={"product_id": sensor["id"], "price": 2_900},
        headers=maker.headers,
    )
    assert add_on.status_code == 201, add_on.text
    spare = add_on.json()["id"]

    assert (await client.get(url, headers=maker.headers)).json()["tiers"] == []
    chosen = await client.put(
        url,
        json={"tiers": [{"tier_id": early["id"], "price": 17_900, "quantity_limit": 50}, {"tier_id": pair["id"]}]},
        headers=maker.headers,
    )
    assert chosen.status_code == 200, chosen.text
    body = chosen.json()
    assert body["open"] is False and body["currency"] == "CNY"
    assert [(t["title"], t["price"], t["quantity_limit"], t["remaining"], t["open"]) for t in body["tiers"]] == [
        ("Early bird", 17_900, 50, 50, False),
        ("Pair", 34_900, None, None, False),
    ]
    assert (await client.get(url, headers=operator.headers)).json() == body

    # Chosen again, the choice replaces the one before.
    only_pair = await client.put(url, json={"tiers": [{"tier_id": pair["id"]}]}, headers=maker.headers)
    assert [t["title"] for t in only_pair.json()["tiers"]] == ["Pair"]

    for bad, field in (
        ({"tiers": [{"tier_id": str(uuid.uuid4())}]}, "tiers"),
        ({"tiers": [{"tier_id": pair["id"]}, {"tier_id": pair["id"]}]}, "tiers"),
        ({"tiers": [{"tier_id": pair["id"], "price": 0}]}, "tiers.0.price"),
        ({"tiers": [{"tier_id": pair["id"], "quantity_limit": -1}]}, "tiers.0.quantity_limit"),
        ({"tiers": [{"tier_id": pair["id"], "price": 1}]}, "tiers[0].price"),
    ):
        refused = await client.put(url, json=bad, headers=maker.headers)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["errors"][0]["field"] == field, refused.json()
    assert (await client.put(url, json={"tiers": []}, headers=stranger.headers)).status_code == 404
    assert (await client.put(url, json={"tiers": []}, headers=operator.headers)).status_code == 403
    assert [t["title"] for t in (await client.get(url, headers=maker.headers)).json()["tiers"]] == ["Pair"]

    # The same choice on the maker's page: ticked tiers, a late price typed in yuan, a limit.
    page = f"/maker/campaigns/{campaign['slug']}/late-pledges"
    async with logged_in(client, maker) as browser:
        shown = await browser.get(page)
        assert shown.status_code == 200 and f'name="sell_{pair["id"]}" type="checkbox" value="1" checked' in shown.text
        bad = await post_form(
            browser,
            page,
            {f"sell_{early['id']}": "1", f"price_{early['id']}": "abc", f"limit_{early['id']}": "²"},
            form_page=page,
        )
        assert bad.status_code == 422 and "like 149.00" in bad.text and "above zero" in bad.text
        assert f'name="sell_addon_{spare}"' in shown.text
        saved = await post_form(
            browser,
            page,
            {
                f"sell_{early['id']}": "1",
                f"price_{early['id']}": "179.00",
                f"limit_{early['id']}": "50",
                f"sell_addon_{spare}": "1",
                f"price_addon_{spare}": "19.00",
                f"limit_addon_{spare}": "30",
            },
            form_page=page,
        )
        assert saved.status_code == 303, saved.text
        chinese = await browser.get(page + "?lang=zh_CN")
        assert "截止后继续出售" in chinese.text and 'value="179.00"' in chinese.text
    only_early = (await client.get(url, headers=maker.headers)).json()["tiers"]
    assert [(t["title"], t["price"], t["quantity_limit"]) for t in only_early] == [("Early bird", 17_900, 50)]
    late_add_ons = (await client.get(url, headers=maker.headers)).json()["add_ons"]
    assert [(a["add_on_id"], a["price"], a["quantity_limit"], a["remaining"]) for a in late_add_ons] == [
        (spare, 1_900, 30, 30)
    ]
    restored = await client.put(
        url,
        json={"tiers": [{"tier_id": pair["id"]}], "add_ons": [{"add_on_id": spare, "price": 1_900}]},
        headers=maker.headers,
    )
    assert restored.status_code == 200

    submitted = await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)
    assert submitted.status_code == 200, submitted.text
    async with logged_in(client, operator) as browser:
        review = await browser.get(f"/operator/campaigns/{campaign['slug']}")
        assert review.status_code == 200
        late = review.text.split('id="late-pledges"')[1].split("</section>")[0]
        assert "Pair" in late and "Early bird" not in late and "Unlimited" in late
        assert "19.00" in late.split('id="late-add-ons"')[1] and "29.00 before the deadline" in late
        chinese = await browser.get(f"/operator/campaigns/{campaign['slug']}?lang=zh_CN")
        assert "截止后支持" in chinese.text
    frozen = await client.put(url, json={"tiers": []}, headers=maker.headers)
    assert frozen.status_code == 409 and frozen.json()["type"] == "not-draft"

    async with sessions.begin() as session:
        await session.execute(update(Campaign).where(Campaign.id == uuid.UUID(campaign["id"])).values(status="funded"))
    opened = await client.get(url)
    assert opened.status_code == 200 and opened.json()["open"] is True
    assert [(t["title"], t["open"]) for t in opened.json()["tiers"]] == [("Pair", True)]


async def test_a_buyer_sees_the_next_batchs_month_and_the_maker_ends_a_late_reward(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    async with sessions.begin() as session:
        session.add(LateReward(tier_id=shop.kit_id, campaign_id=shop.campaign_id, price=25_000))
    url = f"{shop.base}/late-pledges"
    before_plan = (await client.get(url)).json()
    assert before_plan["open"] is True and before_plan["estimated_ship_month"] is None
    await plan(sessions, shop.campaign_id)
    [batch] = await batches_of(client, shop)
    assert (await put_dates(client, shop, batch["id"], "2027-02-01", "2027-03-10")).status_code == 200
    assert (await client.get(url)).json()["estimated_ship_month"] == "2027-03"

    end = f"{url}/{shop.kit_id}/end"
    assert (await client.post(end, headers=shop.stranger.headers)).status_code == 403
    assert (await client.post(end, headers=shop.operator.headers)).status_code == 403
    assert (await client.post(f"{url}/{uuid.uuid4()}/end", headers=shop.maker.headers)).status_code == 404
    ended = await client.post(end, headers=shop.maker.headers)
    assert ended.status_code == 200, ended.text
    assert ended.json()["open"] is False and ended.json()["tiers"][0]["open"] is False
    again = await client.post(end, headers=shop.maker.headers)
    assert again.status_code == 200 and again.json() == ended.json()
