"""The e-mail sink through a real SMTP server: STARTTLS before login, one thread per ticket, and a busy or
refusing server told apart."""

from pathlib import Path
from typing import Any

import pytest

from collector.sinks.base import Delivered, Failed, Retry
from collector.sinks.email import EmailOptions, EmailSink
from tests.support.notices import notice
from tests.support.smtp import PASSWORD, USER, smtp_server

pytestmark = pytest.mark.integration


def sink(port: int, ca: Path | None, **changes: Any) -> EmailSink:
    options = {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "ca_file": str(ca) if ca else None,
        "username": USER,
        "password": PASSWORD,
        "from": "hezo@provider.example",
        "to": ["oncall@provider.example"],
        "timeout": 5,
    }
    options.update(changes)
    return EmailSink(EmailOptions.model_validate(options))


def test_an_opened_ticket_arrives_with_its_facts_and_local_deadline(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as server:
        outcome = sink(server.port, server.cert.cert).send(notice())
        [message] = server.mailbox.wait(1)
    assert isinstance(outcome, Delivered)
    assert message["Subject"] == "[HZ-000042] HZ-000042 Critical: rally-bar at hq (opened)"
    assert message["Message-ID"] == "<hezo.HZ-000042@provider.example>"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "2034FH1002R2" in text
    assert "HZ-C-1" in text
    assert "2026-12-04 16:30 CET" in text  # the response deadline on the site's clock (UTC+1)
    assert "https://hezo.example/api/tickets/HZ-000042" in html
    assert server.mailbox.recipients == [["oncall@provider.example"]]


def test_later_events_thread_under_the_first_message(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as server:
        mail = sink(server.port, server.cert.cert)
        mail.send(notice())
        mail.send(notice("recovered"))
        first, later = server.mailbox.wait(2)
    assert later["In-Reply-To"] == first["Message-ID"]
    assert later["References"] == first["Message-ID"]
    assert later["Message-ID"] != first["Message-ID"]


def test_a_contact_notice_goes_to_the_contact_only(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as server:
        sink(server.port, server.cert.cert).send(notice(recipient="it@customer.example"))
        server.mailbox.wait(1)
    assert server.mailbox.recipients == [["it@customer.example"]]


def test_a_wrong_password_is_a_permanent_failure(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as server:
        outcome = sink(server.port, server.cert.cert, password="wrong").send(notice())
    assert isinstance(outcome, Failed)
    assert "refused the login: 535" in outcome.reason


def test_a_busy_server_is_tried_again_and_a_refusing_one_is_not(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as server:
        server.mailbox.refuse_with = "451 4.3.0 try again later"
        busy = sink(server.port, server.cert.cert).send(notice())
        server.mailbox.refuse_with = "550 5.1.1 no such user"
        refused = sink(server.port, server.cert.cert).send(notice())
    assert isinstance(busy, Retry)
    assert isinstance(refused, Failed)
    assert "550" in refused.reason


def test_an_untrusted_certificate_is_refused_not_sent_in_clear(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as server:
        outcome = sink(server.port, None).send(notice())  # the system's CAs do not know this certificate
        assert server.mailbox.messages == []
    assert isinstance(outcome, Failed)
    assert "TLS" in outcome.reason


def test_no_server_is_a_temporary_failure(tmp_path: Path) -> None:
    from tests.support.mosquitto import free_port

    outcome = sink(free_port(), None).send(notice())
    assert isinstance(outcome, Retry)
    assert "cannot reach 127.0.0.1" in outcome.reason
