"""The currencies a campaign may be priced in, and what Stripe can charge in each: the one table of them.

Taken from Stripe's own list of currencies (https://docs.stripe.com/currencies), not from Babel's: CLDR writes HUF,
ISK, IDR, COP and UGX without decimals, but Stripe takes their amounts in hundredths, so an amount Babel would call
1500 forints is 15 forints at Stripe. Every amount Kindling stores is in Stripe's minor units (`stripe_exponent`),
so what is stored is what is sent; people type and read amounts in `display_exponent` digits.

- `minimum`: Stripe's minimum charge for the currency, where its list gives one (it holds when the platform's Stripe
  account settles in that currency); for a currency its list leaves out (CNY, TWD), a round amount worth about
  USD 0.50, the minimum a charge must meet once converted into a USD account.
- `pledge_cap`: the most one pledge may come to (tier + bonus + shipping), about USD 10,000 as Kickstarter caps a
  pledge, so that no single backer carries a campaign over its goal, and never above 99,999,999 minor units: the
  eight digits Stripe takes in every currency (cards take more, but other payment methods and American Express less).
- HUF and TWD: Stripe charges them in hundredths but pays them out only in whole units ("treats HUF as a
  zero-decimal currency for payouts"), and nobody prices in fillér: Kindling takes whole forints and dollars only,
  so every price, shipping fee and bonus is a multiple of `step` (100) minor units.
- Left out on purpose: ISK and UGX, which Stripe takes only in whole units (sent as hundredths) while Kindling shares
  refunds out pro rata to the minor unit; IDR and COP, whose eight-digit limit would cap a pledge below USD 300 (and
  American Express's nine digits below USD 2,500); zero-decimal currencies Stripe gives no minimum for.
- It lives in `campaigns/`, not `payments/`, because a campaign's own rules (its currency, its tiers' prices, a
  pledge's total) need it and the domain of campaigns depends on nothing in payments.
"""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass
from decimal import Decimal

from babel import Locale
from babel.numbers import get_currency_precision

from campaigns.errors import InvalidInput

# Stripe's largest amount in every currency and payment method: eight digits of minor units.
STRIPE_MAX_CHARGE = 99_999_999


@dataclass(frozen=True)
class Currency:
    code: str
    # Digits of Stripe's minor unit: amounts are stored and sent in it (2 for USD and HUF, 0 for JPY).
    stripe_exponent: int
    # Digits people type and see (0 for HUF: whole forints).
    display_exponent: int
    # In Stripe's minor units.
    minimum: int
    pledge_cap: int

    @property
    def step(self) -> int:
        """Every amount a person sets is a whole number of displayed units: a multiple of this many minor units."""
        return step_of(self.code)


def _two(code: str, minimum: int, pledge_cap: int) -> Currency:
    return Currency(code, 2, 2, minimum, pledge_cap)


def _whole(code: str, minimum: int, pledge_cap: int) -> Currency:
    """A currency Stripe charges in hundredths that Kindling takes in whole units only."""
    return Currency(code, 2, 0, minimum, pledge_cap)


def _zero(code: str, minimum: int, pledge_cap: int) -> Currency:
    return Currency(code, 0, 0, minimum, pledge_cap)


CURRENCIES: dict[str, Currency] = {
    currency.code: currency
    for currency in (
        _two("AED", 2_00, 36_000_00),
        _two("AUD", 50, 15_000_00),
        _two("BRL", 50, 55_000_00),
        _two("CAD", 50, 14_000_00),
        _two("CHF", 50, 8_000_00),
        _two("CNY", 4_00, 70_000_00),  # not in Stripe's list: about USD 0.50
        _two("CZK", 15_00, 220_000_00),
        _two("DKK", 2_50, 65_000_00),
        _two("EUR", 50, 9_000_00),
        _two("GBP", 30, 8_000_00),
        _two("HKD", 4_00, 80_000_00),
        _whole("HUF", 175_00, 999_999_00),  # eight digits; about USD 2,800
        _two("ILS", 50, 32_000_00),
        _two("INR", 50, 850_000_00),
        _zero("JPY", 50, 1_500_000),
        _zero("KRW", 50, 14_000_000),
        _two("MXN", 10_00, 180_000_00),
        _two("MYR", 2_00, 42_000_00),
        _two("NOK", 3_00, 100_000_00),
        _two("NZD", 50, 17_000_00),
        _two("PHP", 50, 580_000_00),
        _two("PLN", 2_00, 36_000_00),
        _two("RON", 2_00, 45_000_00),
        _two("SEK", 3_00, 95_000_00),
        _two("SGD", 50, 13_000_00),
        _two("THB", 10_00, 320_000_00),
        _whole("TWD", 20_00, 300_000_00),  # not in Stripe's list: about USD 0.60
        _two("USD", 50, 10_000_00),
        _two("ZAR", 50, 180_000_00),
    )
}


