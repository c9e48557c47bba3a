"""Units of limited variants and add-ons: taken and given back by one conditional UPDATE each, so that no number of
concurrent pledges takes more than the maker offered (`remaining` also has CHECK (remaining >= 0)).

The pledge step calls these inside its own transaction; an unlimited row (`remaining` null) always has units.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import Conflict
from campaigns.models import AddOn, ProductVariant

Limited = type[ProductVariant] | type[AddOn]


class UnitsSoldOut(Conflict):
    type = "sold-out"
    title = "Not enough of this is left"


async def take_units(session: AsyncSession, model: Limited, row_id: uuid.UUID, quantity: int = 1) -> int | None:
    """Takes `quantity` units of the variant or add-on; returns what is left (None: unlimited). UnitsSoldOut when
    fewer are left, and then nothing is taken."""
    left = await session.execute(
        update(model)
        .where(model.id == row_id, (model.remaining.is_(None)) | (model.remaining >= quantity))
        .values(remaining=model.remaining - quantity)
        .returning(model.remaining)
    )
    row = left.one_or_none()
    if row is None:
        raise UnitsSoldOut(f"Fewer than {quantity} of this are left.")
    return row[0]


async def give_back_units(session: AsyncSession, model: Limited, row_id: uuid.UUID, quantity: int = 1) -> None:
    """Frees `quantity` units again (a cancelled or changed pledge), never above the limit."""
    await session.execute(
        update(model)
        .where(model.id == row_id, model.remaining.is_not(None))
        .values(remaining=func.least(model.remaining + quantity, model.quantity_limit))
    )
