"""Pure ASGI middleware: request ids, the last line of defence against errors, body limits, locale, headers."""

from __future__ import annotations

import html
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import i18n
from service.logs import request_id_var
from service.problems import problem_response

log = logging.getLogger("kindling.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
Hook = Callable[[Message], Awaitable[None]]


def is_api(path: str) -> bool:
    return path.startswith("/api/") or path.startswith("/webhooks/") or path == "/healthz"


# SQLSTATEs of a PostgreSQL that is going away, coming back or full: connection exceptions (class 08), admin and
# crash shutdown, "the database system is starting up / shutting down" (57P01-57P03), too many connections.
_UNAVAILABLE_SQLSTATE = re.compile(r"^(08...|57P0[123]|53300)$")


def is_unavailable(exc: BaseException) -> bool:
    """A database or broker that cannot be reached: the client may retry, nothing of ours is broken."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | RedisConnectionError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        return exc.connection_invalidated or bool(sqlstate and _UNAVAILABLE_SQLSTATE.match(str(sqlstate)))
    return isinstance(exc, OSError) and exc.errno is not None


class RequestContext:
    """Gives each request an id (echoed in X-Request-ID and in every log line) and answers what escapes the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:
                log.exception("error after the response started")
                raise
            response = self._answer(scope, exc, request_id)
            await response(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)

    @staticmethod
    def _answer(scope: Scope, exc: Exception, request_id: str) -> Response:
        path = scope.get("path", "")
        if is_unavailable(exc):
            log.warning("service unavailable: %s: %s", type(exc).__name__, exc)
            if is_api(path):
                return problem_response(
                    503,
                    detail="A service Kindling depends on is unavailable; try again shortly.",
                    headers={"Retry-After": "5"},
                )
            return HTMLResponse(_plain_page(503, request_id), status_code=503, headers={"Retry-After": "5"})
        log.exception("unhandled error")
        if is_api(path):
            return problem_response(500, detail=f"Something went wrong on our side. Request id: {request_id}.")
        return HTMLResponse(_plain_page(500, request_id), status_code=500)


def _plain_page(status: int, request_id: str) -> str:
    with i18n.use_locale(i18n.current_locale.get()):
        heading = (
            i18n.gettext("Something went wrong on our side.")
            if status == 500
            else i18n.gettext("Kindling is briefly unavailable. Please try again in a moment.")
        )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{status}</title>"
        f"<link rel='stylesheet' href='/static/site.css'></head><body><main class='container narrow'>"
        f"<h1>{heading}</h1><p class='muted'>Request id: {request_id}</p><p><a href='/'>Kindling</a></p>"
        f"</main></body></html>"
    )


# Set in a page request's state when its body was over the limit and is passed on without it.
BODY_OVER_LIMIT = "body_over_limit"


class BodyLimit:
    """Refuses bodies over the limit with 413, by Content-Length or while streaming, before the app reads them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and not length.isdigit():
            await self._refuse(scope, receive, send, status=400, detail="Content-Length must be a number of bytes.")
            return
        if length is not None and int(length) > self.max_bytes:
            if is_api(scope.get("path", "")):
                await self._refuse(scope, receive, send)
            else:  # the page answers in its own words, with its form (service/web.py read_form)
                await self.app(_marked_over_limit(scope), _no_body, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, *, status: int = 413, detail: str | None = None
    ) -> None:
        detail = detail or f"The request body may be at most {self.max_bytes // (1024 * 1024)} MB."
        if is_api(scope.get("path", "")):
            response: Response = problem_response(status, detail=detail)
        else:
            response = HTMLResponse(f"<!doctype html><p>{html.escape(detail)}</p>", status_code=status)
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def _marked_over_limit(scope: Scope) -> Scope:
    return {**scope, "state": {**scope.get("state", {}), BODY_OVER_LIMIT: True}}


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


# Set in a request's state when the visitor chose the language with ?lang= (the switch in every page's header): a
# signed-in visitor's choice also becomes their account's language (service/web.py).
LOCALE_CHOSEN = "locale_chosen"


class LocaleMiddleware:
    """The page's language: ?lang= (remembered in a cookie), then the cookie, then Accept-Language; times in UTC.

    A signed-in account's own language and time zone replace these once the page knows who is looking
    (service/web.py speak_to), so the Content-Language header is read when the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        chosen = i18n.lazy_locale(request.query_params.get("lang"))
        locale = (
            chosen
            or i18n.lazy_locale(request.cookies.get("lang"))
            or i18n.negotiate(request.headers.get("accept-language"))
        )
        state = scope.setdefault("state", {})
        state["locale"], state[LOCALE_CHOSEN] = locale, chosen
        token = i18n.current_locale.set(locale)
        zone_token = i18n.current_time_zone.set(i18n.DEFAULT_TIME_ZONE)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if chosen:
                    headers.append("Set-Cookie", f"lang={chosen}; Path=/; Max-Age=31536000; SameSite=Lax")
                headers.append("Content-Language", str(state.get("locale", locale)).replace("_", "-"))
                headers.append("Vary", "Accept-Language, Cookie")
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookie)
        finally:
            i18n.current_time_zone.reset(zone_token)
            i18n.current_locale.reset(token)


@dataclass(frozen=True)
class StripeOrigins:
    """The origins Stripe.js is loaded from, connects to and opens frames from (3-D Secure, the card fields)."""

    script: tuple[str, ...] = ()
    connect: tuple[str, ...] = ()
    frame: tuple[str, ...] = ()


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, stripe: StripeOrigins) -> None:
        self.app = app

        def allowed(origins: tuple[str, ...]) -> str:
            return " ".join(("'self'", *origins))

        self.csp = (
            f"default-src 'self'; script-src {allowed(stripe.script)}; frame-src {allowed(stripe.frame)}; "
            f"connect-src {allowed(stripe.connect)}; "
            "img-src 'self' data:; style-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'none'"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", self.csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)
