"""The sponsoring space's refunds pages: the collected pledges with what is left of each, and a refund of one pledge
that says what will happen and asks once more before it is made, in English and Chinese."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from payments.gateway import StripeGateway
from payments.models import ChargeAttempt, Refund
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.browser import LiveServer, console_errors, launch_browser, log_in_page, new_page, screenshot
from tests.money_helpers import amount_refunded_at_stripe, run_jobs, stripe_work
from tests.pages import csrf_from, logged_in
from tests.test_money_pages import funded_campaign as funded_books
from tests.test_suspension import PAIR, funded_campaign


async def refunds_of(sessions: async_sessionmaker[AsyncSession], pledge_id: str) -> list[Refund]:
    async with sessions() as session:
        return list(await session.scalars(select(Refund).where(Refund.pledge_id == uuid.UUID(pledge_id))))


async def test_an_operator_refunds_a_pledge_from_the_page_after_saying_yes_once_more(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, operator, backings = await funded_campaign(
        stripe_client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, [0, 0, 0]
    )
    backing = backings[0]
    listing = f"/operator/campaigns/{campaign['slug']}/refunds"
    form_page = f"/operator/campaigns/{campaign['slug']}/pledges/{backing.id}/refund"
    async with logged_in(stripe_client, operator) as browser:
        page = await browser.get(listing)
        assert page.status_code == 200, page.text
        assert form_page in page.text and backing.backer.email in page.text

        typo = await browser.post(
            form_page, data={"csrf_token": await csrf_from(browser, form_page), "amount": "12.345", "reason": "x"}
        )
        assert typo.status_code == 422 and "field-amount-error" in typo.text
        too_much = await browser.post(
            form_page, data={"csrf_token": await csrf_from(browser, form_page), "amount": "9999", "reason": "x"}
        )
        assert too_much.status_code == 422 and "field-amount-error" in too_much.text
        no_reason = await browser.post(
            form_page, data={"csrf_token": await csrf_from(browser, form_page), "amount": "50", "reason": " "}
        )
        assert no_reason.status_code == 422 and "field-reason-error" in no_reason.text

        asked = await browser.post(
            form_page,
            data={"csrf_token": await csrf_from(browser, form_page), "amount": "50.00", "reason": "A cracked cup."},
        )
        assert asked.status_code == 200, asked.text
        assert "cannot be undone" in asked.text and 'name="confirmed" value="yes"' in asked.text
        assert await refunds_of(sessions, backing.id) == [], "nothing is refunded before the second yes"

        made = await browser.post(
            form_page,
            data={
                "csrf_token": await csrf_from(browser, form_page),
                "amount": "50.00",
                "reason": "A cracked cup.",
                "confirmed": "yes",
            },
        )
        assert made.status_code == 303 and made.headers["location"] == listing + "?done=refunded"
        [refund] = await refunds_of(sessions, backing.id)
        assert (refund.amount, refund.reason, refund.requested_by) == (5_000, "A cracked cup.", uuid.UUID(operator.id))

        async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
            await run_jobs(work, jobs)
        assert await amount_refunded_at_stripe(stripe_server, backing.id) == 5_000
        after = await browser.get(listing + "?done=refunded")
        assert "A cracked cup." in after.text

        rest = await browser.post(
            form_page,
            data={"csrf_token": await csrf_from(browser, form_page), "reason": "All of it.", "confirmed": "yes"},
        )
        assert rest.status_code == 303
        assert sorted(r.amount for r in await refunds_of(sessions, backing.id)) == [5_000, PAIR - 5_000]
        nothing = await browser.post(
            form_page,
            data={"csrf_token": await csrf_from(browser, form_page), "reason": "Again.", "confirmed": "yes"},
        )
        assert nothing.status_code == 409 and "Nothing is left to refund" in nothing.text

        chinese = await browser.get(
            f"/operator/campaigns/{campaign['slug']}/pledges/{backings[1].id}/refund?lang=zh_CN"
        )
        assert chinese.status_code == 200 and "退款" in chinese.text
        asked_in_chinese = await browser.post(
            f"/operator/campaigns/{campaign['slug']}/pledges/{backings[1].id}/refund?lang=zh_CN",
            data={"csrf_token": await csrf_from(browser, listing), "reason": "破损"},
        )
        assert asked_in_chinese.status_code == 200 and "退款无法撤销" in asked_in_chinese.text


async def test_the_refund_pages_work_in_chromium_at_phone_and_desktop_widths_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    funded = await funded_books(client, sessions)
    async with sessions.begin() as session:
        pledges = list(
            await session.scalars(
                select(Pledge).where(Pledge.campaign_id == funded.campaign_id, Pledge.status == "collected")
            )
        )
        for pledge in pledges:
            session.add(
                ChargeAttempt(
                    pledge_id=pledge.id,
                    attempt=1,
                    idempotency_key=f"pledge:{pledge.id}:charge:1",
                    amount=pledge.amount,
                    currency=pledge.currency,
                    payment_method_id="pm_browser",
                    status="succeeded",
                    payment_intent_id=f"pi_{pledge.id.hex[:24]}",
                )
            )
    listing = f"/operator/campaigns/{funded.slug}/refunds"
    async with launch_browser() as browser:
        for locale, lang in (("en-US", "en"), ("zh-CN", "zh")):
            for width in (1280, 390):
                async with new_page(browser, width=width, locale=locale) as page:
                    errors = console_errors(page)
                    await log_in_page(page, live_server.url, funded.operator)
                    response = await page.goto(live_server.url + listing)
                    assert response is not None and response.status == 200, (width, lang)
                    await page.locator("#pledges a.btn").first.click()
                    await page.locator("#field-amount").fill("1")
                    await page.locator("#field-reason").fill("Scratched case." if lang == "en" else "外壳划伤。")
                    await page.locator("form.form button[type=submit]").click()
                    await page.wait_for_selector("#confirm-title")
                    await screenshot(page, f"/tmp/shots/refunds/confirm-{width}-{lang}.png")
                    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, ("confirm", width, lang, overflow)
                    await page.locator("button.btn-danger").click()
                    await page.wait_for_url(live_server.url + listing + "?done=refunded")
                    await screenshot(page, f"/tmp/shots/refunds/list-{width}-{lang}.png")
                    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, ("list", width, lang, overflow)
                    assert errors == [], (width, lang, errors)
    async with sessions() as session:
        made = list(await session.scalars(select(Refund).where(Refund.campaign_id == funded.campaign_id)))
    assert sorted(r.amount for r in made) == [100] * 4
