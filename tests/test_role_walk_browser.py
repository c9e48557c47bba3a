"""Each role walks through its screens in Chromium: a maker drafts a campaign with a product and a tier and submits
it, an operator reviews it (with the log-in code step) and opens the space's settings, the maker launches it and
opens an update to edit, a backer backs a tier with a card through Stripe.js (localstripe's stand-in), sees the pledge
and the page that changes its card, a maker of a funded campaign types a package's tracking number, an admin opens
the administration.

Each role walks in one language at one width (together: English and Chinese, 1280 and 390 x 844 wide); afterwards
every screen it saw is shown again in the other three, so that each screen is kept as a PNG in both languages at both
widths, in $KINDLING_TEST_ARTEFACTS (default: test-artefacts/ at the top of the repository) under role-walk/.
One browser for all of it, a new context per role and view, no sleeps: every wait is on a selector or a URL.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Pledge
from service.app import create_app
from service.broker import ListSender
from service.settings import Settings
from tests.browser import chromium_available, console_errors, launch_browser, log_in_through_the_form, serve
from tests.helpers import CARD_OK, DELIVERY, Actor, create_space, make_admin, make_operator, sign_up
from tests.test_fulfillment_pages import confirmed_shop, first_batch_id

ARTEFACTS = (
    Path(os.environ.get("KINDLING_TEST_ARTEFACTS") or Path(__file__).resolve().parent.parent / "test-artefacts")
    / "role-walk"
)


@dataclass(frozen=True)
class View:
    lang: str
    width: int
    height: int

    @property
    def name(self) -> str:
        return f"{self.lang}-{self.width}"


DESKTOP_EN, PHONE_ZH, PHONE_EN, DESKTOP_ZH = (
    View("en", 1280, 800),
    View("zh_CN", 390, 844),
    View("en", 390, 844),
    View("zh_CN", 1280, 800),
)


@dataclass
class Walk:
    """One role's walk: the screens it saw (name -> path, revisited in the other views) and its log-in."""

    role: str
    view: View
    screens: dict[str, str] = field(default_factory=dict)
    state: Any = None


@dataclass
class Shots:
    base: str
    taken: list[Path] = field(default_factory=list)

    async def take(self, page: Page, role: str, screen: str, view: View, errors: list[str]) -> None:
        """A full-page PNG of the screen; the page is in the view's language, nothing is wider than the screen and
        the console has no error."""
        assert await page.evaluate("document.documentElement.lang") == view.lang.replace("_", "-"), (role, screen)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (role, screen, view.name, overflow)
        assert errors == [], (role, screen, view.name, errors)
        path = ARTEFACTS / f"{role}-{screen}-{view.name}.png"
        await page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)


@asynccontextmanager
async def opened(browser: Browser, base: str, view: View, state: Any = None) -> AsyncIterator[Page]:
    context: BrowserContext = await browser.new_context(
        viewport={"width": view.width, "height": view.height},
        locale="zh-CN" if view.lang == "zh_CN" else "en-US",
        storage_state=state,
    )
    await context.add_cookies([{"name": "lang", "value": view.lang, "url": base}])
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def visit(page: Page, shots: Shots, walk: Walk, screen: str, path: str, errors: list[str]) -> None:
    await page.goto(shots.base + path)
    walk.screens[screen] = path
    await shots.take(page, walk.role, screen, walk.view, errors)


