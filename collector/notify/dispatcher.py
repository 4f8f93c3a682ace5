"""The dispatcher: routes the outbox into deliveries and delivers them, one thread per sink, so a slow or dead
sink never holds up another.

A delivery is sent, then recorded. A collector killed in between sends it again after its restart, with the
same idempotency key: a far side that keeps keys (a webhook receiver, an e-mail's Message-ID) sees one
message. Temporary failures are retried with doubling delays and jitter; permanent ones, or temporary ones
past the retry limit, go to dead-letter with the reason (``hezo-collector outbox retry`` sends them again).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from collector.config import CollectorConfig
from collector.metrics import Metrics
from collector.notify import outbox
from collector.notify.desks import Follower, desks_of
from collector.notify.notices import notice_for
from collector.notify.updates import CustomerUpdates
from collector.sinks import build_sink
from collector.sinks.base import Failed, Notice, Outcome, Sink
from collector.sla.terms import SlaContext
from collector.store.database import utcnow

log = logging.getLogger(__name__)

#: Seconds between two looks at the outbox when nothing woke the dispatcher.
POLL = 0.5
#: Seconds between two looks for customer updates that are due.
UPDATES_EVERY = 10.0


class Dispatcher:
    """Delivers the outbox to the configured sinks; ``start()`` and ``stop()`` its threads."""

    def __init__(
        self,
        engine: Engine,
        config: CollectorConfig,
        context: SlaContext,
        *,
        sinks: dict[str, Sink] | None = None,
        metrics: Metrics | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.settings = config.notify
        self.calendars = context.calendars
        web = config.web
        self.base_url = self.settings.public_url or f"http://{web.host}:{web.port}"
        self.contacts = {name: site.contact for name, site in config.sites.items() if site.contact}
        if sinks is None:
            sinks = {name: build_sink(options) for name, options in self.settings.sinks.items()}
        self.sinks = sinks
        #: Who holds the leases this dispatcher takes: its collector's MQTT client id, stable over restarts.
        self.owner = config.mqtt.client_id
        self._metrics = metrics
        self._now = now
        self.follower = Follower(engine, desks_of(sinks), context, now=now)
        self.updates = CustomerUpdates(
            engine, self.settings.customer_updates, context, self.contacts, now=now
        )
        self._followed_at: datetime | None = None
        self._updated_at: datetime | None = None
        self._stopping = threading.Event()
        self._wake = {name: threading.Event() for name in self.sinks}
        self._threads = [threading.Thread(target=self._route_loop, name="hezo-notify-router", daemon=True)]
        self._threads += [
            threading.Thread(target=self._sink_loop, args=(name,), name=f"hezo-notify-{name}", daemon=True)
            for name in self.sinks
        ]

    def start(self) -> None:
        if not self.sinks:
            return  # nothing is routed without sinks; the outbox keeps the events for when there are
        with self.engine.begin() as conn:
            freed = outbox.release(conn, self.owner)
        if freed:
            log.info("%d notifications taken before a stop are to be sent again", freed)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for event in self._wake.values():
            event.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
        for sink in self.sinks.values():
            sink.close()

    # -- one step each, also what tests call ------------------------------------------------------------

    def route(self) -> int:
        """Route the outbox entries not routed yet; wake the sinks that got deliveries."""
        with self.engine.begin() as conn:
            routed = outbox.route_new(conn, self.settings.routes, self.calendars, self._now(), self.contacts)
        if routed:
            for event in self._wake.values():
                event.set()
        return routed

    def deliver(self, sink: str) -> int:
        """Attempt every delivery of ``sink`` that is due now; how many were attempted."""
        now = self._now()
        with self.engine.begin() as conn:
            claimed = outbox.claim_due(conn, sink, now, lease=self.settings.lease, owner=self.owner)
        for due in claimed:
            with self.engine.connect() as conn:
                notice = notice_for(conn, due, base_url=self.base_url, calendars=self.calendars)
            outcome = self._send(sink, notice)
            at = self._now()
            with self.engine.begin() as conn:
                status = outbox.record(conn, due, outcome, at, self.settings.retry)
            self._count(sink, status, outcome, notice.entry["at"], at)
        return len(claimed)

    def _send(self, sink: str, notice: Notice) -> Outcome:
        try:
            return self.sinks[sink].send(notice)
        except Exception as exc:  # a sink's own bug must not stop its thread: dead-letter it, with the reason
            log.exception("sink %s failed on a notice", sink)
            return Failed(f"the {sink} sink failed: {type(exc).__name__}: {exc}")

    def _count(self, sink: str, status: str, outcome: Outcome, created: datetime, at: datetime) -> None:
        if status == outbox.DEAD:
            log.warning("notification to %s given up: %s", sink, getattr(outcome, "reason", ""))
        if self._metrics is None:
            return
        self._metrics.notify_outcomes.labels(sink=sink, status=status).inc()
        if status == outbox.SENT:
            self._metrics.notify_latency.labels(sink=sink).observe(max(0.0, (at - created).total_seconds()))

    def publish_counts(self) -> None:
        """Set the per-sink gauges of pending, sent and dead deliveries from the store."""
        if self._metrics is None:
            return
        with self.engine.connect() as conn:
            found = outbox.counts(conn)
        for name in self.sinks:
            for status in (outbox.PENDING, outbox.SENT, outbox.DEAD):
                self._metrics.notify_deliveries.labels(sink=name, status=status).set(
                    found.get((name, status), 0)
                )

    # -- threads -----------------------------------------------------------------------------------------

    def housekeeping(self) -> None:
        """What the router thread does besides routing: customer updates when due (every ``UPDATES_EVERY``
        seconds) and, every ``notify.follow_every`` seconds, a round over the desks."""
        now = self._now()
        if self._updated_at is None or (now - self._updated_at).total_seconds() >= UPDATES_EVERY:
            self._updated_at = now
            self.updates.run()
        if self.follower.desks and (
            self._followed_at is None
            or (now - self._followed_at).total_seconds() >= self.settings.follow_every
        ):
            self._followed_at = now
            self.follower.follow()

    def _route_loop(self) -> None:
        while not self._stopping.wait(POLL):
            try:
                self.housekeeping()
                self.route()
                self.publish_counts()
            except Exception:  # the store or a desk may be busy or away: try again at the next round
                log.exception("routing notifications failed; trying again")

    def _sink_loop(self, sink: str) -> None:
        wake = self._wake[sink]
        while not self._stopping.is_set():
            try:
                attempted = self.deliver(sink)
            except Exception:
                log.exception("delivering to %s failed; trying again", sink)
                attempted = 0
            if not attempted:
                wake.wait(POLL * 2)
                wake.clear()
