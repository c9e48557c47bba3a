"""Idempotency-Key for every POST that creates something or moves money: one mechanism, not one per endpoint.

The first request with a key claims it (a unique row per user and key); a retry with the same body gets the stored
response again; the same key with another body is 422; a retry while the first is still running is 409. A claim
whose request never finished (its process was killed) is given up after ABANDONED_AFTER, longer than any request
runs (Stripe's client gives up long before), so the client's retry then runs for real; what it would repeat is
guarded by the database's own rules (one open pledge per backer, conditional state changes).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import and_, delete, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from campaigns.errors import Conflict, InvalidInput, KindlingError
from service.models import IdempotencyRecord
from service.problems import problem_from_error
from service.web import current_user, sessions_of, uow

log = logging.getLogger("kindling.idempotency")

KEY_LIFETIME = "24 hours"
ABANDONED_AFTER = "5 minutes"


class RequestInFlight(Conflict):
    type = "idempotency-key-in-use"
    title = "A request with this Idempotency-Key is still being processed"


async def forget_user_requests(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Drop the stored responses of a user's requests (they may repeat personal data), as their account goes."""
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id))


async def run_idempotently(request: Request, call: Callable[[], Awaitable[Response]]) -> Response:
    key = request.headers.get("idempotency-key")
    if key is None:
        return await call()
    if not 1 <= len(key) <= 255:
        raise InvalidInput("Idempotency-Key", "must be 1 to 255 characters long")
    async with uow(request) as session:
        user = await current_user(request, session)
    body = await request.body()
    request_hash = hashlib.sha256(b"\n".join([request.method.encode(), request.url.path.encode(), body])).hexdigest()

    sessions = sessions_of(request)
    async with sessions.begin() as session:
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user.id,
                IdempotencyRecord.key == key,
                or_(
                    IdempotencyRecord.created_at < text(f"now() - interval '{KEY_LIFETIME}'"),
                    and_(
                        IdempotencyRecord.status_code.is_(None),
                        IdempotencyRecord.created_at < text(f"now() - interval '{ABANDONED_AFTER}'"),
                    ),
                ),
            )
        )
        claimed = await session.scalar(
            insert(IdempotencyRecord)
            .values(user_id=user.id, key=key, request_hash=request_hash)
            .on_conflict_do_nothing(constraint="uq_idempotency_records_user_key")
            .returning(IdempotencyRecord.id)
        )
    if claimed is None:
        async with sessions() as session:
            first = await session.scalar(
                select(IdempotencyRecord).where(IdempotencyRecord.user_id == user.id, IdempotencyRecord.key == key)
            )
        if first is None:  # the first request failed and gave its key back in between
            raise RequestInFlight("Retry the request.")
        if first.request_hash != request_hash:
            raise InvalidInput("Idempotency-Key", "was already used with a different request; use a new key")
        if first.status_code is None:
            raise RequestInFlight("The first request with this key is still running; retry in a moment.")
        return Response(first.response_body or b"", status_code=first.status_code, media_type=first.content_type)

    try:
        response = await call()
    except KindlingError as exc:
        response = problem_from_error(exc)
    except BaseException:
        await _release(request, claimed)
        raise
    if response.status_code >= 500:
        await _release(request, claimed)
        return response
    async with sessions.begin() as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == claimed)
            .values(
                status_code=response.status_code,
                content_type=response.headers.get("content-type"),
                response_body=bytes(response.body),
            )
        )
    return response


_PRUNE = text(
    "DELETE FROM idempotency_records WHERE id = ANY(ARRAY("
    f"SELECT id FROM idempotency_records WHERE created_at < now() - interval '{KEY_LIFETIME}' "
    "ORDER BY created_at LIMIT :limit))"
)


async def prune_idempotency_records(session: AsyncSession, *, limit: int) -> int:
    """Delete up to `limit` keys older than KEY_LIFETIME: a retry that late runs as a new request, as at Stripe."""
    result = await session.execute(_PRUNE, {"limit": limit})
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _release(request: Request, claimed: object) -> None:
    """A failure on our side gives the key back, so the client's retry runs for real."""
    async with sessions_of(request).begin() as session:
        await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == claimed))
