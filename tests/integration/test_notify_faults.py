"""Notifications survive what goes wrong: a collector killed with a thousand pending delivers each once after
its restart, a sink down for ten minutes gets everything afterwards in order, and a sink that refuses ends in
dead-letter with the reason while the others keep flowing."""

import json
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from collector import tickets
from collector.config import CollectorConfig
from collector.notify import outbox
from collector.notify.dispatcher import Dispatcher
from collector.sla.terms import SlaContext
from tests.support.collector import T0, Clock, migrated_engine, serve
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.waiting import eventually
from tests.support.webhook import webhook_receiver

pytestmark = pytest.mark.integration


def open_tickets(engine: Engine, count: int, events: int = 1) -> list[str]:
    """``count`` tickets, each with ``events`` timeline entries (the opening first)."""
    numbers = []
    with engine.begin() as conn:
        for index in range(count):
            number = tickets.open_ticket(
                conn,
                tickets.Subject("hq", "room-1", f"device-{index}"),
                priority="critical",
                cause="device-down",
                opened_at=T0,
                response_due=T0 + timedelta(hours=1),
                evidence=None,
                text=f"device-{index} is down",
            )
            ticket_id = int(number.removeprefix("HZ-"))
            for step in range(1, events):
                tickets.add_entry(conn, ticket_id, T0 + timedelta(seconds=step), "note", f"step {step}")
            numbers.append(number)
    return numbers


def hook_config(url: str, **notify: Any) -> dict[str, Any]:
    """A config with one webhook sink ``desk`` at ``url`` that every event goes to (or ``routes``)."""
    settings = {
        "sinks": {"desk": {"type": "webhook", "url": url, "timeout": 5}},
        "routes": [{"sinks": ["desk"]}],
    }
    return {"notify": settings | notify}


def test_a_collector_killed_with_a_thousand_pending_delivers_each_once_after_its_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    engine = migrated_engine(tmp_path)
    open_tickets(engine, 1000)
    engine.dispose()
    with webhook_receiver() as receiver:
        receiver.delay = 0.005  # slow enough to stop the collector halfway
        config = {
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "client_id": "notify-kill"},
            "store": {"url": f"sqlite:///{tmp_path / 'collector.db'}"},
            "web": {"host": "127.0.0.1", "port": free_port()},
            # Only the openings: the SLA rule may add entries of its own to these tickets meanwhile.
            **hook_config(receiver.url, routes=[{"sinks": ["desk"], "events": ["opened"]}]),
        }
        path = tmp_path / "collector.yaml"
        path.write_text(yaml.safe_dump(config))
        first = serve(path, tmp_path)
        try:
            eventually("a third delivered", lambda: len(receiver.requests) >= 300, timeout=60)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        delivered_before = len(receiver.requests)
        assert delivered_before < 1000, "the kill came too late to test anything"
        second = serve(path, tmp_path)
        try:
            keys = receiver.wait_keys(1000, timeout=120)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        counts = Counter(receiver.keys())
    assert len(keys) == 1000
    # Only what was on the wire when the collector died can arrive twice, and with the same key.
    assert sum(count - 1 for count in counts.values()) <= 1
    assert "Traceback" not in (tmp_path / "collector.log").read_text()


def test_a_sink_down_for_ten_minutes_gets_everything_after_in_order_per_ticket(tmp_path: Path) -> None:
    engine = migrated_engine(tmp_path)
    numbers = open_tickets(engine, 5, events=4)
    clock = Clock(T0)
    with webhook_receiver() as receiver:
        settings = CollectorConfig.model_validate(hook_config(receiver.url))
        notify = Dispatcher(engine, settings, SlaContext.from_config(settings), now=clock)
        receiver.status = 503
        for _ in range(20):  # ten minutes, the dispatcher trying whenever a retry is due
            notify.route()
            notify.deliver("desk")
            clock.advance(30)
        assert receiver.requests == []
        receiver.status = 200
        for _ in range(40):
            notify.route()
            notify.deliver("desk")
            clock.advance(30)
        notify.stop()
        documents = [json.loads(request.body) for request in receiver.wait(20)]
    for number in numbers:
        kinds = [
            document["entry"]["text"] for document in documents if document["ticket"]["number"] == number
        ]
        assert kinds == [f"device-{numbers.index(number)} is down", "step 1", "step 2", "step 3"]


def test_a_sink_that_refuses_ends_in_dead_letter_and_the_other_keeps_flowing(tmp_path: Path) -> None:
    engine = migrated_engine(tmp_path)
    open_tickets(engine, 3)
    with webhook_receiver() as refusing, webhook_receiver() as working:
        refusing.status = 403
        settings = CollectorConfig.model_validate(
            {
                "notify": {
                    "sinks": {
                        "broken": {"type": "webhook", "url": refusing.url},
                        "desk": {"type": "webhook", "url": working.url},
                    },
                    "routes": [{"sinks": ["broken", "desk"]}],
                }
            }
        )
        notify = Dispatcher(engine, settings, SlaContext.from_config(settings), now=Clock(T0))
        notify.route()
        notify.deliver("broken")
        notify.deliver("desk")
        notify.stop()
        assert len(working.wait(3)) == 3
    with engine.connect() as conn:
        dead = outbox.list_deliveries(conn, status="dead")
    assert {row["sink"] for row in dead} == {"broken"}
    assert len(dead) == 3
    assert all(row["last_error"].startswith("HTTP 403") for row in dead)
