"""The qualified invoice (適格請求書, SPEC section 14) a Japanese business can book: every field
the law asks for, read back out of the email body and out of the PDF (pypdf), in Japanese for a
Japanese organisation and in English for `en`, with amounts and dates as Babel writes them for
the locale and every glyph drawn in the CJK font the project installs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from subchange.documents.invoice_email import render_invoice_email
from subchange.documents.invoice_pdf import installed_fonts, japanese_font, render_invoice_pdf
from subchange.domain.contracts import Quote
from subchange.domain.facts import Organisation
from subchange.domain.quoting import quote_tax
from subchange.store.tables import Invoice, Org
from tests.helpers.documents import SELLER
from tests.helpers.observers import pdf_text

ISSUER = {"name": SELLER["SELLER_NAME"], "address": SELLER["SELLER_ADDRESS"],
          "registration_number": SELLER["SELLER_REGISTRATION_NUMBER"]}


def quote_for(*, currency: str = "JPY", country: str = "JP", amount: str = "4352",
              exempt: bool = False) -> Quote:
    """The demo's 30 → 35 seat increase, prorated over 15 of 30 days, with its tax."""
    due = Decimal(amount)
    org = Organisation(id="kaede", currency=currency, country=country, tax_exempt=exempt)
    return Quote(
        org_id="kaede", product="one", kind="seats", pricing_model="flexible_user",
        billing_period="monthly", currency=currency, payment_method="online",
        old_plan="enterprise", new_plan="enterprise", old_seats=30, new_seats=35,
        old_unit_price=Decimal(1740), new_unit_price=Decimal(1740),
        period_start="2026-11-01", period_end="2026-12-01", change_date="2026-11-16",
        remaining_days=15, period_days=30, amount=due, amount_due=due,
        refundable_amount=Decimal(0), new_period_start="2026-11-01",
        new_period_end="2026-12-01", subscription_version=1,
        tax=quote_tax(org, currency, due, Decimal(0)))


def issued(quote: Quote, *, locale: str, name: str = "楓デザイン株式会社") -> tuple[Invoice, Org]:
    invoice = Invoice(
        id=7, number="INV-2026-000007", workflow_id="change-qualified", org_id="kaede",
        product="one", amount=quote.total_due, subtotal=quote.amount_due,
        tax=quote.tax.tax if quote.tax else None, currency=quote.currency,
        emailed_to="billing@kaede.example", message_id="<INV-2026-000007.x@subchange>",
        quote=quote.model_dump(mode="json"),
        payment={"method": "card", "amount": str(quote.total_due), "currency": quote.currency,
                 "charge_id": "ch_7"},
        seller=ISSUER, locale=locale, billed_to=name,
        created_at=datetime(2026, 11, 17, 16, 0, tzinfo=UTC))  # 01:00 on the 18th in Tokyo
    return invoice, Org(id="kaede", name=name, currency=quote.currency,
                        billing_email="billing@kaede.example", time_zone="Asia/Tokyo")


def both_texts(invoice: Invoice, org: Org) -> dict[str, str]:
    """What a reader sees: the email body and the PDF's text (lines joined, as a long line may
    wrap on the page)."""
    message = render_invoice_email(invoice, org)
    [pdf] = list(message.iter_attachments())
    return {"email": message.get_body(("plain",)).get_content(),
            "pdf": pdf_text(pdf.get_content()).replace("\n", "")}


JAPANESE_FIELDS = [
    "適格請求書 INV-2026-000007",
    "請求書番号: INV-2026-000007",
    "発行日: 2026年11月18日",  # the date of issue, in the customer's calendar
    "取引年月日: 2026年11月16日",  # the date of the transaction
    f"発行事業者: {ISSUER['name']}",
    f"登録番号: {ISSUER['registration_number']}",
    f"所在地: {ISSUER['address']}",
    "宛先: 楓デザイン株式会社 御中（kaede）",  # the recipient
    "取引内容: one enterprise × 30 → enterprise × 35（flexible_user、月払い）",  # what was supplied
    "日割期間: 2026年11月16日〜2026年11月30日（30日中15日）",  # the prorated period
    "10%対象（税抜）: ￥4,352",  # the amount per rate, and the rate
    "消費税（10%）: ￥435",  # the tax per rate (435.2, rounded down)
    "合計: ￥4,787",
]
ENGLISH_FIELDS = [
    "Qualified invoice INV-2026-000007",
    "Invoice number: INV-2026-000007",
    "Issue date: November 18, 2026",
    "Transaction date: November 16, 2026",
    f"Issuer: {ISSUER['name']}",
    f"Registration number: {ISSUER['registration_number']}",
    f"Address: {ISSUER['address']}",
    "Billed to: 楓デザイン株式会社 (kaede), billing@kaede.example",
    "Supplied: one enterprise × 30 → enterprise × 35 (flexible_user, billed monthly)",
    "Prorated period: November 16, 2026 to November 30, 2026 (15 of 30 days)",
    "Amount at 10% (excl. tax): ¥4,352",
    "Consumption tax (10%): ¥435",
    "Total: ¥4,787",
]


