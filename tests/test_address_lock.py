"""The address lock: never before backers have had KINDLING_ADDRESS_SURVEY_DAYS after the address survey to answer
it, and once set, only later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Mail
from fulfillment.addresses import send_address_surveys
from fulfillment.models import AddressRequest
from service.settings import Settings
from tests.pages import logged_in, post_form
from tests.test_fulfillment_api import Shop, open_shop, plan
from tests.test_fulfillment_pages import slug_of

SURVEY_SECONDS = 14 * 86400


async def send_surveys(sessions: async_sessionmaker[AsyncSession], shop: Shop) -> int:
    async with sessions.begin() as session:
        return await send_address_surveys(session, shop.campaign_id, survey_seconds=SURVEY_SECONDS)


async def surveyed_shop(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> Shop:
    """A funded campaign, planned, whose backers have just been sent the address survey (as the planning job does)."""
    shop = await open_shop(client, sessions)
    await plan(sessions, shop.campaign_id)
    assert await send_surveys(sessions, shop) == 3
    return shop


async def first_survey(sessions: async_sessionmaker[AsyncSession], shop: Shop) -> datetime:
    async with sessions() as session:
        sent = await session.scalar(
            select(func.min(AddressRequest.surveyed_at)).where(AddressRequest.campaign_id == shop.campaign_id)
        )
    assert sent is not None
    return sent


async def lock_of(sessions: async_sessionmaker[AsyncSession], shop: Shop) -> datetime | None:
    async with sessions() as session:
        return (await session.get_one(Campaign, shop.campaign_id)).address_lock_at


async def put_lock(client: httpx.AsyncClient, shop: Shop, lock: datetime | None) -> httpx.Response:
    return await client.put(
        f"{shop.base}/fulfillment-settings",
        json={"address_lock_at": lock.isoformat() if lock else None, "packaging_weight_grams": 100},
        headers=shop.maker.headers,
    )


def rfc3339(moment: datetime) -> str:
    whole = moment.replace(microsecond=0) + timedelta(seconds=1 if moment.microsecond else 0)
    return whole.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def test_a_lock_in_the_past_right_after_funding_is_refused_with_the_earliest_allowed(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    shop = await surveyed_shop(client, sessions)
    earliest = await first_survey(sessions, shop) + timedelta(seconds=settings.address_survey_seconds)
    assert settings.address_survey_days == 14

    for too_early in (datetime.now(UTC) - timedelta(days=1), earliest - timedelta(minutes=1)):
        refused = await put_lock(client, shop, too_early)
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert error["field"] == "address_lock_at" and rfc3339(earliest) in error["message"], error
    assert await lock_of(sessions, shop) is None

    assert (await put_lock(client, shop, earliest + timedelta(days=1))).status_code == 200
    assert await lock_of(sessions, shop) == earliest + timedelta(days=1)


async def test_a_lock_once_set_only_moves_later(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    shop = await surveyed_shop(client, sessions)
    earliest = await first_survey(sessions, shop) + timedelta(seconds=settings.address_survey_seconds)
    lock = earliest + timedelta(days=10)
    assert (await put_lock(client, shop, lock)).status_code == 200

    for earlier in (lock - timedelta(days=1), None):
        refused = await put_lock(client, shop, earlier)
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert error["field"] == "address_lock_at" and rfc3339(lock) in error["message"]
        assert "only moves later" in error["message"]
    assert await lock_of(sessions, shop) == lock

    again = await put_lock(client, shop, lock)  # the settings form sends the lock with every change of weight
    assert again.status_code == 200 and again.json()["packaging_weight_grams"] == 100
    assert (await put_lock(client, shop, lock + timedelta(days=3))).status_code == 200
    assert await lock_of(sessions, shop) == lock + timedelta(days=3)


async def test_before_any_survey_the_lock_leaves_the_survey_days_from_now(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    shop = await open_shop(client, sessions)  # funded, not planned yet: nobody has been asked
    soon = datetime.now(UTC) + timedelta(seconds=settings.address_survey_seconds) - timedelta(hours=1)

    refused = await put_lock(client, shop, soon)

    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "address_lock_at"
    assert (await put_lock(client, shop, soon + timedelta(hours=2))).status_code == 200


async def test_a_lock_set_before_the_survey_moves_later_when_the_survey_goes_out(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    assert settings.address_survey_seconds == SURVEY_SECONDS
    shop = await open_shop(client, sessions)  # funded, not planned yet: nobody has been asked
    set_two_days_ago = datetime.now(UTC) + timedelta(seconds=SURVEY_SECONDS) - timedelta(days=2)
    async with sessions.begin() as session:  # as the maker could set it two days ago, before any survey
        await session.execute(
            update(Campaign).where(Campaign.id == shop.campaign_id).values(address_lock_at=set_two_days_ago)
        )
    await plan(sessions, shop.campaign_id)

    assert await send_surveys(sessions, shop) == 3

    moved = await first_survey(sessions, shop) + timedelta(seconds=SURVEY_SECONDS)
    assert await lock_of(sessions, shop) == moved
    async with sessions() as session:
        mails = (await session.scalars(select(Mail).where(Mail.kind == "address_survey"))).all()
    assert len(mails) == 3 and all(datetime.fromisoformat(mail.facts["address_lock"]) == moved for mail in mails), (
        mails[0].facts
    )
    assert await send_surveys(sessions, shop) == 0  # nobody is asked twice, and the lock stays
    assert await lock_of(sessions, shop) == moved


async def test_the_settings_form_shows_the_earliest_lock_again_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    shop = await surveyed_shop(client, sessions)
    earliest = await first_survey(sessions, shop) + timedelta(seconds=settings.address_survey_seconds)
    shown = (earliest.replace(second=0, microsecond=0) + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M")
    page = f"/maker/campaigns/{await slug_of(sessions, shop)}/fulfillment"
    form = {"address_lock_at": "2026-12-01T09:00", "packaging_weight_grams": "100"}

    async with logged_in(client, shop.maker) as browser:
        refused = await post_form(browser, f"{page}/settings", form, form_page=page)
        chinese = await post_form(browser, f"{page}/settings?lang=zh_CN", form, form_page=page)
        accepted = await post_form(
            browser, f"{page}/settings", {**form, "address_lock_at": shown.replace(" ", "T")}, form_page=page
        )

    assert refused.status_code == 422
    assert f"Backers keep 14 days after the address survey to answer it: choose {shown} UTC or later." in refused.text
    assert 'value="2026-12-01T09:00"' in refused.text
    assert chinese.status_code == 422 and f"请选择 {shown} UTC 或更晚" in chinese.text
    assert accepted.status_code == 303, accepted.text
    assert await lock_of(sessions, shop) == datetime.strptime(shown, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
