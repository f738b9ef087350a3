"""Money arithmetic: Decimal amounts rounded half-up to the currency's minor unit, and proration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import format_currency

# Digits of each currency's minor unit, as CLDR has them (a test checks this against babel).
# A table rather than a babel call: contracts round with it inside the workflow sandbox, where
# loading babel's locale data is off limits.
MINOR_UNIT_DIGITS = {"JPY": 0, "USD": 2, "EUR": 2}
SUPPORTED_CURRENCIES = tuple(MINOR_UNIT_DIGITS)


def minor_unit_digits(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit (JPY 0, USD 2)."""
    if currency not in MINOR_UNIT_DIGITS:
        raise ValueError(
            f"unsupported currency {currency!r}; expected one of {SUPPORTED_CURRENCIES}")
    return MINOR_UNIT_DIGITS[currency]


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit."""
    exponent = Decimal(1).scaleb(-minor_unit_digits(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """The integer the payment gateway expects: yen for JPY, cents for USD."""
    rounded = round_money(amount, currency)
    return int(rounded.scaleb(minor_unit_digits(currency)))


def from_minor_units(amount_minor: int, currency: str) -> Decimal:
    """The amount of a gateway integer (yen for JPY, cents for USD)."""
    return Decimal(amount_minor).scaleb(-minor_unit_digits(currency))


def format_money(amount: Decimal, currency: str) -> str:
    return format_currency(round_money(amount, currency), currency, locale="en_US")


@dataclass(frozen=True)
class Proration:
    remaining_days: int
    period_days: int
    amount: Decimal  # signed: positive is due now, negative is the unused (refundable) value


def prorate(
    *,
    old_seats: int,
    old_unit_price: Decimal,
    new_seats: int,
    new_unit_price: Decimal,
    period_start: date,
    period_end: date,
    change_date: date,
    currency: str,
) -> Proration:
    """SPEC section 5: round((new×price − old×price) × remaining_days / period_days)."""
    if not period_start < period_end:
        raise ValueError(f"billing period is empty: {period_start} .. {period_end}")
    if not period_start <= change_date < period_end:
        raise ValueError(
            f"change date {change_date} is outside the billing period "
            f"{period_start} .. {period_end}"
        )
    remaining_days = (period_end - change_date).days
    period_days = (period_end - period_start).days
    difference = new_seats * new_unit_price - old_seats * old_unit_price
    amount = round_money(difference * remaining_days / period_days, currency)
    return Proration(remaining_days=remaining_days, period_days=period_days, amount=amount)
