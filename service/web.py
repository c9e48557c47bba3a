"""What endpoints and pages share: the unit of work, the signed-in user, CSRF and rendering."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from campaigns.accounts import user_for_token
from campaigns.errors import KindlingError, NotAuthenticated
from campaigns.ids import parse_id
from campaigns.models import User
from payments.gateway import PaymentGateway
from service.database import JobSender, unit_of_work
from service.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfFailed(KindlingError):
    status = 403
    type = "csrf-failed"
    title = "The form expired or did not come from this site"


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


@asynccontextmanager
async def uow(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: commits when the block ends cleanly, then sends the jobs it asked for."""
    async with unit_of_work(sessions_of(request), sender_of(request)) as session:
        yield session


def client_address(request: Request) -> str:
    """Where the request came from, as the audit log and the limits per address know it."""
    return request.client.host if request.client else "unknown"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Send 'Authorization: Bearer <token>' with a token from POST /api/v1/tokens.")
    return token.strip()


async def optional_user(request: Request, session: AsyncSession) -> User | None:
    """The caller: by bearer token (the API) or by the session cookie (pages, and the pages' own scripts)."""
    token = bearer_token(request)
    if token is not None:
        user = await user_for_token(session, token)
        if user is None:
            raise NotAuthenticated("The token is unknown or revoked; get a new one from POST /api/v1/tokens.")
        request.state.user = user
        return user
    user_id = parse_id(request.session.get("user_id", "")) if "session" in request.scope else None
    if user_id is None:
        return None
    if request.method not in SAFE_METHODS and request.url.path.startswith("/api/"):
        # A cookie rides along with any cross-site request; the pages' scripts prove themselves with the token.
        check_csrf(request, request.headers.get("x-csrf-token"))
    user = await session.get(User, user_id)
    if user is None or request.session.get("auth_version") != auth_version(user):
        request.session.clear()
        return None
    request.state.user = user
    return user


async def current_user(request: Request, session: AsyncSession) -> User:
    user = await optional_user(request, session)
    if user is None:
        raise NotAuthenticated("Log in first: send a bearer token from POST /api/v1/tokens.")
    return user


def auth_version(user: User) -> str:
    # Changes when the password does, so a new password ends every old session.
    return user.password_hash[-16:]


def log_in(request: Request, user: User) -> None:
    request.session.clear()
    request.session["user_id"] = str(user.id)
    request.session["auth_version"] = auth_version(user)
    request.session["csrf"] = secrets.token_urlsafe(32)


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


async def read_form(request: Request) -> FormData:
    """The only way pages read a form: it refuses a POST without this session's CSRF token."""
    form = await request.form()
    presented = form.get("csrf_token")
    check_csrf(request, presented if isinstance(presented, str) else None)
    return form


def render(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200) -> Response:
    templates = request.app.state.templates
    values = {"request": request, "csrf_token": csrf_token(request), "user": getattr(request.state, "user", None)}
    values.update(context or {})
    html = templates.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
