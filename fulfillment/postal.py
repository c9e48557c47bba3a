"""How a postal address is written on a page or in a mail: one function, so that every place shows it alike.

Addresses in China (and Taiwan, Hong Kong, Macau) are written from the largest place to the smallest and the person
last: country, province, city, then the street lines (where the district is written, as the form has no field of its
own for it), then the name. Everywhere else keeps the Western order: name, street, postal code and city, country.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LARGEST_FIRST_COUNTRIES = frozenset({"CN", "TW", "HK", "MO"})


def writes_largest_first(country: str) -> bool:
    return country.upper() in LARGEST_FIRST_COUNTRIES


def address_lines(address: Mapping[str, Any], country_name: str) -> list[str]:
    """The address's lines in its country's order, empty parts left out; the phone, when given, last."""

    def part(key: str) -> str:
        return str(address.get(key) or "").strip()

    if writes_largest_first(part("country")):
        lines = [
            " ".join(p for p in (country_name, part("postal_code")) if p),
            " ".join(p for p in (part("region"), part("city")) if p),
            part("line1"),
            part("line2"),
            part("name"),
        ]
    else:
        place = " ".join(p for p in (part("postal_code"), part("city")) if p)
        lines = [
            part("name"),
            part("line1"),
            part("line2"),
            ", ".join(p for p in (place, part("region")) if p),
            country_name,
        ]
    return [line for line in lines if line] + ([part("phone")] if part("phone") else [])
