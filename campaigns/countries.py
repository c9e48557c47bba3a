"""ISO 3166 countries and ISO 4217 currencies, from Babel's CLDR data."""

from __future__ import annotations

from functools import cache

from babel import Locale
from babel.numbers import get_currency_precision, list_currencies


@cache
def country_codes() -> frozenset[str]:
    codes = (str(code) for code in Locale("en").territories)
    return frozenset(code for code in codes if len(code) == 2 and code.isalpha() and code != "ZZ")


def is_country(code: str) -> bool:
    return code in country_codes()


@cache
def currency_codes() -> frozenset[str]:
    return frozenset(list_currencies())


def is_currency(code: str) -> bool:
    return code in currency_codes()


def minor_digits(currency: str) -> int:
    """How many digits follow the decimal point in the currency's minor unit: 2 for USD and CNY, 0 for JPY."""
    return get_currency_precision(currency)
