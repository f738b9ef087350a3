"""Sending email over SMTP (SMTP_HOST, SMTP_PORT; aiosmtpd in the embedded stack) as MAIL_FROM."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from subchange.settings import Settings


def send_email(message: EmailMessage, *, settings: Settings) -> None:
    """Send `message` as MAIL_FROM (its From header is set here). SMTP has no idempotency: a
    caller that must send once records the attempt before and after."""
    del message["From"]
    message["From"] = settings.mail_from
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20) as smtp:
        smtp.send_message(message)
