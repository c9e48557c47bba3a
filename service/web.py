"""What endpoints and pages share: the unit of work, the signed-in user, CSRF and rendering."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from campaigns.accounts import user_for_token
from campaigns.errors import FieldError, KindlingError, NotAuthenticated, ValidationFailed
from campaigns.models import User
from campaigns.preferences import set_preferences
from campaigns.schemas_base import CONTROL_CHARACTERS_MESSAGE, has_control_characters
from campaigns.sessions import end_session, start_session, user_for_session
from payments.gateway import PaymentGateway
from payments.rate_limit import StripeRateLimit
from payments.stripe_jobs import StripeWork
from service import i18n
from service.database import JobSender, unit_of_work
from service.middleware import BODY_OVER_LIMIT, LOCALE_CHOSEN
from service.settings import Network, Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The session cookie (signed by Starlette's SessionMiddleware) holds this random key and the CSRF token, and, between a
# log-in's password and its code (two-factor), only whose password was right and until when (service/pages/accounts.py).
SESSION_KEY = "sid"


class PrintablePathSegment(StringConvertor):
    """A path parameter (`{slug}`, `{pledge_id}`) never holds a control character: `/spaces/%00` matches no route
    and is 404, as any unknown address."""

    regex = r"[^/\x00-\x1f\x7f-\x9f]+"


# Every route's `{name}` is a "str" parameter; this must run before the first route is made (pages import us).
register_url_convertor("str", PrintablePathSegment())


class FormRefused(ValidationFailed):
    """A form field holding NUL or another control character: no page handler ever sees such a form."""


class CsrfFailed(KindlingError):
    status = 403
    type = "csrf-failed"
    title = "The form expired or did not come from this site"


class UploadTimedOut(KindlingError):
    status = 408
    type = "request-timeout"
    title = "The request body did not arrive in time"


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def sessions_of(request: Request) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


def sender_of(request: Request) -> JobSender:
    sender: JobSender = request.app.state.sender
    return sender


def gateway_of(request: Request) -> PaymentGateway:
    gateway: PaymentGateway = request.app.state.gateway
    return gateway


def stripe_work_of(request: Request) -> StripeWork:
    """What a request that charges a card at once needs (an add-on bought after the close): short transactions,
    the gateway, and the rate limit the worker's jobs share."""
    rate_limit: StripeRateLimit = request.app.state.stripe_rate
    return StripeWork(
        partial(unit_of_work, sessions_of(request), sender_of(request)),
        request.app.state.engine,
        gateway_of(request),
        rate_limit,
        charge_doubt_seconds=settings_of(request).charge_doubt_hours * 3600,
    )


