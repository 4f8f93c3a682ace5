"""A notice as the dispatcher hands it to a sink: one Critical ticket's event, for the sinks' tests."""

from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from collector.sinks.base import Delivered, Link, Notice, Sink

OPENED = datetime(2026, 12, 4, 14, 30, tzinfo=UTC)


def notice(event: str = "opened", **changes: Any) -> Notice:
    ticket = {
        "number": "HZ-000042",
        "priority": "critical",
        "status": "open",
        "site": "hq",
        "room": "Boardroom",
        "device": "rally-bar",
        "model": "rally-bar",
        "serial": "2034FH1002R2",
        "contract": "HZ-C-1",
        "opened_at": OPENED,
        "response_due": OPENED + timedelta(hours=1),
    }
    fields: dict[str, Any] = {
        "event": event,
        "ticket": ticket,
        "entry": {
            "at": OPENED,
            "kind": event,
            "text": "Rally Bar is down: connection refused",
            "by": "collector",
        },
        "key": f"hezo.HZ-000042.{7 if event != 'opened' else 1}.oncall",
        "thread": "hezo.HZ-000042",
        "url": "https://hezo.example/api/tickets/HZ-000042",
        "timezone": "Europe/Warsaw",
    }
    fields.update(changes)
    return Notice(**fields)


def just_opened(**ticket: Any) -> Notice:
    """The ``opened`` notice of a ticket opened a minute ago (a desk tells the tickets it made for this one
    from older ones by when they were made), with ``ticket`` fields changed."""
    opened_at = datetime.now(UTC) - timedelta(minutes=1)
    return notice(ticket={**notice().ticket, "opened_at": opened_at, **ticket})


S = TypeVar("S")

#: Sinks a test made, closed after it (``tests/conftest.py``): a sink left open keeps sockets that the
#: garbage collector would close later, in the middle of another test, with a ResourceWarning.
OPEN_SINKS: list[Any] = []


def kept(sink: S) -> S:
    """``sink``, to be closed when the test ends."""
    OPEN_SINKS.append(sink)
    return sink


def opened(sink: Sink) -> Link:
    """The link to the far side's record that ``sink`` made for a ticket just opened."""
    outcome = sink.send(just_opened())
    assert isinstance(outcome, Delivered)
    assert outcome.link is not None
    return outcome.link
