"""An account's language and time zone: which words its pages and mail use, and which clock their times are read on."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import InvalidInput
from campaigns.models import User

LANGUAGES = ("en", "zh_CN")
DEFAULT_LANGUAGE = "en"
DEFAULT_TIME_ZONE = "UTC"
LANGUAGE_MESSAGE = "must be en or zh_CN"
TIME_ZONE_MESSAGE = "must be an IANA time zone name, such as Asia/Shanghai or Europe/Berlin"

# Offered on the account page (after UTC, or China's first for a Chinese reader); the API takes any IANA name.
COMMON_TIME_ZONES = (
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Asia/Kolkata",
    "Asia/Dubai",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Moscow",
    "Africa/Lagos",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
)


@cache
def _known_time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_time_zone(name: str) -> bool:
    """Whether `name` is a zone of the IANA database this machine has (zoneinfo's), spelt exactly."""
    return name in _known_time_zones()


def offered_time_zones(language: str, current: str | None = None) -> list[str]:
    """The zones the account page offers: the common ones, China's first for a Chinese reader, and `current` if it
    is not among them (it was set through the API)."""
    first = "Asia/Shanghai" if language == "zh_CN" else DEFAULT_TIME_ZONE
    zones = [first, *(zone for zone in (*COMMON_TIME_ZONES, DEFAULT_TIME_ZONE) if zone != first)]
    if current and current not in zones:
        zones.insert(0, current)
    return zones


async def set_preferences(
    session: AsyncSession, user: User, *, language: str | None = None, time_zone: str | None = None
) -> User:
    """Change the account's language and/or time zone (None leaves one as it is)."""
    if language is not None and language not in LANGUAGES:
        raise InvalidInput("language", LANGUAGE_MESSAGE)
    if time_zone is not None and not is_time_zone(time_zone):
        raise InvalidInput("time_zone", TIME_ZONE_MESSAGE)
    if language is not None:
        user.locale = language
    if time_zone is not None:
        user.time_zone = time_zone
    await session.flush()
    return user
