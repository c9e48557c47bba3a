"""Batch dates on the pages: the maker plans and moves them on the fulfillment dashboard, the operator reads the
history, and the backer's pledge page shows their place in line, the estimated ship month and why it moved."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fulfillment.batch_dates import BATCH_DELAYED
from tests.pages import logged_in, post_form
from tests.test_fulfillment_api import mails_of
from tests.test_fulfillment_pages import a_planned_shop, first_batch_id


async def test_the_maker_moves_a_batchs_dates_on_the_dashboard_and_the_backer_sees_the_month_and_the_reason(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop, slug = await a_planned_shop(client, sessions, addressed=1)
    batch_id = await first_batch_id(sessions, shop)
    page = f"/maker/campaigns/{slug}/fulfillment"
    dates = f"{page}/batch-dates"
    async with logged_in(client, shop.maker) as browser:
        shown = await browser.get(page)
        assert "Plan or move a batch" in shown.text and "Not planned yet" in shown.text
        backwards = await post_form(
            browser,
            dates,
            {"batch_id": batch_id, "production_on": "2027-03-01", "ship_on": "2027-02-01", "reason": "Plan"},
            form_page=page,
        )
        assert backwards.status_code == 422
        assert "The batch ships on or after the day its production starts." in backwards.text
        no_day = await post_form(
            browser, dates, {"batch_id": batch_id, "production_on": "soon", "ship_on": "", "reason": ""}, form_page=page
        )
        assert no_day.status_code == 422 and "Enter a day, like 2027-03-15." in no_day.text
        assert 'value="soon"' in no_day.text
        for ship_on, reason in (("2027-03-10", "First slot at the factory"), ("2027-04-20", "The mould cracked")):
            saved = await post_form(
                browser,
                dates,
                {"batch_id": batch_id, "production_on": "2027-02-01", "ship_on": ship_on, "reason": reason},
                form_page=page,
            )
            assert saved.status_code == 303, saved.text
        told = await browser.get(saved.headers["location"])
        assert "so each of its waiting backers is told by mail" in told.text
        assert "2 changes of dates" in told.text and "The mould cracked" in told.text
        assert "3 backers told by mail" in told.text
    assert len(await mails_of(sessions, BATCH_DELAYED)) == 3

    async with logged_in(client, shop.operator) as browser:
        read_only = await browser.get(f"/operator/campaigns/{slug}/fulfillment")
        assert read_only.status_code == 200 and "The mould cracked" in read_only.text
        assert "Save the dates" not in read_only.text

    async with logged_in(client, shop.backers[1]) as browser:
        english = await browser.get(f"/me/pledges/{shop.pledge_ids[1]}")
        assert "No. 2 among the packages still to ship" in english.text
        assert "April 2027" in english.text and "The mould cracked" in english.text
        chinese = await browser.get(f"/me/pledges/{shop.pledge_ids[1]}?lang=zh_CN")
        assert "待发货包裹中的第 2 个" in chinese.text and "2027年4月" in chinese.text
        assert "你所在批次的日期为何调整" in chinese.text
