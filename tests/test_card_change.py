"""A backer sees the card their pledge is charged to (brand and last four, read from Stripe) and changes it while the
campaign is live: a SetupIntent of its own, confirmed by Stripe.js; the old card stays until the new one is saved."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from payments.gateway import StripeGateway
from service.app import create_app
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.browser import chromium_available, console_errors, launch_browser, log_in_page, new_page, screenshot, serve
from tests.helpers import CARD_OK, Actor, launched_campaign, sign_up, stripe_event, stripe_signature
from tests.money_helpers import pass_deadline, pledge_with_card, run_jobs, save_card, stripe_object, stripe_work
from tests.pages import logged_in

OTHER_CARD = "5555555555554444"


async def card(client: httpx.AsyncClient, backer: Actor, pledge: dict[str, Any]) -> Any:
    response = await client.get(f"/api/v1/pledges/{pledge['id']}/card", headers=backer.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_backer_changes_the_card_while_live_and_the_old_one_stays_until_the_new_one_is_saved(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, operator = await launched_campaign(stripe_client, sessions)
    backer, stranger = await sign_up(stripe_client, "Bea"), await sign_up(stripe_client, "Stranger")
    pledge = await pledge_with_card(stripe_client, stripe_server, backer, campaign, card=CARD_OK)
    assert await card(stripe_client, backer, pledge) == {"brand": "visa", "last4": "4242"}
    async with sessions() as session:
        first_card = (await session.get_one(Pledge, uuid.UUID(pledge["id"]))).payment_method_id

    change = f"/api/v1/pledges/{pledge['id']}/card-change"
    assert (await stripe_client.post(change, headers=operator.headers)).status_code == 403
    assert (await stripe_client.post(change, headers=stranger.headers)).status_code == 404
    begun = await stripe_client.post(change, headers=backer.headers)
    assert begun.status_code == 200, begun.text
    secret = begun.json()["client_secret"]
    assert secret

    early = await stripe_client.post(f"{change}/confirm", headers=backer.headers)
    assert early.status_code == 409 and early.json()["type"] == "card-not-saved"
    async with sessions() as session:
        waiting = await session.get_one(Pledge, uuid.UUID(pledge["id"]))
        assert (waiting.status, waiting.payment_method_id) == ("active", first_card)
    assert (await card(stripe_client, backer, pledge))["last4"] == "4242"

    await save_card(stripe_server, secret, OTHER_CARD)
    confirmed = await stripe_client.post(f"{change}/confirm", headers=backer.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "active"
    assert (await card(stripe_client, backer, pledge))["last4"] == "4444"
    async with sessions() as session:
        changed = await session.get_one(Pledge, uuid.UUID(pledge["id"]))
        assert changed.payment_method_id not in (None, first_card)
        assert changed.card_change_setup_intent_id is None

    async with logged_in(stripe_client, backer) as browser:
        page = (await browser.get(f"/me/pledges/{pledge['id']}")).text
        assert "Visa ending in 4444" in page
        assert f'href="/me/pledges/{pledge["id"]}/card/change"' in page
        browser.headers["Accept-Language"] = "zh-CN"
        chinese = (await browser.get(f"/me/pledges/{pledge['id']}/card/change")).text
        assert "更换银行卡" in chinese and "4444" in chinese


async def test_once_the_campaign_has_ended_the_card_is_no_longer_changed(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Bea")
    pledge = await pledge_with_card(stripe_client, stripe_server, backer, campaign)
    await pass_deadline(sessions, campaign["id"])
    refused = await stripe_client.post(f"/api/v1/pledges/{pledge['id']}/card-change", headers=backer.headers)
    assert refused.status_code == 409, refused.text
    async with logged_in(stripe_client, backer) as browser:
        page = (await browser.get(f"/me/pledges/{pledge['id']}")).text
        assert "Visa ending in 4242" in page and "/card/change" not in page
        away = await browser.get(f"/me/pledges/{pledge['id']}/card/change")
        assert away.status_code == 303 and away.headers["location"] == f"/me/pledges/{pledge['id']}"


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_backer_changes_the_card_in_the_browser_with_stripe_js(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Bea")
    pledge = await pledge_with_card(stripe_client, stripe_server, backer, campaign)
    with serve(create_app(stripe_settings, sender=ListSender(), engine_pool=3)) as server:
        async with launch_browser() as browser:
            for width, locale, lang in ((1280, "en-US", "en"), (390, "zh-CN", "zh")):
                async with new_page(browser, width=width, height=844, locale=locale) as page:
                    await log_in_page(page, server.url, backer)
                    await page.goto(f"{server.url}/me/pledges/{pledge['id']}/card/change")
                    await page.locator("#card-element").wait_for()
                    await screenshot(page, f"/tmp/shots/screens/card-change-{width}-{lang}.png")
                    overflow = await page.evaluate("document.scrollingElement.scrollWidth") - width
                    assert overflow <= 0, (width, lang, overflow)
            async with new_page(browser, width=390, height=844) as page:
                errors = console_errors(page)
                await log_in_page(page, server.url, backer)
                await page.goto(f"{server.url}/me/pledges/{pledge['id']}")
                await page.get_by_role("link", name="Change the card").click()
                fields = page.locator("#card-element")
                await fields.get_by_placeholder("number").fill(OTHER_CARD)
                await fields.get_by_placeholder("exp_month").fill("12")
                await fields.get_by_placeholder("exp_year").fill("30")
                await fields.get_by_placeholder("cvc").fill("123")
                await fields.get_by_placeholder("postal_code").fill("75001")
                await page.get_by_role("button", name="Save the new card").click()
                await page.wait_for_url(re.compile(rf"/me/pledges/{pledge['id']}\?done=card-changed$"))
                notice = await page.locator(".notice-success").inner_text()
                assert "Your new card is saved" in notice
                assert "Visa ending in 4444" in await page.locator("[data-card]").inner_text()
                await screenshot(page, "/tmp/shots/screens/card-changed-390-en.png")
                assert errors == []


async def test_stripes_webhook_takes_the_new_card_when_the_browser_never_confirms(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Bea")
    pledge = await pledge_with_card(stripe_client, stripe_server, backer, campaign)
    begun = await stripe_client.post(f"/api/v1/pledges/{pledge['id']}/card-change", headers=backer.headers)
    await save_card(stripe_server, begun.json()["client_secret"], OTHER_CARD)
    intent = await stripe_object(stripe_server, f"/v1/setup_intents/{begun.json()['setup_intent_id']}")
    payload = json.dumps(stripe_event("setup_intent.succeeded", intent)).encode()
    signature = stripe_signature(payload, stripe_settings.stripe_webhook_secret)
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        for _ in range(2):  # delivered twice: the second changes nothing
            delivered = await stripe_client.post(
                "/api/v1/webhooks/stripe",
                content=payload,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            )
            assert delivered.status_code == 200
            await run_jobs(work, jobs)
    assert (await card(stripe_client, backer, pledge))["last4"] == "4444"
    # The browser's confirm, arriving after the webhook, finds the new card already taken.
    late = await stripe_client.post(f"/api/v1/pledges/{pledge['id']}/card-change/confirm", headers=backer.headers)
    assert late.status_code == 200 and late.json()["status"] == "active"
    assert (await card(stripe_client, backer, pledge))["last4"] == "4444"