@asynccontextmanager
async def uow(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: commits when the block ends cleanly, then sends the jobs it asked for."""
    async with unit_of_work(sessions_of(request), sender_of(request)) as session:
        yield session


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Send 'Authorization: Bearer <token>' with a token from POST /api/v1/tokens.")
    return token.strip()


def client_address(request: Request) -> str:
    """Whom to count: the peer, unless the peer is a trusted proxy; then the right-most address in X-Forwarded-For
    that no trusted proxy added (entries further left are whatever the client chose to send)."""
    peer = request.client.host if request.client else "unknown"
    trusted = settings_of(request).trusted_proxies
    if not _within(peer, trusted):
        return peer
    hops = [hop.strip() for header in request.headers.getlist("x-forwarded-for") for hop in header.split(",")]
    told_by = peer
    for hop in reversed(hops):
        if not _is_address(hop):
            break
        if not _within(hop, trusted):
            return hop
        told_by = hop
    return told_by


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def user_agent_of(request: Request) -> str | None:
    return request.headers.get("user-agent")


async def optional_user(request: Request, session: AsyncSession) -> User | None:
    """The caller: by bearer token (the API) or by the session cookie (pages, and the pages' own scripts)."""
    token = bearer_token(request)
    address, agent = client_address(request), user_agent_of(request)
    if token is not None:
        user = await user_for_token(session, token, address=address, user_agent=agent)
        if user is None:
            raise NotAuthenticated("The token is unknown, revoked or expired; get a new one from POST /api/v1/tokens.")
        request.state.user = user
        return user
    key = request.session.get(SESSION_KEY) if "session" in request.scope else None
    if not isinstance(key, str):
        return None
    if request.method not in SAFE_METHODS and request.url.path.startswith("/api/"):
        # A cookie rides along with any cross-site request; the pages' scripts prove themselves with the token.
        check_csrf(request, request.headers.get("x-csrf-token"))
    found = await user_for_session(session, key, address=address, user_agent=agent)
    if found is None:
        request.session.pop(SESSION_KEY, None)
        return None
    request.state.user, request.state.session_id = found
    await speak_to(request, session, found[0])
    return found[0]


async def speak_to(request: Request, session: AsyncSession, user: User) -> None:
    """A signed-in page speaks the account's language and shows times on its clock. The language switch (?lang=)
    is the account's language changing: it wins, and is kept in the account, so mail follows it too."""
    chosen = getattr(request.state, LOCALE_CHOSEN, None)
    if chosen and chosen != user.locale:
        await set_preferences(session, user, language=chosen)
    locale = i18n.lazy_locale(user.locale) or request.state.locale
    request.state.locale = locale
    i18n.current_locale.set(locale)
    i18n.current_time_zone.set(user.time_zone)


async def current_user(request: Request, session: AsyncSession) -> User:
    user = await optional_user(request, session)
    if user is None:
        raise NotAuthenticated("Log in first: send a bearer token from POST /api/v1/tokens.")
    return user


async def start_signed_in_session(request: Request, session: AsyncSession, user: User) -> None:
    """Sign this browser in as `user`: a new server-side session, a new cookie key, a new CSRF token.

    Every page that signs someone in comes through here once their credentials are checked (and whatever else
    signing in asks for has passed)."""
    key, session_id = await start_session(
        session, user, address=client_address(request), user_agent=user_agent_of(request)
    )
    request.session.clear()
    request.session[SESSION_KEY] = key
    request.session["csrf"] = secrets.token_urlsafe(32)
    request.state.user, request.state.session_id = user, session_id


async def end_signed_in_session(request: Request, session: AsyncSession) -> None:
    """Log this browser out for good: the server forgets the session, whatever becomes of the cookie."""
    key = request.session.get(SESSION_KEY)
    if isinstance(key, str):
        await end_session(session, key)
    request.session.clear()


def csrf_token(request: Request) -> str:
    token: str | None = request.session.get("csrf")
    if token is None:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, presented: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not presented or not hmac.compare_digest(str(expected), str(presented)):
        raise CsrfFailed("Reload the page and try again.")


class BodyTooLarge(KindlingError):
    """A page's form over the body limit (service/middleware.py BodyLimit), passed on without its body so that the
    page can answer in its own words."""

    status = 413
    type = "payload-too-large"
    title = "The request body is too large"


async def read_body(request: Request) -> bytes:
    """The whole body, read before the request takes a database connection (the body limit caps its size): a client
    that takes longer than KINDLING_UPLOAD_SECONDS to send it is answered 408. So a slow upload holds a task, never
    a connection of the pool."""
    seconds = settings_of(request).upload_seconds
    try:
        async with asyncio.timeout(seconds):
            return await request.body()
    except TimeoutError:
        raise UploadTimedOut(f"The body did not arrive within {seconds:g} seconds; send it again.") from None


async def read_form(request: Request, *, csrf: bool = True) -> FormData:
    """The only way pages read a form: read whole first (`read_body`), it refuses a POST without this session's CSRF
    token, and one with NUL or another control character in any field (the page shows its form again). `csrf=False`
    only for a POST that by its standard comes without a session (RFC 8058's one-click unsubscribe)."""
    if request.scope.get("state", {}).get(BODY_OVER_LIMIT):
        raise BodyTooLarge("Choose a smaller file.")
    await read_body(request)
    form = await request.form()
    if csrf:
        presented = form.get("csrf_token")
        check_csrf(request, presented if isinstance(presented, str) else None)
    await _speak_to_signed_in(request)
    refused = [
        FieldError(key, CONTROL_CHARACTERS_MESSAGE)
        for key, value in form.multi_items()
        if has_control_characters(key) or (isinstance(value, str) and has_control_characters(value))
    ]
    if refused:
        raise FormRefused("A field holds NUL or another control character.", errors=refused)
    return form


async def _speak_to_signed_in(request: Request) -> None:
    """Handlers check a form before they load the person who sent it: the page's language and clock are the account's
    from here on, so that every message about the form, and every time typed in it, is read the person's way."""
    if getattr(request.state, "user", None) is not None or not isinstance(request.session.get(SESSION_KEY), str):
        return
    async with uow(request) as session:
        await optional_user(request, session)


def render(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200) -> Response:
    templates = request.app.state.templates
    values = {
        "request": request,
        "csrf_token": csrf_token(request),
        "user": getattr(request.state, "user", None),
        "form_refused": getattr(request.state, "form_refused", None),
    }
    values.update(context or {})
    html = templates.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
