"""The PDF invoice (R10) in the email a real change sends through the SMTP server to the
Maildir, for a Japanese organisation: one attachment, named for the invoice, a qualified invoice
in Japanese (SPEC section 14) whose total is what the card was charged, the quote's total with
10% consumption tax. The renderer alone is tests/unit/test_qualified_invoice.py."""

from __future__ import annotations

from decimal import Decimal
from email.header import decode_header, make_header
from typing import Any

from subchange.domain.contracts import ChangeStatus
from tests.helpers.documents import (
    JAPANESE_NAME,
    SELLER,
    admin,
    current_period,
    org_document,
    unique_org,
)
from tests.helpers.driver import ChangeDriver
from tests.helpers.observers import mail_text, pdf_attachments, pdf_text


async def load_named(driver: ChangeDriver, org: str, name: str, **subscription: Any) -> None:
    start, end = current_period((await driver.env.get_current_time()).date())
    document = org_document(org, users=[admin(org)], locale="ja", subscriptions=[
        {"period_start": str(start), "period_end": str(end), **subscription}])
    document["orgs"][0]["name"] = name
    driver.reload(document)


async def test_invoice_email_carries_one_pdf_with_the_amount_charged(driver, mailbox):
    org = unique_org("pdf")
    await load_named(driver, org, JAPANESE_NAME, product="one", plan="enterprise", seats=30,
                     pricing_model="flexible_user")

    result = await driver.run(org, seats=35)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    charged = result.payment.amount
    assert charged == result.invoice.amount == result.quote.total_due > result.quote.amount_due
    [mail] = mailbox.messages(to=f"billing@{org}.example")
    [pdf] = pdf_attachments(mail)
    assert pdf.get_filename() == f"{result.invoice.number}.pdf"
    text = pdf_text(pdf.get_payload(decode=True)).replace("\n", "")
    body = mail_text(mail)
    quote = result.quote
    def yen(amount: Decimal) -> str:
        return f"￥{int(amount):,}"
    for shown in (text, body):
        assert f"適格請求書 {result.invoice.number}" in shown
        assert f"登録番号: {SELLER['SELLER_REGISTRATION_NUMBER']}" in shown
        assert f"宛先: {JAPANESE_NAME} 御中" in shown
        assert f"10%対象（税抜）: {yen(quote.amount_due)}" in shown
        assert f"消費税（10%）: {yen(quote.tax.tax)}" in shown
        assert f"合計: {yen(charged)}" in shown
        assert f"（{quote.period_days}日中{quote.remaining_days}日）" in shown
    subject = str(make_header(decode_header(mail["Subject"])))
    assert subject.startswith(f"適格請求書 {result.invoice.number}")
