"""What an invoice says, in its organisation's language (SPEC section 14): the fields of a
qualified invoice (適格請求書), labelled for `ja` or `en` and formatted by Babel for that locale.
The email body and the PDF are both drawn from one sheet, so they never disagree.

A qualified invoice names its issuer and the issuer's registration number, the date of the
transaction and of issue, the recipient, what was supplied (here the product, the plan, the seats
and the prorated period), the amount per tax rate, the rate and the tax per rate. An invoice
issued before any of these were recorded (no issuer, no tax in its quote) is drawn as it was then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_currency, format_percent

from subchange.domain.contracts import PaymentRecord, Quote
from subchange.domain.money import round_money
from subchange.domain.tax import Locale, default_tax_table

BABEL_LOCALES = {"ja": "ja_JP", "en": "en_US"}

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "qualified": "Qualified invoice", "invoice": "Invoice",
        "confirmation": "Subscription change confirmation",
        "number": "Invoice number", "issued": "Issue date", "transaction": "Transaction date",
        "issuer": "Issuer", "registration": "Registration number", "address": "Address",
        "billed_to": "Billed to", "billed_to_value": "{name} ({id})",
        "supplied": "Supplied", "supplied_value": "{product} {old_plan} × {old_seats} → "
                                                  "{new_plan} × {new_seats} ({pricing_model}, "
                                                  "billed {billing_period})",
        "period": "Prorated period", "period_value": "{start} to {end} ({remaining} of {days} "
                                                     "days)",
        "adjustment": "Adjustment",
        "effective": "Takes effect", "effective_value": "{date}: the new terms hold from the "
                                                        "period {start} to {end}",
        "effective_note": "Nothing is charged now: the new terms are billed from {date} with "
                          "your renewal.",
        "item": "Line item", "seats": "Seats", "unit_price": "Unit price",
        "per_period": "Per {billing_period} period", "before": "Before", "after": "After",
        "taxable": "Amount at {rate} (excl. tax)", "tax": "{label} ({rate})",
        "untaxed": "Amount (no consumption tax)", "total": "Total",
        "total_tax_free": "Total (tax-free)", "currency_note": "All amounts in {currency}.",
        "currency_note_tax_free": "All amounts in {currency}, tax-free.",
        "refundable": "Unused value: {amount}{tax} is not refunded automatically; ask us for a "
                      "prorated refund if you want one.",
        "refundable_tax": " (incl. {rate} tax {amount})",
        "switched_off": "Switched off: {features} (your data is kept)",
        "paid_by_card": "Paid by card: charge {charge}",
        "bank_transfer": "Bank transfer approved by sales, case {case}",
        "carried": "Carried to your next renewal invoice",
        "carried_note": "Not charged now: {amount} is less than the smallest amount a card can "
                        "be charged, so it is added to your next renewal invoice.",
        "subject": "{title} {number}: {product} subscription",
    },
    "ja": {
        "qualified": "適格請求書", "invoice": "請求書", "confirmation": "ご契約変更の確認書",
        "number": "請求書番号", "issued": "発行日", "transaction": "取引年月日",
        "issuer": "発行事業者", "registration": "登録番号", "address": "所在地",
        "billed_to": "宛先", "billed_to_value": "{name} 御中（{id}）",
        "supplied": "取引内容", "supplied_value": "{product} {old_plan} × {old_seats} → "
                                                  "{new_plan} × {new_seats}（{pricing_model}、"
                                                  "{billing_period}）",
        "period": "日割期間", "period_value": "{start}〜{end}（{days}日中{remaining}日）",
        "adjustment": "調整額",
        "effective": "適用開始日",
        "effective_value": "{date}（新しい契約内容の期間 {start}〜{end}）",
        "effective_note": "今回のお支払いはありません。新しいご契約内容の料金は、{date}からの"
                          "更新時にご請求します。",
        "item": "品目", "seats": "数量", "unit_price": "単価", "per_period": "期間あたり",
        "before": "変更前", "after": "変更後",
        "taxable": "{rate}対象（税抜）", "tax": "{label}（{rate}）",
        "untaxed": "金額（消費税対象外）", "total": "合計",
        "total_tax_free": "合計（非課税）", "currency_note": "金額はすべて{currency}です。",
        "currency_note_tax_free": "金額はすべて{currency}（非課税）です。",
        "refundable": "未使用分 {amount}{tax} は自動では返金されません。ご希望の場合はお問い合わせ"
                      "ください。",
        "refundable_tax": "（うち消費税{rate} {amount}）",
        "switched_off": "無効になった機能：{features}（データは保持されます）",
        "paid_by_card": "カード決済済み（{charge}）",
        "bank_transfer": "銀行振込（営業承認済み、案件 {case}）",
        "carried": "次回更新時のご請求へ繰越",
        "carried_note": "今回はカードへの請求を行いません。"
                        "{amount}はカード決済の最低金額に満たないため、"
                        "次回の更新時の請求書に合算してご請求します。",
        "subject": "{title} {number}（{product}）",
    },
}
BILLING_PERIODS = {"ja": {"monthly": "月払い", "yearly": "年払い"}}


class IssuedInvoice(Protocol):
    """What the invoice documents read of an issued invoice (a subchange.store.tables.Invoice)."""

    number: str | None
    workflow_id: str
    amount: Decimal
    emailed_to: str
    message_id: str | None
    quote: dict  # a Quote, as JSON
    payment: dict  # a PaymentRecord, as JSON
    created_at: datetime
    seller: dict | None  # the issuer as it was at issue: name, address, registration_number
    locale: str | None
    billed_to: str | None  # the recipient's name at issue


class Addressee(Protocol):
    """Whom the invoice is addressed to (a subchange.store.tables.Org)."""

    id: str
    name: str
    time_zone: str  # whose calendar dates the change, and so the invoice


@dataclass(frozen=True)
class ItemRow:
    description: str
    seats: str
    unit_price: str
    per_period: str


@dataclass
class InvoiceSheet:
    locale: str
    title: str
    subject: str
    created: datetime
    columns: tuple[str, str, str, str] = ("", "", "", "")
    header: list[tuple[str, str]] = field(default_factory=list)
    items: list[ItemRow] = field(default_factory=list)
    supplied: list[tuple[str, str]] = field(default_factory=list)
    totals: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def issued_at(invoice: IssuedInvoice) -> datetime:
    created = invoice.created_at
    return created.replace(tzinfo=UTC) if created.tzinfo is None else created


def issue_date(invoice: IssuedInvoice, org: Addressee) -> date:
    """The day of issue in the organisation's calendar, the one its change is dated by: a
    Tokyo customer's invoice issued at 08:00 JST is dated that day, not the UTC day before."""
    return issued_at(invoice).astimezone(ZoneInfo(org.time_zone or "UTC")).date()


