from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.web import sessions_of

log = logging.getLogger("kindling.health")

CHECK_TIMEOUT = 3.0


async def _database_ok(request: Request) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), sessions_of(request)() as session:
            await session.execute(text("SELECT 1"))
        return True
    except Exception as exc:
        log.warning("health: database failed: %s", exc)
        return False


async def _broker_ok(request: Request) -> bool:
    client = request.app.state.broker.client
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await asyncio.to_thread(client.ping)
        return True
    except Exception as exc:
        log.warning("health: broker failed: %s", exc)
        return False


async def healthz(request: Request) -> Response:
    database, broker = await asyncio.gather(_database_ok(request), _broker_ok(request))
    body = {
        "status": "ok" if database and broker else "unavailable",
        "database": "ok" if database else "failed",
        "broker": "ok" if broker else "failed",
    }
    return JSONResponse(body, status_code=200 if database and broker else 503)
