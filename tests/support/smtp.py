"""A real SMTP server of a test's own (aiosmtpd): STARTTLS required before login, one user, every accepted
message kept, parsed, for the test to read."""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.mosquitto import free_port
from tests.support.tlscert import CertFiles, make_cert

USER = "hezo"
PASSWORD = "s3cret-smtp"


@dataclass
class Mailbox:
    """What the server accepted, and the answer it gives to the next RCPT (to play a busy server)."""

    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    refuse_with: str | None = None
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_with is not None:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.arrived:
            self.messages.append(parsed)
            self.recipients.append(list(envelope.rcpt_tos))
            self.arrived.notify_all()
        return "250 Message accepted"

    def wait(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"{count} messages not within {timeout} s (got {len(self.messages)})")
            return list(self.messages)


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    expected = (USER.encode(), PASSWORD.encode())
    good = isinstance(data, LoginPassword) and (data.login, data.password) == expected
    return AuthResult(success=good, handled=False)


@dataclass
class SmtpServer:
    port: int
    cert: CertFiles
    mailbox: Mailbox


@contextmanager
def smtp_server(directory: Path) -> Iterator[SmtpServer]:
    """An SMTP server on a free loopback port; its certificate is ``cert.cert`` (trust it as a CA file)."""
    cert = make_cert(
        directory,
        valid_from=datetime.timedelta(days=-1),
        valid_until=datetime.timedelta(days=30),
        name="smtp",
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.cert, cert.key)
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=_authenticate,
    )
    controller.start()
    try:
        yield SmtpServer(port, cert, mailbox)
    finally:
        controller.stop()
