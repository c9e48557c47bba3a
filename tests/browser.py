"""Real headless Chromium (Debian's) for browser tests, and the app served on a real loopback port for it to visit.

    async with launch_browser() as browser, new_page(browser, width=375, locale="zh-CN") as page:
        errors = console_errors(page)
        await page.goto(live_server.url + "/")
        await screenshot(page, "/tmp/shots/home-375-zh.png")
        assert errors == []

`live_server` (tests/conftest.py) serves the test settings; `serve(app)` serves any other app, e.g. one built with
`stripe_settings`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path

import httpx
import uvicorn
from playwright.async_api import Browser, Page, Playwright, Response, async_playwright
from playwright.async_api import Error as PlaywrightError
from starlette.types import ASGIApp

from tests.helpers import KEEP_ALIVE_SECONDS, PASSWORD, Actor, loopback_socket, spend_recovery_code
from tests.pages import csrf_from, log_in

# Chromium's headless shell (Debian's chromium-headless-shell: the build Playwright itself runs for headless pages)
# draws the same pages with the same Blink for about a third of the full browser's CPU; the full one where it is
# missing.
CHROMIUM = next(
    (path for path in ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium") if Path(path).exists()),
    "/usr/bin/chromium",
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_available() -> bool:
    return Path(CHROMIUM).exists()


class _Chromium:
    """The process's one Chromium: launched by the first test that asks, closed when the session ends
    (`close_browser`, from tests/conftest.py). Starting Chromium costs seconds on a busy machine; a context costs
    little, and each page of `new_page` has its own."""

    playwright: Playwright | None = None
    browser: Browser | None = None


@asynccontextmanager
async def launch_browser() -> AsyncIterator[Browser]:
    """Chromium for the block: the process's one browser (started again if it died), with no context left open
    after the block, so that no cookie or page of one test reaches the next."""
    if _Chromium.browser is None or not _Chromium.browser.is_connected():
        await close_browser()
        _Chromium.playwright = await async_playwright().start()
        _Chromium.browser = await _Chromium.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    browser = _Chromium.browser
    try:
        yield browser
    finally:
        for context in browser.contexts:
            await context.close()


async def close_browser() -> None:
    browser, playwright = _Chromium.browser, _Chromium.playwright
    _Chromium.browser = _Chromium.playwright = None
    if browser is not None:
        with suppress(PlaywrightError):  # already gone with its process
            await browser.close()
    if playwright is not None:
        await playwright.stop()


@asynccontextmanager
async def new_page(
    browser: Browser, *, width: int = 1280, height: int = 800, locale: str = "en-US"
) -> AsyncIterator[Page]:
    """A page in a fresh context (its own cookies), `locale` sent as Accept-Language."""
    context = await browser.new_context(viewport={"width": width, "height": height}, locale=locale)
    try:
        yield await context.new_page()
    finally:
        await context.close()


def console_errors(page: Page) -> list[str]:
    """Collects the page's console errors and uncaught exceptions (a CSP violation is one) as they happen."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


async def log_in_page(page: Page, base: str, actor: Actor, *, then: str = "/") -> Response | None:
    """Sign `actor` in for `page`'s context, in the page's language, and open `then` (the home page by default);
    the answer to opening it.

    The log-in form itself is posted over real HTTP to the same server (tests/pages.log_in: password, then the code
    step with a recovery code for who has two-factor on), and the session's cookies are handed to the browser: the
    same session a person gets, without Chromium loading three pages to type it. The role walk types it in
    (`log_in_through_the_form`), so the form is still driven by a browser in the suite."""
    language = "zh_CN" if str(await page.evaluate("navigator.language")).startswith("zh") else "en"
    # Plain HTTP on loopback: no TLS context to make (20-30 ms of CPU a client).
    headers = {"accept-language": language.replace("_", "-")}
    async with httpx.AsyncClient(base_url=base, headers=headers, verify=False) as http:
        await log_in(http, actor)
        # Signed in, pages speak the account's language: the person picks their browser's with the language switch.
        await csrf_from(http, f"/?lang={language}")
        cookies = [{"name": name, "value": value, "url": base} for name, value in http.cookies.items()]
    await page.context.add_cookies(cookies)  # type: ignore[arg-type]
    return await page.goto(base + then)


async def log_in_through_the_form(page: Page, base: str, actor: Actor) -> None:
    """Log `actor` in by typing into the log-in form, answering the code step with one of their recovery codes when
    they have two-factor on (operators, admins), wait for the home page it leads to, and switch the site (so the
    account) to the browser's language."""
    await page.goto(base + "/login")
    await page.locator("#field-email").fill(actor.email)
    await page.locator("#field-password").fill(PASSWORD)
    await page.locator("form.form button[type=submit]").click()
    if actor.recovery_codes:
        await page.locator("#field-code").fill(spend_recovery_code(actor))
        await page.locator("form.form button[type=submit]").click()
    await page.wait_for_url(base + "/")
    # Signed in, pages speak the account's language: the person picks their browser's with the language switch.
    language = "zh_CN" if str(await page.evaluate("navigator.language")).startswith("zh") else "en"
    await page.goto(f"{base}/?lang={language}")


# A full-page PNG costs Chromium about a second of CPU: `make test` takes none but the role walk's (its kept
# artefacts); set KINDLING_SCREENSHOTS=1 to have every browser test keep the pages it looks at, to look at them too.
SCREENSHOTS = os.environ.get("KINDLING_SCREENSHOTS") == "1"


async def screenshot(page: Page, path: str | Path) -> Path:
    """The whole page, top to bottom, as a PNG at `path`, when KINDLING_SCREENSHOTS=1."""
    target = Path(path)
    if SCREENSHOTS:
        target.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(target), full_page=True)
    return target


class LiveServer:
    """The app under uvicorn in a background thread (with its own event loop), on 127.0.0.1."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._socket = loopback_socket()
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            loop="asyncio",
            lifespan="on",
            log_level="warning",
            ws="none",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=f"live-server-{self.port}", daemon=True
        )

    def start(self, timeout: float = 60) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"The app did not start serving on {self.url}.")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


@contextmanager
def serve(app: ASGIApp) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()
