"""Two collectors on one store, each holding half of the sites by lease: every ticket decision about a site
(recovery, closing, SLA warnings, event notes) is taken once, by the site's holder; once a holder's leases
lapse, the other takes its sites over and takes those decisions instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from collector import tickets
from collector.cluster.leases import Leases
from collector.cluster.ownership import Ownership
from collector.cluster.partitions import partition_of
from collector.config import IncidentsConfig
from collector.incidents.engine import IncidentEngine
from collector.incidents.evaluation import Context
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.sla.terms import SlaContext
from collector.store.schema import events
from tests.support.collector import T0, Clock, FakeAgent, boot_id

CONFIRM = 60.0
TTL = 9.0
PARTITIONS = 2


class Monotonic:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@dataclass
class Collector:
    """One collector as far as tickets go: its leases and its incident engine."""

    ownership: Ownership
    incidents: IncidentEngine
    site: str  # the site it holds when both are alive


@dataclass
class Cluster:
    clock: Clock  # the incidents' time
    lease_clock: Clock  # the leases' time (the database's, in a real cluster)
    mono: Monotonic
    ingest: Ingest
    a: Collector
    b: Collector
    agents: dict[str, FakeAgent]

    def go(self, message: tuple[str, bytes]) -> None:
        self.ingest.handle(*message, received_at=self.clock())

    def both(self) -> None:
        self.b.incidents.evaluate()
        self.a.incidents.evaluate()

    def kill_b(self) -> None:
        """``b`` stops renewing; once its leases lapse, ``a`` takes its partition at its next round."""
        self.lease_clock.advance(TTL + 1)
        self.mono.value += TTL + 1
        self.a.ownership.tick()


def two_sites() -> tuple[str, str]:
    """Two sites in different partitions."""
    first = "warsaw"
    other = next(
        site
        for site in (f"site-{n}" for n in range(100))
        if partition_of(site, PARTITIONS) != partition_of(first, PARTITIONS)
    )
    return first, other


@pytest.fixture
def cluster(engine: Engine, metrics: Metrics) -> Cluster:
    clock, lease_clock, mono = Clock(), Clock(), Monotonic()

    def ownership(name: str) -> Ownership:
        return Ownership(Leases(engine, name, ttl=TTL, now=lease_clock), PARTITIONS, ttl=TTL, monotonic=mono)

    first, second = ownership("a"), ownership("b")
    first.tick()  # alone: takes both partitions
    second.tick()  # joins: nothing free yet
    first.tick()  # two collectors: one partition is beyond its share
    first.tick()  # hands it back
    second.tick()  # and takes it
    assert len(first.owned()) == 1
    assert len(second.owned()) == 1
    sites = two_sites()
    [site_a] = [site for site in sites if first.owns(site)]
    [site_b] = [site for site in sites if second.owns(site)]

    def collector(owner: Ownership, site: str) -> Collector:
        return Collector(
            owner,
            IncidentEngine(engine, confirm_window=CONFIRM, now=clock, owns=owner.owns, share=owner.share),
            site,
        )

    ingest = Ingest(engine, metrics, "hezo/v1")
    agents = {site: FakeAgent(site=site) for site in sites}
    made = Cluster(
        clock, lease_clock, mono, ingest, collector(first, site_a), collector(second, site_b), agents
    )
    for agent in agents.values():
        made.go(agent.birth(at=clock()))
        made.go(agent.state("down", at=clock()))
    made.clock.advance(CONFIRM + 1)
    made.both()
    return made


def ticket_of(engine: Engine, site: str) -> dict[str, Any]:
    with engine.connect() as conn:
        [ticket] = [t for t in tickets.list_tickets(conn) if t["site"] == site]
    return ticket


def kinds(engine: Engine, site: str, kind: str) -> int:
    return sum(1 for entry in ticket_of(engine, site)["entries"] if entry["kind"] == kind)


def up(cluster: Cluster, site: str) -> None:
    cluster.go(cluster.agents[site].state("up", at=cluster.clock.advance(5)))


def reboot(engine: Engine, cluster: Cluster, site: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(events).values(
                site=site,
                agent="room-101-pc",
                boot=boot_id(1),
                seq=1000,
                ts=cluster.clock(),
                received_at=cluster.clock(),
                device="rally-bar-1",
                type="reboot",
                body={"type": "reboot", "device": "rally-bar-1", "reason": "switch port restarted"},
            )
        )


def test_each_collector_opens_only_its_own_sites_tickets(cluster: Cluster, engine: Engine) -> None:
    assert [ticket_of(engine, cluster.a.site)["number"]] == cluster.a.incidents.last.opened
    assert [ticket_of(engine, cluster.b.site)["number"]] == cluster.b.incidents.last.opened


def test_a_recovery_is_decided_once_by_its_sites_holder(cluster: Cluster, engine: Engine) -> None:
    up(cluster, cluster.a.site)
    up(cluster, cluster.b.site)
    cluster.both()
    cluster.both()
    assert cluster.a.incidents.evaluations == cluster.b.incidents.evaluations == 3
    for collector in (cluster.a, cluster.b):
        ticket = ticket_of(engine, collector.site)
        assert ticket["status"] == "recovered"
        assert kinds(engine, collector.site, "recovered") == 1


def test_recoveries_are_counted_by_the_holder_that_made_them(cluster: Cluster, engine: Engine) -> None:
    up(cluster, cluster.a.site)
    up(cluster, cluster.b.site)
    cluster.b.incidents.evaluate()
    assert cluster.b.incidents.last.recovered == [ticket_of(engine, cluster.b.site)["number"]]
    assert ticket_of(engine, cluster.a.site)["status"] == "open"  # not b's to recover
    cluster.a.incidents.evaluate()
    assert cluster.a.incidents.last.recovered == [ticket_of(engine, cluster.a.site)["number"]]


def test_an_sla_warning_is_noted_once_by_its_sites_holder(cluster: Cluster, engine: Engine) -> None:
    cluster.clock.advance(46 * 60)  # a Critical response is due an hour after opening; warned 15 min before
    cluster.b.incidents.evaluate()
    assert cluster.b.incidents.last.warned == [ticket_of(engine, cluster.b.site)["number"]]
    assert kinds(engine, cluster.a.site, "sla-warning") == 0
    cluster.a.incidents.evaluate()
    assert cluster.a.incidents.last.warned == [ticket_of(engine, cluster.a.site)["number"]]
    cluster.both()
    assert cluster.a.incidents.last.warned == cluster.b.incidents.last.warned == []
    assert kinds(engine, cluster.a.site, "sla-warning") == 1
    assert kinds(engine, cluster.b.site, "sla-warning") == 1


def test_a_recovered_ticket_is_closed_once_by_its_sites_holder(cluster: Cluster, engine: Engine) -> None:
    up(cluster, cluster.a.site)
    up(cluster, cluster.b.site)
    cluster.both()
    cluster.clock.advance(86400 + 1)  # the reopen window
    cluster.b.incidents.evaluate()
    assert cluster.b.incidents.last.closed == [ticket_of(engine, cluster.b.site)["number"]]
    assert ticket_of(engine, cluster.a.site)["status"] == "recovered"
    cluster.a.incidents.evaluate()
    assert cluster.a.incidents.last.closed == [ticket_of(engine, cluster.a.site)["number"]]
    cluster.both()
    for collector in (cluster.a, cluster.b):
        assert kinds(engine, collector.site, "closed") == 1


def test_an_event_is_noted_once_by_its_sites_holder(cluster: Cluster, engine: Engine) -> None:
    reboot(engine, cluster, cluster.b.site)
    cluster.both()
    cluster.both()
    assert kinds(engine, cluster.b.site, "reboot") == 1
    assert kinds(engine, cluster.a.site, "reboot") == 0


def test_a_dead_holders_recovery_is_taken_over_once_its_lease_lapses(
    cluster: Cluster, engine: Engine
) -> None:
    up(cluster, cluster.b.site)
    cluster.a.incidents.evaluate()
    assert ticket_of(engine, cluster.b.site)["status"] == "open"  # b holds it still, though it is dead
    cluster.kill_b()
    assert cluster.a.ownership.owned() == {0, 1}
    assert cluster.b.ownership.owned() == set()  # had it lived on without renewing, it would act no more
    cluster.b.incidents.evaluate()
    assert cluster.b.incidents.last.recovered == []
    cluster.a.incidents.evaluate()
    assert cluster.a.incidents.last.recovered == [ticket_of(engine, cluster.b.site)["number"]]
    assert kinds(engine, cluster.b.site, "recovered") == 1


def test_a_dead_holders_sla_warning_is_taken_over(cluster: Cluster, engine: Engine) -> None:
    cluster.kill_b()
    cluster.clock.advance(46 * 60)
    cluster.both()
    numbers = {ticket_of(engine, site)["number"] for site in (cluster.a.site, cluster.b.site)}
    assert set(cluster.a.incidents.last.warned) == numbers
    assert cluster.b.incidents.last.warned == []
    assert kinds(engine, cluster.b.site, "sla-warning") == 1


def test_an_event_the_dead_holder_left_is_noted_by_the_next_holder(cluster: Cluster, engine: Engine) -> None:
    reboot(engine, cluster, cluster.b.site)  # b dies before it looks at the event
    cluster.a.incidents.evaluate()
    assert kinds(engine, cluster.b.site, "reboot") == 0
    cluster.kill_b()
    cluster.a.incidents.evaluate()
    assert kinds(engine, cluster.b.site, "reboot") == 1


def test_an_event_the_dead_holder_noted_is_not_noted_again(cluster: Cluster, engine: Engine) -> None:
    reboot(engine, cluster, cluster.b.site)
    cluster.both()
    assert kinds(engine, cluster.b.site, "reboot") == 1
    cluster.kill_b()
    cluster.a.incidents.evaluate()
    cluster.a.incidents.evaluate()
    assert kinds(engine, cluster.b.site, "reboot") == 1


def test_a_ticket_another_collector_opened_first_is_skipped_not_an_error(engine: Engine) -> None:
    def context() -> Context:
        return Context(
            now=T0, rules=IncidentsConfig(), sla=SlaContext.default(), metrics=None, on_ticket_opened=None
        )

    subject = tickets.Subject("hq", "pc-1", "dev-1")
    with engine.begin() as conn:
        first = context().open(conn, subject, priority="high", cause="x", evidence=None, text="unstable")
    with engine.begin() as conn:
        second = context().open(conn, subject, priority="high", cause="x", evidence=None, text="unstable")
    assert first is not None
    assert second is None
    with engine.connect() as conn:
        assert [t["number"] for t in tickets.list_tickets(conn)] == [first]