def invoice_sheet(invoice: IssuedInvoice, org: Addressee) -> InvoiceSheet:
    quote = Quote.model_validate(invoice.quote)
    payment = PaymentRecord.model_validate(invoice.payment)
    locale: Locale = "ja" if invoice.locale == "ja" else "en"
    text, where = LABELS[locale], BABEL_LOCALES[locale]
    currency = quote.currency

    def money(amount: Decimal) -> str:
        return format_currency(round_money(Decimal(amount), currency), currency, locale=where)

    def day(value: date) -> str:
        return format_date(value, format="long", locale=where)

    def percent(rate: Decimal) -> str:
        return format_percent(rate, locale=where)

    period = BILLING_PERIODS.get(locale, {}).get(quote.billing_period, quote.billing_period)
    seller = invoice.seller
    title = text["confirmation"] if invoice.amount == 0 else (
        text["qualified"] if seller and quote.tax is not None and quote.tax.rate > 0
        else text["invoice"])
    created = issued_at(invoice)
    sheet = InvoiceSheet(locale=locale, title=title, created=created, subject=text[
        "subject"].format(title=title, number=invoice.number, product=quote.product),
        columns=(text["item"], text["seats"], text["unit_price"],
                 text["per_period"].format(billing_period=quote.billing_period)))
    sheet.header += [(text["number"], invoice.number or ""),
                     (text["issued"], day(issue_date(invoice, org))),
                     (text["transaction"], day(quote.change_date))]
    if seller:
        sheet.header += [(text["issuer"], seller["name"]),
                         (text["registration"], seller["registration_number"]),
                         (text["address"], seller["address"])]
    sheet.header.append((text["billed_to"], text["billed_to_value"].format(
        name=invoice.billed_to or org.name, id=org.id) + f", {invoice.emailed_to}"))
    sheet.header.append(("", text["currency_note" if quote.tax is not None
                                  else "currency_note_tax_free"].format(currency=currency)))
    for label, plan, seats, price in ((text["before"], quote.old_plan, quote.old_seats,
                                       quote.old_unit_price),
                                      (text["after"], quote.new_plan, quote.new_seats,
                                       quote.new_unit_price)):
        sheet.items.append(ItemRow(f"{label}: {quote.product} {plan} ({quote.pricing_model})",
                                   str(seats), money(price),
                                   money(round_money(seats * price, currency))))
    sheet.supplied.append((text["supplied"], text["supplied_value"].format(
        product=quote.product, old_plan=quote.old_plan, old_seats=quote.old_seats,
        new_plan=quote.new_plan, new_seats=quote.new_seats,
        pricing_model=quote.pricing_model, billing_period=period)))
    if quote.effective_date is not None:  # at the period end (SPEC section 10): not prorated
        sheet.supplied.append((text["effective"], text["effective_value"].format(
            date=day(quote.effective_date), start=day(quote.new_period_start),
            end=day(quote.new_period_end - timedelta(days=1)))))
        sheet.notes.append(text["effective_note"].format(date=day(quote.effective_date)))
    else:
        sheet.supplied.append((text["period"], text["period_value"].format(
            start=day(quote.change_date),  # the last day, not the exclusive end
            end=day(quote.new_period_end - timedelta(days=1)),
            remaining=quote.remaining_days, days=quote.period_days)))
    sheet.supplied.append((text["adjustment"], money(quote.amount)))
    sheet.totals += _totals(quote, invoice.amount, locale, money, percent)
    if payment.method == "carried":  # below the gateway's minimum: billed at the next renewal
        after_total = next(i for i, (label, _) in enumerate(sheet.totals)
                           if label in (text["total"], text["total_tax_free"])) + 1
        sheet.totals.insert(after_total, (text["carried"], money(payment.amount)))
    if quote.refundable_amount > 0:
        tax = ""
        if quote.tax is not None and quote.tax.refundable_tax > 0:
            tax = text["refundable_tax"].format(rate=percent(quote.tax.rate),
                                                amount=money(quote.tax.refundable_tax))
        sheet.notes.append(text["refundable"].format(amount=money(quote.refundable_total),
                                                     tax=tax))
    if quote.features_switched_off:
        sheet.notes.append(text["switched_off"].format(
            features=", ".join(quote.features_switched_off)))
    if payment.method == "card":
        sheet.notes.append(text["paid_by_card"].format(charge=payment.charge_id))
    elif payment.method == "offline":
        sheet.notes.append(text["bank_transfer"].format(case=payment.sales_case))
    elif payment.method == "carried":
        sheet.notes.append(text["carried_note"].format(amount=money(payment.amount)))
    return sheet


