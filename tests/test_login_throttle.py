"""Log-in throttling: each attempt is counted before its password is checked, per client address and per (email,
address), with delays that double; an account is never locked for its owner elsewhere. Against a real uvicorn server,
the clients come from different loopback addresses (127.0.0.2, 127.0.0.3, …)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request

from campaigns.errors import TooManyRequests
from service.broker import ListSender
from service.settings import Settings, environment_of, load_settings
from service.throttle import LOGINS_PER_ADDRESS, LOGINS_PER_EMAIL_AND_ADDRESS, Backoff, attempt, client_address
from tests.browser import LiveServer
from tests.conftest import _client_for
from tests.helpers import PASSWORD, sign_up

WRONG = "guess guess guess"


@asynccontextmanager
async def from_address(server: LiveServer, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport, base_url=server.url, timeout=60) as client:
        yield client


async def _log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/tokens", json={"email": email, "password": password})


async def test_wrong_passwords_sent_at_once_are_not_all_checked(client: httpx.AsyncClient) -> None:
    await sign_up(client, email="target@example.com")
    answers = await asyncio.gather(*(_log_in(client, "target@example.com", WRONG) for _ in range(30)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(401) == LOGINS_PER_EMAIL_AND_ADDRESS.free
    assert statuses.count(429) == 30 - LOGINS_PER_EMAIL_AND_ADDRESS.free
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert refused.headers["content-type"] == "application/problem+json"
    assert 0 < int(refused.headers["retry-after"]) <= LOGINS_PER_EMAIL_AND_ADDRESS.first_delay


async def test_a_guesser_slows_down_only_themselves_and_the_owner_logs_in_from_elsewhere(
    live_server: LiveServer, engine: AsyncEngine
) -> None:
    async with from_address(live_server, "127.0.0.2") as guesser, from_address(live_server, "127.0.0.3") as owner:
        await sign_up(owner, email="victim@example.com", verified=False)
        statuses = [(await _log_in(guesser, "victim@example.com", WRONG)).status_code for _ in range(12)]
        assert statuses == [401] * LOGINS_PER_EMAIL_AND_ADDRESS.free + [429] * 2
        right_but_throttled = await _log_in(guesser, "victim@example.com", PASSWORD)
        assert right_but_throttled.status_code == 429 and int(right_but_throttled.headers["retry-after"]) > 0

        assert (await _log_in(owner, "victim@example.com", PASSWORD)).status_code == 201
        assert (await _log_in(owner, "victim@example.com", WRONG)).status_code == 401


async def test_one_address_trying_many_emails_is_slowed_down_and_others_are_not(
    live_server: LiveServer, engine: AsyncEngine
) -> None:
    async with from_address(live_server, "127.0.0.4") as sprayer, from_address(live_server, "127.0.0.5") as other:
        await sign_up(other, email="someone@example.com", verified=False)
        statuses = [
            (await _log_in(sprayer, f"guess{n}@example.com", WRONG)).status_code
            for n in range(LOGINS_PER_ADDRESS.free + 1)
        ]
        assert statuses == [401] * LOGINS_PER_ADDRESS.free + [429]
        assert (await _log_in(sprayer, "someone@example.com", PASSWORD)).status_code == 429
        assert (await _log_in(other, "someone@example.com", PASSWORD)).status_code == 201


async def test_right_passwords_do_not_use_up_an_address(live_server: LiveServer, engine: AsyncEngine) -> None:
    async with from_address(live_server, "127.0.0.6") as office:
        ada = await sign_up(office, email="ada@example.com", verified=False)
        for _ in range(LOGINS_PER_ADDRESS.free + 5):
            assert (await _log_in(office, ada.email, PASSWORD)).status_code == 201


async def test_each_delay_past_the_free_attempts_doubles(sessions: async_sessionmaker[AsyncSession]) -> None:
    backoff = Backoff(free=2, first_delay=60, max_delay=200, idle=900)

    async def waits() -> int:
        async with sessions.begin() as session:
            try:
                await attempt(session, "login:ip:192.0.2.1", backoff)
            except TooManyRequests as refused:
                return refused.retry_after
        return 0

    async def delay_passes() -> None:
        async with sessions.begin() as session:
            await session.execute(text("UPDATE throttles SET blocked_until = now() - interval '1 second'"))

    assert [await waits(), await waits()] == [0, 0]
    seen = []
    for _ in range(4):
        seen.append(await waits())
        await delay_passes()
        assert await waits() == 0
    assert [round(s, -1) for s in seen] == [60, 120, 200, 200]


def _request(settings: Settings, peer: str, *forwarded: str) -> Request:
    app = Starlette()
    app.state.settings = settings
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "app": app, "client": (peer, 5000), "headers": headers, "method": "POST"})


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(settings: Settings) -> None:
    nobody = replace(settings, trusted_proxies=())
    assert client_address(_request(nobody, "10.0.0.2", "203.0.113.9")) == "10.0.0.2"

    proxies = replace(settings, trusted_proxies=load_settings(_env(settings, "10.0.0.0/8, 192.0.2.7")).trusted_proxies)
    assert client_address(_request(proxies, "198.51.100.1", "203.0.113.9")) == "198.51.100.1"
    assert client_address(_request(proxies, "10.0.0.2", "203.0.113.9")) == "203.0.113.9"
    # What the client wrote itself stands to the left of what our proxies added.
    assert client_address(_request(proxies, "10.0.0.2", "1.1.1.1, 203.0.113.9, 192.0.2.7")) == "203.0.113.9"
    assert client_address(_request(proxies, "10.0.0.2", "1.1.1.1", "203.0.113.9")) == "203.0.113.9"
    assert client_address(_request(proxies, "10.0.0.2")) == "10.0.0.2"
    assert client_address(_request(proxies, "10.0.0.2", "not-an-address")) == "10.0.0.2"


def _env(settings: Settings, proxies: str) -> dict[str, str]:
    return environment_of(settings, KINDLING_TRUSTED_PROXIES=proxies)


async def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(settings: Settings, engine: AsyncEngine) -> None:
    # The in-process client's peer is 127.0.0.1: here, the proxy.
    behind_proxy = replace(settings, trusted_proxies=load_settings(_env(settings, "127.0.0.1")).trusted_proxies)
    async for client in _client_for(behind_proxy, ListSender(), engine):
        ada = await sign_up(client, email="ada@example.com")
        guesser = {"X-Forwarded-For": "203.0.113.5"}
        for _ in range(LOGINS_PER_EMAIL_AND_ADDRESS.free):
            wrong = await client.post("/api/v1/tokens", json={"email": ada.email, "password": WRONG}, headers=guesser)
            assert wrong.status_code == 401
        refused = await client.post("/api/v1/tokens", json={"email": ada.email, "password": WRONG}, headers=guesser)
        assert refused.status_code == 429
        owner = {"X-Forwarded-For": "198.51.100.8"}
        right = await client.post("/api/v1/tokens", json={"email": ada.email, "password": PASSWORD}, headers=owner)
        assert right.status_code == 201


async def test_behind_an_untrusted_proxy_x_forwarded_for_changes_nothing(
    live_server: LiveServer, engine: AsyncEngine
) -> None:
    async with from_address(live_server, "127.0.0.7") as guesser:
        await sign_up(guesser, email="grace@example.com", verified=False)
        statuses = [
            (
                await guesser.post(
                    "/api/v1/tokens",
                    json={"email": "grace@example.com", "password": WRONG},
                    headers={"X-Forwarded-For": f"203.0.113.{n}"},
                )
            ).status_code
            for n in range(LOGINS_PER_EMAIL_AND_ADDRESS.free + 1)
        ]
        assert statuses == [401] * LOGINS_PER_EMAIL_AND_ADDRESS.free + [429]
