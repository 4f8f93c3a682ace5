"""One running collector: store, the single writer thread, the MQTT session (in a receiver process or a
thread) and the evaluation timer."""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine

from collector.cluster.leases import Leases
from collector.cluster.ownership import Ownership
from collector.config import CollectorConfig
from collector.incidents.engine import IncidentEngine
from collector.ingest.jetstream import JetStreamReceiver
from collector.ingest.natsconnect import open_mqtt_once
from collector.ingest.pipeline import Ingest, RepublishWanted, RequestRepublish, transient
from collector.ingest.receiver import Receiver
from collector.ingest.session import SessionSettings
from collector.ingest.subscriber import Subscriber
from collector.ingest.writer import Job, Writer
from collector.metrics import Metrics
from collector.notify.dispatcher import Dispatcher
from collector.registry import contracts, maintenance
from collector.remote.commander import Commander
from collector.remote.evidence import Evidence
from collector.remote.replies import Replies
from collector.remote.retention import Retention
from collector.sla.terms import SlaContext
from collector.store.database import make_engine, migrate, utcnow
from collector.store.retention import Expiry

log = logging.getLogger(__name__)

#: Seconds between two ``republish-state`` commands to one agent: a burst of gaps needs one answer.
REPUBLISH_EVERY = 60.0
#: Seconds with messages waiting and none stored before /healthz says the writer is stuck.
STALLED_AFTER = 30.0
#: Seconds between two prunings of the rejected messages (ingest.rejected_keep_days, rejected_max_rows).
PRUNE_EVERY = 3600.0