def _no_tax_note(country: str | None, locale: Locale) -> str:
    """Why no consumption tax is on the invoice: the customer is exempt, or outside Japan."""
    table = default_tax_table()
    rule = table.rule_for(country)
    notes = rule.exempt_note if rule is not None else table.outside_note
    return notes[locale]


def _tax_label(country: str | None, locale: Locale) -> str:
    """The tax's name as its jurisdiction's row in the tax rules has it (消費税 for JP)."""
    rule = default_tax_table().rule_for(country)
    return rule.label[locale] if rule is not None else ""


def _totals(quote: Quote, total: Decimal, locale: Locale, money, percent
            ) -> list[tuple[str, str]]:
    """The amount per rate, the tax per rate and the total; a zero-amount confirmation has no
    tax line; no tax applies: the line that says why."""
    text, tax = LABELS[locale], quote.tax
    if tax is None:
        return [(text["total_tax_free"], money(total))]
    if total == 0:
        return [(text["total"], money(total))]
    if tax.rate == 0:
        return [(text["untaxed"], money(quote.amount_due)), (text["total"], money(total)),
                ("", _no_tax_note(tax.country, locale))]
    rate = percent(tax.rate)
    return [(text["taxable"].format(rate=rate), money(quote.amount_due)),
            (text["tax"].format(label=_tax_label(tax.country, locale), rate=rate),
             money(tax.tax)),
            (text["total"], money(total))]
