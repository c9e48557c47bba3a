"""Suspending from the operator's page: a reason, then what backers get back (the suspension's own figures) asked
once more, then the same suspension the API makes; "Escrow releases" in the operators' navigation; the funding page
linked from a live campaign's manage page."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Campaign
from payments.gateway import StripeGateway
from payments.ledger import campaign_ledger
from payments.models import Refund
from payments.refunds import REFUND
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.i18n import money, use_locale
from service.pages.confirmation import CONFIRM_FIELD
from service.settings import Settings
from tests.browser import (
    LiveServer,
    chromium_available,
    console_errors,
    launch_browser,
    log_in_page,
    new_page,
    screenshot,
)
from tests.helpers import (
    create_space,
    launched_campaign,
    make_admin,
    make_operator,
    sign_up,
)
from tests.pages import logged_in, post_form
from tests.test_money_pages import funded_campaign as booked_campaign
from tests.test_suspension import funded_campaign

CONFIRMED = {CONFIRM_FIELD: "yes"}
REASON = "The factory closed and the maker stopped answering."


async def campaign_status(sessions: async_sessionmaker[AsyncSession], campaign_id: str | uuid.UUID) -> str:
    async with sessions() as session:
        return (await session.get_one(Campaign, uuid.UUID(str(campaign_id)))).status


async def refunds_of(sessions: async_sessionmaker[AsyncSession], campaign_id: str) -> list[Refund]:
    async with sessions() as session:
        return list(await session.scalars(select(Refund).where(Refund.campaign_id == uuid.UUID(campaign_id))))


def shown(amount: int, locale: str = "en") -> str:
    with use_locale(locale):
        return money(amount, "CNY")


async def test_an_operator_is_shown_what_the_backers_get_back_and_suspends_only_when_confirming(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, operator, backings = await funded_campaign(
        stripe_client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, [0, 7, 333]
    )
    cid, slug = campaign["id"], campaign["slug"]
    page = f"/operator/campaigns/{slug}"
    async with sessions() as session:
        held = (await campaign_ledger(session, uuid.UUID(cid))).escrow_held
    assert held > 0
    async with logged_in(stripe_client, operator) as browser:
        form = await browser.get(page)
        assert f'action="/operator/campaigns/{slug}/suspend"' in form.text

        asked = await post_form(browser, f"{page}/suspend", {"reason": REASON}, form_page=page)

        assert asked.status_code == 200, asked.text
        assert shown(held) in asked.text and f"goes back to {len(backings)} backers" in asked.text
        assert 'name="confirm" value="yes"' in asked.text and REASON in asked.text
        assert await campaign_status(sessions, cid) == "funded"
        assert await refunds_of(sessions, cid) == []

        asked_zh = await post_form(browser, f"{page}/suspend?lang=zh_CN", {"reason": REASON}, form_page=page)
        assert shown(held, "zh_CN") in asked_zh.text and f"退还给 {len(backings)} 位支持者" in asked_zh.text

        jobs.jobs.clear()
        done = await post_form(browser, f"{page}/suspend", {"reason": REASON} | CONFIRMED, form_page=page)

        assert done.status_code == 303 and done.headers["location"] == f"{page}?done=suspended"
        # The language chosen above sticks: the page says it in Chinese.
        assert "已暂停。创客和支持者会收到邮件通知" in (await browser.get(done.headers["location"])).text
    assert await campaign_status(sessions, cid) == "suspended"
    refunds = await refunds_of(sessions, cid)
    assert len(refunds) == len(backings) and sum(r.amount for r in refunds) == held
    assert [job.actor_name for job in jobs.jobs].count(REFUND) == len(backings)


async def test_the_escrow_desk_leads_the_operator_to_suspending_a_campaign_they_follow(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await booked_campaign(client, sessions)
    async with logged_in(client, funded.operator) as browser:
        desk = await browser.get("/operator/milestones")
    assert f'href="/operator/campaigns/{funded.slug}#suspend-title"' in desk.text


async def test_a_live_campaigns_page_leads_its_operator_and_nobody_else_to_the_suspension_form(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(client, sessions)
    backer = await sign_up(client, "Backer")
    link = f'href="/operator/campaigns/{campaign["slug"]}#suspend-title"'
    for actor, sees in ((operator, True), (maker, False), (backer, False)):
        async with logged_in(client, actor) as browser:
            shown_page = await browser.get(f"/campaigns/{campaign['slug']}")
        assert (link in shown_page.text) is sees, actor.name
    async with logged_in(client, operator) as browser:
        form = await browser.get(f"/operator/campaigns/{campaign['slug']}")
    assert 'id="suspend-title"' in form.text


async def test_a_suspension_without_a_reason_is_refused_with_the_form_and_changes_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await booked_campaign(client, sessions)
    page = f"/operator/campaigns/{funded.slug}"
    async with logged_in(client, funded.operator) as browser:
        refused = await post_form(browser, f"{page}/suspend", {"reason": "  "} | CONFIRMED, form_page=page)
    assert refused.status_code == 422
    assert "Give the reason: the maker and every backer read it." in refused.text
    assert await campaign_status(sessions, funded.campaign_id) == "funded"


async def test_a_campaign_suspended_already_is_not_suspended_twice_and_the_page_says_why(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, operator = await launched_campaign(client, sessions)
    page = f"/operator/campaigns/{campaign['slug']}"
    async with logged_in(client, operator) as browser:
        first = await post_form(browser, f"{page}/suspend", {"reason": REASON} | CONFIRMED, form_page=page)
        again = await post_form(browser, f"{page}/suspend", {"reason": REASON}, form_page=page)
    assert first.status_code == 303
    assert again.status_code == 409
    assert "The campaign cannot be suspended now: it has ended, or it was suspended already." in again.text
    assert 'id="suspend-title"' not in again.text
    assert await campaign_status(sessions, campaign["id"]) == "suspended"


async def test_the_maker_and_another_spaces_operator_may_not_suspend(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await booked_campaign(client, sessions)
    other_space = await create_space(client, funded.admin)
    outsider = await make_operator(client, funded.admin, other_space, "Mei")
    page = f"/operator/campaigns/{funded.slug}"
    for actor in (funded.maker, outsider):
        async with logged_in(client, actor) as browser:
            form_page = "/account"
            asked = await post_form(browser, f"{page}/suspend", {"reason": REASON}, form_page=form_page)
            done = await post_form(browser, f"{page}/suspend", {"reason": REASON} | CONFIRMED, form_page=form_page)
            shown_form = await browser.get(page)
        assert asked.status_code in (403, 404) and done.status_code in (403, 404), actor.name
        assert "/suspend" not in shown_form.text
    assert await campaign_status(sessions, funded.campaign_id) == "funded"


async def test_a_live_campaign_suspension_says_its_pledges_are_cancelled_and_nothing_is_refunded(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await booked_campaign(client, sessions, status="live")
    page = f"/operator/campaigns/{funded.slug}"
    async with logged_in(client, funded.operator) as browser:
        asked = await post_form(browser, f"{page}/suspend", {"reason": REASON}, form_page=page)
    assert asked.status_code == 200
    assert "Escrow holds nothing to refund" in asked.text
    # The errored pledge waits for a charge that never comes.
    assert "1 pledge not charged yet is cancelled; its card is never charged." in asked.text
    assert await campaign_status(sessions, funded.campaign_id) == "live"


async def test_escrow_releases_are_in_the_navigation_of_operators_and_admins_only(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    backer = await sign_up(client, "Backer")
    for actor, sees in ((operator, True), (admin, True), (backer, False)):
        async with logged_in(client, actor) as browser:
            home = await browser.get("/")
        assert ('href="/operator/milestones"' in home.text) is sees, actor.name
        assert ("Escrow releases" in home.text) is sees, actor.name
    async with logged_in(client, operator) as browser:
        desk = await browser.get("/operator/milestones")
    assert '<a href="/operator/milestones" aria-current="page">' in desk.text
    assert '<a href="/operator" aria-current="page">' not in desk.text


async def test_a_live_campaigns_manage_page_links_to_its_funding_page(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    funding = f"/maker/campaigns/{campaign['slug']}/funding"
    async with logged_in(client, maker) as browser:
        manage = await browser.get(f"/maker/campaigns/{campaign['slug']}")
        assert f'href="{funding}"' in manage.text
        assert (await browser.get(funding)).status_code == 200


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_the_suspension_confirmation_reads_well_in_chromium_at_phone_and_desktop_widths(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    funded = await booked_campaign(client, sessions)
    page_path = f"/operator/campaigns/{funded.slug}"
    async with launch_browser() as browser:
        for locale, lang in (("en-US", "en"), ("zh-CN", "zh")):
            for width in (1280, 390):
                async with new_page(browser, width=width, locale=locale) as page:
                    errors = console_errors(page)
                    await log_in_page(page, live_server.url, funded.operator)
                    await page.goto(live_server.url + page_path)
                    await screenshot(page, f"/tmp/shots/suspension/form-{width}-{lang}.png")
                    await page.locator("#field-reason").fill(REASON)
                    await page.locator(f"form[action='{page_path}/suspend'] button[type=submit]").click()
                    await page.wait_for_selector(".confirm-card")
                    await screenshot(page, f"/tmp/shots/suspension/confirm-{width}-{lang}.png")
                    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, (width, lang, overflow)
                    assert errors == [], (width, lang, errors)
    assert await campaign_status(sessions, funded.campaign_id) == "funded"
