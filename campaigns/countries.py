"""ISO 3166 countries, from Babel's CLDR data (currencies: campaigns/currencies.py)."""

from __future__ import annotations

from functools import cache

from babel import Locale


@cache
def country_codes() -> frozenset[str]:
    codes = (str(code) for code in Locale("en").territories)
    return frozenset(code for code in codes if len(code) == 2 and code.isalpha() and code != "ZZ")


def is_country(code: str) -> bool:
    return code in country_codes()
