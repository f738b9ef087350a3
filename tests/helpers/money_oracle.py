"""The amount a change should cost, recomputed by SPEC section 5 from the quote's own inputs,
independently of subchange.domain.money, its total with Japanese consumption tax (SPEC section
14: 10%, rounded down), and the gateway's integer for it."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from subchange.domain.contracts import Quote

MINOR_DIGITS = {"JPY": 0, "USD": 2, "EUR": 2}


def recomputed_amount(quote: Quote) -> Decimal:
    difference = (quote.new_seats * quote.new_unit_price
                  - quote.old_seats * quote.old_unit_price)
    exact = difference * quote.remaining_days / quote.period_days
    return exact.quantize(Decimal(1).scaleb(-MINOR_DIGITS[quote.currency]),
                          rounding=ROUND_HALF_UP)


JAPANESE_CONSUMPTION_TAX = Decimal("0.10")


def with_tax(amount: Decimal, currency: str, rate: Decimal = JAPANESE_CONSUMPTION_TAX
             ) -> Decimal:
    """The amount with its tax, the tax rounded down to the minor unit (JPY 4352 -> 4787)."""
    tax = (amount * rate).quantize(Decimal(1).scaleb(-MINOR_DIGITS[currency]),
                                   rounding=ROUND_DOWN)
    return amount + tax


def in_minor_units(amount: Decimal, currency: str) -> int:
    return int(amount * 10 ** MINOR_DIGITS[currency])
