"""With several collectors, a collector decides only the sites it owns (``owns``, from its leases): another
collector's site gets no ticket from it, its own sites get theirs."""

from __future__ import annotations

from sqlalchemy import Engine

from collector import tickets
from collector.incidents.engine import IncidentEngine
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.store.schema import CAUSE_AGENT_SILENT, CAUSE_DEVICE_DOWN
from tests.support.collector import Clock, FakeAgent

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