async def walk_maker_to_review(
    page: Page, shots: Shots, walk: Walk, maker: Actor, space: dict[str, Any], errors: list[str]
) -> str:
    """Draft, a product, a tier (first refused for want of a product), submit. Returns the campaign's slug."""
    await log_in_through_the_form(page, shots.base, maker)
    walk.state = await page.context.storage_state()
    await visit(page, shots, walk, "dashboard", "/maker", errors)
    await visit(page, shots, walk, "new-campaign", "/maker/new", errors)
    await page.locator("#field-language").select_option("en")
    await page.locator("#field-title").fill("Paddy Guard")
    await page.locator("#field-summary").fill("A water-level sensor for rice paddies.")
    await page.locator("#field-description").fill("## The sensor\n\nIt tells you **when** to flood the field.")
    await page.locator("#field-goal").fill("1000")
    await page.locator("#field-space_id").select_option(space["id"])
    await page.locator("#field-duration_days").fill("30")
    await page.get_by_role("button", name="Save the draft").click()
    await page.wait_for_url(re.compile(r"/maker/campaigns/[a-z0-9-]+\?"))
    slug = page.url.split("/maker/campaigns/")[1].split("?")[0]
    manage = f"/maker/campaigns/{slug}"
    # Honest empty states: nothing to sell yet, and submitting is refused until there is a tier.
    assert "No reward tiers yet" in await page.locator("main").inner_text()
    walk.screens["campaign-draft"] = manage
    await shots.take(page, walk.role, "campaign-draft", walk.view, errors)

    await visit(page, shots, walk, "new-product", f"{manage}/products/new", errors)
    await page.locator("#field-sku").fill("GUARD-1")
    await page.locator("#field-name").fill("Paddy Guard sensor")
    await page.locator("#field-weight_grams").fill("180")
    await page.locator("#field-unit_cost").fill("45")
    await page.locator("#field-batch_size").fill("200")
    await page.get_by_role("button", name="Add the product").click()
    await page.wait_for_url(re.compile(r"done="))

    await visit(page, shots, walk, "new-tier", f"{manage}/tiers/new", errors)
    await page.locator("#field-title").fill("Early bird")
    await page.locator("#field-price").fill("149")
    await page.locator('label[for="limit-limited"]').click()
    await page.locator("#field-quantity_limit").fill("50")
    await page.locator("#field-estimated_delivery").fill(DELIVERY)
    await page.locator("#shipping-0-country").select_option("CN")
    await page.locator("#shipping-0-fee").fill("10")
    await page.get_by_role("button", name="Add the tier").click()
    # A tier without a product is refused: the form comes back with the message and what was typed.
    await page.wait_for_selector(".form-errors")
    assert "Choose at least one product for this tier" in await page.locator("main").inner_text()
    assert await page.locator("#field-title").input_value() == "Early bird"
    assert errors == ["Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"]
    errors.clear()
    await shots.take(page, walk.role, "tier-refused", walk.view, errors)
    await page.locator("#items-0-sku").select_option("GUARD-1")
    await page.locator("#items-0-quantity").fill("1")
    await page.get_by_role("button", name="Add the tier").click()
    await page.wait_for_url(re.compile(r"done=tier-added"))
    await shots.take(page, walk.role, "campaign-with-tier", walk.view, errors)

    await page.get_by_role("button", name="Submit for review").click()
    await page.wait_for_url(re.compile(r"done=submitted"))
    assert "In review" in await page.locator(".badge").first.inner_text()
    await shots.take(page, walk.role, "submitted", walk.view, errors)
    return slug


async def walk_operator(
    page: Page, shots: Shots, walk: Walk, operator: Actor, space: dict[str, Any], slug: str, errors: list[str]
) -> None:
    """The review queue and the checklist, in Chinese on a phone; the code step is answered at log-in. First the
    space's settings, whose milestone plan must read whole on a phone."""
    await log_in_through_the_form(page, shots.base, operator)
    walk.state = await page.context.storage_state()
    await visit(page, shots, walk, "space-edit", f"/operator/spaces/{space['id']}", errors)
    assert await page.locator("#m1_unlocks_on").evaluate("select => select.selectedOptions[0].text") == "首批生产已确认"
    await visit(page, shots, walk, "queue", "/operator", errors)
    assert "Paddy Guard" in await page.locator("main").inner_text()
    await visit(page, shots, walk, "review", f"/operator/campaigns/{slug}", errors)
    form = page.locator(f'form[action="/operator/campaigns/{slug}"]')
    for item in ("prototype", "bill_of_materials", "manufacturing_quote", "certifications"):
        await form.locator(f'label[for="checklist-{item}-yes"]').click()
    await form.locator("#field-notes").fill("样机已在空间内看过，物料清单和工厂报价齐全。")
    await form.locator('label[for="decision-approve"]').click()
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector(".notice-success")
    await shots.take(page, walk.role, "approved", walk.view, errors)


async def walk_maker_launch(page: Page, shots: Shots, walk: Walk, slug: str, errors: list[str]) -> None:
    """Launching cannot be undone: it asks once more, with what will happen. Before it, the operator's notes."""
    await page.goto(f"{shots.base}/maker/campaigns/{slug}")
    # The operator typed the notes on a Chinese page: the maker's English page shows them marked as Chinese.
    notes = page.locator('.review-notes[lang="zh-CN"]').first
    assert "样机已在空间内看过" in await notes.inner_text()
    assert "written in Chinese" in await page.locator("main").inner_text()
    await page.get_by_role("button", name="Launch the campaign").click()
    await page.wait_for_selector(".confirm-consequences li")
    await shots.take(page, walk.role, "launch-confirm", walk.view, errors)
    await page.locator(".confirm-actions button[type=submit]").click()
    await page.wait_for_url(re.compile(rf"/maker/campaigns/{slug}\?done="))
    await shots.take(page, walk.role, "live", walk.view, errors)


