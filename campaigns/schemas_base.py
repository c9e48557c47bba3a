"""Building blocks shared by every request and response model."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, PlainSerializer


class RequestModel(BaseModel):
    # Unknown fields are refused so that a client learns of a typo at once.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


UtcDatetime = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str, when_used="json")]


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$")


def _written_out(value: object) -> object:
    # Pydantic alone would also read 1800000000 or "1800000000" as seconds since 1970; a client sending one of those
    # meant something else.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.match(value):
        try:
            return datetime.fromisoformat(value.upper())
        except ValueError:
            pass
    raise ValueError("must be an RFC 3339 date-time with its offset, such as 2026-12-01T12:00:00Z")


# A moment a client sends: RFC 3339 text with an offset, never a number.
Rfc3339Datetime = Annotated[AwareDatetime, BeforeValidator(_written_out)]

ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None
