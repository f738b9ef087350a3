"""Sending email over SMTP (SMTP_HOST, SMTP_PORT; aiosmtpd in the embedded stack) as MAIL_FROM."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from subchange.domain.limits import MAIL_COMMAND
from subchange.settings import Settings


def send_email(message: EmailMessage, *, settings: Settings) -> None:
    """Send `message` as MAIL_FROM (its From header is set here). SMTP has no idempotency: a
    caller that must send once records the attempt before and after."""
    del message["From"]
    message["From"] = settings.mail_from
    # Each command waits at most MAIL_COMMAND for its reply (the email step's time budget).
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                      timeout=MAIL_COMMAND.total_seconds()) as smtp:
        smtp.send_message(message)
