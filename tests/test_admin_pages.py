"""Administration in pages: an admin creates and edits spaces, names and removes operators, finds users and makes them
admins, in both languages; every step is audited, and nobody else gets in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import AuditEntry, Space, SpaceOperator, User
from tests.helpers import PASSWORD, Actor, finish_page_log_in, make_admin, sign_up

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@asynccontextmanager
async def browser_of(
    client: httpx.AsyncClient, actor: Actor, *, language: str = "en"
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser of its own, `actor` logged in through the form (and its code step); yields it and its CSRF token."""
    headers = {"Accept-Language": language}
    async with httpx.AsyncClient(transport=client._transport, base_url="http://testserver", headers=headers) as browser:
        page = await browser.get("/login")
        token = CSRF_INPUT.search(page.text)
        assert token
        answer = await browser.post(
            "/login", data={"csrf_token": token.group(1), "email": actor.email, "password": PASSWORD}
        )
        answer = await finish_page_log_in(browser, answer, actor)
        assert answer.status_code == 303, answer.text
        # Signed in, pages speak the account's language: a Chinese reader switches it once.
        token = CSRF_INPUT.search((await browser.get("/", params={"lang": language.replace("-", "_")})).text)
        assert token
        yield browser, token.group(1)


async def audited(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str | None]]:
    async with sessions() as session:
        rows = await session.execute(
            select(AuditEntry.action, AuditEntry.client_address).order_by(AuditEntry.created_at, AuditEntry.action)
        )
        return [(row.action, row.client_address) for row in rows]


async def test_an_admin_runs_spaces_operators_and_admins_from_the_pages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    olga = await sign_up(client, "Olga", email="olga@example.com")
    async with browser_of(client, admin) as (browser, csrf):
        assert 'href="/admin"' in (await browser.get("/")).text
        assert (await browser.get("/admin")).status_code == 200
        assert (await browser.get("/admin/spaces/new")).status_code == 200

        bad = {"name": "", "slug": "Not A Slug", "city": "Shenzhen", "country": "ZZ", "sponsor_fee_bps": "9000"}
        refused = await browser.post("/admin/spaces", data={"csrf_token": csrf, **bad})
        assert refused.status_code == 422
        for field in ("name", "slug", "country", "sponsor_fee_bps"):
            assert f'id="field-{field}-error"' in refused.text, field
        assert "like chaihuo-shenzhen" in refused.text

        good = {"name": "Chaihuo", "slug": "chaihuo", "city": "Shenzhen", "country": "cn", "sponsor_fee_bps": "300"}
        created = await browser.post("/admin/spaces", data={"csrf_token": csrf, **good})
        assert created.status_code == 303
        space_page = created.headers["location"].split("?")[0]
        taken = await browser.post("/admin/spaces", data={"csrf_token": csrf, **good})
        assert taken.status_code == 409 and "Another space already uses this slug." in taken.text

        edit = {"name": "Chaihuo x.factory", "city": "Shenzhen", "country": "CN", "sponsor_fee_bps": "250"}
        saved = await browser.post(space_page, data={"csrf_token": csrf, **edit, "description": "Benches."})
        assert saved.status_code == 303
        shown = await browser.get(saved.headers["location"])
        assert "The space is saved." in shown.text and 'value="Chaihuo x.factory"' in shown.text

        ghost = await browser.post(f"{space_page}/operators", data={"csrf_token": csrf, "email": "ghost@example.com"})
        assert ghost.status_code == 422 and "Ask them to sign up first." in ghost.text
        added = await browser.post(f"{space_page}/operators", data={"csrf_token": csrf, "email": "OLGA@example.com"})
        assert added.status_code == 303
        assert "olga@example.com" in (await browser.get(space_page)).text
        remove = f"{space_page}/operators/{olga.id}/remove"
        asked_first = await browser.post(remove, data={"csrf_token": csrf})
        assert asked_first.status_code == 200 and "as an operator of Chaihuo x.factory?" in asked_first.text
        assert "olga@example.com" in (await browser.get(space_page)).text.split('id="operators"')[1]
        removed = await browser.post(remove, data={"csrf_token": csrf, "confirm": "yes"})
        assert removed.status_code == 303

        found = await browser.get("/admin/users", params={"q": "OLG"})
        assert "olga@example.com" in found.text and f'href="/admin/users/{olga.id}/promote"' in found.text
        assert "Nobody matches." in (await browser.get("/admin/users", params={"q": "nobody-like-this"})).text
        asked = await browser.get(f"/admin/users/{olga.id}/promote")
        assert asked.status_code == 200 and "Make Olga a platform admin?" in asked.text
        promoted = await browser.post(f"/admin/users/{olga.id}/promote", data={"csrf_token": csrf})
        assert promoted.status_code == 303
        assert "The user is now a platform admin." in (await browser.get(promoted.headers["location"])).text

    async with sessions() as session:
        space = await session.scalar(select(Space).where(Space.slug == "chaihuo"))
        assert space is not None and space.name == "Chaihuo x.factory" and space.sponsor_fee_bps == 250
        assert space.country == "CN" and space.description == "Benches."
        assert await session.scalar(select(SpaceOperator).where(SpaceOperator.space_id == space.id)) is None
        assert (await session.get_one(User, olga.id)).is_admin
    assert await audited(sessions) == [
        ("space.create", "127.0.0.1"),
        ("space.update", "127.0.0.1"),
        ("space.operator_add", "127.0.0.1"),
        ("space.operator_remove", "127.0.0.1"),
        ("user.promote", "127.0.0.1"),
    ]


async def test_the_administration_pages_speak_chinese_too(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    async with browser_of(client, admin, language="zh-CN") as (browser, _csrf):
        assert "新建空间" in (await browser.get("/admin")).text
        assert "赞助费（基点）" in (await browser.get("/admin/spaces/new")).text
        assert "按邮箱或姓名查找用户" in (await browser.get("/admin/users")).text


async def test_only_an_admin_with_two_factor_gets_in(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    backer = await sign_up(client, "Ben")
    async with browser_of(client, backer) as (browser, csrf):
        assert 'href="/admin"' not in (await browser.get("/")).text
        assert (await browser.get("/admin")).status_code == 403
        refused = await browser.post(
            "/admin/spaces",
            data={
                "csrf_token": csrf,
                "name": "X",
                "slug": "x-space",
                "city": "X",
                "country": "CN",
                "sponsor_fee_bps": "0",
            },
        )
        assert refused.status_code == 403
    async with sessions.begin() as session:
        user = await session.get_one(User, backer.id)
        user.is_admin = True
    async with browser_of(client, backer) as (browser, _csrf):
        page = await browser.get("/admin")
        assert page.status_code == 403 and 'href="/me/two-factor"' in page.text
    async with sessions() as session:
        assert await session.scalar(select(Space)) is None
