"""Consumption tax (SPEC section 14): which rule applies to an organisation, and the tax of an
invoice, rounded once per invoice per rate, never per line.

The rules are data (tax_rules.json), like the catalog: a jurisdiction is a row, not a code path.
Pure arithmetic, safe inside the workflow sandbox (no babel, no I/O beyond the package's file).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from subchange.domain.money import minor_unit_digits

Locale = Literal["ja", "en"]
_ROUNDING = {"down": ROUND_DOWN, "half_up": ROUND_HALF_UP}


class TaxRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    country: str = Field(pattern=r"^[A-Z]{2}$")
    rate: Decimal = Field(gt=0, lt=1)
    rounding: Literal["down", "half_up"]
    label: dict[Locale, str]
    exempt_note: dict[Locale, str]


class TaxTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: str = ""
    rules: tuple[TaxRule, ...]
    outside_note: dict[Locale, str]

    def rule_for(self, country: str | None) -> TaxRule | None:
        return next((rule for rule in self.rules if rule.country == country), None)


@cache
def default_tax_table() -> TaxTable:
    text = resources.files("subchange.domain").joinpath("tax_rules.json").read_text("utf-8")
    return TaxTable.model_validate_json(text)


class TaxLine(BaseModel):
    """The tax of one rate on an invoice: what it is charged on, and how much."""

    model_config = ConfigDict(frozen=True)

    rate: Decimal  # 0.10 for 10%; 0 when no tax applies
    taxable_amount: Decimal  # the sum of the invoice's tax-exclusive amounts at this rate
    tax: Decimal


class InvoiceTax(BaseModel):
    """What an invoice's amounts come to with tax: the lines per rate, the total, and, when no
    tax applies, the one line the invoice shows to say why."""

    model_config = ConfigDict(frozen=True)

    country: str | None
    currency: str
    lines: tuple[TaxLine, ...]
    subtotal: Decimal  # tax-exclusive
    tax: Decimal
    total: Decimal
    label: dict[Locale, str] = {}
    no_tax_note: dict[Locale, str] | None = None


def invoice_tax(amounts: Iterable[Decimal], *, currency: str, country: str | None,
                tax_exempt: bool, table: TaxTable | None = None) -> InvoiceTax:
    """Tax of an invoice whose tax-exclusive line amounts are `amounts` (each already at the
    currency's minor unit): summed per rate, then taxed and rounded once (the JP rule rounds
    down). An organisation the table has no rule for, or an exempt one, pays no tax and gets
    the note that says why."""
    table = table or default_tax_table()
    subtotal = sum(amounts, Decimal(0))
    rule = table.rule_for(country)
    if rule is None or tax_exempt:
        note = rule.exempt_note if rule is not None else table.outside_note
        return InvoiceTax(country=country, currency=currency, subtotal=subtotal,
                          lines=(TaxLine(rate=Decimal(0), taxable_amount=subtotal,
                                         tax=Decimal(0)),),
                          tax=Decimal(0), total=subtotal, no_tax_note=note)
    tax = round_tax(subtotal * rule.rate, currency, rule.rounding)
    return InvoiceTax(country=country, currency=currency, subtotal=subtotal,
                      lines=(TaxLine(rate=rule.rate, taxable_amount=subtotal, tax=tax),),
                      tax=tax, total=subtotal + tax, label=rule.label)


def round_tax(amount: Decimal, currency: str, rounding: Literal["down", "half_up"]) -> Decimal:
    """A tax amount at the currency's minor unit; rounding down takes the fraction off toward
    zero, so a refund's tax is never more than the tax that was charged."""
    exponent = Decimal(1).scaleb(-minor_unit_digits(currency))
    return amount.quantize(exponent, rounding=_ROUNDING[rounding])
