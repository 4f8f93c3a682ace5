"""A collector's store and dispatcher around one desk sink, for the desks' tests through the outbox and the
follower: open a ticket, deliver what is due, read the ticket's timeline."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from collector import tickets
from collector.config import CollectorConfig
from collector.notify.dispatcher import Dispatcher
from collector.sinks.base import Sink
from collector.sla.terms import SlaContext
from tests.support.collector import T0, Clock, migrated_engine
from tests.support.notices import kept


class Hezo:
    """A migrated store and a dispatcher whose only sink is ``sink``, named ``name``, routed everything."""

    def __init__(self, tmp_path: Path, name: str, sink: Sink) -> None:
        self.name = name
        self.engine: Engine = migrated_engine(tmp_path)
        config = CollectorConfig.model_validate(
            {"notify": {"routes": [{"sinks": [name]}], "sinks": {name: _placeholder()}}}
        )
        self.context = SlaContext.from_config(config)
        self.clock = Clock(T0)
        self.notify = Dispatcher(self.engine, config, self.context, sinks={name: sink}, now=self.clock)
        kept(self)  # closed, with its sink, when the test ends

    def open_ticket(self, priority: str = "high") -> str:
        with self.engine.begin() as conn:
            return tickets.open_ticket(
                conn,
                tickets.Subject("hq", "room-1", "rally-bar", "rally-bar", "2034FH1002R2", "HZ-C-1"),
                priority=priority,
                cause="device-down",
                opened_at=T0,
                response_due=T0 + timedelta(hours=4),
                evidence=None,
                text="rally-bar is down",
            )

    def step(self, number: str, action: str, by: str = "eve") -> None:
        with self.engine.begin() as conn:
            tickets.step(conn, number, action, by=by, now=self.clock(), context=self.context)

    def drain(self) -> None:
        """Route the outbox and deliver everything due to the sink."""
        self.notify.route()
        while self.notify.deliver(self.name):
            pass

    def follow(self) -> int:
        return self.notify.follower.follow()

    def ticket(self, number: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            found = tickets.get_ticket(conn, number)
        assert found is not None
        return found

    def entries(self, number: str) -> list[tuple[str, str, str]]:
        """(kind, by, text) of each timeline entry."""
        return [(entry["kind"], entry["by"], entry["text"]) for entry in self.ticket(number)["entries"]]

    def close(self) -> None:
        """Stop the dispatcher, which closes the sink (its connections), and the store."""
        self.notify.stop()
        self.engine.dispose()


def _placeholder() -> dict[str, Any]:
    """A valid sink entry for the config (routes must name a sink); the dispatcher is handed the real one."""
    return {"type": "webhook", "url": "http://127.0.0.1:9/unused"}
