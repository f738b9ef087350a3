"""Sending email over SMTP as MAIL_FROM: SMTP_HOST and SMTP_PORT (aiosmtpd in the embedded
stack), secured by SMTP_SECURITY (STARTTLS or implicit TLS, certificates verified), with AUTH when
SMTP_USERNAME is set.

Addresses: an internationalized domain is sent in its ASCII form (IDNA), which every server
takes; a non-ASCII mailbox name needs a server that offers SMTPUTF8, and one that does not is
told apart from a failure worth retrying (AddressNotDeliverable), as is a recipient the server
refuses for good.

No exception raised here names an address: the SDK logs a failing activity with its exception,
and the worker's log holds no address (docs/operations.md). smtplib's own exceptions do (a
refused recipient is the key of SMTPRecipientsRefused's dict, SMTPSenderRefused carries
MAIL_FROM) and servers quote the address in their replies, so the replies are quoted with the
addresses taken out and the recipient travels as AddressNotDeliverable's `address`, which the
email step hands to the workflow as a failure detail (sealed with PAYLOAD_KEYS).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from functools import cache

import idna

from subchange.domain.limits import MAIL_COMMAND
from subchange.domain.redaction import without_addresses
from subchange.settings import Settings


class AddressNotDeliverable(Exception):
    """The mail server can't take this address; retrying won't change it (fix the address). The
    message says why without the address; `address` is the address."""

    def __init__(self, reason: str, address: str) -> None:
        super().__init__(reason)
        self.address = address


class MailRefused(Exception):
    """The mail server answered a command with an error (a recipient refused for now, the
    sender, the message, the login): the message was not sent, a retry may send it. Its reply is
    quoted without addresses."""


def deliverable_address(address: str) -> str:
    """The address with its domain in IDNA form (`billing@例え.jp` → `billing@xn--r8jz45g.jp`);
    the mailbox name is kept as it is."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError as error:
        raise AddressNotDeliverable(
            f"its domain is not a valid IDN ({without_addresses(str(error))})", address) from None


def server_reply(code: int, reply: bytes | str) -> str:
    """A server's reply as a message may quote it: the addresses in it taken out."""
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return f"{code} {without_addresses(text)}"


@cache
def tls_context(ca_file: str) -> ssl.SSLContext:
    """The TLS context of the mail connections, made once per process: loading the CAs costs
    about 40 ms of CPU, which every email paid before (an SSLContext is shared safely)."""
    return ssl.create_default_context(cafile=ca_file or None)


def send_email(message: EmailMessage, *, settings: Settings) -> None:
    """Send `message` as MAIL_FROM (its From header is set here) to its To address. SMTP has no
    idempotency: a caller that must send once records the attempt before and after.

    Returns once the server accepted the message (its 250 to the end of DATA): from then on the
    message is sent, and nothing here raises, whatever the server answers to QUIT (smtplib's
    context manager raises on anything but 221, which made a sent invoice look unsent and sent
    it again). Raises only before that: AddressNotDeliverable, MailRefused, or the connection's
    OSError (SMTPServerDisconnected, a timeout, TLS)."""
    del message["From"]
    message["From"] = settings.mail_from
    recipient = deliverable_address(str(message["To"]))
    message.replace_header("To", recipient)
    timeout = MAIL_COMMAND.total_seconds()  # each command's reply (the email step's budget)
    context = tls_context(settings.smtp_ca_file) if settings.smtp_security != "none" else None
    smtp: smtplib.SMTP | None = None
    try:
        if settings.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                                    context=context)
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        if settings.smtp_security == "starttls":
            smtp.starttls(context=context)
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        try:
            smtp.send_message(message, to_addrs=[recipient])  # returns once DATA is accepted
        except smtplib.SMTPNotSupportedError:
            raise AddressNotDeliverable(
                "the mail server does not offer SMTPUTF8, which a mailbox name in non-ASCII "
                "characters needs", recipient) from None
    except smtplib.SMTPRecipientsRefused as refused:
        code, reply = refused.recipients[recipient]
        if 500 <= code < 600:  # permanent: the same address will be refused again
            raise AddressNotDeliverable(f"the mail server refused it ({server_reply(code, reply)})",
                                        recipient) from None
        raise MailRefused(f"the mail server refused the recipient for now "
                          f"({server_reply(code, reply)})") from None
    except smtplib.SMTPResponseException as error:  # the greeting, EHLO, STARTTLS, AUTH, MAIL, DATA
        raise MailRefused(f"the mail server refused the message ({type(error).__name__}: "
                          f"{server_reply(error.smtp_code, error.smtp_error)})") from None
    finally:
        if smtp is not None:
            say_goodbye(smtp)


def say_goodbye(smtp: smtplib.SMTP) -> None:
    """QUIT and close, raising nothing: after an accepted message its answer changes nothing,
    and after a failure the failure is what the caller must hear."""
    try:
        smtp.quit()  # unlike the context manager's exit, does not check for 221
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()
