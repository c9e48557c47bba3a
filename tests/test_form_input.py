"""NUL and other control characters never reach PostgreSQL: a form holding one is shown again with a message, a path
with one is 404, an API field with one is 422 naming it. Every page form of the app is fuzzed with them and with huge
values, as the authorisation matrix enumerates the routes: never a 5xx."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import User
from tests.helpers import PASSWORD, sign_up
from tests.pages import CSRF_INPUT
from tests.test_authorization_matrix import (
    MATRIX,
    Kwargs,
    Params,
    Row,
    Target,
    World,
    _resolve,
    first_allowed,
    path_parameters,
    send,
    world,
)

REFUSED = "A field held NUL or another control character"
BAD_CHARACTERS = ("\x00", "\x01", "\x1b[2J", "\x7f", "\x85")

__all__ = ["world"]


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    found = CSRF_INPUT.search(page.text)
    assert found, path
    return found.group(1)


async def _users(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_a_sign_up_or_log_in_with_a_control_character_shows_the_form_again(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ada = await sign_up(client, email="ada@example.com")
    before = await _users(sessions)
    token = await _csrf(client, "/signup")
    for bad in BAD_CHARACTERS:
        form = {"csrf_token": token, "name": f"Eve{bad}", "email": "eve@example.com", "password": PASSWORD}
        answer = await client.post("/signup", data=form)
        assert answer.status_code == 422, answer.text
        assert REFUSED in answer.text and 'name="password"' in answer.text
    assert await _users(sessions) == before

    login = {"csrf_token": await _csrf(client, "/login"), "email": f"{ada.email}\x00", "password": PASSWORD}
    answer = await client.post("/login", data=login)
    assert answer.status_code == 422 and REFUSED in answer.text and 'name="email"' in answer.text
    chinese = await client.post("/login?lang=zh_CN", data=login)
    assert chinese.status_code == 422 and "控制字符" in chinese.text


async def test_text_keeps_its_tabs_and_line_breaks(client: httpx.AsyncClient) -> None:
    token = await _csrf(client, "/signup")
    form = {"csrf_token": token, "name": "Ada\tLovelace", "email": "ada@example.com", "password": PASSWORD}
    assert (await client.post("/signup", data=form)).status_code == 303


async def test_a_path_with_a_control_character_is_not_found(client: httpx.AsyncClient) -> None:
    for path in ("/spaces/%00", "/campaigns/%01grove", "/me/pledges/%00/address", "/maker/campaigns/a%7Fb"):
        answer = await client.get(path)
        assert answer.status_code == 404, path
        assert "<!doctype html>" in answer.text
    api = await client.get("/api/v1/campaigns/%00")
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"


async def test_an_api_field_with_a_control_character_is_422_naming_it(client: httpx.AsyncClient) -> None:
    for bad in BAD_CHARACTERS:
        body = {"email": "eve@example.com", "password": PASSWORD, "name": f"Eve{bad}"}
        answer = await client.post("/api/v1/users", json=body)
        assert answer.status_code == 422, answer.text
        assert [error["field"] for error in answer.json()["errors"]] == ["name"]


def _mutated(target: Target, change: Callable[[dict[str, str]], dict[str, str]]) -> Target:
    async def wrapped(w: World, role: str) -> tuple[Params, Kwargs]:
        params, kwargs = await _resolve(target, w, role)
        data = {key: str(value) for key, value in dict(kwargs.get("data") or {}).items()}
        return params, kwargs | {"data": change(data)}

    return wrapped


async def test_no_page_form_answers_5xx_to_control_characters_or_huge_values(world: World) -> None:
    forms = {(method, template): row for (method, template), row in MATRIX.items() if row.page and method == "POST"}
    assert len(forms) >= 25
    wrong: list[str] = []
    sent = 0

    async def expect(template: str, row: Row, what: str, allowed: Callable[[int], bool]) -> None:
        nonlocal sent
        sent += 1
        answer = await send(world, "POST", template, row, first_allowed(row))
        if not allowed(answer.status_code):
            wrong.append(f"POST {template} with {what}: {answer.status_code} {answer.text[:120]!r}")

    for (_method, template), row in forms.items():
        fields = list((await _resolve(row.target, world, first_allowed(row)))[1].get("data") or {}) + ["note"]
        for n, name in enumerate(fields):
            bad = BAD_CHARACTERS[n % len(BAD_CHARACTERS)]

            def poisoned(data: dict[str, str], name: str = name, bad: str = bad) -> dict[str, str]:
                return data | {name: data.get(name, "") + bad}

            await expect(
                template, replace(row, target=_mutated(row.target, poisoned)), f"{bad!r} in {name}", {422}.__contains__
            )

        def huge(data: dict[str, str]) -> dict[str, str]:
            return {key: "9" * 100_000 for key in data} | {"note": "x" * 100_000}

        await expect(template, replace(row, target=_mutated(row.target, huge)), "huge values", lambda s: s < 500)

    for (method, template), row in MATRIX.items():
        if not row.page:
            continue
        for name in path_parameters(template):
            sent += 1
            answer = await send(world, method, template, row, first_allowed(row), guessed={name: "%00"})
            if answer.status_code != 404:
                wrong.append(f"{method} {template} with NUL in {name}: {answer.status_code}")
    print(f"{sent} form posts and paths sent")
    assert not wrong, f"{len(wrong)} of {sent}:\n" + "\n".join(wrong)