def accepted_currency(code: str) -> Currency | None:
    return CURRENCIES.get(code)


def minor_exponent(code: str) -> int:
    """Digits of the minor unit amounts in `code` are stored in. A campaign made before the table in a currency
    that is not in it keeps Babel's figure, as it was stored."""
    found = CURRENCIES.get(code)
    return found.stripe_exponent if found else get_currency_precision(code)


def display_exponent(code: str) -> int:
    found = CURRENCIES.get(code)
    return found.display_exponent if found else get_currency_precision(code)


def step_of(code: str) -> int:
    """How many minor units make one typed unit: 100 for HUF (whole forints), 1 for USD and JPY."""
    return int(10 ** (minor_exponent(code) - display_exponent(code)))


def format_amount(amount: int, code: str, locale: Locale | str = "en") -> str:
    """Minor units for people, in `locale`: 1000000 USD is $10,000.00 (US$10,000.00 in Chinese), 150000 HUF is
    HUF1,500, 5000 JPY is ¥5,000. An amount that is not a whole number of displayed units (a fee in fillér) shows
    every digit of Stripe's minor unit, so nothing is rounded away."""
    exponent = minor_exponent(code)
    shown = display_exponent(code)
    if amount % step_of(code):
        shown = exponent
    place = Locale.parse(locale)
    pattern = copy(place.currency_formats["standard"])
    pattern.frac_prec = (shown, shown)
    return str(pattern.apply(Decimal(amount).scaleb(-exponent), place, currency=code, currency_digits=False))


class AmountRefused(InvalidInput):
    """An amount Stripe could not charge, or one pledge may not reach; `limit` is the bound it broke, in minor
    units of `currency`."""

    def __init__(self, field: str, message: str, *, currency: str, limit: int) -> None:
        super().__init__(field, message)
        self.currency = currency
        self.limit = limit


class BelowMinimum(AmountRefused):
    pass


class AboveCap(AmountRefused):
    pass


class NotWholeUnits(AmountRefused):
    pass


def check_whole_units(field: str, amount: int, code: str) -> None:
    found = CURRENCIES.get(code)
    if found is not None and amount % found.step:
        raise NotWholeUnits(
            field,
            f"must be a whole number of {code}: a multiple of {found.step} minor units",
            currency=code,
            limit=found.step,
        )


def check_price(field: str, price: int, code: str) -> None:
    """A tier's price: whole units, at least Stripe's minimum charge and at most one pledge's cap, or a pledge for
    the tier could never be taken."""
    found = CURRENCIES.get(code)
    if found is None:
        return
    check_whole_units(field, price, code)
    if price < found.minimum:
        raise BelowMinimum(
            field,
            f"must be at least {format_amount(found.minimum, code)}, the least a card can be charged in {code}",
            currency=code,
            limit=found.minimum,
        )
    if price > found.pledge_cap:
        raise AboveCap(
            field,
            f"must be at most {format_amount(found.pledge_cap, code)}, the most one pledge may come to",
            currency=code,
            limit=found.pledge_cap,
        )


def check_pledge_total(total: int, code: str) -> None:
    """A pledge's total (price + bonus + shipping) between Stripe's minimum charge and the pledge cap. The backer
    sets the bonus, so the refusal names `bonus`."""
    found = CURRENCIES.get(code)
    if found is None:
        return
    if total < found.minimum:
        raise BelowMinimum(
            "bonus",
            f"the pledge comes to {format_amount(total, code)}; it must come to at least "
            f"{format_amount(found.minimum, code)}, the least a card can be charged in {code}",
            currency=code,
            limit=found.minimum,
        )
    if total > found.pledge_cap:
        raise AboveCap(
            "bonus",
            f"the pledge comes to {format_amount(total, code)}; one pledge may come to at most "
            f"{format_amount(found.pledge_cap, code)}",
            currency=code,
            limit=found.pledge_cap,
        )
