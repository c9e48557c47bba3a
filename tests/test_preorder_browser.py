"""A pre-order in Chromium: the campaign page's Pre-order section, the choice (with a late add-on), the payment page
with Stripe's card form, the pre-order paid, then cancelled after asking once more and refunded; in Chinese at phone
width and in English on a desktop, with screenshots in /tmp/shots/preorder (KINDLING_SCREENSHOTS=1).

localstripe's Stripe.js stand-in cannot take a card for a PaymentIntent (its confirmCardPayment only answers the
bank's 3-D Secure check of one that already has a card), so the card is given to the PaymentIntent the way Stripe.js
gives it to real Stripe, by `pay_in_browser`, and the page's own confirm call follows, as pay.js makes it."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.async_api import Page
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.late_pledges import LateAddOn
from payments.gateway import StripeGateway
from service.app import create_app
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.browser import chromium_available, console_errors, launch_browser, log_in_page, new_page, screenshot, serve
from tests.money_helpers import pledge_row, run_jobs, stripe_work
from tests.test_preorders import funded_shop, pay_in_browser

SHOTS = "/tmp/shots/preorder"


async def looks_right(page: Page, errors: list[str], name: str) -> None:
    await screenshot(page, f"{SHOTS}/{name}.png")
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, (name, overflow)
    assert errors == [], (name, errors)


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_buyer_preorders_pays_and_cancels_with_a_refund_in_both_languages(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    funded = await funded_shop(
        stripe_client, stripe_server, sessions, engine, gateway, stripe_settings, jobs, late_limit=5, buyers=2
    )
    cable = funded.shop.cable["id"]
    async with sessions.begin() as session:  # the maker's choice in the draft, written straight here
        session.add(
            LateAddOn(
                add_on_id=uuid.UUID(cable),
                campaign_id=uuid.UUID(funded.shop.campaign["id"]),
                price=2_500,
                quantity_limit=3,
                remaining=3,
            )
        )
    slug = funded.shop.campaign["slug"]
    with serve(create_app(stripe_settings, sender=jobs, engine_pool=3)) as server:
        base = server.url
        async with launch_browser() as browser:
            for buyer, width, locale, lang in (
                (funded.buyers[0], 390, "zh-CN", "zh"),
                (funded.buyers[1], 1280, "en-US", "en"),
            ):
                async with new_page(browser, width=width, locale=locale) as page:
                    errors = console_errors(page)
                    await log_in_page(page, base, buyer)
                    await page.goto(f"{base}/campaigns/{slug}")
                    section = page.locator("#preorder")
                    assert "449" in await section.inner_text()
                    assert "25.00" in await section.locator(f"#preorder-add-on-{cable}").inner_text()
                    await looks_right(page, errors, f"campaign-{lang}-{width}")

                    await section.locator("a.btn").first.click()
                    await page.wait_for_selector("#preorder-form")
                    await page.locator("input[value=white]").check()
                    await page.select_option("#field-shipping_country", "CN")
                    await page.locator(f'[name="addon.{cable}"]').fill("1")
                    await looks_right(page, errors, f"choose-{lang}-{width}")
                    await page.locator("#preorder-form button[type=submit]").click()
                    await page.wait_for_selector("#pay-form")
                    await page.locator("#card-submit:not([disabled])").wait_for()  # Stripe's form is mounted
                    await looks_right(page, errors, f"pay-{lang}-{width}")
                    secret = await page.locator("#pay-form").get_attribute("data-client-secret")
                    assert secret
                    pledge_id = page.url.split("/")[-2]

                    await pay_in_browser(stripe_server, secret.split("_secret_")[0])
                    confirmed = await page.evaluate(
                        """async () => {
                            const d = document.getElementById("pay-form").dataset;
                            const r = await fetch(d.confirmUrl, {method: "POST", credentials: "same-origin",
                                headers: {Accept: "application/json", "X-CSRF-Token": d.csrfToken}});
                            return (await r.json()).status;
                        }"""
                    )
                    assert confirmed == "collected"
                    await page.goto(f"{base}/me/pledges/{pledge_id}?done=preorder-paid")
                    await looks_right(page, errors, f"paid-{lang}-{width}")

                    await page.locator("#preorder-cancel button").click()
                    await page.wait_for_selector(".confirm-consequences li")
                    await looks_right(page, errors, f"cancel-asked-{lang}-{width}")
                    await page.locator(".confirm-actions button").click()
                    await page.wait_for_url(f"{base}/me/pledges/{pledge_id}?done=preorder-cancelled")
                    await looks_right(page, errors, f"cancelled-{lang}-{width}")
                async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
                    await run_jobs(work, jobs)
                assert (await pledge_row(sessions, pledge_id)).status == "refunded"
                assert (
                    await gateway.retrieve_charge(secret.split("_secret_")[0])
                ).amount_refunded == 48_900  # with the cable
