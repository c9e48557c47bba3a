"""Backing a campaign in a real browser, with Stripe.js (localstripe's stand-in) saving the card."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from service.app import create_app
from service.broker import ListSender
from service.settings import Settings
from tests.browser import chromium_available, console_errors, launch_browser, new_page, serve
from tests.helpers import CARD_DECLINED_AT_SETUP, CARD_OK, PASSWORD, launched_campaign, sign_up


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_backer_pledges_with_a_card_in_the_browser_after_a_declined_one(
    stripe_client: httpx.AsyncClient, stripe_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    early_bird, pair = campaign["tiers"][0]["id"], campaign["tiers"][1]["id"]
    backer = await sign_up(stripe_client, "Bea")

    with serve(create_app(stripe_settings, sender=ListSender(), engine_pool=3)) as server:
        async with launch_browser() as browser, new_page(browser, width=375, height=740) as page:
            errors = console_errors(page)
            await page.goto(f"{server.url}/campaigns/{campaign['slug']}/back?tier={early_bird}")
            # Someone logged out is offered sign-up first; a returning backer follows its "Log in" link.
            await page.locator(".auth-page").get_by_role("link", name="Log in").click()
            await page.get_by_label("Email").fill(backer.email)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url(re.compile(r"/back\?tier="))

            # The total follows the choice without a reload; "Update total" is for browsers without JavaScript.
            total = page.locator('[data-summary="total"]')
            assert await page.get_by_role("button", name="Update total").is_hidden()
            await page.locator(f"label[for='tier-{pair}']").click()
            await page.get_by_label("Ship to").select_option("CN")
            await page.get_by_label("Extra support").fill("5")
            assert await total.inner_text() == "CN¥364.00"
            await page.get_by_label("Ship to").select_option("FR")
            assert await total.inner_text() == "CN¥404.00"
            await page.get_by_role("button", name="Continue to payment").click()
            await page.wait_for_url(re.compile(r"/me/pledges/[0-9a-f-]{36}/card$"))
            pledge_id = page.url.rsplit("/", 2)[-2]

            async def give_card(number: str) -> None:
                card = page.locator("#card-element")
                await card.get_by_placeholder("number").fill(number)
                await card.get_by_placeholder("exp_month").fill("12")
                await card.get_by_placeholder("exp_year").fill("30")
                await card.get_by_placeholder("cvc").fill("123")
                await card.get_by_placeholder("postal_code").fill("75001")
                await page.get_by_role("button", name=re.compile("Save card and pledge")).click()

            await give_card(CARD_DECLINED_AT_SETUP)
            declined = page.locator("#card-error")
            await declined.wait_for(state="visible")
            assert await declined.inner_text() == (
                "Your card was declined. Nothing was charged. Try another card, or ask your bank why."
            )
            async with sessions() as session:
                pledge = await session.get_one(Pledge, uuid.UUID(pledge_id))
                assert pledge.status == "requires_payment_method"
            assert errors == ["Failed to load resource: the server responded with a status of 402 (Payment Required)"]
            errors.clear()

            # The same card form takes another card.
            await give_card(CARD_OK)
            await page.wait_for_url(re.compile(rf"/me/pledges/{pledge_id}\?done=card-saved$"))
            assert "Your card is saved and your pledge is active." in await page.locator(".notice-success").inner_text()
            await page.locator("main").get_by_role("link", name="My pledges").first.click()
            await page.wait_for_url(re.compile(r"/me/pledges$"))
            row = page.locator(".pledge-row").filter(has_text=campaign["title"])
            assert await row.locator(".badge").inner_text() == "Active"
            assert "CN¥404.00" in await row.inner_text()
            assert errors == []

    async with sessions() as session:
        pledge = await session.get_one(Pledge, uuid.UUID(pledge_id))
    assert (pledge.status, pledge.amount, pledge.shipping_country) == ("active", 34_900 + 500 + 5_000, "FR")
    assert pledge.payment_method_id


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_pledge_whose_card_set_up_was_lost_gets_one_from_the_card_page(
    stripe_client: httpx.AsyncClient, stripe_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Lin")
    made = await stripe_client.post(
        f"/api/v1/campaigns/{campaign['id']}/pledges",
        json={"tier_id": campaign["tiers"][0]["id"], "shipping_country": "CN"},
        headers=backer.headers,
    )
    pledge_id = made.json()["id"]
    async with sessions.begin() as session:
        # A server killed between reserving the slot and Stripe's answer leaves the pledge without a card set-up.
        await session.execute(
            update(Pledge).where(Pledge.id == pledge_id).values(setup_intent_id=None, setup_intent_client_secret=None)
        )

    with serve(create_app(stripe_settings, sender=ListSender(), engine_pool=3)) as server:
        async with launch_browser() as browser, new_page(browser, width=1280, height=900) as page:
            errors = console_errors(page)
            await page.goto(f"{server.url}/login?next=/me/pledges/{pledge_id}/card")
            await page.get_by_label("Email").fill(backer.email)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url(re.compile(r"/card$"))
            await page.wait_for_selector("#card-submit:enabled")  # Stripe.js has mounted the card fields
            card = page.locator("#card-element")
            await card.get_by_placeholder("number").fill(CARD_OK)
            await card.get_by_placeholder("exp_month").fill("12")
            await card.get_by_placeholder("exp_year").fill("30")
            await card.get_by_placeholder("cvc").fill("123")
            await card.get_by_placeholder("postal_code").fill("75001")
            await page.get_by_role("button", name=re.compile("Save card and pledge")).click()
            await page.wait_for_url(re.compile(rf"/me/pledges/{pledge_id}\?done=card-saved$"))
            assert errors == []

    async with sessions() as session:
        pledge = await session.get_one(Pledge, uuid.UUID(pledge_id))
    assert pledge.status == "active" and pledge.setup_intent_id and pledge.payment_method_id
