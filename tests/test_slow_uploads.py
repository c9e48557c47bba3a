"""Uploads are read whole before a request takes a database connection, within KINDLING_UPLOAD_SECONDS: clients
that send their headers and then trickle or stall the body hold a task each, never a connection of the pool, and the
site goes on answering. Against a real uvicorn server with a small pool (5, plus its overflow of 10)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from service.app import create_app
from service.broker import ListSender
from service.settings import Settings
from tests.browser import LiveServer, serve
from tests.helpers import Actor, create_space, drafted_campaign, make_admin, sign_up

SLOW_UPLOADS = 30
BOUNDARY = "kindling-slow-upload"


@dataclass
class Site:
    server: LiveServer
    app: Starlette
    client: httpx.AsyncClient
    maker: Actor
    campaign: dict[str, Any]
    page_cookie: str

    @property
    def held_requests(self) -> int:
        return len(self.server._server.server_state.tasks)

    @property
    def connections_in_use(self) -> int:
        return int(self.app.state.engine.pool.checkedout())


@asynccontextmanager
async def site(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Site]:
    app = create_app(settings, sender=ListSender(), engine_pool=5)
    with serve(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            admin = await make_admin(sessions, await sign_up(client, "Root", sessions=sessions))
            space = await create_space(client, admin)
            maker = await sign_up(client, "Mia", sessions=sessions)
            campaign = await drafted_campaign(client, maker, space)
            login = await client.get("/login")
            token = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            logged_in = await client.post(
                "/login", data={"csrf_token": token, "email": maker.email, "password": "correct horse battery"}
            )
            assert logged_in.status_code == 303, logged_in.text
            yield Site(server, app, client, maker, campaign, client.cookies["kindling_session"])


async def stall(
    port: int, path: str, headers: dict[str, str], content_type: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client that sends its headers and the first bytes of a 2 MB body, then nothing more."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}", "Content-Length: 2000000"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    first_bytes = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
    writer.write(("\r\n".join(lines) + "\r\n\r\n" + first_bytes).encode())
    await writer.drain()
    return reader, writer


def _uploads(s: Site) -> list[tuple[str, dict[str, str], str]]:
    campaign_id, slug = s.campaign["id"], s.campaign["slug"]
    bearer = {"Authorization": f"Bearer {s.maker.token}"}
    cookie = {"Cookie": f"kindling_session={s.page_cookie}"}
    multipart = f"multipart/form-data; boundary={BOUNDARY}"
    return [
        (f"/api/v1/campaigns/{campaign_id}/images", bearer, multipart),
        (f"/api/v1/campaigns/{campaign_id}/shipments", bearer, "text/csv"),
        (f"/maker/campaigns/{slug}/images", cookie, multipart),
        (f"/maker/campaigns/{slug}/fulfillment/tracking", cookie, multipart),
    ]


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


async def wait_for(condition: Any, *, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.05)


async def test_thirty_stalled_uploads_hold_no_connection_and_the_site_still_answers(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    async with site(replace(settings, upload_seconds=600), sessions) as s, AsyncExitStack() as held:
        kinds = _uploads(s)
        for n in range(SLOW_UPLOADS):
            path, headers, content_type = kinds[n % len(kinds)]
            _reader, writer = await stall(s.server.port, path, headers, content_type)
            held.callback(writer.close)
        await wait_for(lambda: s.held_requests >= SLOW_UPLOADS)

        started = time.monotonic()
        health = await s.client.get("/healthz")
        campaign = await s.client.get(f"/api/v1/campaigns/{s.campaign['id']}", headers=s.maker.headers)
        page = await s.client.get(f"/maker/campaigns/{s.campaign['slug']}")
        answered_in = time.monotonic() - started

        assert health.status_code == 200, health.text
        assert campaign.status_code == 200 and page.status_code == 200
        assert answered_in < 10
        assert s.held_requests >= SLOW_UPLOADS  # all still stalled
        assert s.connections_in_use == 0


async def test_an_upload_that_stalls_is_answered_408_and_the_page_shows_its_form_again(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    async with site(replace(settings, upload_seconds=1), sessions) as s:
        for path, headers, content_type in _uploads(s):
            reader, writer = await stall(s.server.port, path, headers, content_type)
            try:
                head, body = await asyncio.wait_for(read_response(reader), timeout=60)
            finally:
                writer.close()
            assert head.startswith(b"HTTP/1.1 408"), head
            if path.startswith("/api/"):
                assert b"content-type: application/problem+json" in head.lower()
                assert b'"status":408' in body.replace(b" ", b"")
            elif path.endswith("/images"):
                assert b"The file took too long to arrive." in body
                assert b'id="field-file"' in body
            else:  # the fulfillment page; its tracking form shows once the campaign ships
                assert body.startswith(b"<!doctype html>") and b"Fulfillment" in body
