"""The webhook sink through a real HTTP receiver: a body the receiver can verify by its HMAC, the same key at
every attempt, the Teams and Slack formats, and answers told apart (retry, or give up)."""

import hashlib
import hmac
import json
from typing import Any

import pytest

from collector.sinks.base import Delivered, Failed, Retry
from collector.sinks.webhook import WebhookOptions, WebhookSink
from tests.support.notices import kept, notice
from tests.support.webhook import webhook_receiver

pytestmark = pytest.mark.integration

SECRET = "whsec-test-123"


def sink(url: str, **changes: Any) -> WebhookSink:
    return kept(WebhookSink(WebhookOptions.model_validate({"type": "webhook", "url": url, **changes})))


def test_a_receiver_verifies_the_signature_over_timestamp_and_body() -> None:
    with webhook_receiver() as receiver:
        outcome = sink(receiver.url, secret=SECRET).send(notice())
        [request] = receiver.wait(1)
    assert isinstance(outcome, Delivered)
    timestamp = request.headers["X-Hezo-Timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Hezo-Signature"], f"sha256={expected}")
    document = json.loads(request.body)
    assert document["event"] == "opened"
    assert document["ticket"]["serial"] == "2034FH1002R2"
    assert document["ticket"]["response_due"] == "2026-12-04T15:30:00.000Z"
    assert request.headers["Idempotency-Key"] == document["key"] == "hezo.HZ-000042.1.oncall"


def test_a_tampered_body_does_not_verify() -> None:
    with webhook_receiver() as receiver:
        sink(receiver.url, secret=SECRET).send(notice())
        [request] = receiver.wait(1)
    tampered = request.body.replace(b"critical", b"low")
    timestamp = request.headers["X-Hezo-Timestamp"].encode()
    digest = hmac.new(SECRET.encode(), timestamp + b"." + tampered, hashlib.sha256).hexdigest()
    assert request.headers["X-Hezo-Signature"] != f"sha256={digest}"


def test_teams_gets_an_adaptive_card_and_slack_blocks() -> None:
    with webhook_receiver() as receiver:
        sink(receiver.url, format="teams").send(notice())
        sink(receiver.url, format="slack").send(notice())
        teams, slack = (json.loads(request.body) for request in receiver.wait(2))
    card = teams["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"] == "HZ-000042 Critical: rally-bar at hq (opened)"
    assert card["content"]["actions"][0]["url"] == "https://hezo.example/api/tickets/HZ-000042"
    assert slack["text"].startswith("HZ-000042 Critical: rally-bar at hq (opened)")
    assert any("2034FH1002R2" in field["text"] for field in slack["blocks"][2]["fields"])


@pytest.mark.parametrize(("status", "kind"), [(503, Retry), (429, Retry), (400, Failed), (404, Failed)])
def test_an_answer_is_retried_or_given_up_by_its_status(status: int, kind: type) -> None:
    with webhook_receiver() as receiver:
        receiver.status = status
        outcome = sink(receiver.url).send(notice())
    assert isinstance(outcome, kind)
    assert f"HTTP {status}" in outcome.reason  # type: ignore[union-attr]


def test_nobody_listening_is_retried() -> None:
    from tests.support.mosquitto import free_port

    outcome = sink(f"http://127.0.0.1:{free_port()}/hook").send(notice())
    assert isinstance(outcome, Retry)
