"""Collectors share the partitions fairly, hand back what they hold beyond their share once drained, take
over a dead one's, and never act on the same partition at once."""

from pathlib import Path

from sqlalchemy import Engine

from collector.cluster.leases import Leases
from collector.cluster.ownership import Ownership
from collector.cluster.partitions import partition_of
from collector.store.database import make_engine
from tests.support.collector import Clock

TTL = 9.0


class Monotonic:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def collector(store: Engine, name: str, clock: Clock, mono: Monotonic, drained: set[int] | None = None):
    leases = Leases(store, name, ttl=TTL, now=clock)
    check = None if drained is None else (lambda number: number in drained)
    return Ownership(leases, 4, ttl=TTL, drained=check, monotonic=mono)


def advance(clock: Clock, mono: Monotonic, seconds: float) -> None:
    clock.advance(seconds)
    mono.value += seconds


def test_a_collector_alone_holds_every_partition(store: Engine) -> None:
    clock, mono = Clock(), Monotonic()
    alone = collector(store, "a", clock, mono)
    alone.tick()
    assert alone.owned() == {0, 1, 2, 3}
    assert alone.owns("any-site")


def test_a_second_collector_gets_half_once_the_first_has_drained_them(store: Engine) -> None:
    clock, mono = Clock(), Monotonic()
    drained: set[int] = set()
    first = collector(store, "a", clock, mono, drained)
    second = collector(store, "b", clock, mono)
    first.tick()
    second.tick()  # joins: nothing is free yet
    assert second.owned() == set()
    first.tick()  # sees two members: hands back two, but they are not drained yet
    assert len(first.owned()) == 2
    leaving = {0, 1, 2, 3} - first.owned()
    second.tick()
    assert second.owned() == set()  # still held by the first until drained
    drained.update(leaving)
    first.tick()
    second.tick()
    assert second.owned() == leaving
    assert first.owned() | second.owned() == {0, 1, 2, 3}
    assert not first.owned() & second.owned()


def test_a_dead_collectors_partitions_are_taken_over_after_the_lease_time(store: Engine) -> None:
    clock, mono = Clock(), Monotonic()
    first = collector(store, "a", clock, mono)
    second = collector(store, "b", clock, mono, drained={0, 1, 2, 3})
    second.tick()
    first.tick()
    second.tick()
    second.tick()
    first.tick()
    assert len(first.owned()) == 2
    assert len(second.owned()) == 2
    theirs = second.owned()
    generations = {number: second.generation(number) for number in theirs}
    # ``second`` dies: it renews no more. Until its leases lapse nobody else takes them.
    advance(clock, mono, TTL / 2)
    first.tick()
    assert first.owned().isdisjoint(theirs)
    advance(clock, mono, TTL / 2 + 1)
    first.tick()
    assert first.owned() == {0, 1, 2, 3}
    for number in theirs:
        assert first.generation(number) == generations[number] + 1


def test_a_collector_that_cannot_renew_stops_acting_before_its_lease_lapses(store: Engine) -> None:
    clock, mono = Clock(), Monotonic()
    first = collector(store, "a", clock, mono)
    first.tick()
    site = next(f"site-{n}" for n in range(100) if partition_of(f"site-{n}", 4) == 0)
    assert first.owns(site)
    mono.value += TTL * 0.85  # no round since (the store away): it must not act any more
    assert not first.owns(site)
    assert first.owned() == set()


def test_stopping_hands_every_partition_to_the_others_at_once(store: Engine) -> None:
    clock, mono = Clock(), Monotonic()
    first = collector(store, "a", clock, mono)
    second = collector(store, "b", clock, mono)
    first.tick()
    first.stop()
    second.tick()
    assert second.owned() == {0, 1, 2, 3}


def test_a_store_out_of_reach_is_a_problem_to_report_not_a_crash(tmp_path: Path) -> None:
    away = make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'collector.db'}")
    ownership = Ownership(Leases(away, "a", ttl=TTL), 4, ttl=TTL)
    assert ownership.problem() is None
    ownership.round()
    assert ownership.problem() == "cannot renew the leases in the store"
    assert ownership.owned() == set()
