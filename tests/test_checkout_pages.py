"""Backing a campaign through the pages, without JavaScript where no card is involved, and the backer's pledge pages."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Pledge, Tier
from fulfillment.models import Allocation, Batch, Shipment
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import (
    DELIVERY,
    Actor,
    add_product,
    add_tier,
    approve_campaign,
    confirm_card_setup,
    create_campaign,
    create_space,
    launched_campaign,
    make_admin,
    make_operator,
    month_in_english,
    sign_up,
)
from tests.pages import log_in, new_browser

# A signed-in backer reads the pages in their account's language: the language switch (?lang=) changes it.
ZH = {"lang": "zh_CN"}
EN = {"lang": "en"}


# Arrangements


@asynccontextmanager
async def another_browser(client: httpx.AsyncClient, actor: Actor) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A second browser (its own cookies) on the same app, logged in as `actor`."""
    async with new_browser(client) as browser:
        yield browser, await log_in(browser, actor)


def ids_of(campaign: dict[str, Any]) -> tuple[str, str]:
    """The "Early bird" (limited, 149.00) and "Pair" (unlimited, 349.00) tier ids."""
    return campaign["tiers"][0]["id"], campaign["tiers"][1]["id"]


async def pledge_in_db(sessions: async_sessionmaker[AsyncSession], pledge_id: str) -> Pledge:
    async with sessions() as session:
        return await session.get_one(Pledge, uuid.UUID(pledge_id))


async def pledge_through_the_form(
    browser: httpx.AsyncClient, token: str, campaign: dict[str, Any], **fields: str
) -> str:
    """Step 1 as a browser without JavaScript sends it; returns the new pledge's id."""
    data = {"csrf_token": token, "tier": campaign["tiers"][0]["id"], "bonus": "", "shipping_country": "CN"}
    data |= {"action": "pledge"} | fields
    answer = await browser.post(f"/campaigns/{campaign['slug']}/back", data=data)
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/me/pledges/([0-9a-f-]{36})/card", answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


async def activate(browser: httpx.AsyncClient, token: str, stripe: EmbeddedStripe, pledge_id: str) -> None:
    """What card.js does once the page's card form has given Stripe a good card."""
    page = await browser.get(f"/me/pledges/{pledge_id}/card")
    secret = re.search(r'data-client-secret="([^"]+)"', page.text)
    assert secret, page.text
    assert (await confirm_card_setup(stripe, secret.group(1))).status_code == 200
    confirmed = await browser.post(f"/api/v1/pledges/{pledge_id}/confirm", headers={"X-CSRF-Token": token})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "active"


async def china_only_campaign(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """A live campaign whose one tier ("Desk lamp", 99.00) ships to China only, for 12.00."""
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space, title="Desk Lamp")
    await add_product(client, maker, campaign)
    await add_tier(client, maker, campaign, title="Desk lamp", price=9_900, shipping=[{"country": "CN", "fee": 1_200}])
    assert (await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)).status_code == 200
    await approve_campaign(client, operator, campaign)
    launched = await client.post(f"/api/v1/campaigns/{campaign['id']}/launch", headers=maker.headers)
    assert launched.status_code == 200, launched.text
    return dict(launched.json())


# Step 1: choosing


