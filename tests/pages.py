"""Pages as a browser without JavaScript sees them: its own cookies, the session's CSRF token read from the page's
form, logging in through the log-in form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.helpers import PASSWORD, Actor, finish_page_log_in

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf_from(browser: httpx.AsyncClient, path: str) -> str:
    """The CSRF token of the form on the page at `path` (which must answer 200)."""
    page = await browser.get(path)
    assert page.status_code == 200, page.text
    found = CSRF_INPUT.search(page.text)
    assert found, f"no csrf_token input on {path}"
    return found.group(1)


async def log_in(browser: httpx.AsyncClient, actor: Actor) -> str:
    """Log `browser` in as `actor` through the log-in form, and its code step for who has two-factor on (operators,
    admins: a recovery code of theirs); returns the session's CSRF token (a new one: logging in changes it). A browser
    asking for Chinese (Accept-Language) then switches the site, and so the account, to Chinese."""
    token = await csrf_from(browser, "/login")
    answer = await browser.post("/login", data={"csrf_token": token, "email": actor.email, "password": PASSWORD})
    answer = await finish_page_log_in(browser, answer, actor)
    assert answer.status_code == 303, answer.text
    # Signed in, pages speak the account's language: a browser asking for Chinese switches the site (so the account).
    chinese = browser.headers.get("accept-language", "").startswith("zh")
    return await csrf_from(browser, "/?lang=zh_CN" if chinese else "/")


def new_browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A browser with cookies of its own on the same app as `client`; the caller closes it."""
    return httpx.AsyncClient(transport=client._transport, base_url="http://testserver")


@asynccontextmanager
async def logged_in(client: httpx.AsyncClient, actor: Actor | None) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own with `actor` logged in through the log-in form (None: nobody, but a session begun)."""
    async with new_browser(client) as browser:
        if actor is None:
            await csrf_from(browser, "/login")
        else:
            await log_in(browser, actor)
        yield browser


async def post_form(browser: httpx.AsyncClient, path: str, data: dict[str, Any], *, form_page: str) -> httpx.Response:
    """Post `data` to `path` as the form on `form_page` would, with the session's CSRF token."""
    return await browser.post(path, data={"csrf_token": await csrf_from(browser, form_page), **data})
