"""Ids are random UUIDs: nothing is reachable by guessing the next one."""

from __future__ import annotations

import uuid


def parse_id(value: uuid.UUID | str) -> uuid.UUID | None:
    """The UUID in `value`, or None when it is not one (which callers answer as 'not found')."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
