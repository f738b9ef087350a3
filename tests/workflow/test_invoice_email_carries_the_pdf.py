"""The PDF invoice (R10) in the email a real change sends through the SMTP server to the
Maildir: one attachment, named for the invoice, showing the amount charged and the proration
period, for an organisation with a Japanese name. The renderer alone is
tests/unit/test_invoice_pdf.py."""

from __future__ import annotations

from typing import Any

from subchange.domain.contracts import ChangeStatus
from tests.helpers.documents import JAPANESE_NAME, admin, current_period, org_document, unique_org
from tests.helpers.driver import ChangeDriver
from tests.helpers.observers import pdf_attachments, pdf_text


async def load_named(changes: ChangeDriver, org: str, name: str, **subscription: Any) -> None:
    start, end = current_period((await changes.env.get_current_time()).date())
    document = org_document(org, users=[admin(org)], subscriptions=[
        {"period_start": str(start), "period_end": str(end), **subscription}])
    document["orgs"][0]["name"] = name
    changes.reload(document)


async def test_invoice_email_carries_one_pdf_with_the_amount_charged(changes, mailbox):
    org = unique_org("pdf")
    await load_named(changes, org, JAPANESE_NAME, product="one", plan="enterprise", seats=30,
                     pricing_model="flexible_user")

    result = await changes.run(org, "one", f"admin@{org}.example",
                               {"kind": "seats", "seats": 35})

    assert result.status is ChangeStatus.COMPLETED, result.reason
    charged = result.payment.amount
    assert charged == result.invoice.amount == result.quote.total_due > result.quote.amount_due
    [mail] = mailbox.messages(to=f"billing@{org}.example")
    [pdf] = pdf_attachments(mail)
    assert pdf.get_filename() == f"{result.invoice.number}.pdf"
    text = pdf_text(pdf.get_payload(decode=True))
    assert f"Invoice number: {result.invoice.number}" in text
    assert f"Total: ¥{int(charged):,}" in text
    assert f"Consumption tax 10%: ¥{int(result.quote.tax.tax):,}" in text
    quote = result.quote
    assert f"Proration period: {quote.change_date} to {quote.new_period_end}" in text
