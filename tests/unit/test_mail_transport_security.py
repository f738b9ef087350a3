"""Production SMTP: STARTTLS or implicit TLS with the server's certificate verified, and AUTH;
a password is never sent over a plain connection. The real smtplib client against a real aiosmtpd
server with a certificate from a test CA (trustme)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import ValidationError

from subchange.adapters.mail import MailRefused, send_email
from subchange.dev.devstack import free_port
from subchange.settings import Settings

USER, PASSWORD = "mailer", "s3cret"


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> tuple[trustme.CA, Path]:
    authority = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, path


@pytest.fixture
def starttls_server(ca) -> Iterator[tuple[Controller, Inbox]]:
    authority, _ = ca
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticate,
                            auth_require_tls=True)
    controller.start()
    yield controller, inbox
    controller.stop()


def settings_for(controller: Controller, **smtp) -> Settings:
    return Settings(smtp_host="127.0.0.1", smtp_port=controller.port, **smtp)


def invoice_mail(to: str = "billing@acme.example") -> EmailMessage:
    message = EmailMessage()
    message["To"], message["Subject"] = to, "Invoice INV-1"
    message.set_content("amount due: 1,000 yen\n")
    return message


def test_starttls_with_a_verified_certificate_and_auth_delivers(starttls_server, ca):
    controller, inbox = starttls_server
    settings = settings_for(controller, smtp_security="starttls", smtp_ca_file=str(ca[1]),
                            smtp_username=USER, smtp_password=PASSWORD)

    send_email(invoice_mail(), settings=settings)

    [(sender, recipients, content)] = inbox.received
    assert (sender, recipients) == (settings.mail_from, ["billing@acme.example"])
    assert b"amount due" in content


def test_a_wrong_password_is_refused(starttls_server, ca):
    controller, inbox = starttls_server
    settings = settings_for(controller, smtp_security="starttls", smtp_ca_file=str(ca[1]),
                            smtp_username=USER, smtp_password="wrong")
    with pytest.raises(MailRefused, match="SMTPAuthenticationError: 535"):
        send_email(invoice_mail(), settings=settings)
    assert inbox.received == []


def test_a_certificate_the_client_does_not_trust_is_refused(starttls_server):
    controller, inbox = starttls_server
    settings = settings_for(controller, smtp_security="starttls")  # system CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        send_email(invoice_mail(), settings=settings)
    assert inbox.received == []


def test_a_server_that_requires_starttls_gets_nothing_in_clear(starttls_server):
    controller, inbox = starttls_server
    with pytest.raises(MailRefused, match="530"):  # "Must issue a STARTTLS command first"
        send_email(invoice_mail(), settings=settings_for(controller))
    assert inbox.received == []


def test_auth_without_tls_is_a_configuration_error():
    with pytest.raises(ValidationError, match="AUTH needs SMTP_SECURITY=starttls or tls"):
        Settings(smtp_username=USER, smtp_password=PASSWORD)
    assert "s3cret" not in repr(Settings(smtp_security="tls", smtp_username=USER,
                                         smtp_password=PASSWORD))


def test_implicit_tls_delivers(ca):
    authority, ca_file = ca
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ssl_context=context,
                            authenticator=authenticate, auth_require_tls=False)
    controller.start()
    try:
        send_email(invoice_mail(), settings=settings_for(
            controller, smtp_security="tls", smtp_ca_file=str(ca_file), smtp_username=USER,
            smtp_password=PASSWORD))
    finally:
        controller.stop()
    assert [recipients for _, recipients, _ in inbox.received] == [["billing@acme.example"]]
