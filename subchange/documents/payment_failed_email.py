"""The notice of a declined payment (SPEC section 11): one message to the organisation's billing
contact after a change's first decline, in its language, saying which change could not be paid,
the amount, and that a new card retries the payment at once. It names no card data (the decline
code is the gateway's, e.g. insufficient_funds). A pure function, bar the Date header."""

from __future__ import annotations

from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate

from babel.numbers import format_currency

from subchange.documents.invoice_sheet import BABEL_LOCALES
from subchange.domain.money import round_money
from subchange.domain.step_io import PaymentFailedNotice

TEXT = {
    "ja": {
        "subject": "【お支払いのお願い】{product}の変更のお支払いができませんでした",
        "greeting": "{org} ご担当者様",
        "body": ("{product}のご契約の変更（{what}）について、登録されているカードでの"
                 "お支払い（{amount}）ができませんでした。"),
        "code": "カード会社からの理由コード: {code}",
        "retry": ("カード情報を更新いただくと、すぐにお支払いを再度お試しします。更新がない"
                  "場合も、数日おきに自動で再度お試しします。"),
        "reference": "お問い合わせ番号: {workflow_id}",
        "seats": "ライセンス数 {old} → {new}",
        "plan": "プラン {old} → {new}",
    },
    "en": {
        "subject": "Payment needed: the change to your {product} subscription could not be paid",
        "greeting": "Dear {org} billing contact,",
        "body": ("The payment of {amount} for the change to your {product} subscription "
                 "({what}) was declined by the card on file."),
        "code": "Reason given by the card issuer: {code}",
        "retry": ("Updating the card retries the payment at once; otherwise we retry it "
                  "automatically over the next days."),
        "reference": "Reference: {workflow_id}",
        "seats": "seats {old} → {new}",
        "plan": "plan {old} → {new}",
    },
}


def payment_notice_message_id(workflow_id: str) -> str:
    """The same on every attempt, so a notice sent twice after a crash is one to mail systems
    that dedupe."""
    return f"<payment-failed.{workflow_id}@subchange>"


def render_payment_failed_email(notice: PaymentFailedNotice, *, org_name: str, locale: str,
                                to: str, workflow_id: str) -> EmailMessage:
    language = "ja" if locale == "ja" else "en"
    text, quote = TEXT[language], notice.quote
    product = quote.product
    amount = format_currency(round_money(Decimal(quote.total_due), quote.currency),
                             quote.currency, locale=BABEL_LOCALES[language])
    if quote.old_seats != quote.new_seats:
        what = text["seats"].format(old=quote.old_seats, new=quote.new_seats)
    else:
        what = text["plan"].format(old=quote.old_plan, new=quote.new_plan)
    lines = [text["greeting"].format(org=org_name), "",
             text["body"].format(product=product, what=what, amount=amount)]
    if notice.decline_code:
        lines.append(text["code"].format(code=notice.decline_code))
    lines += ["", text["retry"], "", text["reference"].format(workflow_id=workflow_id)]
    message = EmailMessage()
    message["Subject"] = text["subject"].format(product=product)
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = payment_notice_message_id(workflow_id)
    message.set_content("\n".join(lines) + "\n")
    return message
