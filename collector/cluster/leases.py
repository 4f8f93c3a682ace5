"""Leases in the store: a named thing held by one collector until a time, taken over once that time passes.

Every statement is one conditional write (``UPDATE ... WHERE holder = me`` or ``WHERE expires_at < now``, or
``INSERT ... ON CONFLICT DO NOTHING``), so of two collectors trying at once exactly one gets the row: on
PostgreSQL the second waits for the first's row lock and re-checks its condition, on SQLite the file's write
lock puts them one after the other. Time is the database's own on PostgreSQL (``clock_timestamp()``), so
collectors on machines whose clocks disagree still agree on who holds what; on SQLite (one machine) it is the
collector's clock.

A holder gets a new ``generation`` whenever a lease changes hands (or its own lease had expired first): what
was done under an older generation may overlap with the new holder, and the new holder knows to start from
what was committed (``collector/ingest/jetstream.py`` starts a fresh consumer at the acknowledged floor).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, func, select, update

from collector.store.database import upsert_ignore, utcnow, write_transaction
from collector.store.schema import leases

PARTITION = "partition/"
MEMBER = "member/"


@dataclass(frozen=True)
class Held:
    """A lease this collector holds: its name, generation and when it lapses by the database's clock."""

    name: str
    generation: int
    expires_at: datetime


class Leases:
    """The lease table as one collector (``holder``) sees it; each method is one short transaction."""

    def __init__(
        self, engine: Engine, holder: str, *, ttl: float, now: Callable[[], datetime] | None = None
    ) -> None:
        if not holder or len(holder) > 128:
            raise ValueError(f"a lease holder's name has 1 to 128 characters, not {len(holder)}")
        self._engine = engine
        self.holder = holder
        self._ttl = timedelta(seconds=ttl)
        self._now = now

    def _clock(self, conn: Connection) -> datetime:
        return self._now() if self._now is not None else database_now(conn)

    def heartbeat(self) -> int:
        """Renew this collector's member lease; the number of collectors alive (this one included)."""
        with write_transaction(self._engine) as conn:
            now = self._clock(conn)
            name = MEMBER + self.holder
            renewed = conn.execute(
                update(leases).where(leases.c.name == name).values(expires_at=now + self._ttl)
            ).rowcount
            if not renewed:
                conn.execute(
                    upsert_ignore(conn, leases),
                    [self._row(name, 1, now)],
                )
            alive = conn.execute(
                select(func.count())
                .select_from(leases)
                .where(leases.c.name.startswith(MEMBER, autoescape=True), leases.c.expires_at > now)
            ).scalar_one()
        return int(alive)

    def renew(self, names: Iterable[str]) -> list[Held]:
        """Extend the leases among ``names`` this collector still holds; those it lost are left out."""
        names = list(names)
        if not names:
            return []
        with write_transaction(self._engine) as conn:
            now = self._clock(conn)
            rows = conn.execute(
                update(leases)
                .where(leases.c.name.in_(names), leases.c.holder == self.holder, leases.c.expires_at > now)
                .values(expires_at=now + self._ttl)
                .returning(leases.c.name, leases.c.generation, leases.c.expires_at)
            ).all()
        return [Held(row.name, row.generation, row.expires_at) for row in rows]

    def acquire(self, name: str) -> Held | None:
        """Take ``name`` if nobody holds it or its holder let it lapse; None if another collector holds it."""
        with write_transaction(self._engine) as conn:
            now = self._clock(conn)
            row = conn.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.expires_at <= now)
                .values(
                    holder=self.holder,
                    generation=leases.c.generation + 1,
                    acquired_at=now,
                    expires_at=now + self._ttl,
                )
                .returning(leases.c.generation, leases.c.expires_at)
            ).first()
            if row is not None:
                return Held(name, row.generation, row.expires_at)
            # RETURNING says whether this INSERT made the row; rowcount here is not to be trusted on psycopg.
            inserted = conn.execute(
                upsert_ignore(conn, leases).returning(leases.c.name), self._row(name, 1, now)
            ).first()
            if inserted is not None:
                return Held(name, 1, now + self._ttl)
        return None

    def release(self, name: str) -> None:
        """Let ``name`` go now (if this collector still holds it), for another collector to take at once."""
        with write_transaction(self._engine) as conn:
            now = self._clock(conn)
            conn.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.holder == self.holder)
                .values(expires_at=now)
            )

    def leave(self) -> None:
        """Let every lease of this collector go (a clean stop): its partitions are taken over at once."""
        with write_transaction(self._engine) as conn:
            now = self._clock(conn)
            conn.execute(
                update(leases)
                .where(leases.c.holder == self.holder, leases.c.expires_at > now)
                .values(expires_at=now)
            )

    def free(self, names: Iterable[str]) -> list[str]:
        """Which of ``names`` nobody holds now (never taken, or lapsed)."""
        names = list(names)
        with self._engine.begin() as conn:
            now = self._clock(conn)
            taken = set(
                conn.execute(
                    select(leases.c.name).where(leases.c.name.in_(names), leases.c.expires_at > now)
                ).scalars()
            )
        return [name for name in names if name not in taken]

    def holders(self) -> dict[str, str]:
        """Every lease held now, by name: its holder (for the CLI, the API and tests)."""
        with self._engine.begin() as conn:
            now = self._clock(conn)
            rows = conn.execute(select(leases.c.name, leases.c.holder).where(leases.c.expires_at > now))
            return {row.name: row.holder for row in rows}

    def _row(self, name: str, generation: int, now: datetime) -> dict[str, object]:
        return {
            "name": name,
            "holder": self.holder,
            "generation": generation,
            "acquired_at": now,
            "expires_at": now + self._ttl,
        }


def standing(engine: Engine) -> list[dict[str, object]]:
    """Every lease held now (by the database's clock on PostgreSQL): name, holder, generation, expiry."""
    with engine.begin() as conn:
        now = database_now(conn)
        rows = conn.execute(select(leases).where(leases.c.expires_at > now).order_by(leases.c.name))
        return [
            {
                "name": row.name,
                "holder": row.holder,
                "generation": row.generation,
                "expires_at": row.expires_at,
            }
            for row in rows
        ]


def database_now(conn: Connection) -> datetime:
    """The database's clock on PostgreSQL (the same for every collector), the collector's on SQLite."""
    if conn.dialect.name == "postgresql":
        value: datetime = conn.execute(select(func.clock_timestamp())).scalar_one()
        return value
    return utcnow()
