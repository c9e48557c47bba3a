"""Languages: English and Simplified Chinese, chosen per request, used by pages and mail alike."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations

from campaigns.currencies import format_amount, minor_exponent
from fulfillment.postal import address_lines

LOCALE_DIR = Path(__file__).parent / "locale"
LOCALES = ("en", "zh_CN")
LOCALE_NAMES = {"en": "English", "zh_CN": "简体中文"}
DEFAULT_LOCALE = "en"

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)


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


def _moment(value: datetime | str | None) -> datetime | None:
    # Mail facts carry times as ISO 8601 strings.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def date(moment: datetime | str | None) -> str:
    value = _moment(moment)
    return format_date(value, format="medium", locale=babel_locale()) if value else ""


def datetime_(moment: datetime | str | None) -> str:
    value = _moment(moment)
    return format_datetime(value, format="medium", locale=babel_locale()) if value else ""


def country_name(code: str) -> str:
    return str(babel_locale().territories.get(code.upper(), code))


def postal_address(address: Mapping[str, Any]) -> list[str]:
    """An address's lines in its country's order, the country named in the page's language."""
    return address_lines(address, country_name(str(address.get("country") or "")))