async def walk_backer(
    page: Page, shots: Shots, walk: Walk, backer: Actor, slug: str, tier_id: str, errors: list[str]
) -> str:
    """Backs the tier with a card on a phone, sees the pledge; cancelling asks first, and the backer goes back."""
    await visit(page, shots, walk, "campaign", f"/campaigns/{slug}", errors)
    assert "50 left" in await page.locator(f"#tier-{tier_id}").inner_text()
    await log_in_through_the_form(page, shots.base, backer)
    walk.state = await page.context.storage_state()
    await visit(page, shots, walk, "back", f"/campaigns/{slug}/back?tier={tier_id}", errors)
    await page.locator("#field-shipping_country").select_option("CN")
    await page.get_by_role("button", name="Continue to payment").click()
    await page.wait_for_url(re.compile(r"/me/pledges/[0-9a-f-]{36}/card$"))
    pledge_id = page.url.rsplit("/", 2)[-2]
    await page.wait_for_selector("#card-submit:enabled")  # Stripe.js has mounted the card fields
    await shots.take(page, walk.role, "card", walk.view, errors)
    card = page.locator("#card-element")
    await card.get_by_placeholder("number").fill(CARD_OK)
    await card.get_by_placeholder("exp_month").fill("12")
    await card.get_by_placeholder("exp_year").fill("30")
    await card.get_by_placeholder("cvc").fill("123")
    await card.get_by_placeholder("postal_code").fill("518057")
    await page.locator("#card-submit").click()
    await page.wait_for_url(re.compile(rf"/me/pledges/{pledge_id}\?done=card-saved$"))
    assert "Your card is saved and your pledge is active." in await page.locator(".notice-success").inner_text()
    walk.screens["pledge"] = f"/me/pledges/{pledge_id}"
    await shots.take(page, walk.role, "pledge", walk.view, errors)
    await visit(page, shots, walk, "card-change", f"/me/pledges/{pledge_id}/card/change", errors)
    await page.goto(f"{shots.base}/me/pledges/{pledge_id}")

    await page.get_by_text("Cancel this pledge").click()
    await page.get_by_role("button", name="Yes, cancel my pledge").click()
    await page.wait_for_selector(".confirm-consequences li")
    await shots.take(page, walk.role, "cancel-confirm", walk.view, errors)
    await page.locator(".confirm-actions a.btn").click()
    await page.wait_for_url(re.compile(rf"/me/pledges/{pledge_id}$"))
    await visit(page, shots, walk, "my-pledges", "/me/pledges", errors)
    assert "Active" in await page.locator("main").inner_text()
    return pledge_id


async def walk_admin(
    page: Page, shots: Shots, walk: Walk, admin: Actor, space: dict[str, Any], errors: list[str]
) -> None:
    await log_in_through_the_form(page, shots.base, admin)
    walk.state = await page.context.storage_state()
    await visit(page, shots, walk, "home", "/admin", errors)
    assert space["name"] in await page.locator("main").inner_text()


async def walk_shipper(page: Page, shots: Shots, walk: Walk, maker: Actor, packages: str, errors: list[str]) -> None:
    """The maker of a funded campaign whose first batch is confirmed types one package's tracking number."""
    await log_in_through_the_form(page, shots.base, maker)
    walk.state = await page.context.storage_state()
    await visit(page, shots, walk, "packages", packages, errors)
    form = page.locator("form.package-form").first
    await form.locator('input[name="carrier"]').fill("顺丰速运")
    await form.locator('input[name="tracking_number"]').fill("SF1234567890")
    await form.locator("button[type=submit]").click()
    await page.wait_for_url(re.compile(r"done=shipped"))
    assert await page.locator(".badge-success").count() == 1
    await shots.take(page, walk.role, "package-shipped", walk.view, errors)


def views_to_revisit(walked: View) -> list[View]:
    """The views that, with the one walked in, show each screen at both widths in both languages."""
    return [view for view in (DESKTOP_EN, PHONE_ZH, PHONE_EN, DESKTOP_ZH) if view != walked]


