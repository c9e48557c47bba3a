"""Languages and time zones: English and Simplified Chinese, times on the reader's clock, chosen per request (or per
mail's recipient), used by pages and mail alike."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo
from datetime import date as Date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_skeleton, get_timezone_location
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations

from campaigns.currencies import format_amount, minor_exponent
from campaigns.preferences import DEFAULT_LANGUAGE, LANGUAGES, is_time_zone
from campaigns.preferences import DEFAULT_TIME_ZONE as DEFAULT_TIME_ZONE
from fulfillment.postal import address_lines

LOCALE_DIR = Path(__file__).parent / "locale"
LOCALES = LANGUAGES
LOCALE_NAMES = {"en": "English", "zh_CN": "简体中文"}
DEFAULT_LOCALE = DEFAULT_LANGUAGE

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)
# The reader's IANA zone: a signed-in account's, a mail's recipient's; UTC (and said so) for everyone else.
current_time_zone: ContextVar[str] = ContextVar("current_time_zone", default=DEFAULT_TIME_ZONE)

# The one way Kindling writes a moment for people, then the zone: "7 Dec 2026, 14:05 CST", "2026年12月7日 14:05 CST".
DATETIME_PATTERNS = {"en": "d MMM y, HH:mm", "zh_CN": "y年M月d日 HH:mm"}
DATE_PATTERNS = {"en": "d MMM y", "zh_CN": "y年M月d日"}


@cache
def translations(locale: str) -> NullTranslations:
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [locale], domain="messages")


def gettext(message: str) -> str:
    return translations(current_locale.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ngettext(singular, plural, n)


_ = gettext


def lazy_locale(value: str | None) -> str | None:
    """The supported locale that `value` (a cookie, a query parameter, a user's setting) names, if any."""
    if not value:
        return None
    value = value.replace("-", "_")
    for locale in LOCALES:
        if value.lower() == locale.lower():
            return locale
    if value.lower().startswith("zh"):
        return "zh_CN"
    if value.lower().startswith("en"):
        return "en"
    return None


def negotiate(accept_language: str | None) -> str:
    """Pick from an Accept-Language header, by its q-values; English when nothing matches."""
    if not accept_language:
        return DEFAULT_LOCALE
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        choices.append((-quality, position, tag.strip()))
    for quality, _position, tag in sorted(choices):
        if quality < 0 and (locale := lazy_locale(tag)):
            return locale
    return DEFAULT_LOCALE


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    token = current_locale.set(lazy_locale(locale) or DEFAULT_LOCALE)
    try:
        yield
    finally:
        current_locale.reset(token)


@contextmanager
def use_time_zone(time_zone: str) -> Iterator[None]:
    token = current_time_zone.set(time_zone if is_time_zone(time_zone) else DEFAULT_TIME_ZONE)
    try:
        yield
    finally:
        current_time_zone.reset(token)


def reader_zone() -> tzinfo:
    name = current_time_zone.get()
    return ZoneInfo(name) if is_time_zone(name) else UTC


def babel_locale() -> Locale:
    try:
        return Locale.parse(current_locale.get())
    except UnknownLocaleError:
        return Locale.parse(DEFAULT_LOCALE)


def money(amount: int, currency: str) -> str:
    """Format integer minor units for people: 250000 CNY is ¥2,500.00; 5000 JPY is ￥5,000; 150000 HUF is HUF1,500."""
    return format_amount(amount, currency, babel_locale())


def money_short(amount: int, currency: str) -> str:
    """Whole units only, for progress figures: ¥2,500."""
    value = Decimal(amount).scaleb(-minor_exponent(currency))
    return format_currency(
        value.to_integral_value(), currency, locale=babel_locale(), format="¤#,##0", currency_digits=False
    )


def number(value: int) -> str:
    return format_decimal(value, locale=babel_locale())


def _on_readers_clock(moment: datetime | str) -> datetime:
    # Mail facts carry times as ISO 8601 strings; a time without an offset is UTC, as the database keeps it.
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(reader_zone())


def zone_abbreviation(moment: datetime) -> str:
    """The zone as a reader knows it: CST, CET, EST, UTC; where the zone has no letters, its offset (UTC+8)."""
    name = moment.tzname() or "UTC"
    return utc_offset(moment) if name[:1] in "+-" else name


def datetime_(moment: datetime | str | None) -> str:
    """A moment to the minute on the reader's clock, then its zone: "20 Dec 2026, 23:59 CST"."""
    if moment is None or moment == "":
        return ""
    local = _on_readers_clock(moment)
    pattern = DATETIME_PATTERNS.get(current_locale.get(), DATETIME_PATTERNS[DEFAULT_LOCALE])
    return f"{format_datetime(local, pattern, tzinfo=local.tzinfo, locale=babel_locale())} {zone_abbreviation(local)}"


def date(moment: datetime | Date | str | None) -> str:
    """The day of a moment on the reader's clock (a plain date as it is): "7 Dec 2026", "2026年12月7日"."""
    if moment is None or moment == "":
        return ""
    day = moment if isinstance(moment, Date) and not isinstance(moment, datetime) else _on_readers_clock(moment).date()
    pattern = DATE_PATTERNS.get(current_locale.get(), DATE_PATTERNS[DEFAULT_LOCALE])
    return format_date(day, pattern, locale=babel_locale())


def month(value: str | None) -> str:
    """A "YYYY-MM" month for the reader: "March 2027", "2027年3月"; anything else as it is."""
    if not value:
        return ""
    year, _, number = value.partition("-")
    if not (year.isascii() and year.isdigit() and len(year) == 4 and number.isascii() and number.isdigit()):
        return value
    if not 1 <= int(number) <= 12:
        return value
    return str(format_skeleton("yMMMM", Date(int(year), int(number), 1), locale=babel_locale()))


def utc_offset(moment: datetime) -> str:
    """A moment's offset from UTC as people write it: UTC+8, UTC-5, UTC+5:30, UTC."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if minutes == 0:
        return "UTC"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'-' if minutes < 0 else '+'}{hours}" + (f":{rest:02d}" if rest else "")


def time_zone_label(name: str) -> str:
    """A zone in a select, in the page's language: "China (Shanghai) Time · UTC+8" / "中国（上海）时间 · UTC+8"."""
    if name == DEFAULT_TIME_ZONE:
        return gettext("Coordinated Universal Time (UTC)")
    zone = ZoneInfo(name)
    now = datetime.now(zone)
    return f"{get_timezone_location(zone, locale=babel_locale())} · {utc_offset(now)}"


def country_name(code: str) -> str:
    return str(babel_locale().territories.get(code.upper(), code))


def postal_address(address: Mapping[str, Any]) -> list[str]:
    """An address's lines in its country's order, the country named in the page's language."""
    return address_lines(address, country_name(str(address.get("country") or "")))
