"""With several collectors, a collector decides only the sites it owns (``owns``, from its leases): another
collector's site gets no ticket from it, its own sites get theirs, and it reads only its own partitions'
devices (``share``), so those another collector has yet to look at cannot crowd them out."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from collector import tickets
from collector.cluster.partitions import partition_of
from collector.incidents import engine as engine_module
from collector.incidents.engine import IncidentEngine
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.store.schema import CAUSE_AGENT_SILENT, CAUSE_DEVICE_DOWN
from tests.support.collector import RALLY_BAR, Clock, FakeAgent

CONFIRM = 60.0


def engines(engine: Engine, clock: Clock) -> tuple[IncidentEngine, IncidentEngine]:
    """The collector owning site ``hq``, and the one owning every other site."""
    ours = IncidentEngine(engine, confirm_window=CONFIRM, now=clock, owns=lambda site: site == "hq")
    theirs = IncidentEngine(engine, confirm_window=CONFIRM, now=clock, owns=lambda site: site != "hq")
    return ours, theirs


def opened(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return sorted((t["site"], t["cause"]) for t in tickets.list_tickets(conn))


def test_a_down_device_is_ticketed_only_by_the_collector_owning_its_site(
    engine: Engine, metrics: Metrics
) -> None:
    clock = Clock()
    ingest = Ingest(engine, metrics, "hezo/v1")
    agent = FakeAgent(site="hq")
    ingest.handle(*agent.birth(at=clock()), received_at=clock())
    ingest.handle(*agent.state("down", at=clock()), received_at=clock())
    clock.advance(CONFIRM + 1)
    ours, theirs = engines(engine, clock)
    theirs.evaluate()
    assert opened(engine) == []
    assert ours.evaluate()
    assert opened(engine) == [("hq", CAUSE_DEVICE_DOWN)]


def test_a_silent_site_is_ticketed_and_recovered_only_by_its_owner(engine: Engine, metrics: Metrics) -> None:
    clock = Clock()
    ingest = Ingest(engine, metrics, "hezo/v1")
    agent = FakeAgent(site="hq")
    ingest.handle(*agent.birth(at=clock()), received_at=clock())
    ingest.handle(*agent.will(), received_at=clock())
    clock.advance(600)
    ours, theirs = engines(engine, clock)
    theirs.evaluate()
    assert opened(engine) == []
    ours.evaluate()
    assert opened(engine) == [("hq", CAUSE_AGENT_SILENT)]
    theirs.evaluate()  # the site is not its: it must not recover a ticket it did not open
    with engine.connect() as conn:
        assert [t["status"] for t in tickets.list_tickets(conn)] == ["open"]


def test_devices_another_collector_has_yet_to_look_at_do_not_crowd_out_its_own(
    engine: Engine, metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "DEVICES_PER_EVALUATION", 3)
    theirs_site = next(site for site in (f"site-{n}" for n in range(100)) if partition_of(site, 2) == 1)
    ours_site = next(site for site in (f"site-{n}" for n in range(100)) if partition_of(site, 2) == 0)
    clock = Clock()
    ingest = Ingest(engine, metrics, "hezo/v1")
    devices = [{**RALLY_BAR, "id": f"dev-{n}", "serial": f"S{n}"} for n in range(5)]
    theirs = FakeAgent(site=theirs_site, devices=devices)
    ingest.handle(*theirs.birth(at=clock()), received_at=clock())
    for device in devices:  # down first: due before ours, more of them than one evaluation takes
        ingest.handle(*theirs.state("down", at=clock(), device=device["id"]), received_at=clock())
    clock.advance(1)
    ours = FakeAgent(site=ours_site)
    ingest.handle(*ours.birth(at=clock()), received_at=clock())
    ingest.handle(*ours.state("down", at=clock()), received_at=clock())
    clock.advance(CONFIRM + 1)
    collector = IncidentEngine(
        engine,
        confirm_window=CONFIRM,
        now=clock,
        owns=lambda site: partition_of(site, 2) == 0,
        share=lambda: (2, frozenset({0})),
    )
    assert collector.evaluate()
    assert opened(engine) == [(ours_site, CAUSE_DEVICE_DOWN)]
    assert collector.last.looked_at == 1
