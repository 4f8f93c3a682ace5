"""/metrics from the store: each device's state and check figures, agents, tickets and their SLA clocks."""

from datetime import timedelta

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from collector.incidents.engine import IncidentEngine
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics, StoreCollector, read_fleet, read_summary
from tests.support.collector import T0, Clock, FakeAgent
from tests.support.promtool import check_metrics

RALLY = {"site": "hq", "agent": "room-101-pc", "device": "rally-bar-1", "model": "rally-bar"}


class Ticks:
    """A monotonic clock moved by hand, for the scrape cache."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def watched(engine: Engine, clock: Clock, ticks: Ticks | None = None) -> tuple[Metrics, StoreCollector]:
    """Metrics with both readings of the store in one registry (the devices' is returned)."""
    metrics = Metrics()
    store = StoreCollector(engine, now=clock, read=read_fleet, monotonic=ticks or Ticks(), cache_seconds=5.0)
    metrics.registry.register(store)
    metrics.registry.register(
        StoreCollector(engine, now=clock, read=read_summary, monotonic=ticks or Ticks())
    )
    return metrics, store


def test_a_down_device_is_up_0_with_its_state_and_failed_check(engine: Engine) -> None:
    clock, agent = Clock(T0), FakeAgent()
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    ingest.handle(*agent.birth(at=T0), T0)
    ingest.handle(*agent.state("down", at=T0), T0)
    clock.advance(30)
    metrics, _ = watched(engine, clock)
    assert value(metrics, "hezo_device_up", **RALLY) == 0.0
    assert value(metrics, "hezo_device_state", **RALLY, state="down") == 1.0
    assert value(metrics, "hezo_device_state", **RALLY, state="up") == 0.0
    assert value(metrics, "hezo_device_state_age_seconds", **RALLY) == 30.0
    assert value(metrics, "hezo_device_check_ok", **RALLY, driver="https") == 0.0
    assert value(metrics, "hezo_device_check_duration_seconds", **RALLY, driver="https") == 0.0008
    assert value(metrics, "hezo_agent_online", site="hq", agent="room-101-pc") == 1.0


def test_an_up_device_is_up_1(engine: Engine) -> None:
    clock, agent = Clock(T0), FakeAgent()
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    ingest.handle(*agent.birth(at=T0), T0)
    ingest.handle(*agent.state("up", at=T0), T0)
    metrics, _ = watched(engine, clock)
    assert value(metrics, "hezo_device_up", **RALLY) == 1.0
    assert value(metrics, "hezo_device_check_ok", **RALLY, driver="https") == 1.0


def test_an_open_critical_ticket_is_counted_with_its_response_clock(engine: Engine) -> None:
    clock, agent = Clock(T0), FakeAgent()
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    ingest.handle(*agent.birth(at=T0), T0)
    ingest.handle(*agent.state("down", at=T0), T0)
    clock.advance(60)
    IncidentEngine(engine, confirm_window=60, critical_response_hours=1, now=clock).evaluate()
    clock.advance(600)
    metrics, _ = watched(engine, clock)
    assert value(metrics, "hezo_tickets_open", priority="critical", status="open") == 1.0
    left = [
        (dict(labels), seconds)
        for (name, labels), seconds in samples(metrics).items()
        if name == "hezo_ticket_sla_seconds_left"
    ]
    assert len(left) == 1
    labels, seconds = left[0]
    assert (labels["priority"], labels["deadline"], labels["device"]) == (
        "critical",
        "response",
        "rally-bar-1",
    )
    # Opened at T0 + 60 s with a 1 h response time, read 600 s later.
    assert seconds == 3600 - 600


def test_scrapes_within_the_cache_period_read_the_store_once(engine: Engine) -> None:
    clock, agent, ticks = Clock(T0), FakeAgent(), Ticks()
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    ingest.handle(*agent.birth(at=T0), T0)
    ingest.handle(*agent.state("up", at=T0), T0)
    metrics, store = watched(engine, clock, ticks)
    assert value(metrics, "hezo_device_up", **RALLY) == 1.0
    ingest.handle(*agent.state("down", at=T0 + timedelta(seconds=1)), T0 + timedelta(seconds=1))
    ticks.now += 4.9
    assert value(metrics, "hezo_device_up", **RALLY) == 1.0
    assert store.readings == 1
    ticks.now += 0.1
    assert value(metrics, "hezo_device_up", **RALLY) == 0.0
    assert store.readings == 2


def test_a_retired_device_has_no_series(engine: Engine) -> None:
    from sqlalchemy import update

    from collector.store.schema import devices

    clock, agent = Clock(T0), FakeAgent()
    Ingest(engine, Metrics(), "hezo/v1").handle(*agent.birth(at=T0), T0)
    with engine.begin() as conn:
        conn.execute(update(devices).values(retired_at=T0))
    metrics, _ = watched(engine, clock)
    assert not [key for key in samples(metrics) if key[0].startswith("hezo_device_")]


def test_promtool_finds_nothing_wrong_in_the_collectors_metrics(engine: Engine) -> None:
    clock, agent = Clock(T0), FakeAgent()
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    ingest.handle(*agent.birth(at=T0), T0)
    ingest.handle(*agent.state("down", at=T0), T0)
    clock.advance(60)
    metrics, _ = watched(engine, clock)
    IncidentEngine(
        engine, confirm_window=60, critical_response_hours=1, now=clock, metrics=metrics
    ).evaluate()
    text = generate_latest(metrics.registry).decode()
    assert "hezo_ticket_sla_seconds_left" in text
    result = check_metrics(text)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_metrics_has_the_fleets_totals_and_the_fleet_registry_each_device(engine: Engine) -> None:
    clock, agent = Clock(T0), FakeAgent()
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    ingest.handle(*agent.birth(at=T0), T0)
    ingest.handle(*agent.state("down", at=T0), T0)
    metrics = Metrics()
    metrics.watch_store(engine, now=clock)
    summary = generate_latest(metrics.registry).decode()
    fleet = generate_latest(metrics.fleet_registry).decode()
    assert 'hezo_devices{state="down"} 1.0' in summary
    assert 'hezo_devices{state="up"} 0.0' in summary
    assert 'hezo_agents{status="online"} 1.0' in summary
    assert "hezo_device_" not in summary
    assert "hezo_agent_online" not in summary
    assert value_in(fleet, "hezo_device_state", **RALLY, state="down") == 1.0
    assert "hezo_devices" not in fleet
    assert "hezo_tickets_open" not in fleet


def value_in(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None
