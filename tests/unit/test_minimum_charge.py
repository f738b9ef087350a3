"""Below the gateway's minimum charge (issue 22, item 5): card gateways refuse tiny charges
(Stripe: JPY 50, USD 0.50, EUR 0.50), so a card payer's total due, tax included, above zero but
below its currency's minimum is carried to the next renewal invoice instead of being charged.
The quote says so (`carried_to_renewal`); the minimums are data beside the tax rules.

Quotes of in-memory subscriptions (no database needed): a negotiated unit price over a whole
30-day period makes the amount due exactly the price, so the totals at the edge are chosen here.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from subchange.domain.catalog import default_catalog
from subchange.domain.contracts import ChangeRequest, Quote
from subchange.domain.facts import Organisation, SubscriptionTerms
from subchange.domain.gateway_minimums import (
    GatewayMinimums,
    below_minimum_charge,
    minimum_charge,
)
from subchange.domain.money import SUPPORTED_CURRENCIES
from subchange.domain.quoting import build_quote
from subchange.domain.rules import Target

D = Decimal
NOVEMBER = (date(2026, 11, 1), date(2026, 12, 1))  # 30 days


def quote(*, currency: str, price: str | None, seats: int = 1, country: str | None = "US",
          exempt: bool = False, payment_method: str = "online", product: str = "one",
          plan: str = "enterprise", change_date: date = NOVEMBER[0],
          minimums: GatewayMinimums | None = None) -> Quote:
    """`seats` more on a subscription of 10 at the negotiated `price` (None: the catalog's)."""
    org = Organisation(id="tiny", currency=currency, country=country, tax_exempt=exempt)
    model = "flexible_user" if product == "one" else "per_agent"
    sub = SubscriptionTerms(id=1, product=product, plan=plan, seats=10, pricing_model=model,
                            billing_period="monthly", period_start=NOVEMBER[0],
                            period_end=NOVEMBER[1], payment_method=payment_method,
                            unit_price=D(price) if price is not None else None, version=1)
    request = ChangeRequest(request_id="req-tiny", org_id="tiny", product=product,
                            requested_by="admin@tiny.example",
                            change={"kind": "seats", "seats": 10 + seats})
    return build_quote(catalog=default_catalog(), org=org, sub=sub, request=request,
                       target=Target(plan=plan, seats=10 + seats), change_date=change_date,
                       minimums=minimums)


def test_the_minimums_are_stripes_for_every_currency_billed():
    assert (minimum_charge("JPY"), minimum_charge("USD"), minimum_charge("EUR")) == (
        D(50), D("0.50"), D("0.50"))
    assert all(minimum_charge(currency) is not None for currency in SUPPORTED_CURRENCIES)


@pytest.mark.parametrize(("currency", "price", "carried"), [
    ("JPY", "49", True), ("JPY", "50", False), ("JPY", "1", True),
    ("USD", "0.49", True), ("USD", "0.50", False), ("USD", "0.01", True),
    ("EUR", "0.49", True), ("EUR", "0.50", False),
])
def test_a_total_below_the_minimum_is_carried_and_one_at_it_is_charged(currency, price, carried):
    quoted = quote(currency=currency, price=price)

    assert quoted.amount_due == quoted.total_due == D(price)  # outside Japan: no tax
    assert quoted.carried_to_renewal is carried


@pytest.mark.parametrize(("amount_due", "tax", "carried"), [
    ("45", "4", True),  # 49 with its tax: still below
    ("46", "4", False),  # 46 alone is below, but the payer is charged 50 with the tax
])
def test_the_minimum_is_judged_on_the_total_with_its_tax(amount_due, tax, carried):
    quoted = quote(currency="JPY", price=amount_due, country="JP")

    assert (quoted.amount_due, quoted.tax.tax) == (D(amount_due), D(tax))
    assert quoted.total_due == D(amount_due) + D(tax)
    assert quoted.carried_to_renewal is carried


def test_one_agent_more_on_the_last_day_of_a_usd_standard_desk_is_carried():
    """The issue's case: 14.00 a month × 1 of 30 days = 0.47, which Stripe refuses."""
    quoted = quote(currency="USD", price=None, product="desk", plan="standard",
                   change_date=date(2026, 11, 30))

    assert (quoted.remaining_days, quoted.period_days) == (1, 30)
    assert quoted.total_due == D("0.47") and quoted.carried_to_renewal


def test_a_currency_without_a_minimum_is_charged_whatever_the_amount():
    no_usd_row = GatewayMinimums(gateway="stripe", minimums={"JPY": D(50)})

    quoted = quote(currency="USD", price="0.01", minimums=no_usd_row)

    assert minimum_charge("USD", no_usd_row) is None
    assert quoted.total_due == D("0.01") and not quoted.carried_to_renewal


def test_an_offline_payer_is_never_carried():
    """Sales invoice a bank transfer of any amount: no gateway, no minimum."""
    assert not quote(currency="JPY", price="10", payment_method="offline").carried_to_renewal


def test_nothing_due_is_not_carried():
    decrease = quote(currency="USD", price="0.30", seats=-1)

    assert decrease.total_due == 0 and decrease.refundable_amount == D("0.30")
    assert not decrease.carried_to_renewal
    assert not below_minimum_charge(D(0), "USD")


def test_a_quote_from_before_the_minimum_reads_as_not_carried():
    """Changes in flight when this shipped hold quotes without the field."""
    old = quote(currency="USD", price="0.49").model_dump(mode="json")
    del old["carried_to_renewal"]

    assert Quote.model_validate(old).carried_to_renewal is False


@pytest.mark.parametrize("minimums", [{"USD": "0.505"}, {"USD": "0"}, {"XYZ": "1"}])
def test_a_minimum_off_the_minor_unit_or_of_an_unknown_currency_is_refused(minimums):
    with pytest.raises(ValidationError):
        GatewayMinimums.model_validate({"gateway": "stripe", "minimums": minimums})
