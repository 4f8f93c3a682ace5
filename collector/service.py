"""One running collector: store, ingest worker, MQTT subscriber and the incident evaluator thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from collector.config import CollectorConfig
from collector.incidents import IncidentEngine
from collector.ingest import Ingest
from collector.metrics import Metrics
from collector.mqtt import Subscriber
from collector.store import make_engine, migrate, utcnow

log = logging.getLogger(__name__)


class CollectorService:
    """Everything but the web server. ``start()`` migrates and starts the threads; ``stop()`` ends them."""

    def __init__(
        self,
        config: CollectorConfig,
        *,
        engine: Engine | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.engine = engine if engine is not None else make_engine(config.store.url)
        self.metrics = Metrics()
        self.ingest = Ingest(self.engine, self.metrics, config.mqtt.prefix)
        self.incidents = IncidentEngine(
            self.engine,
            confirm_window=config.incidents.confirm_window,
            critical_response_hours=config.incidents.critical_response_hours,
            metrics=self.metrics,
            now=now,
        )
        self.subscriber = Subscriber(config.mqtt, self.ingest.handle, metrics=self.metrics, now=now)
        self._stopping = threading.Event()
        self._evaluator = threading.Thread(
            target=self._evaluate_loop, name="hezo-collector-incidents", daemon=True
        )

    def start(self) -> None:
        migrate(self.engine)
        self.subscriber.start()
        self._evaluator.start()

    def stop(self) -> None:
        self._stopping.set()
        self.subscriber.stop()
        if self._evaluator.is_alive():
            self._evaluator.join()
        self.engine.dispose()

    def _evaluate_loop(self) -> None:
        while not self._stopping.wait(self.config.incidents.evaluate_every):
            try:
                self.incidents.evaluate()
            except Exception:
                # A database hiccup must not end ticketing; the next round tries again.
                log.exception("incident evaluation failed")
