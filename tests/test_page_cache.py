"""The public campaign page kept for anonymous visitors: served without a query, never stale, never to the signed-in."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Space, Tier
from service.devservices import EmbeddedStripe
from service.page_cache import PageCache
from service.pages.campaigns import clock_changes_page_at, days_left
from tests.helpers import launched_campaign, sign_up
from tests.money_helpers import pledge_with_card
from tests.pages import logged_in


def cache_of(client: httpx.AsyncClient) -> PageCache:
    cache: PageCache = client.app.state.page_cache  # type: ignore[attr-defined]
    return cache


async def listening(client: httpx.AsyncClient) -> PageCache:
    """The app's cache once its connection listens (it connects in the background at start-up) and every notice of
    what was written before (this test's set-up, the last test's TRUNCATE) has arrived, so none evicts a page later."""
    cache = cache_of(client)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cache.enabled and await cache.caught_up():
            return cache
        await asyncio.sleep(0.01)
    raise AssertionError("the page cache never started listening")


@contextmanager
def statements(client: httpx.AsyncClient) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends while the block runs."""
    seen: list[str] = []
    engine = client.app.state.engine.sync_engine  # type: ignore[attr-defined]

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@asynccontextmanager
async def visitor(client: httpx.AsyncClient, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous browser of its own (its own cookies)."""
    async with httpx.AsyncClient(transport=client._transport, base_url="http://testserver", headers=headers) as browser:
        yield browser


async def set_remaining(sessions: async_sessionmaker[AsyncSession], tier_id: str, remaining: int) -> None:
    async with sessions.begin() as session:
        await session.execute(update(Tier).where(Tier.id == uuid.UUID(tier_id)).values(remaining=remaining))


async def test_a_second_anonymous_visit_is_served_from_the_cache_without_a_query(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions, title="Open Soil Sensor")
    cache = await listening(client)
    path = f"/campaigns/{campaign['slug']}"
    async with visitor(client) as browser:
        with statements(client) as first_queries:
            first = await browser.get(path)
        assert first.status_code == 200 and first_queries
        assert "<h1>Open Soil Sensor</h1>" in first.text and len(cache) == 1

        with statements(client) as second_queries:
            second = await browser.get(path)
        assert second_queries == []
        assert second.status_code == 200 and second.text == first.text
        assert second.headers["content-type"] == "text/html; charset=utf-8"
        assert "Content-Security-Policy" in second.headers and "set-cookie" not in second.headers

    # Another anonymous visitor, with no cookie at all, gets the same page without a query either.
    async with visitor(client) as stranger:
        with statements(client) as queries:
            third = await stranger.get(path)
        assert queries == [] and third.text == first.text


async def test_a_pledge_shows_on_the_very_next_anonymous_visit(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, limited_quantity=10)
    await listening(stripe_client)
    path = f"/campaigns/{campaign['slug']}"
    async with visitor(stripe_client) as browser:
        before = (await browser.get(path)).text
        assert "10 of 10 left" in before and "CN¥0" in before
        assert (await browser.get(path)).text == before  # kept

        backer = await sign_up(stripe_client, "Bea")
        await pledge_with_card(stripe_client, stripe_server, backer, campaign, tier=0)

        # No waiting: the page asked after the pledge committed shows it.
        after = (await browser.get(path)).text
        assert "9 of 10 left" in after and "10 of 10 left" not in after
        assert "CN¥159" in after  # 149.00 + 10.00 shipping to China
        assert "<div><dt>backer</dt><dd>1</dd></div>" in after


async def test_a_change_made_anywhere_shows_at_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Changes written by another connection than the app's (the worker, a sweep, an operator's console)."""
    campaign, _maker, _operator = await launched_campaign(client, sessions, limited_quantity=10)
    await listening(client)
    path = f"/campaigns/{campaign['slug']}"
    async with visitor(client) as browser:
        assert "10 of 10 left" in (await browser.get(path)).text
        for remaining in (4, 0, 7):
            await set_remaining(sessions, campaign["tiers"][0]["id"], remaining)
            shown = (await browser.get(path)).text
            assert (f"{remaining} of 10 left" in shown) == (remaining > 0)
            assert ("Sold out" in shown) == (remaining == 0)
            assert (await browser.get(path)).text == shown

        # A space's change ('*': it may be on many campaigns) shows too.
        async with sessions.begin() as session:
            await session.execute(
                update(Space).where(Space.id == uuid.UUID(campaign["space_id"])).values(name="Seeed Lab")
            )
        assert ">Seeed Lab</a>" in (await browser.get(path)).text


async def test_a_signed_in_visitor_is_never_served_the_kept_page(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    cache = await listening(client)
    path = f"/campaigns/{campaign['slug']}"
    async with visitor(client) as browser:
        await browser.get(path)
        anonymous = (await browser.get(path)).text
    assert len(cache) == 1 and "Log in" in anonymous and 'name="csrf_token"' not in anonymous

    backer = await sign_up(client, "Bea")
    async with logged_in(client, backer) as browser:
        for _ in range(2):
            with statements(client) as queries:
                page = await browser.get(path)
            assert queries and page.status_code == 200
            assert "Log out" in page.text and 'name="csrf_token"' in page.text
    with statements(client) as queries:
        by_token = await client.get(path, headers=maker.headers)
    assert queries and "Manage this campaign" in by_token.text
    # What the signed-in saw was not kept for anyone.
    async with visitor(client) as browser:
        assert (await browser.get(path)).text == anonymous


async def test_the_chinese_page_is_kept_apart_from_the_english_one(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    cache = await listening(client)
    path = f"/campaigns/{campaign['slug']}"
    async with visitor(client) as english, visitor(client, **{"Accept-Language": "zh-CN,zh;q=0.9"}) as chinese:
        first_english = (await english.get(path)).text
        first_chinese = (await chinese.get(path)).text
        assert "Back this project" in first_english and "支持这个项目" in first_chinese
        assert len(cache) == 2
        with statements(client) as queries:
            assert (await chinese.get(path)).text == first_chinese
            assert (await english.get(path)).text == first_english
        assert queries == []

        # ?lang= answers with its cookie and is not kept; the cookie then picks the kept Chinese page.
        switched = await english.get(f"{path}?lang=zh_CN")
        assert "支持这个项目" in switched.text and "lang=zh_CN" in switched.headers["set-cookie"]
        with statements(client) as queries:
            assert (await english.get(path)).text == first_chinese
        assert queries == []


async def test_when_the_listener_is_lost_the_cache_steps_aside_and_pages_stay_right(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions, limited_quantity=10)
    cache = await listening(client)
    path = f"/campaigns/{campaign['slug']}"
    async with visitor(client) as browser:
        await browser.get(path)
        assert len(cache) == 1
        pid = cache.listener_pid
        async with sessions.begin() as session:
            assert (await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not cache.enabled:
                break
            await asyncio.sleep(0.005)
        assert not cache.enabled and len(cache) == 0

        # Without a listener nothing is kept, and every page is read afresh.
        await set_remaining(sessions, campaign["tiers"][0]["id"], 5)
        for _ in range(2):
            with statements(client) as queries:
                page = await browser.get(path)
            assert queries and "5 of 10 left" in page.text
        assert len(cache) == 0 or cache.enabled

        # It listens again on a new connection, and keeps pages again.
        await listening(client)
        assert cache.listener_pid != pid
        await browser.get(path)
        with statements(client) as queries:
            assert "5 of 10 left" in (await browser.get(path)).text
        assert queries == []
        await set_remaining(sessions, campaign["tiers"][0]["id"], 2)
        assert "2 of 10 left" in (await browser.get(path)).text


def test_a_kept_page_expires_when_its_days_left_would_change() -> None:
    day = 86_400
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    campaign = Campaign(ends_at=now + timedelta(days=2, hours=12), duration_days=30)
    # 3 days left (2.5 rounded up) until 2 days before the deadline, when it reads 2.
    assert days_left(campaign, day, now) == 3
    changes = clock_changes_page_at(campaign, day, now)
    assert changes == (now + timedelta(hours=12)).timestamp()
    assert days_left(campaign, day, datetime.fromtimestamp(changes - 1, UTC)) == 3
    assert days_left(campaign, day, datetime.fromtimestamp(changes, UTC)) == 2
    # Past the deadline, or not launched: nothing moves with the clock.
    assert clock_changes_page_at(campaign, day, now + timedelta(days=3)) is None
    assert clock_changes_page_at(Campaign(ends_at=None, duration_days=30), day, now) is None
