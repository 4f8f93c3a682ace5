"""A dead device reaches people: the simulated Rally Bar loses power, a Critical ticket opens, and an e-mail
with its serial, contract, local deadline and link arrives at a real SMTP server within 5 s; a webhook
receiver gets the same, signed."""

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.mosquitto import Mosquitto
from tests.support.room import CONFIRM_WINDOW, CONTRACT, POLL_INTERVAL, Room
from tests.support.smtp import PASSWORD, USER, SmtpServer, smtp_server
from tests.support.waiting import eventually
from tests.support.webhook import Receiver, webhook_receiver

pytestmark = pytest.mark.integration

SECRET = "end-to-end-secret"
NOTIFY_BUDGET = 5.0


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[tuple[SmtpServer, Receiver]]:
    with smtp_server(tmp_path) as smtp, webhook_receiver() as hook:
        yield smtp, hook


@pytest.fixture
def room(mosquitto: Mosquitto, tmp_path: Path, peers: tuple[SmtpServer, Receiver]) -> Iterator[Room]:
    smtp, hook = peers
    notify = {
        "public_url": "https://hezo.example.net",
        "sinks": {
            "oncall": {
                "type": "email",
                "host": "127.0.0.1",
                "port": smtp.port,
                "ca_file": str(smtp.cert.cert),
                "username": USER,
                "password": PASSWORD,
                "from": "hezo@provider.example",
                "to": ["oncall@provider.example"],
            },
            "desk": {"type": "webhook", "url": hook.url, "secret": SECRET},
        },
        "routes": [
            {"sinks": ["oncall"], "priorities": ["critical"], "events": ["opened"]},
            {"sinks": ["desk"]},
        ],
    }
    running = Room(mosquitto, tmp_path, collector_extra={"notify": notify})
    running.start()
    try:
        running.wait_device_state("rally-bar", "up")
        yield running
    finally:
        running.stop()


def test_a_power_off_is_an_email_and_a_signed_webhook_within_seconds_of_the_ticket(
    room: Room, peers: tuple[SmtpServer, Receiver]
) -> None:
    smtp, hook = peers
    room.power("rally-bar", on=False)
    [ticket] = eventually(
        "a ticket", lambda: room.tickets("rally-bar"), timeout=POLL_INTERVAL + CONFIRM_WINDOW + 20
    )
    [mail] = smtp.mailbox.wait(1, timeout=NOTIFY_BUDGET + 5)
    opened = datetime.fromisoformat(ticket["opened_at"])

    assert (
        mail["Subject"]
        == f"[{ticket['number']}] {ticket['number']} Critical: rally-bar at test-site (opened)"
    )
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "2034FH1002R2" in text
    assert CONTRACT in text
    local_due = datetime.fromisoformat(ticket["response_due"]).astimezone(ZoneInfo("Europe/Warsaw"))
    assert local_due.strftime("%Y-%m-%d %H:%M %Z") in text
    assert f"https://hezo.example.net/api/tickets/{ticket['number']}" in text

    # The collector's own clock: the notification was accepted by the SMTP server within the budget.
    sent = eventually(
        "the delivery recorded",
        lambda: [d for d in room.api("/api/outbox?status=sent") if d["sink"] == "oncall"],
        timeout=10,
    )
    assert (datetime.fromisoformat(sent[0]["sent_at"]) - opened).total_seconds() < NOTIFY_BUDGET

    [request] = hook.wait(1)
    timestamp = request.headers["X-Hezo-Timestamp"]
    digest = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Hezo-Signature"] == f"sha256={digest}"
    document = json.loads(request.body)
    assert (document["event"], document["ticket"]["number"]) == ("opened", ticket["number"])