async def test_choosing_a_reward_without_javascript_creates_the_pledge_and_opens_the_card_page(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    early_bird, pair = ids_of(campaign)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))

    page = await stripe_client.get(f"/campaigns/{campaign['slug']}/back?tier={early_bird}")
    assert page.status_code == 200
    assert re.search(
        rf'<input class="choice-input" type="radio" name="tier" id="tier-{early_bird}" value="{early_bird}" checked',
        page.text,
    )
    assert f'value="{pair}"' in page.text
    assert "Early bird" in page.text and "CN¥149.00" in page.text and "10 of 10 left" in page.text
    assert f"Estimated delivery: {month_in_english(DELIVERY)}" in page.text
    # The tier ships to China and to everywhere else: every country is offered, China with its own fee first.
    assert '<option value="CN">China · +CN¥10.00</option>' in page.text
    assert (
        'optgroup label="Everywhere else · +CN¥50.00"' in page.text
        and '<option value="FR">France</option>' in page.text
    )
    assert "You won't be charged unless the campaign reaches its goal by" in page.text
    assert '<script src="/static/js/checkout.js" defer></script>' in page.text

    # "Update total" (the form's answer for browsers without JavaScript) prices the choice and pledges nothing.
    data = {"csrf_token": token, "tier": early_bird, "bonus": "10.50", "shipping_country": "CN", "action": "update"}
    priced = await stripe_client.post(f"/campaigns/{campaign['slug']}/back", data=data)
    assert priced.status_code == 200
    assert '<dd data-summary="total" aria-live="polite">CN¥169.50</dd>' in priced.text
    assert '<dd data-summary="shipping">CN¥10.00</dd>' in priced.text
    async with sessions() as session:
        assert list(await session.scalars(select(Pledge))) == []

    pledge_id = await pledge_through_the_form(stripe_client, token, campaign, bonus="10.50")
    pledge = await pledge_in_db(sessions, pledge_id)
    assert pledge.status == "requires_payment_method"
    assert (pledge.amount, pledge.bonus, pledge.shipping_fee) == (14_900 + 1_050 + 1_000, 1_050, 1_000)
    assert pledge.shipping_country == "CN" and pledge.setup_intent_client_secret


