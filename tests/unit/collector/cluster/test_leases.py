"""A lease is held by one collector until it lapses; then exactly one other takes it, a generation on."""

from datetime import datetime
from threading import Barrier, Thread

from sqlalchemy import Engine

from collector.cluster.leases import Leases
from tests.support.collector import Clock


def test_a_free_lease_is_taken_and_a_held_one_is_refused(store: Engine) -> None:
    clock = Clock()
    first, second = Leases(store, "a", ttl=10, now=clock), Leases(store, "b", ttl=10, now=clock)
    held = first.acquire("partition/0")
    assert held is not None
    assert held.generation == 1
    assert second.acquire("partition/0") is None
    assert first.holders() == {"partition/0": "a"}


def test_a_lapsed_lease_is_taken_over_with_the_next_generation(store: Engine) -> None:
    clock = Clock()
    first, second = Leases(store, "a", ttl=10, now=clock), Leases(store, "b", ttl=10, now=clock)
    first.acquire("partition/0")
    clock.advance(11)
    taken = second.acquire("partition/0")
    assert taken is not None
    assert taken.generation == 2
    assert first.renew(["partition/0"]) == []  # the first holder learns it lost it


def test_renewing_keeps_a_lease_past_its_first_expiry(store: Engine) -> None:
    clock = Clock()
    first, second = Leases(store, "a", ttl=10, now=clock), Leases(store, "b", ttl=10, now=clock)
    first.acquire("partition/0")
    clock.advance(8)
    assert [held.name for held in first.renew(["partition/0"])] == ["partition/0"]
    clock.advance(8)
    assert second.acquire("partition/0") is None


def test_a_released_lease_is_free_at_once(store: Engine) -> None:
    clock = Clock()
    first, second = Leases(store, "a", ttl=10, now=clock), Leases(store, "b", ttl=10, now=clock)
    first.acquire("partition/0")
    first.release("partition/0")
    assert second.free(["partition/0", "partition/1"]) == ["partition/0", "partition/1"]
    assert second.acquire("partition/0") is not None


def test_members_alive_are_counted_and_a_silent_one_drops_out(store: Engine) -> None:
    clock = Clock()
    first, second = Leases(store, "a", ttl=10, now=clock), Leases(store, "b", ttl=10, now=clock)
    assert first.heartbeat() == 1
    assert second.heartbeat() == 2
    clock.advance(11)
    assert second.heartbeat() == 1


def test_of_many_collectors_racing_for_one_lapsed_lease_exactly_one_gets_it(store: Engine) -> None:
    clock = Clock()
    Leases(store, "old", ttl=10, now=clock).acquire("partition/3")
    clock.advance(11)
    contenders = [Leases(store, f"c{n}", ttl=10, now=clock) for n in range(6)]
    barrier = Barrier(len(contenders))
    won: list[str] = []

    def race(leases: Leases) -> None:
        barrier.wait()
        if leases.acquire("partition/3") is not None:
            won.append(leases.holder)

    threads = [Thread(target=race, args=(leases,)) for leases in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert contenders[0].holders()["partition/3"] == won[0]


def test_on_postgresql_the_database_clock_decides(store: Engine) -> None:
    if store.dialect.name != "postgresql":
        return
    leases = Leases(store, "a", ttl=10)
    held = leases.acquire("partition/0")
    assert held is not None
    assert isinstance(held.expires_at, datetime)
    assert held.expires_at.tzinfo is not None
