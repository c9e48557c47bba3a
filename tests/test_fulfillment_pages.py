"""The maker's fulfillment dashboard (and the operator's read-only view of it): totals, batches, shipping lists, the
backers without an address, the tracking upload and the settings."""

from __future__ import annotations

import csv
import io
import re
import uuid

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Product, Tier
from fulfillment.models import Batch, Shipment
from service.i18n import use_locale
from service.pages.fulfillment import line_problem
from tests.factories import insert_campaign
from tests.helpers import LOCK_AT
from tests.pages import csrf_from, logged_in, post_form
from tests.test_fulfillment_api import Shop, campaign_status, give_address, mails_of, open_shop, plan, upload


async def slug_of(sessions: async_sessionmaker[AsyncSession], shop: Shop) -> str:
    async with sessions() as session:
        return (await session.get_one(Campaign, shop.campaign_id)).slug


async def a_planned_shop(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], *, addressed: int = 0
) -> tuple[Shop, str]:
    """A funded campaign (BOARD with 5 % spares and CASE, three backers), `addressed` of them with an address,
    planned into its first batch."""
    shop = await open_shop(client, sessions)
    for n in range(addressed):
        assert (await give_address(client, shop, n)).status_code == 200
    await plan(sessions, shop.campaign_id)
    return shop, await slug_of(sessions, shop)


async def first_batch_id(sessions: async_sessionmaker[AsyncSession], shop: Shop) -> str:
    async with sessions() as session:
        batch = await session.scalar(select(Batch).where(Batch.campaign_id == shop.campaign_id, Batch.number == 1))
        assert batch is not None
        return str(batch.id)


async def confirmed_shop(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> tuple[Shop, str]:
    shop, slug = await a_planned_shop(client, sessions, addressed=3)
    batch_id = await first_batch_id(sessions, shop)
    async with logged_in(client, shop.maker) as browser:
        confirmed = await post_form(
            browser,
            f"/maker/campaigns/{slug}/fulfillment/batches/{batch_id}/confirm",
            {"confirm": "yes"},
            form_page=f"/maker/campaigns/{slug}/fulfillment",
        )
        assert confirmed.status_code == 303, confirmed.text
    return shop, slug


async def upload_file(
    browser: httpx.AsyncClient, slug: str, content: bytes, *, lang: str = "en", filename: str = "tracking.csv"
) -> httpx.Response:
    page = f"/maker/campaigns/{slug}/fulfillment"
    token = await csrf_from(browser, page)
    return await browser.post(
        f"{page}/tracking?lang={lang}",
        data={"csrf_token": token},
        files={"file": (filename, content, "text/csv")},
    )


async def shipments_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Shipment)) or 0)


# The dashboard


async def test_the_dashboard_shows_totals_with_spares_batches_and_who_has_no_address(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await a_planned_shop(client, sessions, addressed=1)
    async with sessions.begin() as session:  # the maker gave the board and the reward a Chinese name
        await session.execute(
            update(Product)
            .where(Product.campaign_id == shop.campaign_id, Product.sku == "BOARD")
            .values(language="en", translations={"zh_CN": {"name": "电路板"}})
        )
        await session.execute(
            update(Tier).where(Tier.campaign_id == shop.campaign_id).values(translations={"zh_CN": {"title": "整套"}})
        )
    async with logged_in(client, shop.maker) as browser:
        page = await browser.get(f"/maker/campaigns/{slug}/fulfillment")
        chinese = await browser.get(f"/maker/campaigns/{slug}/fulfillment?lang=zh_CN")

    assert page.status_code == 200
    text = page.text
    # BOARD: 3 for the backers and 1 spare (5 %, rounded up); CASE: 3, no spares.
    assert re.search(r'<code>BOARD</code></td><td class="card-head">Board</td><td[^>]*>3</td><td[^>]*>1</td>', text)
    assert re.search(r'<code>CASE</code></td><td class="card-head">Case</td><td[^>]*>3</td><td[^>]*>0</td>', text)
    assert "Batch 1" in text and "Planned" in text and "Confirm with the factory" in text
    batch_id = await first_batch_id(sessions, shop)
    assert f'href="/api/v1/campaigns/{shop.campaign_id}/batches/{batch_id}/shipping-list.csv"' in text
    assert "1 of" not in text and "0 of 1 shipped" in text
    # Two backers have not given an address yet; the first has.
    assert "Waiting for an address" in text
    assert "Backer1" in text and "Backer2" in text and "Backer0" not in text
    assert "Tracking numbers are taken once a batch is confirmed with the factory." in text
    assert 'name="packaging_weight_grams"' in text

    assert chinese.status_code == 200
    assert "履约" in chinese.text and "工厂要生产的数量" in chinese.text and "等待地址" in chinese.text
    # Names in the reader's language where the maker gave one: the totals and the backers waiting for an address.
    assert '<td class="card-head">电路板</td>' in chinese.text and '<td class="card-head">Board</td>' in text
    assert re.search(r'data-label="回报">整套</td>', chinese.text), "the held-back backer's reward, in Chinese"


async def test_the_shipping_list_button_downloads_the_apis_csv_with_the_session_cookie(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, _slug = await a_planned_shop(client, sessions, addressed=2)
    batch_id = await first_batch_id(sessions, shop)
    async with logged_in(client, shop.maker) as browser:
        listed = await browser.get(f"/api/v1/campaigns/{shop.campaign_id}/batches/{batch_id}/shipping-list.csv")
    assert listed.status_code == 200 and listed.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(listed.text, newline="")))
    assert sorted(row["pledge_id"] for row in rows) == sorted(shop.pledge_ids[:2])