async def test_a_pledge_without_a_reward_needs_no_country(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    pledge_id = await pledge_through_the_form(
        stripe_client, token, campaign, tier="none", bonus="88", shipping_country=""
    )
    pledge = await pledge_in_db(sessions, pledge_id)
    assert (pledge.tier_id, pledge.amount, pledge.shipping_country) == (None, 8_800, None)


async def test_bad_choices_are_shown_beside_their_fields_and_nothing_is_saved(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign = await china_only_campaign(stripe_client, sessions)
    lamp = campaign["tiers"][0]["id"]
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    path = f"/campaigns/{campaign['slug']}/back"

    page = await stripe_client.get(path)  # one tier: it is chosen already, and its only country too
    assert f'value="{lamp}" checked' in page.text
    assert '<option value="CN" selected>China · +CN¥12.00</option>' in page.text
    assert "<optgroup" not in page.text and 'value="FR"' not in page.text

    async def refused(**fields: str) -> str:
        data = {"csrf_token": token, "tier": lamp, "bonus": "", "shipping_country": "CN", "action": "pledge"} | fields
        answer = await stripe_client.post(path, data=data)
        assert answer.status_code == 422, answer.text
        assert "Please correct the fields marked below." in answer.text
        return answer.text

    text = await refused(bonus="1.234")
    assert '<p class="field-error" id="field-bonus-error">CNY amounts have at most 2 decimal places.</p>' in text
    assert 'value="1.234"' in text  # what was typed is shown again
    text = await refused(bonus="lots")
    assert "Enter an amount in CNY, like 149.00." in text
    text = await refused(shipping_country="")
    assert (
        '<p class="field-error" id="field-shipping_country-error">Choose the country your reward ships to.</p>' in text
    )
    text = await refused(shipping_country="US")
    assert "This reward does not ship to United States. Choose another country or another reward." in text
    text = await refused(shipping_country="ZZ")
    assert "Choose a country from the list." in text
    text = await refused(tier="")
    assert '<p class="field-error" id="field-tier-error">Choose a reward, or pledge without one.</p>' in text
    text = await refused(tier="none", bonus="0")
    assert "Without a reward, enter an amount of more than zero." in text

    chinese = await stripe_client.post(
        path, data={"csrf_token": token, "tier": lamp, "bonus": "", "shipping_country": "US"}, params=ZH
    )
    assert "这个回报不寄往美国。请选择其他国家或地区，或其他回报。" in chinese.text
    async with sessions() as session:
        assert list(await session.scalars(select(Pledge))) == []


async def test_a_sold_out_reward_is_shown_disabled_and_refused(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, limited_quantity=1)
    early_bird, _pair = ids_of(campaign)
    first = await sign_up(stripe_client, "First")
    taken = await stripe_client.post(
        f"/api/v1/campaigns/{campaign['id']}/pledges",
        json={"tier_id": early_bird, "shipping_country": "CN"},
        headers=first.headers,
    )
    assert taken.status_code == 201, taken.text

    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    page = await stripe_client.get(f"/campaigns/{campaign['slug']}/back?tier={early_bird}")
    assert re.search(rf'id="tier-{early_bird}" value="{early_bird}" disabled', page.text)
    assert "Sold out" in page.text
    answer = await stripe_client.post(
        f"/campaigns/{campaign['slug']}/back",
        data={"csrf_token": token, "tier": early_bird, "shipping_country": "CN", "action": "pledge"},
    )
    assert answer.status_code == 422
    assert (
        '<p class="field-error" id="field-tier-error">This reward is sold out. Choose another one.</p>' in answer.text
    )
    async with sessions() as session:
        assert await session.scalar(select(Tier.remaining).where(Tier.id == uuid.UUID(early_bird))) == 0


async def test_a_backer_who_already_pledged_is_sent_to_that_pledge(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    assert 'name="tier"' in (await stripe_client.get(f"/campaigns/{campaign['slug']}/back")).text
    pledge_id = await pledge_through_the_form(stripe_client, token, campaign)

    page = await stripe_client.get(f"/campaigns/{campaign['slug']}/back")
    assert "You already back this project." in page.text
    assert f'href="/me/pledges/{pledge_id}/card"' in page.text and f'href="/me/pledges/{pledge_id}"' in page.text
    assert 'name="tier"' not in page.text

    again = await stripe_client.post(
        f"/campaigns/{campaign['slug']}/back",
        data={"csrf_token": token, "tier": campaign["tiers"][1]["id"], "shipping_country": "CN", "action": "pledge"},
    )
    assert again.status_code == 409
    assert "You already back this project. You can change that pledge instead of making a new one." in again.text
    assert f'href="/me/pledges/{pledge_id}"' in again.text
    async with sessions() as session:
        assert len(list(await session.scalars(select(Pledge)))) == 1


async def test_the_checkout_asks_to_log_in_and_refuses_closed_campaigns_and_makers(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(stripe_client, sessions)
    early_bird, _pair = ids_of(campaign)
    path = f"/campaigns/{campaign['slug']}/back"
    away = await stripe_client.get(f"{path}?tier={early_bird}")
    assert away.status_code == 303
    assert away.headers["location"] == f"/signup?next=%2Fcampaigns%2F{campaign['slug']}%2Fback%3Ftier%3D{early_bird}"

    async with another_browser(stripe_client, maker) as (browser, token):
        own = await browser.get(path)
        assert own.status_code == 403 and "makers cannot back their own project" in own.text
        refused = await browser.post(path, data={"csrf_token": token, "tier": early_bird, "shipping_country": "CN"})
        assert refused.status_code == 403

    await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    async with sessions.begin() as session:
        await session.execute(
            update(Campaign).where(Campaign.id == uuid.UUID(campaign["id"])).values(status="unsuccessful")
        )
    closed = await stripe_client.get(path, params=ZH)
    assert closed.status_code == 409 and "这个项目现在不接受支持。" in closed.text
    assert (await stripe_client.get("/campaigns/no-such-campaign/back")).status_code == 404


async def test_forms_without_the_csrf_token_are_refused_and_change_nothing(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    early_bird, pair = ids_of(campaign)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    pledge_id = await pledge_through_the_form(stripe_client, token, campaign)

    base = {"tier": early_bird, "shipping_country": "CN", "action": "pledge"}
    assert (await stripe_client.post(f"/campaigns/{campaign['slug']}/back", data=base)).status_code == 403
    changed = await stripe_client.post(f"/me/pledges/{pledge_id}/change", data=base | {"tier": pair})
    assert changed.status_code == 403
    assert (
        await stripe_client.post(f"/me/pledges/{pledge_id}/cancel", data={"csrf_token": "forged"})
    ).status_code == 403
    address = {"name": "Li Lei", "line1": "1 Road", "city": "Shenzhen", "postal_code": "518057", "country": "CN"}
    assert (await stripe_client.post(f"/me/pledges/{pledge_id}/address", data=address)).status_code == 403
    # The pages' scripts prove themselves with the header; without it the API refuses the cookie.
    assert (await stripe_client.post(f"/api/v1/pledges/{pledge_id}/confirm")).status_code == 403
    pledge = await pledge_in_db(sessions, pledge_id)
    assert (pledge.status, str(pledge.tier_id), pledge.address) == ("requires_payment_method", early_bird, None)


# Step 2: the card


async def test_the_card_page_carries_the_stripe_keys_and_loads_stripe_js(
    stripe_client: httpx.AsyncClient,
    stripe_settings: Settings,
    stripe_server: EmbeddedStripe,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    pledge_id = await pledge_through_the_form(stripe_client, token, campaign, bonus="5")
    pledge = await pledge_in_db(sessions, pledge_id)

    page = await stripe_client.get(f"/me/pledges/{pledge_id}/card")
    assert page.status_code == 200
    assert f'data-publishable-key="{stripe_settings.stripe_publishable_key}"' in page.text
    assert f'data-client-secret="{pledge.setup_intent_client_secret}"' in page.text
    assert f'data-confirm-url="/api/v1/pledges/{pledge_id}/confirm"' in page.text
    assert f'data-csrf-token="{token}"' in page.text
    assert f'<script src="{stripe_settings.stripe_js_url}"></script>' in page.text
    assert stripe_settings.stripe_js_url == stripe_server.js_url
    assert '<script src="/static/js/card.js"></script>' in page.text
    assert "Save card and pledge CN¥164.00" in page.text
    assert "You won't be charged unless the campaign reaches its goal by" in page.text
    origin = stripe_server.api_base.rstrip("/")
    csp = page.headers["content-security-policy"]
    assert f"script-src 'self' {origin}" in csp and "'unsafe-inline'" not in csp
    assert (await stripe_client.get("/static/js/card.js")).status_code == 200

    chinese = await stripe_client.get(f"/me/pledges/{pledge_id}/card", params=ZH)
    assert "添加银行卡" in chinese.text and 'data-locale="zh"' in chinese.text

    await activate(stripe_client, token, stripe_server, pledge_id)
    # Once the card is saved, the card page has nothing left to do.
    done = await stripe_client.get(f"/me/pledges/{pledge_id}/card")
    assert done.status_code == 303 and done.headers["location"] == f"/me/pledges/{pledge_id}"


async def test_a_card_can_no_longer_be_added_once_the_campaign_stops_taking_pledges(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    pledge_id = await pledge_through_the_form(stripe_client, token, campaign)
    # While the campaign takes pledges: the card form, and the link to it.
    page = await stripe_client.get(f"/me/pledges/{pledge_id}/card")
    assert "card.js" in page.text and 'id="card-form"' in page.text
    assert '/card">Add your card</a>' in (await stripe_client.get("/me/pledges")).text
    async with sessions.begin() as session:
        await session.execute(
            update(Campaign).where(Campaign.id == uuid.UUID(campaign["id"])).values(status="unsuccessful")
        )
    page = await stripe_client.get(f"/me/pledges/{pledge_id}/card")
    assert page.status_code == 200
    assert "This campaign no longer takes pledges, so this one cannot be completed." in page.text
    assert "card.js" not in page.text and 'id="card-form"' not in page.text
    listed = await stripe_client.get("/me/pledges")
    assert "No card was added before the campaign stopped taking pledges." in listed.text
    assert '/card">Add your card</a>' not in listed.text


async def test_an_errored_pledge_offers_to_update_the_card(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    pledge_id = await pledge_through_the_form(stripe_client, token, campaign)
    await activate(stripe_client, token, stripe_server, pledge_id)
    async with sessions.begin() as session:
        await session.execute(
            update(Campaign).where(Campaign.id == uuid.UUID(campaign["id"])).values(status="successful")
        )
        await session.execute(
            update(Pledge)
            .where(Pledge.id == uuid.UUID(pledge_id))
            .values(status="errored", retry_until=datetime.now(UTC) + timedelta(days=7))
        )

    listed = await stripe_client.get("/me/pledges")
    assert "Payment failed" in listed.text and "We could not charge your card." in listed.text
    assert (
        f'<a class="btn btn-primary btn-small" href="/me/pledges/{pledge_id}/card">Update your card</a>' in listed.text
    )
    page = await stripe_client.get(f"/me/pledges/{pledge_id}/card")
    assert page.status_code == 200
    assert "<h1>Update your card</h1>" in page.text
    # A new SetupIntent is asked for when the backer gives the card (the old one has succeeded).
    assert 'data-client-secret=""' in page.text
    assert f'data-payment-method-url="/api/v1/pledges/{pledge_id}/payment-method"' in page.text
    assert 'data-updating="1"' in page.text
    assert "You can give a new card until" in page.text

    # What card.js does with the backer's session: a new SetupIntent, the card to Stripe, then confirm.
    csrf = {"X-CSRF-Token": token}
    made = await stripe_client.post(f"/api/v1/pledges/{pledge_id}/payment-method", headers=csrf)
    assert made.status_code == 200, made.text
    secret = made.json()["payment"]["client_secret"]
    assert secret and secret != (await pledge_in_db(sessions, pledge_id)).payment_method_id
    assert (await confirm_card_setup(stripe_server, secret)).status_code == 200
    retried = await stripe_client.post(f"/api/v1/pledges/{pledge_id}/confirm", headers=csrf)
    assert retried.status_code == 200, retried.text
    # The charge is retried by a job; the page polls the pledge until it is collected.
    assert retried.json()["status"] == "errored"
    assert (await stripe_client.get(f"/api/v1/pledges/{pledge_id}")).status_code == 200
    notice = await stripe_client.get(f"/me/pledges/{pledge_id}?done=card-given")
    assert "Your new card is saved and we are charging it now." in notice.text


# My pledges


async def test_my_pledges_shows_each_pledge_with_its_status_and_next_step_in_both_languages(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    empty = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    nothing = await stripe_client.get("/me/pledges")
    assert "You haven't backed a project yet" in nothing.text
    pledge_id = await pledge_through_the_form(stripe_client, empty, campaign)

    listed = await stripe_client.get("/me/pledges")
    assert f'<a href="/campaigns/{campaign["slug"]}">{campaign["title"]}</a>' in listed.text
    assert "Early bird" in listed.text and "CN¥159.00" in listed.text
    assert '<span class="badge badge-pending">Card needed</span>' in listed.text
    assert f'href="/me/pledges/{pledge_id}/card">Add your card</a>' in listed.text

    await activate(stripe_client, empty, stripe_server, pledge_id)
    listed = await stripe_client.get("/me/pledges")
    assert '<span class="badge badge-success">Active</span>' in listed.text
    assert "Your card is saved. It will be charged CN¥159.00 only if the campaign reaches its goal by" in listed.text
    chinese = await stripe_client.get("/me/pledges", params=ZH)
    assert "我的支持" in chinese.text and "有效" in chinese.text and "¥159.00" in chinese.text

    detail = await stripe_client.get(f"/me/pledges/{pledge_id}?done=card-saved&lang=en")
    assert detail.status_code == 200
    assert "Your card is saved and your pledge is active." in detail.text
    assert "What you pledged" in detail.text and "Reward price" in detail.text and "CN¥149.00" in detail.text
    assert "Ships to" in detail.text and "China" in detail.text and month_in_english(DELIVERY) in detail.text
    assert "Change your reward, extra support or country" in detail.text and "Cancel this pledge" in detail.text
    zh_detail = await stripe_client.get(f"/me/pledges/{pledge_id}", params=ZH)
    assert "你的支持" in zh_detail.text and "中国" in zh_detail.text and "取消这次支持" in zh_detail.text


async def test_changing_a_pledge_through_the_form(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, limited_quantity=1)
    early_bird, pair = ids_of(campaign)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    pledge_id = await pledge_through_the_form(stripe_client, token, campaign)
    await activate(stripe_client, token, stripe_server, pledge_id)

    # The backer holds the only Early bird slot: it is theirs to keep, not sold out to them.
    page = await stripe_client.get(f"/me/pledges/{pledge_id}")
    assert re.search(rf'id="tier-{early_bird}" value="{early_bird}" checked>', page.text)
    assert "Your current reward" in page.text

    path = f"/me/pledges/{pledge_id}/change"
    data = {"csrf_token": token, "tier": pair, "bonus": "1,000", "shipping_country": "US", "action": "update"}
    priced = await stripe_client.post(path, data=data)
    assert priced.status_code == 200 and "CN¥1,399.00" in priced.text
    assert (await pledge_in_db(sessions, pledge_id)).tier_id == uuid.UUID(early_bird)

    bad = await stripe_client.post(path, data=data | {"action": "change", "bonus": "0.001"})
    assert bad.status_code == 422 and "CNY amounts have at most 2 decimal places." in bad.text
    assert '<details class="card disclosure disclosure-card" open>' in bad.text

    moved = await stripe_client.post(path, data=data | {"action": "change"})
    assert moved.status_code == 303 and moved.headers["location"] == f"/me/pledges/{pledge_id}?done=changed"
    pledge = await pledge_in_db(sessions, pledge_id)
    assert (str(pledge.tier_id), pledge.amount, pledge.shipping_country) == (pair, 34_900 + 100_000 + 5_000, "US")
    assert "Your pledge is changed." in (await stripe_client.get(moved.headers["location"])).text

    # Someone else takes the freed Early bird; moving back to it is refused beside the choice.
    other = await sign_up(stripe_client, "Cy")
    taken = await stripe_client.post(
        f"/api/v1/campaigns/{campaign['id']}/pledges",
        json={"tier_id": early_bird, "shipping_country": "CN"},
        headers=other.headers,
    )
    assert taken.status_code == 201
    back = await stripe_client.post(path, data=data | {"action": "change", "tier": early_bird, "bonus": ""})
    assert back.status_code == 422 and "This reward is sold out. Choose another one." in back.text
    assert str((await pledge_in_db(sessions, pledge_id)).tier_id) == pair


async def test_cancelling_a_pledge_through_the_form(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    pledge_id = await pledge_through_the_form(stripe_client, token, campaign)
    await activate(stripe_client, token, stripe_server, pledge_id)
    active = await stripe_client.get(f"/me/pledges/{pledge_id}")
    assert "Cancel this pledge" in active.text and f'action="/me/pledges/{pledge_id}/cancel"' in active.text

    answer = await stripe_client.post(f"/me/pledges/{pledge_id}/cancel", data={"csrf_token": token, "confirm": "yes"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/me/pledges/{pledge_id}?done=cancelled"
    assert (await pledge_in_db(sessions, pledge_id)).status == "cancelled"
    page = await stripe_client.get(answer.headers["location"])
    assert "Your pledge is cancelled. Nothing was charged." in page.text
    assert '<span class="badge badge-draft">Cancelled</span>' in page.text
    assert "Cancel this pledge" not in page.text and 'action="/me/pledges/' not in page.text

    again = await stripe_client.post(f"/me/pledges/{pledge_id}/cancel", data={"csrf_token": token, "confirm": "yes"})
    assert again.status_code == 409 and "can no longer be cancelled" in again.text
    # A new pledge may be made once the old one is cancelled.
    assert (await stripe_client.get(f"/campaigns/{campaign['slug']}/back")).text.count('name="tier"') >= 2


async def test_someone_elses_pledge_is_not_found(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    pledge_id = await pledge_through_the_form(stripe_client, token, campaign)

    async with another_browser(stripe_client, await sign_up(stripe_client, "Eve")) as (browser, eve_token):
        for path in (f"/me/pledges/{pledge_id}", f"/me/pledges/{pledge_id}/card"):
            assert (await browser.get(path)).status_code == 404
        cancelled = await browser.post(
            f"/me/pledges/{pledge_id}/cancel", data={"csrf_token": eve_token, "confirm": "yes"}
        )
        assert cancelled.status_code == 404
        assert (await browser.get("/me/pledges")).text.count("pledge-row") == 0
        assert (await browser.get(f"/me/pledges/{uuid.uuid4()}")).status_code == 404
        assert (await browser.get("/me/pledges/not-an-id")).status_code == 404
    assert (await pledge_in_db(sessions, pledge_id)).status == "requires_payment_method"
    async with new_browser(stripe_client) as anonymous:
        away = await anonymous.get(f"/me/pledges/{pledge_id}")
        assert away.status_code == 303 and away.headers["location"].startswith("/login?next=")


# Addresses and delivery


ADDRESS = {
    "name": "李雷",
    "line1": "南山区科技园深南大道 9988 号",
    "line2": "",
    "city": "深圳",
    "region": "广东省",
    "postal_code": "518057",
    "country": "CN",
    "phone": "+86 755 1234 5678",
}


async def test_giving_an_address_through_the_form(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign = await china_only_campaign(stripe_client, sessions)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    pledge_id = await pledge_through_the_form(stripe_client, token, campaign, tier=campaign["tiers"][0]["id"])
    # No address before the card is saved: the pledge does not count yet.
    assert 'id="address"' not in (await stripe_client.get(f"/me/pledges/{pledge_id}")).text
    await activate(stripe_client, token, stripe_server, pledge_id)

    page = await stripe_client.get(f"/me/pledges/{pledge_id}")
    assert 'id="address"' in page.text and 'value="Bea"' in page.text  # the name is suggested
    path = f"/me/pledges/{pledge_id}/address"
    missing = await stripe_client.post(path, data={"csrf_token": token} | ADDRESS | {"line1": "", "phone": "call me"})
    assert missing.status_code == 422
    assert '<p class="field-error" id="field-line1-error">This field is required.</p>' in missing.text
    assert "A phone number has 5 to 20 digits: use digits, spaces and + ( ) - only." in missing.text
    elsewhere = await stripe_client.post(path, data={"csrf_token": token} | ADDRESS | {"country": "US"})
    assert elsewhere.status_code == 422 and "This reward does not ship to United States." in elsewhere.text
    assert (await pledge_in_db(sessions, pledge_id)).address is None

    saved = await stripe_client.post(path, data={"csrf_token": token} | ADDRESS)
    assert saved.status_code == 303 and saved.headers["location"] == f"/me/pledges/{pledge_id}?done=address#address"
    assert (await pledge_in_db(sessions, pledge_id)).address == ADDRESS
    shown = await stripe_client.get(f"/me/pledges/{pledge_id}?done=address&lang=zh_CN")
    assert "你的地址已保存" in shown.text and "南山区科技园深南大道 9988 号" in shown.text

    # The address mails link to the pledge's address form.
    link = await stripe_client.get(f"/pledges/{pledge_id}/address")
    assert link.status_code == 303 and link.headers["location"] == f"/me/pledges/{pledge_id}#address"

    # Another pledge's form starts from the address given last.
    second, _maker, _operator = await launched_campaign(stripe_client, sessions)
    other_id = await pledge_through_the_form(stripe_client, token, second)
    await activate(stripe_client, token, stripe_server, other_id)
    other = await stripe_client.get(f"/me/pledges/{other_id}", params=EN)
    assert 'value="南山区科技园深南大道 9988 号"' in other.text
    assert "We filled in the address you gave on another pledge." in other.text

    # Once addresses are locked, the address is shown and no longer taken.
    async with sessions.begin() as session:
        await session.execute(
            update(Campaign)
            .where(Campaign.id == uuid.UUID(campaign["id"]))
            .values(address_lock_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    locked = await stripe_client.get(f"/me/pledges/{pledge_id}")
    assert (
        "Addresses were locked on" in locked.text
        and 'action="/me/pledges/' not in locked.text.split('id="address"')[1].split("</section>")[0]
    )
    late = await stripe_client.post(path, data={"csrf_token": token} | ADDRESS | {"city": "广州"})
    assert late.status_code == 409 and "Addresses for this campaign are locked" in late.text


async def test_a_shipped_pledge_shows_its_batch_carrier_and_tracking_number(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    pledge_id = await pledge_through_the_form(stripe_client, token, campaign)
    await activate(stripe_client, token, stripe_server, pledge_id)
    campaign_id, ident = uuid.UUID(campaign["id"]), uuid.UUID(pledge_id)
    async with sessions.begin() as session:
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="fulfilling"))
        await session.execute(
            update(Pledge)
            .where(Pledge.id == ident)
            .values(status="collected", charged_at=datetime.now(UTC), address=ADDRESS)
        )
        now = datetime.now(UTC)
        batch = Batch(
            campaign_id=campaign_id, number=2, status="in_production", confirmed_at=now, production_started_at=now
        )
        session.add(batch)
        await session.flush()
        session.add(Allocation(pledge_id=ident, campaign_id=campaign_id, batch_id=batch.id, list_batch_id=batch.id))

    page = await stripe_client.get(f"/me/pledges/{pledge_id}")
    assert "Batch 2 · In production" in page.text and "Estimated delivery" in page.text
    assert '<span class="badge badge-success">Paid</span>' in page.text
    assert "Change or cancel" not in page.text

    async with sessions.begin() as session:
        session.add(
            Shipment(pledge_id=ident, campaign_id=campaign_id, carrier="SF Express", tracking_number="SF1234567890")
        )
    listed = await stripe_client.get("/me/pledges")
    assert "SF1234567890" in listed.text and "SF Express" in listed.text
    page = await stripe_client.get(f"/me/pledges/{pledge_id}", params=ZH)
    assert "SF1234567890" in page.text and "运单号" in page.text
    assert "你的回报已发货，地址不能再更改。" in page.text
