"""Bundle retention: bundles past their ``expires_at`` are deleted (file and row, audited), and so are partial
uploads abandoned for longer than a command can live, by a thread of their own every ``EVERY`` seconds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select

from collector import audit
from collector.config import DiagnosticsConfig
from collector.store.database import utcnow
from collector.store.schema import bundles

log = logging.getLogger(__name__)

#: Seconds between two clean-ups.
EVERY = 600.0


class Retention:
    """``cleanup()`` once, or ``start()`` a thread that runs it every ``EVERY`` seconds until ``stop()``."""

    def __init__(
        self, engine: Engine, settings: DiagnosticsConfig, *, now: Callable[[], datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.settings = settings
        self._now = now
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hezo-collector-cleanup", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def cleanup(self) -> int:
        """Delete bundles past their retention and abandoned partial uploads; return how many bundles."""
        now = self._now()
        with self.engine.begin() as conn:
            expired = conn.execute(select(bundles).where(bundles.c.expires_at <= now)).all()
            for row in expired:
                Path(row.path).unlink(missing_ok=True)
                conn.execute(bundles.delete().where(bundles.c.id == row.id))
                audit.record(
                    conn,
                    now,
                    "bundle-deleted",
                    f"retention ended ({row.sha256[:12]})",
                    actor="retention",
                    site=row.site,
                    agent=row.agent,
                    command_id=row.command_id,
                )
        partial = self.settings.bundle_dir / "partial"
        if partial.is_dir():
            for path in partial.iterdir():
                age = now.timestamp() - path.stat().st_mtime
                if age > 2 * self.settings.command_ttl + 86400:
                    path.unlink(missing_ok=True)
        return len(expired)

    def _loop(self) -> None:
        while not self._stopping.wait(EVERY):
            try:
                self.cleanup()
            except Exception:
                log.exception("bundle cleanup failed; trying again later")
