"""Numbers typed by people into forms: money in major units ("149.00" CNY) and percentages, to exact integers.

The API takes integer minor units; a person thinks in yuan or dollars. The conversion is done on the digits as
typed, never through a float, and a figure with more decimals than the unit has is refused, not rounded.
"""

from __future__ import annotations

import re
import unicodedata

from campaigns.currencies import display_exponent, minor_exponent, step_of
from service.i18n import gettext as _
from service.i18n import ngettext

_PLAIN_DECIMAL = re.compile(r"^(\d*)(?:\.(\d*))?$")
# Thousands separators people type: "1,499.00", "1 499.00", "1'499.00", and the full-width comma of Chinese input.
_SEPARATORS = re.compile(r"[,\s'’_]")
_MAX_DIGITS = 15


class NumberInputError(ValueError):
    """The reason a typed number cannot be used, in the reader's language, ready to show beside the field."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class NotANumber(NumberInputError):
    pass


class TooManyDecimals(NumberInputError):
    pass


def scaled_integer(text: str, digits: int) -> int:
    """`text`, a plain non-negative decimal, times 10**digits, exactly: ("149.5", 2) -> 14950.

    Raises NumberInputError when it is not a plain decimal or has more than `digits` decimals (even zeros: a
    "5000.00" typed for a currency without decimals is a sign the wrong currency was meant).
    """
    cleaned = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))
    if cleaned.startswith(("-", "\u2212")):
        raise NumberInputError(_("This cannot be negative: enter zero or more."))
    match = _PLAIN_DECIMAL.match(cleaned)
    if match is None or not (match.group(1) or match.group(2)):
        raise NotANumber(_("Enter a number, like %(example)s.") % {"example": example(digits)})
    whole, fraction = match.group(1) or "0", match.group(2) or ""
    if len(fraction) > digits:
        raise TooManyDecimals(_too_many_decimals(digits))
    if len(whole.lstrip("0")) > _MAX_DIGITS:
        raise NumberInputError(_("This number is too large."))
    return int(whole + fraction.ljust(digits, "0"))


def minor_units(text: str, currency: str) -> int:
    """Money typed in major units as integer minor units, Stripe's (campaigns/currencies.py): "149.00" CNY -> 14900,
    "5000" JPY -> 5000, "1500" HUF -> 150000 (whole forints, in Stripe's hundredths).

    Refuses more decimals than the currency is typed with ("149.001" CNY, "5000.5" JPY, "1500.5" HUF), naming it.
    """
    digits = display_exponent(currency)
    try:
        typed = scaled_integer(text, digits)
    except TooManyDecimals:
        raise TooManyDecimals(_too_many_decimals_in(currency, digits)) from None
    except NotANumber:
        message = _("Enter an amount in %(currency)s, like %(example)s.")
        raise NotANumber(message % {"currency": currency, "example": example(digits)}) from None
    return typed * step_of(currency)


def major_units(amount: int, currency: str) -> str:
    """Integer minor units as a person types them back into a form: 14900 CNY -> "149.00", 5000 JPY -> "5000",
    150000 HUF -> "1500". An amount that is not a whole number of typed units keeps every digit it has."""
    step = step_of(currency)
    if amount % step:
        return scaled_text(amount, minor_exponent(currency))
    return scaled_text(amount // step, display_exponent(currency))


def scaled_text(value: int, digits: int) -> str:
    if digits == 0:
        return str(value)
    whole, fraction = divmod(value, 10**digits)
    return f"{whole}.{fraction:0{digits}d}"


def example(digits: int) -> str:
    return "149" if digits == 0 else "149." + "0" * digits


def _too_many_decimals(digits: int) -> str:
    if digits == 0:
        return _("Enter a whole number, without decimals.")
    return ngettext("Use at most %(num)d decimal place.", "Use at most %(num)d decimal places.", digits) % {
        "num": digits
    }


def _too_many_decimals_in(currency: str, digits: int) -> str:
    if digits == 0:
        return _("%(currency)s amounts are whole numbers: leave out the decimals.") % {"currency": currency}
    return ngettext(
        "%(currency)s amounts have at most %(num)d decimal place.",
        "%(currency)s amounts have at most %(num)d decimal places.",
        digits,
    ) % {"currency": currency, "num": digits}
