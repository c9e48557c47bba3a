"""Building blocks shared by every request and response model."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, PlainSerializer, field_validator

# NUL and the other control characters (Unicode's Cc), which no field has a use for; tab, line feed and carriage
# return are part of text.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS_MESSAGE = "must not contain NUL or other control characters"


def has_control_characters(value: object) -> bool:
    """Whether `value`, or any string inside it (list items, mapping keys and values), holds a control character."""
    if isinstance(value, str):
        return _CONTROL_CHARACTERS.search(value) is not None
    if isinstance(value, dict):
        return any(has_control_characters(k) or has_control_characters(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(has_control_characters(item) for item in value)
    return False


class RequestModel(BaseModel):
    # Unknown fields are refused so that a client learns of a typo at once.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        # PostgreSQL's text cannot hold NUL; the rest would reach pages, mail and shipping lists as garbage.
        if has_control_characters(value):
            raise ValueError(CONTROL_CHARACTERS_MESSAGE)
        return value


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
