"""The agent's durable outgoing spool: every message is on disk before it is published, until acknowledged.

One SQLite file in WAL mode (``sqlite3`` is in the standard library, so the agent stays light). A message is
written with its envelope bytes exactly as they go on the wire, so after a restart it is sent again with its
original identity ``(boot, seq)``. Rows leave the spool only when the broker acknowledged them (QoS 1 PUBACK).

Writes are not committed one by one: the link commits once per short interval (``commit_interval``), so a
burst of messages costs one fsync. What a power cut can lose is therefore bounded by that interval: messages
made in the last ``commit_interval`` seconds, never published (the link publishes only committed rows). An
acknowledgement not yet committed only makes a message be sent again, which the collector recognises.

The spool is bounded (``max_bytes``, payload plus topic). Past the cap the oldest *telemetry* not yet handed
to the broker is evicted and counted; births, deaths, states, events and replies are never evicted (they are
few, one per change, and without them the collector would hold a wrong state), so with nothing left to evict
the spool may go past its cap and says so in the log.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from agent.errors import AgentError

log = logging.getLogger(__name__)

#: Only this kind may be evicted when the spool is full.
EVICTABLE = "telemetry"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    boot TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    size INTEGER NOT NULL,
    UNIQUE (boot, seq)
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, boot, seq);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SpoolError(AgentError):
    """The spool file cannot be opened or created; the message names the file and why."""


@dataclass(frozen=True)
class Spooled:
    """One message waiting in the spool."""

    id: int
    boot: str
    seq: int
    kind: str
    topic: str
    payload: bytes
    retain: bool


class Spool:
    """A durable FIFO of outgoing messages, ordered by ``(boot, seq)``; use it from one thread.

    ``add`` and ``remove`` are not durable until ``commit``. ``next_after(key)`` returns the messages that
    follow ``key`` in ``(boot, seq)`` order, which is the order they are published in.
    """

    def __init__(self, path: str | Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are opened and committed here, explicitly.
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit is durable once the WAL is synced at checkpoint; a power cut can
            # lose the last commits, never corrupt the file. See the module docstring for what that means.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {exc}") from None
        self._in_transaction = False
        self._over_cap_logged = False
        row = self._db.execute("SELECT COALESCE(SUM(size), 0), COUNT(*) FROM outbox").fetchone()
        self.size, self.count = int(row[0]), int(row[1])

    # -- writing ----------------------------------------------------------------------------------

    def _begin(self) -> None:
        if not self._in_transaction:
            self._db.execute("BEGIN")
            self._in_transaction = True

    def add(
        self,
        boot: str,
        seq: int,
        kind: str,
        topic: str,
        payload: bytes,
        *,
        retain: bool,
        handed: tuple[str, int] | None = None,
    ) -> int:
        """Spool one message (not durable until ``commit``); evict old telemetry past the cap.

        ``handed``: messages up to this key were handed to the broker (they may be delivered already), so
        only telemetry after it is evicted.
        """
        self._begin()
        size = len(payload) + len(topic)
        cursor = self._db.execute(
            "INSERT INTO outbox (boot, seq, kind, topic, payload, retain, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (boot, seq, kind, topic, payload, int(retain), size),
        )
        self.size += size
        self.count += 1
        if self.size > self.max_bytes:
            self._evict(handed or ("", -1))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _evict(self, handed: tuple[str, int]) -> None:
        evicted = 0
        while self.size > self.max_bytes:
            rows = self._db.execute(
                "SELECT id, size FROM outbox WHERE kind = ? AND (boot, seq) > (?, ?) "
                "ORDER BY boot, seq LIMIT 256",
                (EVICTABLE, *handed),
            ).fetchall()
            if not rows:
                break
            for row_id, size in rows:
                if self.size <= self.max_bytes:
                    break
                self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                self.size -= size
                self.count -= 1
                evicted += 1
        if evicted:
            self._add_counter("evicted", evicted)
            self._add_counter("evicted_total", evicted)
            total = self.counter("evicted_total")
            if total == evicted or total // 1000 != (total - evicted) // 1000:
                log.warning(
                    "spool full (%d bytes, cap %d): evicted the oldest telemetry, %d messages so far",
                    self.size,
                    self.max_bytes,
                    total,
                )
        if self.size > self.max_bytes:
            if not self._over_cap_logged:
                log.warning(
                    "spool over its cap (%d bytes, cap %d) with no telemetry left to evict: "
                    "states, status and events are kept",
                    self.size,
                    self.max_bytes,
                )
                self._over_cap_logged = True
        else:
            self._over_cap_logged = False

    def remove(self, ids: list[int]) -> None:
        """Forget acknowledged messages (not durable until ``commit``)."""
        if not ids:
            return
        self._begin()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            freed = self._db.execute(
                f"SELECT COALESCE(SUM(size), 0), COUNT(*) FROM outbox WHERE id IN ({marks})",  # noqa: S608
                chunk,
            ).fetchone()
            self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)  # noqa: S608
            self.size -= int(freed[0])
            self.count -= int(freed[1])

    def commit(self) -> None:
        """Make everything added and removed so far durable, in one transaction."""
        if self._in_transaction:
            self._db.execute("COMMIT")
            self._in_transaction = False

    # -- counters ---------------------------------------------------------------------------------

    def _add_counter(self, name: str, amount: int) -> None:
        self._begin()
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, amount),
        )

    def counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def take_evicted(self) -> int:
        """Telemetry messages evicted since the last call (across restarts); resets the count.

        The reset is part of the current transaction: commit it with the message that reports the count.
        """
        evicted = self.counter("evicted")
        if evicted:
            self._begin()
            self._db.execute("UPDATE counters SET value = 0 WHERE name = 'evicted'")
        return evicted

    # -- reading ----------------------------------------------------------------------------------

    def next_after(self, key: tuple[str, int] | None, limit: int) -> list[Spooled]:
        """Up to ``limit`` messages after ``key`` in ``(boot, seq)`` order (from the start if None)."""
        columns = "id, boot, seq, kind, topic, payload, retain"
        if key is None:
            rows = self._db.execute(
                f"SELECT {columns} FROM outbox ORDER BY boot, seq LIMIT ?",  # noqa: S608
                (limit,),
            ).fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {columns} FROM outbox WHERE (boot, seq) > (?, ?) "  # noqa: S608
                "ORDER BY boot, seq LIMIT ?",
                (key[0], key[1], limit),
            ).fetchall()
        return [Spooled(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), bool(r[6])) for r in rows]

    def close(self) -> None:
        self.commit()
        self._db.close()
