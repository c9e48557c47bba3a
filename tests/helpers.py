"""Arrangements the tests share, made through the public API."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import User

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@dataclass
class Actor:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(client: httpx.AsyncClient, name: str = "Ada", email: str | None = None) -> Actor:
    email = email or f"{name.lower()}{next(_counter)}@example.com"
    created = await client.post("/api/v1/users", json={"email": email, "password": PASSWORD, "name": name})
    assert created.status_code == 201, created.text
    token = await client.post("/api/v1/tokens", json={"email": email, "password": PASSWORD})
    assert token.status_code == 201, token.text
    return Actor(created.json()["id"], email, token.json()["token"])


async def make_admin(sessions: async_sessionmaker[AsyncSession], actor: Actor) -> Actor:
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.email == actor.email).values(is_admin=True))
    return actor


async def create_space(client: httpx.AsyncClient, admin: Actor, **fields: Any) -> dict[str, Any]:
    n = next(_counter)
    body = {
        "name": f"Chaihuo Makerspace {n}",
        "slug": f"chaihuo-{n}",
        "city": "Shenzhen",
        "country": "CN",
        "sponsor_fee_bps": 300,
        "description": "Where makers meet factories.",
    }
    body.update(fields)
    response = await client.post("/api/v1/spaces", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())
