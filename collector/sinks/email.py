"""``email``: each ticket event as an e-mail, plain text and HTML, over SMTP with STARTTLS (or TLS) and login.

The subject carries the ticket number, priority, device, site and event; every message of a ticket is one
thread: the ``opened`` message's Message-ID is the ticket's, and every later one refers to it
(``In-Reply-To``/``References``). A Message-ID is the same at every attempt, so a retry after a crash between
sending and recording is recognisably the same message.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Literal

from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, FilePath, SecretStr, field_validator

from collector.sinks.base import Delivered, Failed, Notice, Outcome, Retry

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: An address as the config takes it: one mailbox, no display name tricks, no line breaks.
_BAD_ADDRESS = set("\r\n<>,;\"'")


def _address(value: str) -> str:
    if "@" not in value or any(char in _BAD_ADDRESS for char in value) or len(value) > 254:
        raise ValueError(f"{value!r} is not one e-mail address like oncall@example.com")
    return value


class EmailOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (port 587), tls (implicit, port 465) or none (a local relay only)"
    )
    ca_file: FilePath | None = Field(
        None, description="CA bundle of the server's certificate (default: system)"
    )
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(alias="from", description="the From address")
    to: list[str] = Field(min_length=1, max_length=50)
    timeout: float = Field(15.0, gt=0, le=300)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return _address(value)

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return [_address(item) for item in value]


_environment = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    keep_trailing_newline=True,
)


def compose(notice: Notice, sender: str, to: list[str]) -> EmailMessage:
    """The e-mail of ``notice``: subject, threading headers, a plain-text and an HTML part."""
    domain = sender.rsplit("@", 1)[1]
    message = EmailMessage()
    message["Subject"] = f"[{notice.number}] {notice.title}"
    message["From"] = formataddr(("hezo", sender))
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(notice.entry["at"])
    root = f"<{_token(notice.thread)}@{domain}>"
    if notice.event == "opened":
        message["Message-ID"] = root
    else:
        message["Message-ID"] = f"<{_token(notice.key)}@{domain}>"
        message["In-Reply-To"] = root
        message["References"] = root
    message["X-Hezo-Ticket"] = notice.number
    message["X-Hezo-Event"] = notice.event
    context = {"notice": notice, "ticket": notice.ticket, "entry": notice.entry, "local": notice.local}
    message.set_content(_environment.get_template("email.txt").render(context))
    message.add_alternative(_environment.get_template("email.html").render(context), subtype="html")
    return message


def _token(text: str) -> str:
    """``text`` as the left part of a Message-ID: letters, digits and ``.-_`` only."""
    return "".join(char if char.isalnum() or char in ".-_" else "-" for char in text)


class EmailSink:
    def __init__(self, options: EmailOptions) -> None:
        self.options = options

    def send(self, notice: Notice) -> Outcome:
        options = self.options
        message = compose(notice, options.sender, [notice.recipient] if notice.recipient else options.to)
        context = ssl.create_default_context(cafile=str(options.ca_file) if options.ca_file else None)
        try:
            smtp: smtplib.SMTP
            if options.security == "tls":
                smtp = smtplib.SMTP_SSL(options.host, options.port, timeout=options.timeout, context=context)
            else:
                smtp = smtplib.SMTP(options.host, options.port, timeout=options.timeout)
            with smtp:
                if options.security == "starttls":
                    smtp.starttls(context=context)
                if options.username is not None:
                    password = options.password.get_secret_value() if options.password else ""
                    smtp.login(options.username, password)
                refused = smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            return Failed(f"the server refused the login: {exc.smtp_code}")
        except smtplib.SMTPNotSupportedError as exc:
            return Failed(f"the server does not offer what is configured: {exc}")
        except smtplib.SMTPRecipientsRefused as exc:
            return _refused(exc.recipients)
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc)
            reason = f"SMTP {exc.smtp_code}: {text[:200]}"
            return Retry(reason) if 400 <= exc.smtp_code < 500 else Failed(reason)
        except ssl.SSLError as exc:
            return Failed(f"TLS with {options.host}:{options.port} failed: {exc.reason or exc}")
        except (OSError, smtplib.SMTPException) as exc:
            return Retry(f"cannot reach {options.host}:{options.port}: {_short(exc)}")
        if refused:
            return _refused(refused)
        return Delivered(remote_ref=str(message["Message-ID"]))

    def close(self) -> None:
        """Each send opens its own connection: nothing to release."""


def _refused(recipients: dict[str, tuple[int, bytes]]) -> Outcome:
    codes = {address: code for address, (code, _text) in recipients.items()}
    reason = "refused recipients: " + ", ".join(f"{address} ({code})" for address, code in codes.items())
    return Retry(reason) if all(400 <= code < 500 for code in codes.values()) else Failed(reason)


def _short(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def build(options: EmailOptions) -> EmailSink:
    return EmailSink(options)