async def test_before_funding_there_is_nothing_to_make(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions, status="successful")
    slug = await slug_of(sessions, shop)
    async with logged_in(client, shop.maker) as browser:
        page = await browser.get(f"/maker/campaigns/{slug}/fulfillment")
    assert page.status_code == 200
    assert "Nothing to make yet" in page.text and "Confirm with the factory" not in page.text


async def test_the_maker_confirms_a_batch_and_starts_its_production_through_the_forms(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await a_planned_shop(client, sessions, addressed=3)
    batch_id = await first_batch_id(sessions, shop)
    page = f"/maker/campaigns/{slug}/fulfillment"
    async with logged_in(client, shop.maker) as browser:
        confirmed = await post_form(browser, f"{page}/batches/{batch_id}/confirm", {"confirm": "yes"}, form_page=page)
        assert confirmed.status_code == 303
        shown = await browser.get(confirmed.headers["location"])
        assert "The batch is confirmed with the factory." in shown.text
        assert "Confirmed with the factory" in shown.text and "Mark in production" in shown.text
        again = await post_form(browser, f"{page}/batches/{batch_id}/confirm", {"confirm": "yes"}, form_page=page)
        assert again.status_code == 409 and "This batch is already confirmed." in again.text
        started = await post_form(browser, f"{page}/batches/{batch_id}/start-production", {}, form_page=page)
        assert started.status_code == 303
        assert "In production" in (await browser.get(started.headers["location"])).text
    assert await campaign_status(sessions, shop) == "fulfilling"


# The tracking upload


async def test_a_tracking_upload_with_bad_lines_shows_each_by_number_and_applies_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await confirmed_shop(client, sessions)
    a, b, c = shop.pledge_ids
    content = upload(
        (a, "SF Express", "SF100"),  # line 2: good
        (str(uuid.uuid4()), "SF Express", "SF101"),  # line 3: unknown pledge
        (a, "SF Express", "SF103"),  # line 4: duplicate
        (b, "SF Express", ""),  # line 5: empty tracking number
        (c, "顺丰速运", "SF105"),  # line 6: good
    ).encode()
    async with logged_in(client, shop.maker) as browser:
        refused = await upload_file(browser, slug, content)
        chinese = await upload_file(browser, slug, content, lang="zh_CN")

    assert refused.status_code == 422
    text = refused.text
    assert "3 lines of the file need fixing. Nothing was saved" in text
    assert "<strong>Line 3:</strong> No pledge has the id" in text
    assert "<strong>Line 4:</strong> Pledge " + a + " is already on line 2: one package per pledge." in text
    assert "<strong>Line 5:</strong> The tracking_number is empty." in text
    assert "Line 2" not in text and "Line 6" not in text
    assert chinese.status_code == 422 and "第 3 行" in chinese.text and "第 5 行" in chinese.text
    assert await shipments_count(sessions) == 0
    assert await mails_of(sessions, "shipped") == []


async def test_a_good_tracking_upload_ships_the_packages_and_fulfills_the_campaign(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await confirmed_shop(client, sessions)
    a, b, c = shop.pledge_ids
    content = upload((a, "SF Express", "SF100"), (b, "顺丰速运", "SF101"), (c, "EMS", "EE1"))
    async with logged_in(client, shop.maker) as browser:
        shipped = await upload_file(browser, slug, ("\ufeff" + content).encode())
        assert shipped.status_code == 303, shipped.text
        page = await browser.get(shipped.headers["location"])
    assert "3 packages marked shipped, 0 corrected, 0 already known" in page.text
    assert "3 of 3 shipped" in page.text
    assert await shipments_count(sessions) == 3
    assert len(await mails_of(sessions, "shipped")) == 3
    assert await campaign_status(sessions, shop) == "fulfilled"


async def test_an_upload_without_a_file_or_not_in_utf8_is_refused_with_a_reason(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await confirmed_shop(client, sessions)
    async with logged_in(client, shop.maker) as browser:
        not_utf8 = await upload_file(browser, slug, "pledge_id,carrier,tracking_number\n".encode("utf-16"))
        assert not_utf8.status_code == 422 and "The file is not UTF-8 text." in not_utf8.text
        empty = await upload_file(browser, slug, b"pledge_id,carrier,tracking_number\n")
        assert empty.status_code == 422 and "There are no shipments after the header row." in empty.text
        token = await csrf_from(browser, f"/maker/campaigns/{slug}/fulfillment")
        no_file = await browser.post(f"/maker/campaigns/{slug}/fulfillment/tracking", data={"csrf_token": token})
        assert no_file.status_code == 422 and "Choose the CSV file to upload." in no_file.text
    assert await shipments_count(sessions) == 0


def test_every_bad_line_is_told_in_the_readers_language() -> None:
    with use_locale("zh_CN"):
        assert line_problem("tracking_number is empty") != "tracking_number is empty"
        assert "SF" not in line_problem("no pledge has the id 123")
        assert line_problem("something new") == "something new"
    with use_locale("en"):
        assert line_problem("missing column carrier") == "The column carrier is missing."
        assert line_problem("expected 3 cells (pledge_id, carrier, tracking_number), found 2") == (
            "Expected 3 cells (pledge_id, carrier, tracking_number), found 2."
        )
        assert line_problem("pledge_id 'x' is not a pledge id") == "'x' is not a pledge id."


# Settings


async def test_the_maker_sets_the_address_lock_and_the_packaging_weight(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await a_planned_shop(client, sessions)
    page = f"/maker/campaigns/{slug}/fulfillment"
    async with logged_in(client, shop.maker) as browser:
        bad = await post_form(
            browser,
            f"{page}/settings",
            {"address_lock_at": "next tuesday", "packaging_weight_grams": "-5"},
            form_page=page,
        )
        assert bad.status_code == 422
        assert "Enter a date and a time" in bad.text
        assert 'value="next tuesday"' in bad.text
        heavy = await post_form(
            browser, f"{page}/settings", {"address_lock_at": "", "packaging_weight_grams": "100001"}, form_page=page
        )
        assert heavy.status_code == 422 and "Enter a whole number of grams from 0 to 100,000." in heavy.text
        saved = await post_form(
            browser,
            f"{page}/settings",
            {"address_lock_at": f"{LOCK_AT:%Y-%m-%dT%H:%M}", "packaging_weight_grams": "250"},
            form_page=page,
        )
        assert saved.status_code == 303
        shown = await browser.get(saved.headers["location"])
        assert f'value="{LOCK_AT:%Y-%m-%dT%H:%M}"' in shown.text and 'value="250"' in shown.text
    async with sessions() as session:
        campaign = await session.get_one(Campaign, shop.campaign_id)
        assert campaign.packaging_weight_grams == 250
        assert campaign.address_lock_at == LOCK_AT


# Who sees what


async def test_the_spaces_operators_see_it_read_only_and_strangers_not_at_all(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await a_planned_shop(client, sessions, addressed=1)
    page = f"/maker/campaigns/{slug}/fulfillment"
    batch_id = await first_batch_id(sessions, shop)
    async with logged_in(client, shop.maker) as browser:
        own = (await browser.get(page)).text
        assert "Confirm with the factory" in own and 'name="packaging_weight_grams"' in own
    for viewer in (shop.operator, shop.admin):
        async with logged_in(client, viewer) as browser:
            for path in (page, f"/operator/campaigns/{slug}/fulfillment"):
                seen = await browser.get(path)
                assert seen.status_code == 200, path
                assert "read-only" in seen.text and "Batch 1" in seen.text
                # The shipping list holds backers' addresses: the operators ship, an admin only looks on.
                assert ("shipping-list.csv" in seen.text) == (viewer is shop.operator)
                assert "Confirm with the factory" not in seen.text and 'type="file"' not in seen.text
                assert 'name="packaging_weight_grams"' not in seen.text
            refused = await post_form(browser, f"{page}/batches/{batch_id}/confirm", {"confirm": "yes"}, form_page=page)
            assert refused.status_code == 403
    async with logged_in(client, shop.stranger) as browser:
        assert (await browser.get(page)).status_code == 403
        assert (await browser.get(f"/operator/campaigns/{slug}/fulfillment")).status_code == 403
    anonymous = await client.get(page)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    async with sessions.begin() as session:
        draft = await insert_campaign(session, status="draft")
    async with logged_in(client, shop.stranger) as browser:
        assert (await browser.get(f"/maker/campaigns/{draft.slug}/fulfillment")).status_code == 404
    async with sessions() as session:
        assert (await session.get_one(Batch, uuid.UUID(batch_id))).status == "planned"


@pytest.mark.parametrize("action", ["confirm", "tracking", "settings"])
async def test_a_fulfillment_form_without_the_csrf_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], action: str
) -> None:
    shop, slug = await a_planned_shop(client, sessions, addressed=3)
    batch_id = await first_batch_id(sessions, shop)
    page = f"/maker/campaigns/{slug}/fulfillment"
    path = {
        "confirm": f"{page}/batches/{batch_id}/confirm",
        "tracking": f"{page}/tracking",
        "settings": f"{page}/settings",
    }[action]
    async with logged_in(client, shop.maker) as browser:
        refused = await browser.post(
            path,
            data={"packaging_weight_grams": "999", "address_lock_at": ""},
            files={"file": ("t.csv", upload((shop.pledge_ids[0], "EMS", "E1")).encode(), "text/csv")},
        )
    assert refused.status_code == 403
    async with sessions() as session:
        assert (await session.get_one(Batch, uuid.UUID(batch_id))).status == "planned"
        assert (await session.get_one(Campaign, shop.campaign_id)).packaging_weight_grams == 0
    assert await shipments_count(sessions) == 0
