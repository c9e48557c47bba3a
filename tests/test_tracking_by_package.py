"""The maker types each package's tracking number on the page of a confirmed batch's packages, as well as by CSV:
checked like a line of the upload, the backer told by mail once, a new number a correction."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.pages import logged_in, post_form
from tests.test_fulfillment_api import campaign_status, mails_of
from tests.test_fulfillment_pages import a_planned_shop, confirmed_shop, first_batch_id, shipments_count


async def test_the_maker_types_tracking_numbers_package_by_package_and_each_backer_is_told_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await confirmed_shop(client, sessions)
    a, b, c = shop.pledge_ids
    packages = f"/maker/campaigns/{slug}/fulfillment/batches/{await first_batch_id(sessions, shop)}/packages"
    async with logged_in(client, shop.maker) as browser:
        assert f'href="{packages}"' in (await browser.get(f"/maker/campaigns/{slug}/fulfillment")).text
        listed = (await browser.get(packages)).text
        assert all(f'id="package-{pledge}"' in listed for pledge in (a, b, c))
        assert listed.count("Not shipped yet") == 3

        saved = await post_form(
            browser,
            f"{packages}/{a}/tracking",
            {"carrier": "SF Express", "tracking_number": "SF100"},
            form_page=packages,
        )
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"] == f"{packages}?done=shipped#package-{a}"
        page = (await browser.get(saved.headers["location"])).text
        assert "The tracking number is saved, and the backer is told by mail." in page
        assert page.count("Not shipped yet") == 2 and 'value="SF100"' in page
        [mail] = await mails_of(sessions, "shipped")
        assert (mail.facts["tracking_number"], mail.facts["corrected"]) == ("SF100", False)

        # Saving the same number again tells nobody; another number is a correction, told once.
        again = {"carrier": "SF Express", "tracking_number": "SF100"}
        assert (await post_form(browser, f"{packages}/{a}/tracking", again, form_page=packages)).status_code == 303
        assert len(await mails_of(sessions, "shipped")) == 1
        fixed = {"carrier": "SF Express", "tracking_number": "SF200"}
        assert (await post_form(browser, f"{packages}/{a}/tracking", fixed, form_page=packages)).status_code == 303
        assert [m.facts["corrected"] for m in await mails_of(sessions, "shipped")] == [False, True]

        for pledge, number in ((b, "SF101"), (c, "SF102")):
            done = await post_form(
                browser,
                f"{packages}/{pledge}/tracking",
                {"carrier": "EMS", "tracking_number": number},
                form_page=packages,
            )
            assert done.status_code == 303
    assert await shipments_count(sessions) == 3
    assert await campaign_status(sessions, shop) == "fulfilled"


async def test_a_bad_tracking_number_is_shown_again_on_its_package_with_the_message(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await confirmed_shop(client, sessions)
    a, b, _c = shop.pledge_ids
    packages = f"/maker/campaigns/{slug}/fulfillment/batches/{await first_batch_id(sessions, shop)}/packages"
    async with logged_in(client, shop.maker) as browser:
        empty = await post_form(
            browser, f"{packages}/{a}/tracking", {"carrier": "顺丰速运", "tracking_number": ""}, form_page=packages
        )
        assert empty.status_code == 422
        assert "The tracking_number is empty." in empty.text and 'value="顺丰速运"' in empty.text
        assert f'id="tracking_number-{a}-error"' in empty.text and f'id="tracking_number-{b}-error"' not in empty.text

        stranger = await post_form(
            browser,
            f"{packages}/{uuid.uuid4()}/tracking",
            {"carrier": "EMS", "tracking_number": "EE1"},
            form_page=packages,
        )
        assert stranger.status_code == 404

        browser.headers["Accept-Language"] = "zh-CN"
        chinese = await post_form(
            browser, f"{packages}/{a}/tracking", {"carrier": "", "tracking_number": "SF1"}, form_page=packages
        )
        assert chinese.status_code == 422 and "carrier 为空。" in chinese.text and "包裹" in chinese.text
    assert await shipments_count(sessions) == 0
    assert await mails_of(sessions, "shipped") == []


async def test_a_planned_batch_lists_no_forms_and_takes_no_tracking_number(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await a_planned_shop(client, sessions, addressed=3)
    a = shop.pledge_ids[0]
    packages = f"/maker/campaigns/{slug}/fulfillment/batches/{await first_batch_id(sessions, shop)}/packages"
    async with logged_in(client, shop.maker) as browser:
        listed = await browser.get(packages)
        assert listed.status_code == 200 and "tracking_number" not in listed.text
        refused = await post_form(
            browser, f"{packages}/{a}/tracking", {"carrier": "EMS", "tracking_number": "EE1"}, form_page=packages
        )
        assert refused.status_code == 409
    assert await shipments_count(sessions) == 0
