"""The application factory."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message

from campaigns.errors import KindlingError
from campaigns.models import User
from payments.gateway import StripeGateway
from payments.rate_limit import StripeRateLimit
from service.api import openapi_document
from service.broker import DramatiqSender, create_broker
from service.database import JobSender, create_engine, create_sessionmaker
from service.endpoints import campaign_media
from service.endpoints.health import healthz
from service.i18n import gettext
from service.middleware import BodyLimit, LocaleMiddleware, RequestContext, SecurityHeaders, StripeOrigins, is_api
from service.page_cache import PageCache
from service.problems import problem_from_error, problem_response
from service.routes import api
from service.settings import Settings
from service.templating import create_templates
from service.web import FormRefused, render, sessions_of

STATIC_DIR = __import__("pathlib").Path(__file__).parent / "static"
BODY_LIMIT = 8 * 1024 * 1024

# Modules whose import declares API operations and pages.
ENDPOINT_MODULES = (
    "service.endpoints.accounts",
    "service.endpoints.account_security",
    "service.endpoints.spaces",
    "service.endpoints.makers",
    "service.endpoints.campaigns",
    "service.endpoints.campaign_media",
    "service.endpoints.design_records",
    "service.endpoints.webhooks",
    "service.endpoints.money",
    "service.endpoints.pledges",
    "service.endpoints.pledge_manager",
    "service.endpoints.cards",
    "service.endpoints.fulfillment",
    "service.endpoints.late_pledges",
    "service.endpoints.shipping",
    "service.endpoints.payments_actions",
    "service.endpoints.matching",
    "service.endpoints.two_factor",
    "service.endpoints.audit",
    "service.endpoints.talk",
    "service.endpoints.backers",
    "service.endpoints.notifications",
)
PAGE_MODULES: tuple[str, ...] = (
    "service.pages.home",
    "service.pages.accounts",
    "service.pages.account_security",
    "service.pages.spaces",
    "service.pages.maker_profile",
    "service.pages.devmail",
    "service.pages.campaigns",
    "service.pages.pictures",
    "service.pages.maker",
    "service.pages.maker_catalog",
    "service.pages.late_pledges",
    "service.pages.shipping_form",
    "service.pages.maker_updates",
    "service.pages.operator",
    "service.pages.space_settings",
    "service.pages.checkout",
    "service.pages.preorders",
    "service.pages.my_pledges",
    "service.pages.pledge_manager",
    "service.pages.card_change",
    "service.pages.escrow",
    "service.pages.funding",
    "service.pages.refunds",
    "service.pages.fulfillment",
    "service.pages.packages",
    "service.pages.backers",
    "service.pages.notifications",
    "service.pages.two_factor",
    "service.pages.audit",
    "service.pages.admin",
    "service.pages.messages",
    "service.pages.comments",
)


def _page_routes(settings: Settings) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for name in PAGE_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "DEV_ONLY", False) and not settings.dev:
            continue
        routes.extend(module.routes)
    return routes


def stripe_js_origins(stripe_js_url: str) -> StripeOrigins:
    """Where Stripe.js comes from, and where it connects and frames: Stripe's own hosts for the real one, the
    stand-in's one origin in dev and tests."""
    if stripe_js_url.startswith("/"):
        return StripeOrigins()
    parts = urlsplit(stripe_js_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if origin == "https://js.stripe.com":
        return StripeOrigins(
            script=(origin,), connect=("https://api.stripe.com",), frame=(origin, "https://hooks.stripe.com")
        )
    return StripeOrigins(script=(origin,), connect=(origin,), frame=(origin,))


def create_app(
    settings: Settings,
    *,
    sender: JobSender | None = None,
    engine_pool: int = 10,
    engine: AsyncEngine | None = None,
) -> Starlette:
    """The app. Its lifespan opens a pool of `engine_pool` connections, closed with it, unless it is handed an
    `engine` that outlives it (the tests build an app per test on the run's one engine)."""
    for name in ENDPOINT_MODULES:
        importlib.import_module(name)
    shared_engine = engine

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = shared_engine or create_engine(settings.database_url, pool_size=engine_pool)
        app.state.engine = engine
        app.state.sessions = create_sessionmaker(engine)
        gateway = StripeGateway.from_settings(settings)
        app.state.gateway = gateway
        # Add-ons bought after the close are charged from the request, under the worker's one rate limit.
        stripe_rate = StripeRateLimit(Redis.from_url(settings.redis_url), rate=settings.stripe_rate)
        app.state.stripe_rate = stripe_rate
        page_cache = PageCache(settings.database_url)
        app.state.page_cache = page_cache
        await page_cache.start()
        try:
            yield
        finally:
            await page_cache.stop()
            await stripe_rate.aclose()
            await gateway.aclose()
            if shared_engine is None:
                await engine.dispose()

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document(api, title="Kindling API", version="1"))

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        *api.routes(),
        *_page_routes(settings),
        *campaign_media.media_routes,
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [
        Middleware(RequestContext),
        Middleware(SecurityHeaders, stripe=stripe_js_origins(settings.stripe_js_url)),
        Middleware(BodyLimit, max_bytes=BODY_LIMIT),
        Middleware(LocaleMiddleware),
        Middleware(
            SessionMiddleware,
            secret_key=settings.secret_key,
            session_cookie="kindling_session",
            same_site="lax",
            https_only=settings.secure_cookies,
            max_age=14 * 24 * 3600,
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={KindlingError: _kindling_error, HTTPException: _http_error},  # type: ignore[dict-item]
    )
    broker = create_broker(settings.redis_url)
    app.state.settings = settings
    app.state.broker = broker
    app.state.sender = sender or DramatiqSender(broker)
    app.state.templates = create_templates(dev=settings.dev, stripe_js_url=settings.stripe_js_url)
    return app


async def _kindling_error(request: Request, exc: KindlingError) -> Response:
    if is_api(request.url.path):
        return problem_from_error(exc)
    if isinstance(exc, FormRefused):
        again = await _form_again(request)
        if again is not None:
            return again
    await _reload_viewer(request)
    return _error_page(request, exc.status, exc.detail, problem_type=exc.type)


async def _form_again(request: Request) -> Response | None:
    """The page the refused form belongs to, as GET shows it, with a message above it: the page at the form's own
    address, or else the nearest one above it (`/me/pledges/{id}/address` → `/me/pledges/{id}`); None if none."""
    segments = request.scope["path"].rstrip("/").split("/")
    found = None
    while segments and found is None:
        path = "/".join(segments) or "/"
        scope = {**request.scope, "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b""}
        for route in request.app.router.routes:
            if isinstance(route, Route) and route.matches(scope)[0] is Match.FULL:
                found = route, {**scope, **route.matches(scope)[1]}
                break
        segments.pop()
    if found is None:
        return None
    route, scope = found
    request.state.form_refused = gettext(
        "A field held NUL or another control character, which cannot be kept. Nothing was saved: "
        "type it again and send the form."
    )

    async def no_body() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    try:
        response: Response = await route.endpoint(Request(scope, no_body))
    except (KindlingError, HTTPException):
        return None
    if response.status_code != 200:
        return None
    response.status_code = 422
    return response


async def _http_error(request: Request, exc: HTTPException) -> Response:
    headers: dict[str, Any] = dict(exc.headers or {})
    if is_api(request.url.path):
        detail = {404: "No such resource.", 405: f"{request.method} is not allowed here."}.get(exc.status_code)
        return problem_response(exc.status_code, detail=detail or str(exc.detail), headers=headers)
    return _error_page(request, exc.status_code, str(exc.detail), headers=headers)


async def _reload_viewer(request: Request) -> None:
    """The error rolled the request's transaction back, and with it the signed-in user's loaded row: the page's
    header needs them again, so they are read anew (or left out when even that fails)."""
    user = getattr(request.state, "user", None)
    if user is None:
        return
    identity = inspect(user).identity
    try:
        async with sessions_of(request)() as session:
            request.state.user = await session.get(User, identity[0]) if identity else None
    except Exception:
        request.state.user = None


def _error_page(
    request: Request, status: int, detail: str, headers: dict[str, Any] | None = None, *, problem_type: str = ""
) -> Response:
    try:
        context = {"status": status, "detail": detail, "problem_type": problem_type}
        response = render(request, "error.html", context, status=status)
    except Exception:
        response = HTMLResponse(f"<!doctype html><h1>{status}</h1>", status_code=status)
    if headers:
        response.headers.update(headers)
    if status == 401:
        response.headers["Location"] = "/login?next=" + request.url.path
    return response
