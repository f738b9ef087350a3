"""The PDF invoice (R10) of an invoice issued before tax and issuer were recorded (changes in
flight when SPEC section 14 shipped): what a reader of the PDF sees, read back with pypdf, from the
renderer and from the email step's own renderer; it reads as it did then. Qualified invoices are
tests/unit/test_qualified_invoice.py; the email a real change sends is
tests/workflow/test_invoice_email_carries_the_pdf.py."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from subchange.documents import invoice_pdf
from subchange.documents.invoice_email import render_invoice_email
from subchange.documents.invoice_pdf import installed_fonts, japanese_font, render_invoice_pdf
from subchange.settings import ConfigurationError
from subchange.store.tables import Invoice, Org
from tests.helpers.documents import JAPANESE_NAME
from tests.helpers.observers import pdf_text

FONT_SETUPS = {"installed fonts": None, "core font only": []}


def make_invoice(*, currency: str, old_price: str, new_price: str, amount: str,
                 pricing_model: str = "flexible_user") -> Invoice:
    quote = {
        "org_id": "acme", "product": "one", "kind": "seats", "pricing_model": pricing_model,
        "billing_period": "monthly", "currency": currency, "payment_method": "online",
        "old_plan": "enterprise", "new_plan": "enterprise", "old_seats": 30, "new_seats": 35,
        "old_unit_price": old_price, "new_unit_price": new_price,
        "period_start": "2026-11-01", "period_end": "2026-12-01", "change_date": "2026-11-16",
        "remaining_days": 15, "period_days": 30, "amount": amount, "amount_due": amount,
        "refundable_amount": "0", "new_period_start": "2026-11-01",
        "new_period_end": "2026-12-01", "subscription_version": 1}
    payment = {"method": "card", "amount": amount, "currency": currency, "charge_id": "ch_42"}
    return Invoice(id=42, number="INV-2026-000042", workflow_id="change-pdf", org_id="acme",
                   product="one", amount=Decimal(amount), currency=currency,
                   emailed_to="billing@acme.example", message_id="<INV-2026-000042.x@subchange>",
                   quote=quote, payment=payment, created_at=datetime(2026, 11, 16, 9, 30))


def acme(name: str = "Acme KK", currency: str = "JPY") -> Org:
    return Org(id="acme", name=name, currency=currency, billing_email="billing@acme.example")


@pytest.mark.parametrize("fonts", FONT_SETUPS.values(), ids=FONT_SETUPS.keys())
@pytest.mark.parametrize(("currency", "prices", "amounts"), [
    ("JPY", ("1200", "1200", "3000"), ("¥1,200", "¥36,000", "¥42,000", "¥3,000")),
    ("USD", ("12.50", "12.50", "31.25"), ("$12.50", "$375.00", "$437.50", "$31.25")),
], ids=["JPY", "USD"])
def test_pdf_shows_the_invoice_in_the_org_currency(currency, prices, amounts, fonts):
    old_price, new_price, amount = prices
    unit, before, after, due = amounts
    invoice = make_invoice(currency=currency, old_price=old_price, new_price=new_price,
                           amount=amount)

    text = pdf_text(render_invoice_pdf(invoice, acme(currency=currency), fonts=fonts))

    assert "Invoice INV-2026-000042" in text and "Invoice number: INV-2026-000042" in text
    assert "Billed to: Acme KK (acme)" in text
    assert "(flexible_user, billed monthly)" in text
    assert f"All amounts in {currency}, tax-free." in text
    assert f"Before: one enterprise (flexible_user) 30 {unit} {before}" in text
    assert f"After: one enterprise (flexible_user) 35 {unit} {after}" in text
    assert ("Prorated period: November 16, 2026 to November 30, 2026 (15 of 30 days)"
            in text.replace("\n", " "))
    assert f"Total (tax-free): {due}" in text
    assert "Registration number" not in text  # no issuer was recorded then
    if currency == "JPY":
        assert "¥3,000.00" not in text and ".00" not in text  # yen have no minor unit


def test_same_invoice_gives_the_same_bytes():
    invoice = make_invoice(currency="JPY", old_price="1200", new_price="1200", amount="3000")
    first = render_invoice_pdf(invoice, acme())
    assert first.startswith(b"%PDF-")
    assert render_invoice_pdf(invoice, acme()) == first
    assert b"D:20261116093000" in first  # creation date: the invoice's, not the clock's


@pytest.mark.parametrize("fonts", FONT_SETUPS.values(), ids=FONT_SETUPS.keys())
def test_japanese_org_name_never_breaks_the_email(fonts):
    invoice = make_invoice(currency="JPY", old_price="1200", new_price="1200", amount="3000")
    text = pdf_text(render_invoice_pdf(invoice, acme(JAPANESE_NAME), fonts=fonts))
    assert "INV-2026-000042" in text and "Total (tax-free): ¥3,000" in text
    billed_to = next(line for line in text.splitlines() if line.startswith("Billed to:"))
    assert billed_to.endswith("(acme), billing@acme.example")

    message = render_invoice_email(invoice, acme(JAPANESE_NAME))  # the email step's own renderer
    assert JAPANESE_NAME in message.get_body(("plain",)).get_content()
    [pdf] = list(message.iter_attachments())
    assert (pdf.get_content_type(), pdf.get_filename()) == ("application/pdf",
                                                            "INV-2026-000042.pdf")
    assert "INV-2026-000042" in pdf_text(pdf.get_content())


def test_installed_fonts_are_used_when_present():
    invoice = make_invoice(currency="JPY", old_price="1200", new_price="1200", amount="3000")
    if not installed_fonts():
        pytest.skip("no Unicode TTF font installed: the core font is used")
    assert b"/FontFile2" in render_invoice_pdf(invoice, acme())  # an embedded TrueType font


def test_letters_only_a_fallback_font_draws_are_drawn_by_it():
    """IPAexGothic lacks Ŵ, ŷ, Ǆ and ﬁ; DejaVu Sans draws them, the first three as composite
    glyphs (an accent placed on a base letter), which the invoice's font must carry whole."""
    if len(installed_fonts()) < 2:
        pytest.skip("only one Unicode font installed: no fallback to draw with")
    invoice = make_invoice(currency="JPY", old_price="1200", new_price="1200", amount="3000")
    name = "Ŵŷ Ǆ Łódź ﬁ 楓デザイン"
    pdf = render_invoice_pdf(invoice, acme(name))
    assert pdf.count(b"/FontFile2") == 2  # IPAexGothic, and the fallback for the four
    assert f"Billed to: {name} (acme)" in pdf_text(pdf)


def test_the_japanese_font_is_looked_up_in_the_pip_package_then_at_debians_path(
        tmp_path, monkeypatch):
    """matplotlib-fontja (the stack extra) on a checkout, fonts-ipaexfont-gothic in the image:
    either one alone is enough, the pip package first when both are there."""
    pip_font, debian_font = tmp_path / "pip" / "ipaexg.ttf", tmp_path / "debian" / "ipaexg.ttf"
    monkeypatch.setattr(invoice_pdf, "JAPANESE_FONTS", (pip_font, debian_font))
    for present, expected in (([pip_font], pip_font), ([debian_font], debian_font),
                              ([pip_font, debian_font], pip_font)):
        for path in (pip_font, debian_font):
            path.unlink(missing_ok=True)
        for path in present:
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"")
        assert japanese_font() == expected


def test_without_a_japanese_font_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(invoice_pdf, "JAPANESE_FONTS", (tmp_path / "a.ttf", tmp_path / "b.ttf"))
    with pytest.raises(ConfigurationError, match=r"fonts-ipaexfont-gothic.*matplotlib-fontja"):
        japanese_font()
