"""What is for a developer's own machine stays there: `kindling demo` keeps out of databases it did not make, and
the dev mailbox answers only under `kindling dev` and only to this machine."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Mail, User
from service.app import create_app
from service.broker import ListSender
from service.demo import ADMIN_EMAIL, CROWD_SIZE
from service.settings import Settings
from tests.factories import insert_user
from tests.helpers import sign_up
from tests.test_cli import kindling


async def user_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_the_demo_refuses_a_database_with_real_accounts_unless_told_yes(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await sign_up(client, "Customer")

    assert await kindling(settings, "demo") == 1

    error = capsys.readouterr().err
    assert error.startswith("kindling: the database holds 1 account(s) and 0 campaign(s) and was not made by")
    assert ADMIN_EMAIL in error and "--yes" in error and len(error.splitlines()) == 1
    assert await user_count(sessions) == 1
    assert await kindling(settings, "demo", "--yes") == 0
    assert await user_count(sessions) == 1 + 4 + CROWD_SIZE
    assert await kindling(settings, "demo") == 0  # now it is a database the demo made


async def test_an_account_named_like_the_demo_admin_does_not_pass_for_the_demo(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions.begin() as session:
        someone = await insert_user(session, "Impostor")
        await session.execute(update(User).where(User.id == someone.id).values(email=ADMIN_EMAIL))

    assert await kindling(settings, "demo") == 1

    async with sessions() as session:
        assert await session.scalar(select(User.is_admin).where(User.email == ADMIN_EMAIL)) is False
    assert await user_count(sessions) == 1


@asynccontextmanager
async def browser(settings: Settings, client_host: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, sender=ListSender(), engine_pool=2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client_host, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def a_mail(sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient) -> str:
    await sign_up(client, "Mailed")  # the welcome mail is kept
    async with sessions.begin() as session:
        mail_id = await session.scalar(select(Mail.id).limit(1))
        assert mail_id is not None
        await session.execute(update(Mail).where(Mail.id == mail_id).values(html_body="<p>Hello</p>"))
    return str(mail_id)


async def test_the_dev_mailbox_answers_only_this_machine(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    assert settings.dev
    mail_id = await a_mail(sessions, client)
    paths = ["/dev/mail", f"/dev/mail/{mail_id}", f"/dev/mail/{mail_id}/html"]

    for host in ("127.0.0.1", "127.0.0.2", "::1"):
        async with browser(settings, host) as local:
            assert [(await local.get(path)).status_code for path in paths] == [200, 200, 200], host
    for host in ("203.0.113.7", "10.0.0.2", "::ffff:203.0.113.7", "testclient"):
        async with browser(settings, host) as remote:
            answers = [await remote.get(path) for path in paths]
            assert [answer.status_code for answer in answers] == [404, 404, 404], host
            assert all("Hello" not in answer.text and mail_id not in answer.text for answer in answers)


async def test_without_kindling_dev_there_is_no_dev_mailbox_even_on_this_machine(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    mail_id = await a_mail(sessions, client)

    async with browser(replace(settings, dev=False), "127.0.0.1") as local:
        for path in ("/dev/mail", f"/dev/mail/{mail_id}", f"/dev/mail/{uuid.uuid4()}/html"):
            assert (await local.get(path)).status_code == 404, path
