"""The PDF invoice attached to the invoice email (R10), rendered with fpdf2.

A pure function of the invoice and its organisation: the same invoice gives the same bytes
(the PDF's creation date is the invoice's, and fpdf2 derives the file ID from the content), so a
retried email step attaches an identical file.

Fonts: fpdf2's core fonts are Latin-1 only. The first Unicode font found among FONT_CANDIDATES
is used, with the others as fallbacks for glyphs it lacks (a CJK font, when installed, covers a
Japanese organisation name); with none installed the core Helvetica is used. A character no
loaded font can draw is written as its ASCII decomposition or "?", never an error: the PDF must
not stop the email.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from fpdf import FPDF

from subchange.domain.contracts import PaymentRecord, Quote
from subchange.domain.money import format_money, round_money

FONT_CANDIDATES: tuple[Path, ...] = tuple(Path(p) for p in (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",            # Debian fonts-dejavu-core
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",      # Debian fonts-ipaexfont-gothic
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",          # Debian fonts-ipafont-gothic
    "/usr/share/fonts/truetype/noto/NotoSansJP-Regular.ttf",
))
CORE_FONT, CORE_ENCODING = "Helvetica", "windows-1252"


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


class Addressee(Protocol):
    """Whom the invoice is addressed to (a subchange.store.tables.Org)."""

    id: str
    name: str


def installed_fonts() -> list[Path]:
    return [path for path in FONT_CANDIDATES if path.is_file()]


class _Document:
    """An FPDF page with the fonts set up and every string made drawable before it is written."""

    def __init__(self, fonts: Sequence[Path], created: datetime) -> None:
        self.pdf = pdf = FPDF(format="A4")
        pdf.core_fonts_encoding = CORE_ENCODING
        pdf.set_creation_date(created)
        pdf.set_producer("subchange")
        self.cmaps: list[dict[int, str]] = []
        for index, path in enumerate(fonts):
            pdf.add_font(f"f{index}", fname=path)
            self.cmaps.append(pdf.fonts[f"f{index}"].cmap)
        self.family = "f0" if fonts else CORE_FONT
        if len(fonts) > 1:
            pdf.set_fallback_fonts([f"f{i}" for i in range(1, len(fonts))])
        pdf.add_page()

    def drawable(self, text: str) -> str:
        return "".join(ch if self._has(ch) else _ascii(ch) for ch in text)

    def _has(self, ch: str) -> bool:
        if ch in " \n":
            return True
        if not self.cmaps:
            try:
                ch.encode(CORE_ENCODING)
            except UnicodeEncodeError:
                return False
            return True
        return any(ord(ch) in cmap for cmap in self.cmaps)

    def line(self, text: str = "", *, size: int = 10) -> None:
        self.pdf.set_font(self.family, size=size)
        self.pdf.multi_cell(0, size * 0.55, self.drawable(text), new_x="LMARGIN", new_y="NEXT")

    def row(self, *columns: str, widths: Sequence[int] = (90, 20, 35, 35)) -> None:
        self.pdf.set_font(self.family, size=9)
        for text, width, align in zip(columns, widths, "LRRR", strict=True):
            self.pdf.cell(width, 6, self.drawable(text), border="B", align=align)
        self.pdf.ln(6)


def _ascii(ch: str) -> str:
    folded = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode("ascii")
    return folded or "?"


def _created(invoice: IssuedInvoice) -> datetime:
    created = invoice.created_at
    return created.replace(tzinfo=UTC) if created.tzinfo is None else created


def amount_lines(quote: Quote, total: Decimal) -> list[tuple[str, Decimal, str]]:
    """What the invoice charges: subtotal, the tax per rate (or why there is none) and the
    total; a zero-amount confirmation has no tax line, an invoice from before tax one total."""
    if quote.tax is None:
        return [("Total (tax-free)", total, "")]
    if total == 0:
        return [("Total", total, "")]
    tax = quote.tax
    tax_line = (("Consumption tax " + _percent(tax.rate), tax.tax, "") if tax.rate > 0 else
                ("Tax", tax.tax, f" ({tax.note})" if tax.note else ""))
    return [("Subtotal", quote.amount_due, ""), tax_line, ("Total", total, "")]


def tax_within(quote: Quote) -> str:
    """After a tax-inclusive refundable amount: the tax it holds."""
    if quote.tax is None or quote.tax.refundable_tax == 0:
        return ""
    tax = format_money(quote.tax.refundable_tax, quote.currency)
    return f" (incl. {_percent(quote.tax.rate)} tax {tax})"


def _percent(rate: Decimal) -> str:
    return f"{rate * 100:.0f}%"


def render_invoice_pdf(invoice: IssuedInvoice, org: Addressee, *,
                       fonts: Sequence[Path] | None = None) -> bytes:
    """The invoice as PDF bytes: line items, proration period, pricing model, tax-free totals
    in the organisation's currency. `fonts` defaults to the installed FONT_CANDIDATES."""
    quote = Quote.model_validate(invoice.quote)
    payment = PaymentRecord.model_validate(invoice.payment)
    currency = quote.currency

    def money(amount: Decimal) -> str:
        return format_money(Decimal(amount), currency)

    doc = _Document(installed_fonts() if fonts is None else fonts, _created(invoice))
    title = "Subscription change confirmation" if invoice.amount == 0 else "Invoice"
    doc.pdf.set_title(f"{title} {invoice.number}")
    doc.line(f"{title} {invoice.number}", size=16)
    doc.line(f"Invoice number: {invoice.number}")
    doc.line(f"Invoice date: {_created(invoice):%Y-%m-%d}")
    doc.line(f"Billed to: {org.name} ({org.id}), {invoice.emailed_to}")
    doc.line(f"Product: {quote.product}; pricing model: {quote.pricing_model}; "
             f"billed {quote.billing_period}")
    doc.line(f"All amounts in {currency}" + (", tax-free." if quote.tax is None else "."))
    doc.line()
    doc.row("Line item", "Seats", "Unit price", f"Per {quote.billing_period} period")
    for label, plan, seats, price in (("Before", quote.old_plan, quote.old_seats,
                                       quote.old_unit_price),
                                      ("After", quote.new_plan, quote.new_seats,
                                       quote.new_unit_price)):
        doc.row(f"{label}: {quote.product} {plan} ({quote.pricing_model})", str(seats),
                money(price), money(round_money(seats * price, currency)))
    doc.line()
    doc.line(f"Proration period: {quote.change_date} to {quote.new_period_end} "
             f"({quote.remaining_days} of {quote.period_days} days)")
    doc.line(f"Adjustment: {money(quote.amount)}")
    if quote.refundable_amount > 0:
        doc.line(f"Unused value: {money(quote.refundable_total)}{tax_within(quote)} (not "
                 "refunded automatically)")
    if quote.features_switched_off:
        doc.line("Switched off: " + ", ".join(quote.features_switched_off)
                 + " (your data is kept)")
    for label, amount, after in amount_lines(quote, invoice.amount):
        doc.line(f"{label}: {money(amount)}{after}", size=12 if label.startswith("Total") else 10)
    if payment.method == "card":
        doc.line(f"Paid by card: charge {payment.charge_id}")
    elif payment.method == "offline":
        doc.line(f"Bank transfer approved by sales, case {payment.sales_case}")
    return bytes(doc.pdf.output())