class CollectorService:
    """Everything but the web server. ``start()`` migrates and starts the threads; ``stop()`` ends them.

    Only the writer thread writes: it stores messages and, when the timer queues one, runs an evaluation
    of the ticket rule between two messages, never during one.
    """

    def __init__(
        self,
        config: CollectorConfig,
        *,
        engine: Engine | None = None,
        now: Callable[[], datetime] = utcnow,
        request_republish: RequestRepublish | None = None,
    ) -> None:
        """``request_republish(site, agent)`` is called once per gap seen in an agent's messages; by default
        it counts and logs the gap (``RepublishWanted``) and, when remote diagnostics are on, sends the agent
        a signed ``republish-state`` command, at most once per ``REPUBLISH_EVERY`` seconds per agent."""
        self.config = config
        self.engine = engine if engine is not None else make_engine(config.store.url)
        self.metrics = Metrics()
        self.metrics.watch_store(self.engine, now=now)
        self.commander = Commander(self.engine, config, now=now)
        self.retention = Retention(self.engine, config.diagnostics, now=now)
        #: Store retention (docs/retention.md): partitions at start, a run every ``retention.every_minutes``.
        self.expiry = Expiry(self.engine, config.retention, now=now)
        self.ingest = Ingest(
            self.engine,
            self.metrics,
            config.mqtt.prefix,
            request_republish=request_republish or self._republish_after_gap,
            settings=config.ingest,
        )
        self.ingest.on_reply = Replies(self.engine).handle
        self._gap_seen = RepublishWanted(self.metrics)
        self._republished_at: dict[tuple[str, str], datetime] = {}
        self._now = now
        self.sla = SlaContext.from_config(config)
        self.ownership = _ownership(self.engine, config, self._drained)
        self.incidents = IncidentEngine(
            self.engine,
            confirm_window=config.incidents.confirm_window,
            reopen_window=config.incidents.reopen_window,
            metrics=self.metrics,
            now=now,
            on_ticket_opened=Evidence(self.commander).on_ticket_opened,
            rules=config.incidents,
            context=self.sla,
            owns=self.ownership.owns if self.ownership is not None else None,
            share=self.ownership.share if self.ownership is not None else None,
            lagging=self._backlogged,
        )
        self.writer = Writer(
            self.ingest.handle,
            self.ingest.keep_unstorable,
            metrics=self.metrics,
            handle_batch=self.ingest.handle_batch,
            batch_size=config.store.batch_size,
            batch_wait=config.store.batch_wait_ms / 1000,
            flush_acks=self._flush_acks,
            transient=transient,
        )
        self.notify = Dispatcher(self.engine, config, self.sla, metrics=self.metrics, now=now)
        self.subscriber: Subscriber | Receiver | JetStreamReceiver
        if config.cluster.backbone == "jetstream" and config.cluster.nats is not None:
            assert self.ownership is not None  # the config requires cluster.enabled with it
            self.subscriber = JetStreamReceiver(
                config.cluster.nats,
                config.mqtt.prefix,
                self.writer,
                self.ownership,
                now=now,
                make_streams=functools.partial(open_mqtt_once, SessionSettings.of(config.mqtt)),
            )
        elif config.mqtt.receiver == "process":
            self.subscriber = Receiver(config.mqtt, self.writer, now=now, metrics=self.metrics)
        else:
            self.subscriber = Subscriber(config.mqtt, self.writer, now=now)
        self._stopping = threading.Event()
        self._evaluation_queued = threading.Event()
        self._timer = threading.Thread(target=self._timer_loop, name="hezo-collector-timer", daemon=True)

    def _flush_acks(self) -> None:
        if isinstance(self.subscriber, Receiver | JetStreamReceiver):
            self.subscriber.flush_acks()

    def _drained(self, partition: int) -> bool:
        """Whether a partition's messages in flight are all stored and acknowledged (to hand it back)."""
        if isinstance(self.subscriber, JetStreamReceiver):
            return self.subscriber.drained(partition)
        return True

    def _republish_after_gap(self, site: str, agent: str) -> None:
        """Count the gap, then ask the agent for its states again (writer thread, after the commit)."""
        self._gap_seen(site, agent)
        now = self._now()
        last = self._republished_at.get((site, agent))
        if last is not None and (now - last).total_seconds() < REPUBLISH_EVERY:
            return
        self._republished_at[(site, agent)] = now
        self.commander.request_republish(site, agent)

    def start(self) -> None:
        migrate(self.engine)
        with self.engine.begin() as conn:
            apply_registry(conn, self.config)
        log.info("store %s", self.engine.url.render_as_string(hide_password=True))
        self.writer.start()
        if self.ownership is not None:
            self.ownership.start()
        self.subscriber.start()
        self.commander.start()
        self.retention.start()
        self.expiry.start()
        self.notify.start()
        self._timer.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._timer.is_alive():
            self._timer.join()
        # Store and acknowledge what is queued while still connected, then leave (the session stays).
        self.writer.stop()
        self.subscriber.stop()
        if self.ownership is not None:
            self.ownership.stop()  # after the writer: what it stored is acknowledged first
        self.commander.stop()
        self.retention.stop()
        self.expiry.stop()
        self.notify.stop()
        self.engine.dispose()

    def health(self) -> str | None:
        """None when the writer thread runs and the broker connection is up; else what is wrong."""
        if not self.writer.alive():
            return "the writer thread is not running: nothing is stored or acknowledged"
        if self.ownership is not None and (problem := self.ownership.problem()) is not None:
            return problem
        if isinstance(self.subscriber, JetStreamReceiver) and (problem := self.subscriber.problem()):
            return problem
        if not self.subscriber.connected():
            if isinstance(self.subscriber, JetStreamReceiver):
                return "not connected to NATS"
            return f"not connected to the broker {self.config.mqtt.host}:{self.config.mqtt.port}"
        return self.writer.stalled(STALLED_AFTER)

    def _backlogged(self) -> bool:
        """Ingest is behind (its queue half full): the engine waits before confirming a device down."""
        return self.writer.backlogged()

    def _evaluate(self) -> None:
        self._evaluation_queued.clear()
        self.incidents.evaluate()
        done = self.incidents.last
        self.metrics.devices_evaluated.inc(done.looked_at)
        if done.more:
            # A backlog of due devices (a reconnect storm): the next evaluation now, behind the messages
            # queued meanwhile, rather than at the next tick, so the backlog drains at the writer's pace.
            self._queue_evaluation()

    def _queue_evaluation(self) -> None:
        """Queue an evaluation unless one waits already: a backlog of messages does not pile them up."""
        if not self._evaluation_queued.is_set():
            self._evaluation_queued.set()
            self.writer.put(Job(self._evaluate, "incident evaluation"))

    def _timer_loop(self) -> None:
        pruned = time.monotonic()
        while not self._stopping.wait(self.config.incidents.evaluate_every):
            self._queue_evaluation()
            if time.monotonic() - pruned >= PRUNE_EVERY:
                pruned = time.monotonic()
                self.writer.put(Job(self.ingest.prune_rejected, "rejected messages pruned"))


def _ownership(engine: Engine, config: CollectorConfig, drained: Callable[[int], bool]) -> Ownership | None:
    """The leases of this collector's partitions, with ``cluster.enabled``; a new holder name per start."""
    cluster = config.cluster
    if not cluster.enabled:
        return None
    holder = f"{cluster.node}-{secrets.token_hex(4)}"
    leases = Leases(engine, holder, ttl=cluster.lease_seconds)
    return Ownership(leases, cluster.partitions, ttl=cluster.lease_seconds, drained=drained)


def apply_registry(conn: Connection, config: CollectorConfig) -> None:
    """At every start, make the store's configured contracts and maintenance windows those of ``config``."""
    contracts.replace_configured(
        conn,
        [
            contracts.values(
                number=item.number,
                start=item.start,
                years=item.years,
                customer=item.customer,
                serials=item.serials,
                contact=item.contact,
            )
            for item in config.contracts
        ],
    )
    maintenance.replace_configured(
        conn,
        [
            maintenance.values(
                name=item.name,
                site=item.site,
                agent=item.agent,
                device=item.device,
                days=list(item.days) if item.days else None,
                start=item.start,
                end=item.end,
                starts_at=item.starts_at,
                ends_at=item.ends_at,
                reason=item.reason,
            )
            for item in config.maintenance
        ],
    )
