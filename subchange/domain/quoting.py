"""The quote (R8, SPEC section 5): the adjustment a change costs or frees, before anything moves."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from subchange.domain.catalog import Catalog
from subchange.domain.contracts import ChangeRequest, Quote, QuoteTax
from subchange.domain.facts import Organisation, SubscriptionTerms
from subchange.domain.gateway_minimums import GatewayMinimums, default_gateway_minimums
from subchange.domain.money import prorate, round_money
from subchange.domain.rules import Target
from subchange.domain.tax import invoice_tax


def period_length(period: str) -> relativedelta:
    return relativedelta(months=1) if period == "monthly" else relativedelta(years=1)


def unit_prices(catalog: Catalog, org: Organisation, sub: SubscriptionTerms, target_plan: str
                ) -> tuple[Decimal, Decimal]:
    """Old and new unit price. A negotiated price overrides the catalog for the plan it was
    negotiated for; a move to another plan is priced from the catalog."""

    def listed(plan: str) -> Decimal:
        return catalog.unit_price(product=sub.product, tier=plan, pricing_model=sub.pricing_model,
                                  currency=org.currency, period=sub.billing_period)

    old = sub.unit_price if sub.unit_price is not None else listed(sub.plan)
    new = old if target_plan == sub.plan else listed(target_plan)
    return old, new


def build_quote(*, catalog: Catalog, org: Organisation, sub: SubscriptionTerms,
                request: ChangeRequest, target: Target, change_date: date,
                minimums: GatewayMinimums | None = None) -> Quote:
    old_price, new_price = unit_prices(catalog, org, sub, target.plan)
    currency = org.currency
    starts_new_period = target.plan != sub.plan and old_price == 0 and new_price > 0
    if starts_new_period:
        # Upgrading from the free tier starts a new billing period today, charged in full.
        new_start = change_date
        new_end = change_date + period_length(sub.billing_period)
        days = (new_end - new_start).days
        amount = round_money(target.seats * new_price, currency)
        remaining_days = period_days = days
    else:
        proration = prorate(old_seats=sub.seats, old_unit_price=old_price,
                            new_seats=target.seats, new_unit_price=new_price,
                            period_start=sub.period_start, period_end=sub.period_end,
                            change_date=change_date, currency=currency)
        new_start, new_end = sub.period_start, sub.period_end
        amount = proration.amount
        remaining_days, period_days = proration.remaining_days, proration.period_days
    zero = round_money(Decimal(0), currency)
    amount_due, refundable = max(amount, zero), max(-amount, zero)
    tax = quote_tax(org, currency, amount_due, refundable)
    return Quote(
        **_the_change(org, sub, request, target, old_price, new_price, change_date),
        remaining_days=remaining_days, period_days=period_days,
        amount=amount, amount_due=amount_due, refundable_amount=refundable,
        new_period_start=new_start, new_period_end=new_end, starts_new_period=starts_new_period,
        features_switched_off=list(target.features_switched_off),
        subscription_version=sub.version,
        tax=tax,
        carried_to_renewal=carried_to_renewal(sub.payment_method, tax.total, currency, minimums),
    )


def build_period_end_quote(*, catalog: Catalog, org: Organisation, sub: SubscriptionTerms,
                           request: ChangeRequest, target: Target, change_date: date) -> Quote:
    """A change at the end of the billing period (SPEC section 10): nothing prorated, nothing
    due now, no refund ever owed; the next period, [period_end, period_end + one period), at
    the new terms, from the start of period_end in the organisation's time zone."""
    old_price, new_price = unit_prices(catalog, org, sub, target.plan)
    currency = org.currency
    zero = round_money(Decimal(0), currency)
    return Quote(
        **_the_change(org, sub, request, target, old_price, new_price, change_date),
        remaining_days=0, period_days=(sub.period_end - sub.period_start).days,
        amount=zero, amount_due=zero, refundable_amount=zero,
        new_period_start=sub.period_end,
        new_period_end=sub.period_end + period_length(sub.billing_period),
        features_switched_off=list(target.features_switched_off),
        subscription_version=sub.version, tax=quote_tax(org, currency, zero, zero),
        effective="period_end", effective_date=sub.period_end,
        effective_at=start_of_day(sub.period_end, org.time_zone),
        next_period_amount=round_money(target.seats * new_price, currency))


def _the_change(org: Organisation, sub: SubscriptionTerms, request: ChangeRequest,
                target: Target, old_price: Decimal, new_price: Decimal, change_date: date
                ) -> dict:
    """What every quote says of the change, whenever it takes effect: who, what, from and to
    which terms, at which prices, in which period."""
    return {
        "org_id": org.id, "product": sub.product, "kind": request.change.kind,
        "pricing_model": sub.pricing_model, "billing_period": sub.billing_period,
        "currency": org.currency, "payment_method": sub.payment_method,
        "old_plan": sub.plan, "new_plan": target.plan,
        "old_seats": sub.seats, "new_seats": target.seats,
        "old_unit_price": old_price, "new_unit_price": new_price,
        "period_start": sub.period_start, "period_end": sub.period_end, "change_date": change_date}


def start_of_day(day: date, time_zone: str) -> datetime:
    """When `day` begins in the organisation's calendar (an aware datetime)."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(time_zone))


def carried_to_renewal(payment_method: str, total_due: Decimal, currency: str,
                       minimums: GatewayMinimums | None = None) -> bool:
    """A card payer's total due (tax included) above zero but below the gateway's minimum charge
    is carried to the next renewal invoice instead of being charged. An offline payer is never
    carried: sales invoice a bank transfer of any amount, and no gateway is involved."""
    table = minimums or default_gateway_minimums()
    return payment_method == "online" and table.below_minimum(total_due, currency)


def quote_tax(org: Organisation, currency: str, amount_due: Decimal, refundable: Decimal
              ) -> QuoteTax:
    """The tax of what is due and of what could be refunded, each rounded once (SPEC 14)."""
    due = invoice_tax([amount_due], currency=currency, country=org.country,
                      tax_exempt=org.tax_exempt)
    back = invoice_tax([refundable], currency=currency, country=org.country,
                       tax_exempt=org.tax_exempt)
    return QuoteTax(country=org.country, rate=due.lines[0].rate, tax=due.tax, total=due.total,
                    refundable_tax=back.tax, refundable_total=back.total,
                    note=due.no_tax_note["en"] if due.no_tax_note else None)