@pytest.mark.parametrize(("locale", "fields"), [("ja", JAPANESE_FIELDS),
                                                ("en", ENGLISH_FIELDS)], ids=["ja", "en"])
def test_every_field_of_a_qualified_invoice_is_in_the_email_and_the_pdf(locale, fields):
    texts = both_texts(*issued(quote_for(), locale=locale))
    for where, text in texts.items():
        missing = [field for field in fields if field not in text]
        assert missing == [], f"{where} lacks {missing}:\n{text}"


def test_the_japanese_email_says_what_it_is_in_its_subject():
    message = render_invoice_email(*issued(quote_for(), locale="ja"))
    assert message["Subject"] == "適格請求書 INV-2026-000007（one）"


def test_every_glyph_of_a_japanese_invoice_is_drawn_in_the_cjk_font():
    """IPAexGothic (from the stack extra's pip package or Debian's), embedded; no character
    written as '?'."""
    assert japanese_font() in installed_fonts()
    invoice, org = issued(quote_for(), locale="ja")
    pdf = render_invoice_pdf(invoice, org)
    assert b"IPAexGothic" in pdf and b"/FontFile2" in pdf
    text = pdf_text(pdf)
    assert "?" not in text and "楓デザイン株式会社 御中" in text


def test_a_customer_outside_japan_is_told_why_there_is_no_tax():
    quote = quote_for(currency="USD", country="US", amount="338.71")
    for text in both_texts(*issued(quote, locale="en", name="Globex Inc")).values():
        assert "Amount (no consumption tax): $338.71" in text
        assert "Total: $338.71" in text
        assert "Not subject to Japanese consumption tax" in text
        assert "Consumption tax (" not in text and "Qualified invoice" not in text


def test_an_exempt_japanese_customer_is_told_why_in_japanese():
    for text in both_texts(*issued(quote_for(exempt=True), locale="ja")).values():
        assert "合計: ￥4,352" in text and "非課税" in text and "消費税（10%）" not in text


def test_a_zero_amount_confirmation_has_no_tax_line():
    quote = quote_for(amount="0")
    for text in both_texts(*issued(quote, locale="ja")).values():
        assert "ご契約変更の確認書" in text and "合計: ￥0" in text
        assert "消費税（" not in text and "登録番号: T" in text


def carried(locale: str) -> tuple[Invoice, Org]:
    """45 yen with its 4 yen tax, 49 in all, below the gateway's 50 yen minimum: applied, and
    carried to the next renewal invoice instead of charged (issue 22)."""
    quote = quote_for(amount="45").model_copy(update={"carried_to_renewal": True})
    invoice, org = issued(quote, locale=locale)
    invoice.payment = {"method": "carried", "amount": "49", "currency": "JPY"}
    return invoice, org


@pytest.mark.parametrize(("locale", "shown", "not_shown"), [
    ("ja", ["10%対象（税抜）: ￥45", "消費税（10%）: ￥4", "合計: ￥49",
            "次回更新時のご請求へ繰越: ￥49", "今回はカードへの請求を行いません。",
            "次回の更新時の請求書に合算してご請求します。"], "カード決済済み"),
    ("en", ["Amount at 10% (excl. tax): ¥45", "Consumption tax (10%): ¥4", "Total: ¥49",
            "Carried to your next renewal invoice: ¥49", "Not charged now: ¥49"],
     "Paid by card"),
], ids=["ja", "en"])
def test_an_amount_below_the_minimum_charge_shows_as_carried_not_charged(locale, shown,
                                                                          not_shown):
    for where, text in both_texts(*carried(locale)).items():
        missing = [line for line in shown if line not in text]
        assert missing == [], f"{where} lacks {missing}:\n{text}"
        assert not_shown not in text
