"""``hezo-collector serve`` under systemd (``Type=notify``, ``WatchdogSec``; systemd/hezo-collector.service).

``READY=1`` once the web server answers; then ``WATCHDOG=1`` every half ``WatchdogSec`` while the collector
works: the writer thread runs and is not stuck behind waiting messages. A writer that died or hangs stops the
pings, and systemd restarts the collector (messages not yet acknowledged wait in the broker's session). A
broker outage does not stop them: the session reconnects by itself, and a restart would not bring the broker
back. ``STOPPING=1`` when it is asked to stop. Outside systemd nothing is sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from common.sdnotify import notify, watchdog_interval

log = logging.getLogger(__name__)

#: Seconds between two looks at whether the web server has started.
STARTED_POLL = 0.1


class Watchdog:
    """Tells systemd the collector is ready, alive and stopping; ``problem()`` is None while it works."""

    def __init__(
        self,
        started: Callable[[], bool],
        problem: Callable[[], str | None],
        *,
        status: str = "serving",
        environ: dict[str, str] | None = None,
    ) -> None:
        self._started = started
        self._problem = problem
        self._status = status
        self._environ = environ
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hezo-collector-watchdog", daemon=True)
        #: Watchdog pings sent; what a test counts.
        self.pings = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """``STOPPING=1``, and the thread ends."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        notify("STOPPING=1", self._environ)

    def _run(self) -> None:
        while not self._started():
            if self._stop.wait(STARTED_POLL):
                return
        notify(f"READY=1\nSTATUS={self._status}", self._environ)
        interval = watchdog_interval(self._environ)
        if interval is None:
            return
        wrong: str | None = None
        while not self._stop.is_set():
            problem = self._problem()
            if problem is None:
                if wrong is not None:
                    log.info("working again: feeding systemd's watchdog")
                notify("WATCHDOG=1", self._environ)
                self.pings += 1
            elif wrong is None:
                log.error("not feeding systemd's watchdog (it restarts the collector): %s", problem)
            wrong = problem
            self._stop.wait(interval)
