"""The money pages: the public escrow statement, the maker's funding dashboard, the operator's escrow releases, and
the SVG charts they draw."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from playwright.async_api import FilePayload
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign
from fulfillment.service import plan_campaign
from payments import ledger
from payments.milestones import create_milestones
from payments.models import Milestone, Payout
from service.i18n import money, use_locale
from service.pages.funding import daily_totals
from service.pages.svg_charts import (
    BarPart,
    TrackStep,
    cumulative_chart,
    milestone_track,
    nice_ceiling,
    proportional_widths,
    stacked_bar,
)
from tests.browser import (
    LiveServer,
    chromium_available,
    console_errors,
    launch_browser,
    log_in_page,
    new_page,
    screenshot,
)
from tests.factories import address, insert_campaign, insert_pledge, insert_product, insert_tier
from tests.helpers import Actor, create_space, make_admin, make_operator, sign_up
from tests.pages import logged_in, post_form

PLATFORM_BPS = 500
SPONSOR_BPS = 300
PRICE = 19_900
BACKER_NAMES = ("Xiaoming", "Lovelace", "Okonkwo")


# Pages seen through a browser of their own


# A funded campaign with money in escrow


@dataclass
class Funded:
    campaign_id: uuid.UUID
    slug: str
    maker: Actor
    operator: Actor
    admin: Actor
    stranger: Actor
    backers: list[Actor]

    @property
    def escrow(self) -> str:
        return f"/campaigns/{self.slug}/escrow"

    @property
    def funding(self) -> str:
        return f"/maker/campaigns/{self.slug}/funding"


async def funded_campaign(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], *, status: str = "funded"
) -> Funded:
    """A campaign of CNY 1,000.00 launched ten days ago, with three backers (named, so that the tests can look for
    them) whose pledges of 199.00 were made on three different days and collected into escrow; one more pledge
    errored and one was dropped. Funded (and later) campaigns have their milestones."""
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin, sponsor_fee_bps=SPONSOR_BPS)
    operator = await make_operator(client, admin, space, "Olu")
    maker = await sign_up(client, "Maker")
    stranger = await sign_up(client, "Stranger")
    backers = [await sign_up(client, name) for name in BACKER_NAMES]
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        campaign = await insert_campaign(
            session,
            maker_id=maker.id,
            space_id=space["id"],
            status=status,
            launched_at=now - timedelta(days=10),
            ends_at=now - timedelta(days=2),
        )
        await insert_product(session, campaign, "BOARD", batch_size=100)
        kit = await insert_tier(session, campaign, {"BOARD": 1}, price=PRICE)
        for n, backer in enumerate(backers):
            pledge = await insert_pledge(session, campaign, kit, backer_id=backer.id)
            pledge.created_at = now - timedelta(days=9 - 3 * n)
            await session.flush()
            if status != "live":
                await ledger.record_collection(
                    session, campaign, pledge.id, pledge.amount, "CNY", PLATFORM_BPS, SPONSOR_BPS, PRICE // 50
                )
        await insert_pledge(session, campaign, kit, status="errored")
        await insert_pledge(session, campaign, kit, status="dropped")
        if status in ("funded", "fulfilling", "fulfilled"):
            await create_milestones(session, campaign)
        return Funded(campaign.id, campaign.slug, maker, operator, admin, stranger, backers)


async def books(sessions: async_sessionmaker[AsyncSession], funded: Funded) -> ledger.LedgerSummary:
    async with sessions() as session:
        return await ledger.campaign_ledger(session, funded.campaign_id)


async def milestone_ids(sessions: async_sessionmaker[AsyncSession], funded: Funded) -> list[str]:
    async with sessions() as session:
        found = await session.scalars(
            select(Milestone.id).where(Milestone.campaign_id == funded.campaign_id).order_by(Milestone.position)
        )
        return [str(ident) for ident in found]


async def milestone_status(sessions: async_sessionmaker[AsyncSession], milestone_id: str) -> str:
    async with sessions() as session:
        return (await session.get_one(Milestone, uuid.UUID(milestone_id))).status


def shown(amount: int, locale: str = "en") -> str:
    with use_locale(locale):
        return money(amount, "CNY")


# The charts


def test_proportional_widths_add_up_exactly_and_keep_slivers_visible() -> None:
    assert proportional_widths([1, 1, 1], 100) == [34, 33, 33]
    assert sum(proportional_widths([995, 597, 398, 57_700], 10_000)) == 10_000
    assert proportional_widths([0, 5, 0], 100) == [0, 100, 0]
    assert proportional_widths([0, 0], 100) == [0, 0]
    assert proportional_widths([-5, 10], 100) == [0, 100]
    slivers = proportional_widths([1, 1_000_000], 10_000, least=50)
    assert slivers[0] == 50 and sum(slivers) == 10_000


def test_the_axis_top_is_a_round_number_at_or_above_the_largest_value() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 7, 10, 11, 230, 7_340, 100_000, 180_000, 250_001)] == [
        1,
        1,
        10,
        10,
        20,
        250,
        10_000,
        100_000,
        200_000,
        500_000,
    ]


def test_a_stacked_bar_draws_each_part_in_proportion_without_style_attributes() -> None:
    svg = str(stacked_bar([BarPart(25, "#111111"), BarPart(0, "#222222"), BarPart(75, "#333333")], label="A <b>"))
    assert svg.startswith('<svg class="chart chart-bar"') and svg.endswith("</svg>")
    assert 'width="25.00%" height="40" fill="#111111"' in svg
    assert 'x="25.00%" y="0" width="75.00%" height="40" fill="#333333"' in svg
    assert "#222222" not in svg
    assert 'aria-label="A &lt;b&gt;"' in svg and "<b>" not in svg
    assert "style=" not in svg and "<script" not in svg
    empty = str(stacked_bar([BarPart(0, "#111111")], label="Nothing"))
    assert "#111111" not in empty and 'fill="#efe9e1"' in empty


def test_the_milestone_track_gives_each_milestone_its_share_and_a_node_for_its_status() -> None:
    steps = [TrackStep(5000, "released"), TrackStep(3000, "requested"), TrackStep(2000, "pending")]
    svg = str(milestone_track(steps, label="Milestones"))
    assert 'x1="0.00%" y1="18" x2="50.00%"' in svg and 'x1="50.00%" y1="18" x2="80.00%"' in svg
    assert 'x2="100.00%"' in svg
    assert svg.count("<circle") == 4  # the start and one node per milestone
    assert 'stroke="#d97706"' in svg  # requested
    assert "style=" not in svg


def test_the_cumulative_chart_rises_from_zero_and_draws_the_goal() -> None:
    svg = str(cumulative_chart([100, 100, 300], top=400, goal=200, label="Pledged", width=300, height=100))
    assert 'points="0.0,100.0 100.0,75.0 200.0,75.0 300.0,25.0"' in svg
    assert 'stroke-dasharray="6 4"' in svg and 'y1="50.0"' in svg
    assert 'preserveAspectRatio="none"' in svg and "style=" not in svg
    assert "<polyline" not in str(cumulative_chart([], top=1, label="Nothing yet"))


def test_daily_totals_fill_the_days_without_pledges_and_keep_a_running_total() -> None:
    start = date(2027, 1, 1)
    days = [(date(2026, 12, 31), 1, 500), (date(2027, 1, 2), 2, 1_000), (date(2027, 1, 4), 1, 250)]
    rows = daily_totals(days, start, date(2027, 1, 4))
    assert [(row["day"].day, row["count"], row["total"]) for row in rows] == [
        (1, 1, 500),
        (2, 2, 1_500),
        (3, 0, 1_500),
        (4, 1, 1_750),
    ]


# The public escrow statement


async def test_the_escrow_statement_shows_the_books_and_milestones_to_anyone_without_backer_data(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await funded_campaign(client, sessions)
    summary = await books(sessions, funded)
    assert summary.collected == 3 * PRICE and summary.escrow_held > 0

    page = await client.get(funded.escrow)

    assert page.status_code == 200
    text = page.text
    for figure in (summary.collected, summary.fees, summary.escrow_held):
        assert shown(figure) in text
    assert '<svg class="chart chart-bar"' in text and '<svg class="chart chart-track"' in text
    assert "Funding" in text and "First batch confirmed" in text and "Shipping done" in text
    assert "Not yet reached" in text
    for backer in funded.backers:
        assert backer.email not in text
    for name in BACKER_NAMES:
        assert name not in text
    assert 'style="' not in text

    chinese = await client.get(funded.escrow + "?lang=zh_CN")
    assert chinese.status_code == 200
    assert "托管账目" in chinese.text and "托管中" in chinese.text and shown(summary.collected, "zh_CN") in chinese.text
    assert all(name not in chinese.text for name in BACKER_NAMES)


async def test_the_escrow_page_of_a_live_campaign_says_what_it_will_show_and_a_draft_has_none(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    live = await funded_campaign(client, sessions, status="live")
    before = await client.get(live.escrow)
    assert before.status_code == 200 and "What this page will show" in before.text
    async with sessions.begin() as session:
        draft = await insert_campaign(session, status="draft")
    assert (await client.get(f"/campaigns/{draft.slug}/escrow")).status_code == 404
    assert (await client.get("/campaigns/no-such-campaign/escrow")).status_code == 404
    async with logged_in(client, live.maker) as browser:
        assert (await browser.get(live.escrow)).status_code == 200
    # The API keeps its answer, in its own way (409 for a live campaign, 404 for a draft).
    assert (await client.get(f"/api/v1/campaigns/{live.campaign_id}/ledger/public")).status_code == 409
    assert (await client.get(f"/api/v1/campaigns/{draft.id}/ledger/public")).status_code == 404


async def test_the_escrow_statement_reached_by_id_moves_to_its_address_and_opens_on_success(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    successful = await funded_campaign(client, sessions, status="successful")
    moved = await client.get(f"/campaigns/{successful.campaign_id}/escrow")
    assert moved.status_code == 301 and moved.headers["location"] == successful.escrow
    page = await client.get(successful.escrow)
    assert page.status_code == 200
    assert "cards are being charged" in page.text
    assert "The milestones are set once every pledge has been charged." in page.text


# The maker's funding dashboard


async def test_the_funding_dashboard_shows_pledges_over_time_states_books_and_milestones(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await funded_campaign(client, sessions)
    summary = await books(sessions, funded)
    async with logged_in(client, funded.maker) as browser:
        page = await browser.get(funded.funding)
        chinese = await browser.get(funded.funding + "?lang=zh_CN")

    assert page.status_code == 200
    text = page.text
    assert '<svg class="chart chart-line"' in text and "<polyline" in text
    assert "Pledges over time" in text and "Day by day" in text
    # Three pledges on three days, the running total of each.
    for n in (1, 2, 3):
        assert shown(n * PRICE) in text
    states = re.findall(r'class="state-row state-(\w+)".*?<strong>(\d+)</strong>', text, re.S)
    assert dict(states) == {"active": "0", "collected": "3", "errored": "1", "dropped": "1", "refunded": "0"}
    for figure in (summary.platform_fee, summary.sponsor_fee, summary.processor_fee, summary.escrow_held):
        assert shown(figure) in text
    assert text.count("Ask for its release") == 1  # the funding milestone: the campaign is funded
    assert 'href="/campaigns/' + funded.slug + '/escrow"' in text
    assert 'href="/maker/campaigns/' + funded.slug + '/fulfillment"' in text

    assert chinese.status_code == 200
    assert "筹款" in chinese.text and "每日明细" in chinese.text and "申请放款" in chinese.text


async def test_the_funding_dashboard_is_for_the_maker_the_spaces_operators_and_admins(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await funded_campaign(client, sessions)
    anonymous = await client.get(funded.funding)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    async with logged_in(client, funded.stranger) as browser:
        assert (await browser.get(funded.funding)).status_code == 403
    for insider in (funded.operator, funded.admin):
        async with logged_in(client, insider) as browser:
            page = await browser.get(funded.funding)
            assert page.status_code == 200
            assert "Ask for its release" not in page.text
    async with sessions.begin() as session:
        draft = await insert_campaign(session, status="draft")
    async with logged_in(client, funded.stranger) as browser:
        assert (await browser.get(f"/maker/campaigns/{draft.slug}/funding")).status_code == 404


async def test_a_campaign_not_yet_funded_shows_the_spaces_plan_instead_of_milestones(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    live = await funded_campaign(client, sessions, status="live")
    async with logged_in(client, live.maker) as browser:
        page = await browser.get(live.funding)
    assert page.status_code == 200
    assert "The milestones are set once every pledge has been charged." in page.text
    assert "when the first manufacturing batch is confirmed" in page.text
    assert "Public escrow statement" not in page.text


# Milestones through the forms


async def test_the_maker_asks_for_a_milestone_and_an_operator_releases_it_and_marks_it_paid(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await funded_campaign(client, sessions)
    first, second, _third = await milestone_ids(sessions, funded)
    held = (await books(sessions, funded)).escrow_held

    async with logged_in(client, funded.maker) as browser:
        asked = await post_form(
            browser,
            f"/maker/campaigns/{funded.slug}/milestones/{first}/request",
            {"confirm": "yes"},
            form_page=funded.funding,
        )
        assert asked.status_code == 303 and "done=requested" in asked.headers["location"]
        assert "Waiting for" in (await browser.get(asked.headers["location"])).text
        too_early = await post_form(
            browser, f"/maker/campaigns/{funded.slug}/milestones/{second}/request", {}, form_page=funded.funding
        )
        assert too_early.status_code == 409
        assert "The campaign has not reached this milestone yet." in too_early.text
    assert await milestone_status(sessions, first) == "requested"
    assert await milestone_status(sessions, second) == "pending"

    async with logged_in(client, funded.operator) as browser:
        desk = await browser.get("/operator/milestones")
        assert desk.status_code == 200
        assert f"Release {shown(held // 2)}" in desk.text
        released = await post_form(
            browser,
            f"/operator/campaigns/{funded.slug}/milestones/{first}/release",
            {"confirm": "yes"},
            form_page="/operator/milestones",
        )
        assert released.status_code == 303
        desk = await browser.get(released.headers["location"])
        assert "Payouts to make" in desk.text and "Bank transfer reference" in desk.text
        payout_path = f"/operator/campaigns/{funded.slug}/milestones/{first}/payout"
        blank = await post_form(browser, payout_path, {"bank_reference": "  "}, form_page="/operator/milestones")
        assert blank.status_code == 422 and "This field is required." in blank.text
        paid = await post_form(
            browser,
            payout_path,
            {"bank_reference": "ICBC-2027-0001", "confirm": "yes"},
            form_page="/operator/milestones",
        )
        assert paid.status_code == 303
        desk = await browser.get(paid.headers["location"])
        assert "ICBC-2027-0001" in desk.text and "Every released milestone is paid." in desk.text
        again = await post_form(browser, payout_path, {"bank_reference": "X"}, form_page="/operator/milestones")
        assert again.status_code == 409 and "already marked paid" in again.text

    summary = await books(sessions, funded)
    assert summary.released == held // 2 and summary.escrow_held == held - held // 2
    async with sessions() as session:
        payout = await session.scalar(select(Payout))
        assert payout is not None and payout.status == "paid" and payout.bank_reference == "ICBC-2027-0001"
    async with logged_in(client, funded.maker) as browser:
        page = await browser.get(funded.funding)
        assert "reference ICBC-2027-0001" in page.text


async def test_only_the_maker_asks_and_only_an_operator_of_the_space_releases(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await funded_campaign(client, sessions)
    first, *_rest = await milestone_ids(sessions, funded)
    request_path = f"/maker/campaigns/{funded.slug}/milestones/{first}/request"
    release_path = f"/operator/campaigns/{funded.slug}/milestones/{first}/release"
    async with logged_in(client, funded.operator) as browser:
        assert (await post_form(browser, request_path, {}, form_page="/operator/milestones")).status_code == 403
    async with logged_in(client, funded.stranger) as browser:
        assert (await post_form(browser, request_path, {}, form_page="/operator/milestones")).status_code == 403
        desk = await browser.get("/operator/milestones")
        assert "You do not operate a makerspace." in desk.text
    async with logged_in(client, funded.maker) as browser:
        assert (await post_form(browser, request_path, {"confirm": "yes"}, form_page=funded.funding)).status_code == 303
        assert (await post_form(browser, release_path, {}, form_page=funded.funding)).status_code == 403
    async with logged_in(client, funded.admin) as browser:
        desk = await browser.get("/operator/milestones")
        assert "Only an operator of the sponsoring space releases escrow." in desk.text
        assert (await post_form(browser, release_path, {}, form_page="/operator/milestones")).status_code == 403
    assert await milestone_status(sessions, first) == "requested"
    anonymous = await client.post(release_path, data={})
    assert anonymous.status_code in (401, 403)
    assert (await client.get("/operator/milestones")).status_code == 303


@pytest.mark.parametrize("action", ["request", "release", "payout"])
async def test_a_money_form_without_the_csrf_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], action: str
) -> None:
    funded = await funded_campaign(client, sessions)
    first, *_rest = await milestone_ids(sessions, funded)
    actor, path = {
        "request": (funded.maker, f"/maker/campaigns/{funded.slug}/milestones/{first}/request"),
        "release": (funded.operator, f"/operator/campaigns/{funded.slug}/milestones/{first}/release"),
        "payout": (funded.operator, f"/operator/campaigns/{funded.slug}/milestones/{first}/payout"),
    }[action]
    if action != "request":
        async with sessions.begin() as session:
            await session.execute(update(Milestone).where(Milestone.id == uuid.UUID(first)).values(status="requested"))
    before = await milestone_status(sessions, first)
    async with logged_in(client, actor) as browser:
        refused = await browser.post(path, data={"bank_reference": "FORGED"})
    assert refused.status_code == 403
    assert await milestone_status(sessions, first) == before
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Payout)) == 0


async def test_the_escrow_releases_page_speaks_chinese(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await funded_campaign(client, sessions)
    first, *_rest = await milestone_ids(sessions, funded)
    async with sessions.begin() as session:
        await session.execute(update(Milestone).where(Milestone.id == uuid.UUID(first)).values(status="requested"))
    async with logged_in(client, funded.operator) as browser:
        page = await browser.get("/operator/milestones?lang=zh_CN")
    assert page.status_code == 200
    assert "托管放款" in page.text and "等待你放款" in page.text and "筹款成功" in page.text
    async with sessions() as session:
        assert (await session.get_one(Campaign, funded.campaign_id)).status == "funded"


async def test_the_campaign_pages_lead_to_the_money_and_fulfillment_pages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await funded_campaign(client, sessions)
    public = await client.get(f"/campaigns/{funded.slug}")
    assert f'href="{funded.escrow}"' in public.text
    async with logged_in(client, funded.maker) as browser:
        for path in ("/maker", f"/maker/campaigns/{funded.slug}"):
            page = await browser.get(path)
            assert f'href="{funded.funding}"' in page.text, path
            assert f'href="/maker/campaigns/{funded.slug}/fulfillment"' in page.text, path
    async with logged_in(client, funded.operator) as browser:
        assert 'href="/operator/milestones"' in (await browser.get("/operator")).text


# In a real browser


async def a_campaign_in_full_swing(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> Funded:
    """The funded campaign, planned into a batch that the maker has confirmed (two backers gave an address), its
    first milestone released (its payout not yet paid), the second asked for."""
    funded = await funded_campaign(client, sessions)
    async with sessions.begin() as session:
        await plan_campaign(session, funded.campaign_id)
    api = f"/api/v1/campaigns/{funded.campaign_id}"
    pledges = (await client.get(f"{api}/pledges", headers=funded.maker.headers)).json()["items"]
    by_backer = {pledge["backer_id"]: pledge["id"] for pledge in pledges}
    for backer in funded.backers[:2]:
        given = await client.put(
            f"/api/v1/pledges/{by_backer[backer.id]}/address", json=address(), headers=backer.headers
        )
        assert given.status_code == 200, given.text
    [batch] = (await client.get(f"{api}/batches", headers=funded.maker.headers)).json()
    confirmed = await client.post(f"{api}/batches/{batch['id']}/confirm", headers=funded.maker.headers)
    assert confirmed.status_code == 200, confirmed.text
    first, second, _third = await milestone_ids(sessions, funded)
    for path, actor in (
        (f"{api}/milestones/{first}/request", funded.maker),
        (f"{api}/milestones/{first}/release", funded.operator),
        (f"{api}/milestones/{second}/request", funded.maker),
    ):
        response = await client.post(path, headers=actor.headers)
        assert response.status_code == 200, response.text
    return funded


BAD_TRACKING = (
    "pledge_id,carrier,tracking_number\n"
    f"{uuid.uuid4()},SF Express,SF100\n"
    "not-an-id,SF Express,SF101\n"
    f"{uuid.uuid4()},,SF102\n"
).encode()


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_the_money_and_fulfillment_pages_work_in_chromium_at_phone_and_desktop_widths(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    funded = await a_campaign_in_full_swing(client, sessions)
    pages = {
        "escrow": (None, funded.escrow),
        "funding": (funded.maker, funded.funding),
        "fulfillment": (funded.maker, f"/maker/campaigns/{funded.slug}/fulfillment"),
        "releases": (funded.operator, "/operator/milestones"),
        "fulfillment-operator": (funded.operator, f"/operator/campaigns/{funded.slug}/fulfillment"),
        "maker-dashboard": (funded.maker, "/maker"),
    }
    async with launch_browser() as browser:
        for locale, lang in (("en-US", "en"), ("zh-CN", "zh")):
            for width in (1280, 375):
                for name, (actor, path) in pages.items():
                    async with new_page(browser, width=width, locale=locale) as page:
                        errors = console_errors(page)
                        if actor is None:
                            response = await page.goto(live_server.url + path)
                        else:
                            response = await log_in_page(page, live_server.url, actor, then=path)
                        assert response is not None and response.status == 200, (name, width, lang)
                        await screenshot(page, f"/tmp/shots/money/{name}-{width}-{lang}.png")
                        # Nothing sticks out sideways on a phone: the page is as wide as the screen.
                        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                        assert overflow <= 0, (name, width, lang, overflow)
                        assert errors == [], (name, width, lang, errors)
                        if name == "fulfillment":
                            bad_file = FilePayload(name="tracking.csv", mimeType="text/csv", buffer=BAD_TRACKING)
                            await page.locator("#field-tracking-file").set_input_files(files=bad_file)
                            await page.locator("#tracking button[type=submit]").click()
                            await page.wait_for_selector(".line-errors")
                            await screenshot(page, f"/tmp/shots/money/fulfillment-errors-{width}-{lang}.png")
                        if name == "releases":
                            await page.locator("#payouts button[type=submit]").click()
                            await page.wait_for_selector("#payouts .field-error")
                            await screenshot(page, f"/tmp/shots/money/releases-errors-{width}-{lang}.png")
