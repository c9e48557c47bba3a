"""The maker types the address lock on their own clock (the label names the zone), it is kept in UTC, and the form's
messages are in the account's language even when the browser asks for another."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import User
from service.settings import Settings
from tests.pages import logged_in, post_form
from tests.test_address_lock import first_survey, lock_of, surveyed_shop
from tests.test_fulfillment_pages import slug_of

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_a_maker_in_shenzhen_types_the_lock_on_shenzhen_time_and_reads_the_form_in_chinese(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    shop = await surveyed_shop(client, sessions)
    page = f"/maker/campaigns/{await slug_of(sessions, shop)}/fulfillment"
    async with logged_in(client, shop.maker) as browser:  # an English browser: no lang cookie, no Accept-Language
        async with sessions.begin() as session:
            await session.execute(
                update(User)
                .where(User.id == uuid.UUID(shop.maker.id))
                .values(locale="zh_CN", time_zone="Asia/Shanghai")
            )
        shown = (await browser.get(page)).text
        assert "地址锁定时间 · 中国（上海）时间 · UTC+8" in shown

        unreadable = {"address_lock_at": "next Tuesday", "packaging_weight_grams": "100"}
        refused = await post_form(browser, f"{page}/settings", unreadable, form_page=page)
        assert refused.status_code == 422 and "请输入日期和时间，例如 2027-03-01 12:00，或留空。" in refused.text

        earliest = (await first_survey(sessions, shop) + timedelta(seconds=settings.address_survey_seconds)).astimezone(
            SHANGHAI
        )
        earliest = earliest.replace(second=0, microsecond=0) + timedelta(minutes=1)
        too_early = {"address_lock_at": "2026-12-01T09:00", "packaging_weight_grams": "100"}
        early = await post_form(browser, f"{page}/settings", too_early, form_page=page)
        assert early.status_code == 422
        assert f"请选择 {earliest:%Y-%m-%d %H:%M} CST 或更晚。" in early.text

        typed = {"address_lock_at": "2027-03-01T20:00", "packaging_weight_grams": "100"}
        saved = await post_form(browser, f"{page}/settings", typed, form_page=page)
        assert saved.status_code == 303, saved.text
        assert await lock_of(sessions, shop) == datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
        assert 'value="2027-03-01T20:00"' in (await browser.get(page)).text
