"""Keyset pagination on (created_at, id): stable while rows are added, one index scan per page."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import InvalidInput

T = TypeVar("T")


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), str(self.id)]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def decode(value: str | None) -> Cursor | None:
        if not value:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            created_at, row_id = json.loads(raw)
            return Cursor(datetime.fromisoformat(created_at), uuid.UUID(row_id))
        except (ValueError, TypeError, UnicodeDecodeError):
            raise InvalidInput("cursor", "is not a cursor this API gave out") from None


async def page_after(
    session: AsyncSession,
    query: Select[Any],
    model: Any,
    *,
    limit: int,
    cursor: Cursor | None,
    newest_first: bool = False,
) -> tuple[list[Any], str | None]:
    created, ident = model.created_at, model.id
    if cursor is not None:
        if newest_first:
            query = query.where(or_(created < cursor.created_at, and_(created == cursor.created_at, ident < cursor.id)))
        else:
            query = query.where(or_(created > cursor.created_at, and_(created == cursor.created_at, ident > cursor.id)))
    order = (created.desc(), ident.desc()) if newest_first else (created.asc(), ident.asc())
    rows = list((await session.scalars(query.order_by(*order).limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = Cursor(last.created_at, last.id).encode()
    return rows, next_cursor
