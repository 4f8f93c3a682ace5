"""Which partitions of the sites this collector holds, kept up by a thread of its own.

Each round (every third of the lease time) the collector renews its member lease and counts the collectors
alive, renews the partitions it holds, hands back those it holds beyond its fair share (``ceil(partitions /
collectors)``) once their work in flight is done (``drained``), and takes free or lapsed partitions up to
that share. A collector that dies stops renewing: its partitions lapse after the lease time and the others
take them in their next round, so a takeover happens within ``ttl + ttl / 3`` seconds.

A collector that cannot renew (the store is away) stops acting on its partitions before the lease can lapse
(``owned`` is empty once ``ttl - margin`` seconds have passed since the last renewal began), so two collectors
never decide the same site at once: one has stopped before the other may take over.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from collector.cluster.leases import PARTITION, Held, Leases
from collector.cluster.partitions import partition_of
from common.fnv import fnv1a32

log = logging.getLogger(__name__)

#: Of the lease time, the part a holder stops early by: room for a slow clock and for stopping its work.
MARGIN = 0.2


def partition_name(number: int) -> str:
    return f"{PARTITION}{number}"


class Ownership:
    """This collector's partitions. ``owns(site)`` is what the incident engine asks; ``owned()`` and
    ``generation(n)`` what the JetStream receiver follows; ``tick()`` is one round (the thread calls it)."""

    def __init__(
        self,
        leases: Leases,
        partitions: int,
        *,
        ttl: float,
        drained: Callable[[int], bool] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._leases = leases
        self.partitions = partitions
        self._ttl = ttl
        self._drained = drained
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._held: dict[int, Held] = {}
        self._leaving: set[int] = set()
        self._valid_until = 0.0
        self._failing = False
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hezo-collector-leases", daemon=True)
        #: Rounds completed: what a test counts to know a round has happened.
        self.rounds = 0

    # -- what others ask ----------------------------------------------------------------------------

    def owned(self) -> frozenset[int]:
        """The partitions this collector acts on now: held, not being handed back, renewed recently enough."""
        with self._lock:
            if self._monotonic() >= self._valid_until:
                return frozenset()
            return frozenset(self._held) - self._leaving

    def share(self) -> tuple[int, frozenset[int]]:
        """The number of partitions, and those this collector acts on now (``owned``)."""
        return self.partitions, self.owned()

    def owns(self, site: str) -> bool:
        """Whether this collector decides ``site``'s tickets now."""
        return partition_of(site, self.partitions) in self.owned()

    def problem(self) -> str | None:
        """What is wrong with the leases (for /healthz), or None."""
        return "cannot renew the leases in the store" if self._failing else None

    def generation(self, number: int) -> int | None:
        """The generation of partition ``number``'s lease as this collector holds it; None if not held."""
        with self._lock:
            held = self._held.get(number)
            return None if held is None else held.generation

    # -- the thread ------------------------------------------------------------------------------

    def start(self) -> None:
        """Take a first share now (so a collector starting alone decides at once), then keep it up."""
        self._round()
        self._thread.start()

    def stop(self) -> None:
        """End the thread and let every lease go, for the other collectors to take at once."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            self._held.clear()
            self._leaving.clear()
        try:
            self._leases.leave()
        except Exception:
            log.exception("could not hand back the leases; they lapse in %.0f s", self._ttl)

    def _run(self) -> None:
        while not self._stopping.wait(self._ttl / 3):
            self._round()

    def round(self) -> None:
        """One round (``tick``) that never raises: a failure is logged once and shown by ``problem``."""
        self._round()

    def _round(self) -> None:
        try:
            self.tick()
        except Exception as exc:  # noqa: BLE001 - the store away: try again next round, say so once
            if not self._failing:
                self._failing = True
                log.warning("cannot renew the leases (%s: %s); retrying", type(exc).__name__, exc)
            return
        if self._failing:
            self._failing = False
            log.info("leases renewed again")

    def tick(self) -> None:
        """One round: renew, hand back the surplus once drained, take up to the fair share."""
        began = self._monotonic()
        alive = self._leases.heartbeat()
        with self._lock:
            names = [partition_name(number) for number in self._held]
        renewed = {int(held.name.removeprefix(PARTITION)): held for held in self._leases.renew(names)}
        with self._lock:
            for number in sorted(set(self._held) - set(renewed)):
                log.warning("lost partition %d (its lease lapsed before it was renewed)", number)
            self._held = renewed
            self._leaving &= set(renewed)
            self._valid_until = began + self._ttl * (1 - MARGIN)
        self._hand_back()
        share = math.ceil(self.partitions / max(alive, 1))
        with self._lock:
            active = set(self._held) - self._leaving
            surplus = sorted(active, reverse=True)[: max(len(active) - share, 0)]
            self._leaving.update(surplus)
        for number in surplus:
            log.info("handing partition %d back: %d collectors share %d", number, alive, self.partitions)
        self._take(share - len(active))
        self.rounds += 1

    def _hand_back(self) -> None:
        with self._lock:
            leaving = sorted(self._leaving)
        for number in leaving:
            if self._drained is not None and not self._drained(number):
                continue
            self._leases.release(partition_name(number))
            with self._lock:
                self._held.pop(number, None)
                self._leaving.discard(number)
            log.info("partition %d handed back", number)

    def _take(self, wanted: int) -> None:
        if wanted <= 0:
            return
        with self._lock:
            held = set(self._held)
        # Each collector looks from its own starting point, so collectors starting together rarely race.
        start = fnv1a32(self._leases.holder.encode()) % self.partitions
        order = [(start + step) % self.partitions for step in range(self.partitions)]
        candidates = [partition_name(number) for number in order if number not in held]
        for name in self._leases.free(candidates):
            if wanted <= 0:
                break
            got = self._leases.acquire(name)
            if got is None:
                continue
            number = int(name.removeprefix(PARTITION))
            with self._lock:
                self._held[number] = got
            wanted -= 1
            log.info("took partition %d (generation %d)", number, got.generation)