async def revisit(browser: Browser, shots: Shots, walk: Walk) -> None:
    """Every screen the role saw, again in the views it did not walk in."""
    for view in views_to_revisit(walk.view):
        async with opened(browser, shots.base, view, walk.state) as page:
            errors = console_errors(page)
            # Signed in, the account's language wins over the cookie; the switch sets it, as a person would.
            await page.goto(f"{shots.base}/?lang={view.lang}")
            for screen, path in walk.screens.items():
                await page.goto(shots.base + path)
                await shots.take(page, walk.role, screen, view, errors)


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_each_role_walks_its_screens_in_both_languages_on_a_phone_and_a_desktop(
    stripe_client: httpx.AsyncClient, stripe_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    started = time.monotonic()
    admin = await make_admin(sessions, await sign_up(stripe_client, "Ada"))
    space = await create_space(stripe_client, admin, name="Chaihuo x.factory")
    operator = await make_operator(stripe_client, admin, space, "Olu")
    maker = await sign_up(stripe_client, "Mia")
    backer = await sign_up(stripe_client, "Bo")
    shop, shop_slug = await confirmed_shop(stripe_client, sessions)
    packages = f"/maker/campaigns/{shop_slug}/fulfillment/batches/{await first_batch_id(sessions, shop)}/packages"
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTEFACTS.glob("*.png"):
        old.unlink()

    with serve(create_app(stripe_settings, sender=ListSender(), engine_pool=5)) as server:
        shots = Shots(server.url)
        walks = {
            "maker": Walk("maker", DESKTOP_EN),
            "operator": Walk("operator", PHONE_ZH),
            "backer": Walk("backer", PHONE_EN),
            "admin": Walk("admin", DESKTOP_ZH),
            "shipper": Walk("shipper", DESKTOP_EN),
        }
        async with launch_browser() as browser:

            async def admin_walks() -> None:
                async with opened(browser, server.url, DESKTOP_ZH) as page:
                    await walk_admin(page, shots, walks["admin"], admin, space, console_errors(page))
                await revisit(browser, shots, walks["admin"])
                async with opened(browser, server.url, DESKTOP_EN) as page:
                    await walk_shipper(page, shots, walks["shipper"], shop.maker, packages, console_errors(page))
                await revisit(browser, shots, walks["shipper"])

            # The admin's screens need nothing of the others': they are walked meanwhile, as are the maker's and
            # the operator's screens again while the backer walks (the browser draws while the server renders).
            alongside = [asyncio.create_task(admin_walks())]
            async with opened(browser, server.url, DESKTOP_EN) as maker_page:
                maker_errors = console_errors(maker_page)
                slug = await walk_maker_to_review(maker_page, shots, walks["maker"], maker, space, maker_errors)
                async with opened(browser, server.url, PHONE_ZH) as page:
                    await walk_operator(page, shots, walks["operator"], operator, space, slug, console_errors(page))
                await walk_maker_launch(maker_page, shots, walks["maker"], slug, maker_errors)
                update = await stripe_client.post(
                    f"/api/v1/campaigns/{slug}/updates",
                    json={"title": "Tooling", "body": "The mould is **ready**."},
                    headers=maker.headers,
                )
                assert update.status_code == 201, update.text
                edit = f"/maker/campaigns/{slug}/updates/{update.json()['id']}/edit"
                await visit(maker_page, shots, walks["maker"], "update-edit", edit, maker_errors)
            alongside += [asyncio.create_task(revisit(browser, shots, walks[role])) for role in ("maker", "operator")]
            async with sessions() as session:
                campaign = await session.get_one(Campaign, await _campaign_id(stripe_client, maker, slug))
                tier_id = str((await stripe_client.get(f"/api/v1/campaigns/{campaign.id}")).json()["tiers"][0]["id"])
            assert campaign.status == "live" and campaign.language == "en"
            async with opened(browser, server.url, PHONE_EN) as page:
                pledge_id = await walk_backer(page, shots, walks["backer"], backer, slug, tier_id, console_errors(page))
            await revisit(browser, shots, walks["backer"])
            await asyncio.gather(*alongside)

    async with sessions() as session:
        pledge = await session.get_one(Pledge, uuid.UUID(pledge_id))
    assert pledge.status == "active" and pledge.payment_method_id
    screens = sum(len(walk.screens) for walk in walks.values())
    assert len(shots.taken) >= screens * 4
    total = time.monotonic() - started
    print(f"role walk: {len(shots.taken)} screenshots in {ARTEFACTS} in {total:.1f} s")


async def _campaign_id(client: httpx.AsyncClient, maker: Actor, slug: str) -> uuid.UUID:
    found = await client.get(f"/api/v1/campaigns/{slug}", headers=maker.headers)
    assert found.status_code == 200, found.text
    return uuid.UUID(found.json()["id"])
