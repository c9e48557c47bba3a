"""Every step that cannot be undone asks once more: the page's form posts, the answer says what will happen and asks
for a confirmation (a form posting the same fields with confirm=yes), and only that second post acts."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Pledge, Product, Tier
from fulfillment.models import Batch
from payments.models import Payout
from tests.factories import insert_campaign, insert_pledge, insert_product, insert_tier
from tests.helpers import Actor, sign_up
from tests.pages import logged_in, post_form
from tests.test_fulfillment_pages import a_planned_shop, first_batch_id
from tests.test_money_pages import books, funded_campaign, milestone_ids, milestone_status, shown

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
CONFIRMED = {"confirm": "yes"}


def asked(answer: httpx.Response, *phrases: str) -> dict[str, str]:
    """The confirmation page's checks: it asks (200, a Confirm form with confirm=yes) and says each phrase. Returns
    the fields its form posts back."""
    assert answer.status_code == 200, answer.text
    assert 'class="confirm-consequences"' in answer.text
    for phrase in phrases:
        assert phrase in answer.text, phrase
    fields = dict(HIDDEN.findall(answer.text))
    assert fields.pop("confirm") == "yes"
    fields.pop("csrf_token")
    return fields


async def a_campaign_of(
    sessions: async_sessionmaker[AsyncSession], maker: Actor, status: str
) -> tuple[Campaign, Product, Tier]:
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, maker_id=maker.id, status=status)
        campaign.goal = 250_000
        product = await insert_product(session, campaign, "LAMP", batch_size=50)
        tier = await insert_tier(session, campaign, {"LAMP": 1}, price=14_900, title="Early bird")
    return campaign, product, tier


async def campaign_status(sessions: async_sessionmaker[AsyncSession], campaign_id: uuid.UUID) -> str:
    async with sessions() as session:
        return (await session.get_one(Campaign, campaign_id)).status


# The maker's campaign


async def test_launching_shows_the_deadline_and_goal_first_and_launches_only_when_confirmed(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker = await sign_up(client, "Maker")
    campaign, _product, _tier = await a_campaign_of(sessions, maker, "approved")
    base = f"/maker/campaigns/{campaign.slug}"
    async with logged_in(client, maker) as browser:
        first = await post_form(browser, f"{base}/launch", {}, form_page=base)
        fields = asked(
            first,
            "Launch this campaign now?",
            "takes pledges for 30 days, until",
            f"Its goal is {shown(250_000)}",
            "Its 1 reward tier is open",
            f'action="{base}/launch"',
            f'href="{base}"',
        )
        assert fields == {}
        assert await campaign_status(sessions, campaign.id) == "approved"
        chinese = await post_form(browser, f"{base}/launch?lang=zh_CN", {}, form_page=base)
        asked(chinese, "现在上线这个项目吗？", shown(250_000, "zh_CN"))
        assert await campaign_status(sessions, campaign.id) == "approved"

        launched = await post_form(browser, f"{base}/launch", CONFIRMED, form_page=base)
        assert launched.status_code == 303 and "done=launched" in launched.headers["location"]
    assert await campaign_status(sessions, campaign.id) == "live"


async def test_removing_a_tier_names_it_and_its_price_first(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker = await sign_up(client, "Maker")
    campaign, _product, tier = await a_campaign_of(sessions, maker, "draft")
    base = f"/maker/campaigns/{campaign.slug}"
    path = f"{base}/tiers/{tier.id}/remove"
    async with logged_in(client, maker) as browser:
        asked(
            await post_form(browser, path, {}, form_page=base),
            "Remove this reward tier?",
            f"“Early bird” at {shown(14_900)}",
            "It cannot be brought back",
        )
        async with sessions() as session:
            assert await session.get(Tier, tier.id) is not None
        removed = await post_form(browser, path, CONFIRMED, form_page=base)
        assert removed.status_code == 303 and "done=tier-removed" in removed.headers["location"]
    async with sessions() as session:
        assert await session.get(Tier, tier.id) is None


async def test_removing_a_product_says_which_tiers_still_name_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker = await sign_up(client, "Maker")
    campaign, product, _tier = await a_campaign_of(sessions, maker, "draft")
    base = f"/maker/campaigns/{campaign.slug}"
    path = f"{base}/products/{product.id}/remove"
    async with logged_in(client, maker) as browser:
        asked(
            await post_form(browser, path, {}, form_page=base),
            "Remove this product?",
            "(SKU LAMP)",
            "1 reward tier still names its SKU (Early bird)",
        )
        async with sessions() as session:
            assert await session.get(Product, product.id) is not None
        removed = await post_form(browser, path, CONFIRMED, form_page=base)
        assert removed.status_code == 303
    async with sessions() as session:
        assert await session.get(Product, product.id) is None


async def test_someone_elses_campaign_is_not_offered_a_confirmation(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, stranger = await sign_up(client, "Maker"), await sign_up(client, "Stranger")
    campaign, _product, tier = await a_campaign_of(sessions, maker, "draft")
    async with logged_in(client, stranger) as browser:
        path = f"/maker/campaigns/{campaign.slug}/tiers/{tier.id}/remove"
        refused = await post_form(browser, path, {}, form_page="/maker")
        assert refused.status_code == 404 and "Early bird" not in refused.text


# The backer's pledge


async def test_cancelling_a_pledge_asks_first_and_cancels_only_when_confirmed(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, backer = await sign_up(client, "Maker"), await sign_up(client, "Bea")
    campaign, _product, tier = await a_campaign_of(sessions, maker, "live")
    async with sessions.begin() as session:
        live = await session.get_one(Campaign, campaign.id)
        live.launched_at, live.ends_at = datetime.now(UTC), datetime.now(UTC) + timedelta(days=10)
        await session.flush()
        pledge = await insert_pledge(session, live, tier, backer_id=backer.id, status="active")
    page = f"/me/pledges/{pledge.id}"
    async with logged_in(client, backer) as browser:
        asked(
            await post_form(browser, f"{page}/cancel", {}, form_page=page),
            "Cancel this pledge?",
            f"Your pledge of {shown(14_900)} for “Early bird” is cancelled.",
            "your card will not be charged",
            "You can pledge again while the campaign is live, until",
            f'href="{page}"',
        )
        async with sessions() as session:
            assert (await session.get_one(Pledge, pledge.id)).status == "active"
        cancelled = await post_form(browser, f"{page}/cancel", CONFIRMED, form_page=page)
        assert cancelled.status_code == 303 and "done=cancelled" in cancelled.headers["location"]
    async with sessions() as session:
        assert (await session.get_one(Pledge, pledge.id)).status == "cancelled"


# The batch and the escrow


async def test_confirming_a_batch_shows_what_it_makes_and_that_it_will_not_change(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await a_planned_shop(client, sessions, addressed=3)
    batch_id = await first_batch_id(sessions, shop)
    page = f"/maker/campaigns/{slug}/fulfillment"
    path = f"{page}/batches/{batch_id}/confirm"
    async with logged_in(client, shop.maker) as browser:
        asked(
            await post_form(browser, path, {}, form_page=page),
            "Confirm batch 1 with the factory?",
            "Batch 1 is fixed as it stands: 3 pledges, making BOARD × ",
            "It will not change again",
            "the campaign moves on to making rewards",
        )
        asked(await post_form(browser, f"{path}?lang=zh_CN", {}, form_page=page), "它不会再改变")
        async with sessions() as session:
            assert (await session.get_one(Batch, uuid.UUID(batch_id))).status == "planned"
        confirmed = await post_form(browser, path, CONFIRMED, form_page=page)
        assert confirmed.status_code == 303
    async with sessions() as session:
        assert (await session.get_one(Batch, uuid.UUID(batch_id))).status == "confirmed"


async def test_asking_releasing_and_paying_a_milestone_each_show_the_amount_first(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await funded_campaign(client, sessions)
    first, *_rest = await milestone_ids(sessions, funded)
    held = (await books(sessions, funded)).escrow_held
    request_path = f"/maker/campaigns/{funded.slug}/milestones/{first}/request"
    release_path = f"/operator/campaigns/{funded.slug}/milestones/{first}/release"
    payout_path = f"/operator/campaigns/{funded.slug}/milestones/{first}/payout"
    funding = f"/maker/campaigns/{funded.slug}/funding"

    async with logged_in(client, funded.maker) as browser:
        asked(
            await post_form(browser, request_path, {}, form_page=funding),
            "Ask for the release of “Funding”?",
            f"to release {shown(held // 2)} (50%) from escrow to you",
        )
        assert await milestone_status(sessions, first) == "pending"
        assert (await post_form(browser, request_path, CONFIRMED, form_page=funding)).status_code == 303
    assert await milestone_status(sessions, first) == "requested"

    async with logged_in(client, funded.operator) as browser:
        asked(
            await post_form(browser, release_path, {}, form_page="/operator/milestones"),
            "Release “Funding” to the maker?",
            f"{shown(held // 2)} moves from escrow to Maker. It cannot be moved back.",
            f"Escrow then holds {shown(held - held // 2)}",
        )
        assert await milestone_status(sessions, first) == "requested"
        released = await post_form(browser, release_path, CONFIRMED, form_page="/operator/milestones")
        assert released.status_code == 303
        assert await milestone_status(sessions, first) == "released"

        fields = asked(
            await post_form(browser, payout_path, {"bank_reference": "ICBC-7"}, form_page="/operator/milestones"),
            "Mark this payout paid?",
            f"The payout of {shown(held // 2)} to Maker for “Funding” is recorded as paid",
            "ICBC-7",
        )
        assert fields == {"bank_reference": "ICBC-7"}
        async with sessions() as session:
            assert (await session.scalar(select(Payout.status))) == "pending"
        paid = await post_form(browser, payout_path, fields | CONFIRMED, form_page="/operator/milestones")
        assert paid.status_code == 303
    async with sessions() as session:
        payout = await session.scalar(select(Payout))
        assert payout is not None and payout.status == "paid" and payout.bank_reference == "ICBC-7"


async def test_a_blank_bank_reference_is_refused_before_anything_is_asked(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await funded_campaign(client, sessions)
    first, *_rest = await milestone_ids(sessions, funded)
    async with logged_in(client, funded.maker) as browser:
        path = f"/maker/campaigns/{funded.slug}/milestones/{first}/request"
        await post_form(browser, path, CONFIRMED, form_page=f"/maker/campaigns/{funded.slug}/funding")
    async with logged_in(client, funded.operator) as browser:
        path = f"/operator/campaigns/{funded.slug}/milestones/{first}/release"
        await post_form(browser, path, CONFIRMED, form_page="/operator/milestones")
        path = f"/operator/campaigns/{funded.slug}/milestones/{first}/payout"
        blank = await post_form(browser, path, {"bank_reference": " "}, form_page="/operator/milestones")
        assert blank.status_code == 422 and "confirm-consequences" not in blank.text
