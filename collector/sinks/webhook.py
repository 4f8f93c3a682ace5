"""``webhook``: each ticket event as an HTTP POST: hezo's own JSON, signed so the receiver can check it came
from this collector, or the incoming-webhook formats of Microsoft Teams and Slack.

The signature follows GitHub's and Stripe's webhooks: ``X-Hezo-Timestamp`` (Unix seconds) and
``X-Hezo-Signature: sha256=<hex>``, the HMAC-SHA256 with the shared secret of ``<timestamp>.<body>``. A
receiver recomputes it over the raw body, compares in constant time, and refuses a timestamp too old
(docs/notifications.md). ``Idempotency-Key`` (also ``X-Hezo-Delivery``) is the same at every attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, FilePath, SecretStr

from collector.sinks.base import Delivered, Notice, Outcome, Retry, http_outcome
from collector.store.queries import jsonable


class WebhookOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook"]
    url: AnyHttpUrl
    format: Literal["json", "teams", "slack"] = "json"
    secret: SecretStr | None = Field(None, description="signs each body (HMAC-SHA256); strongly advised")
    ca_file: FilePath | None = None
    timeout: float = Field(10.0, gt=0, le=120)


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``<timestamp>.<body>`` with ``secret``."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def body_json(notice: Notice) -> dict[str, Any]:
    """hezo's own document: the event, the timeline entry, the ticket, and where to see it."""
    document: dict[str, Any] = jsonable(
        {
            "event": notice.event,
            "key": notice.key,
            "url": notice.url,
            "entry": notice.entry,
            "ticket": notice.ticket,
        }
    )
    return document


def body_teams(notice: Notice) -> dict[str, Any]:
    """An Adaptive Card message, as Teams' incoming webhooks (Workflows) take it."""
    ticket = notice.ticket
    facts = [
        {"title": "Site", "value": str(ticket.get("site"))},
        {"title": "Device", "value": str(ticket.get("device") or "-")},
        {"title": "Serial", "value": str(ticket.get("serial") or "-")},
        {"title": "Contract", "value": str(ticket.get("contract") or "-")},
        {"title": "Response by", "value": notice.local(ticket.get("response_due"))},
    ]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": notice.title, "wrap": True},
            {"type": "TextBlock", "text": str(notice.entry["text"]), "wrap": True},
            {"type": "FactSet", "facts": facts},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": f"Open {notice.number}", "url": notice.url}],
    }
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


def body_slack(notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook message: plain ``text`` for notifications, blocks for the channel."""
    ticket = notice.ticket
    fields = [
        f"*Site:* {ticket.get('site')}",
        f"*Device:* {ticket.get('device') or '-'}",
        f"*Serial:* {ticket.get('serial') or '-'}",
        f"*Response by:* {notice.local(ticket.get('response_due'))}",
    ]
    return {
        "text": f"{notice.title}: {notice.entry['text']}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*<{notice.url}|{notice.title}>*"}},
            {"type": "section", "text": {"type": "plain_text", "text": str(notice.entry["text"])[:2900]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": item} for item in fields]},
        ],
    }


_BODIES = {"json": body_json, "teams": body_teams, "slack": body_slack}


class WebhookSink:
    def __init__(self, options: WebhookOptions) -> None:
        import requests  # the collector's HTTP client; imported when a webhook is configured

        self.options = options
        self._session = requests.Session()
        self._session.verify = str(options.ca_file) if options.ca_file else True

    def send(self, notice: Notice) -> Outcome:
        import requests

        options = self.options
        body = json.dumps(_BODIES[options.format](notice), default=str, ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "hezo-collector",
            "Idempotency-Key": notice.key,
            "X-Hezo-Delivery": notice.key,
            "X-Hezo-Event": notice.event,
            "X-Hezo-Timestamp": timestamp,
        }
        if options.secret is not None:
            secret = options.secret.get_secret_value().encode()
            headers["X-Hezo-Signature"] = signature(secret, timestamp, body)
        try:
            answer = self._session.post(
                str(options.url), data=body, headers=headers, timeout=options.timeout, allow_redirects=False
            )
        except requests.exceptions.SSLError as exc:
            return Retry(f"TLS with {options.url.host} failed: {_short(exc)}")
        except requests.RequestException as exc:
            return Retry(f"cannot reach {options.url.host}: {_short(exc)}")
        if 200 <= answer.status_code < 300:
            return Delivered(remote_ref=answer.headers.get("X-Request-Id"))
        return http_outcome(answer.status_code, answer.text, answer.headers.get("Retry-After"))

    def close(self) -> None:
        self._session.close()


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


def build(options: WebhookOptions) -> WebhookSink:
    return WebhookSink(options)
