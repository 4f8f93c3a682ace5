"""The incident rules beyond a down device: silent agents, unstable devices, maintenance windows, contracts.

T0 is Tuesday 2026-11-24 21:00 UTC, 22:00 in Warsaw (the default site calendar).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from collector import tickets
from collector.config import IncidentsConfig, UnstableConfig
from collector.incidents.engine import IncidentEngine
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.registry import contracts, maintenance
from collector.sla.terms import SlaContext
from collector.store.schema import CAUSE_AGENT_SILENT, CAUSE_DEVICE_DOWN, CAUSE_DEVICE_UNSTABLE, events
from tests.support.collector import FAILED_CHECK, RALLY_BAR, T0, Clock, FakeAgent, boot_id

CONFIRM = 60.0


def rules(**changes: Any) -> IncidentsConfig:
    unstable = UnstableConfig(
        flap_count=3, flap_window=600, degraded_after=120, loss_after=120, reboot_count=3
    )
    return IncidentsConfig(confirm_window=CONFIRM, agent_silent_after=120, unstable=unstable, **changes)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ingest(engine: Engine, metrics: Metrics) -> Ingest:
    return Ingest(engine, metrics, "hezo/v1")


@pytest.fixture
def incidents(engine: Engine, clock: Clock, metrics: Metrics) -> IncidentEngine:
    return IncidentEngine(engine, confirm_window=CONFIRM, rules=rules(), metrics=metrics, now=clock)


@pytest.fixture
def agent(ingest: Ingest, clock: Clock) -> FakeAgent:
    agent = FakeAgent(devices=[dict(RALLY_BAR), {**RALLY_BAR, "id": "tap-1", "serial": "TAP1"}])
    go(ingest, clock, agent.birth(at=clock()))
    return agent


def go(ingest: Ingest, clock: Clock, message: tuple[str, bytes]) -> None:
    ingest.handle(*message, received_at=clock())


def all_tickets(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return tickets.list_tickets(conn)


def causes(engine: Engine) -> list[tuple[str, str, str]]:
    return sorted((t["cause"], t["device"], t["priority"]) for t in all_tickets(engine))


def confirm_down(ingest: Ingest, clock: Clock, agent: FakeAgent, *devices: str) -> None:
    for device in devices:
        go(ingest, clock, agent.state("down", at=clock(), device=device))
    clock.advance(CONFIRM + 1)


# -- silent agents ------------------------------------------------------------------------------


def test_a_dead_agent_with_down_devices_gives_one_site_incident_and_no_device_ticket(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("down", device="rally-bar-1", at=clock()))
    go(ingest, clock, agent.state("down", device="tap-1", at=clock()))
    go(ingest, clock, agent.will())
    clock.advance(300)
    incidents.evaluate()
    incidents.evaluate()
    assert causes(engine) == [(CAUSE_AGENT_SILENT, "", "high")]


def test_no_site_incident_before_the_agent_has_been_silent_long_enough(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.will())
    clock.advance(119)
    incidents.evaluate()
    assert all_tickets(engine) == []


def test_two_silent_agents_of_one_site_share_one_site_incident(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    other = FakeAgent(agent="room-102-pc")
    go(ingest, clock, other.birth(at=clock()))
    go(ingest, clock, agent.will())
    go(ingest, clock, other.will())
    clock.advance(300)
    incidents.evaluate()
    [ticket] = all_tickets(engine)
    assert "room-101-pc" in ticket["entries"][0]["text"]
    assert "room-102-pc" in ticket["entries"][0]["text"]


def test_the_site_incident_recovers_when_its_agents_are_back(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.will())
    clock.advance(300)
    incidents.evaluate()
    agent.restart()
    go(ingest, clock, agent.birth(at=clock.advance(10)))
    incidents.evaluate()
    [ticket] = all_tickets(engine)
    assert ticket["status"] == "recovered"


def test_an_agent_without_messages_for_the_heartbeat_timeout_is_silent(
    ingest: Ingest, engine: Engine, clock: Clock, agent: FakeAgent
) -> None:
    incidents = IncidentEngine(engine, confirm_window=CONFIRM, rules=rules(heartbeat_timeout=600), now=clock)
    go(ingest, clock, agent.state("down", at=clock()))
    clock.advance(601)
    incidents.evaluate()
    assert causes(engine) == [(CAUSE_AGENT_SILENT, "", "high")]


# -- maintenance windows ------------------------------------------------------------------------


def add_window(engine: Engine, **fields: Any) -> None:
    with engine.begin() as conn:
        maintenance.add(conn, maintenance.values(**fields))


def test_a_device_down_in_its_nightly_window_gets_no_ticket(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    add_window(
        engine, name="night", site="hq", days=["mon", "tue", "wed", "thu", "fri"], start="22:00", end="06:00"
    )
    confirm_down(ingest, clock, agent, "rally-bar-1")
    incidents.evaluate()
    assert all_tickets(engine) == []
    assert "maintenance window night" in incidents.last.held[("hq", "room-101-pc", "rally-bar-1")]


def test_a_device_still_down_when_the_window_ends_gets_its_ticket(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    add_window(engine, name="night", site="hq", days=["tue"], start="22:00", end="06:00")
    confirm_down(ingest, clock, agent, "rally-bar-1")
    clock.moment = T0 + timedelta(hours=8, minutes=1)  # Wednesday 06:01 in Warsaw
    incidents.evaluate()
    assert causes(engine) == [(CAUSE_DEVICE_DOWN, "rally-bar-1", "critical")]


def test_a_one_off_window_for_one_device_holds_that_device_only(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    add_window(
        engine,
        name="firmware",
        site="hq",
        agent="room-101-pc",
        device="rally-bar-1",
        starts_at=T0,
        ends_at=T0 + timedelta(hours=2),
    )
    confirm_down(ingest, clock, agent, "rally-bar-1", "tap-1")
    incidents.evaluate()
    assert causes(engine) == [(CAUSE_DEVICE_DOWN, "tap-1", "critical")]


def test_a_site_window_holds_back_the_site_incident(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    add_window(engine, name="power-off", site="hq", days=["tue"], start="21:00", end="07:00")
    go(ingest, clock, agent.will())
    clock.advance(600)
    incidents.evaluate()
    assert all_tickets(engine) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"days": ["tue"], "start": "22:00"},
        {"days": ["tue"], "start": "22:00", "end": "06:00", "starts_at": T0, "ends_at": T0 + timedelta(1)},
        {"days": ["someday"], "start": "22:00", "end": "06:00"},
        {"starts_at": T0, "ends_at": T0},
        {"device": "rally-bar-1", "days": ["tue"], "start": "22:00", "end": "06:00"},
    ],
)
def test_a_malformed_window_is_refused_with_a_reason(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        maintenance.values(name="bad", site="hq", **fields)


# -- contracts ----------------------------------------------------------------------------------


def register(engine: Engine, number: str, start: date, years: int) -> None:
    with engine.begin() as conn:
        contracts.put(conn, contracts.values(number=number, start=start, years=years))


def test_an_expired_contract_opens_no_ticket_and_says_why(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    register(engine, RALLY_BAR["contract"], date(2023, 11, 1), 3)  # ended on 2026-11-01
    confirm_down(ingest, clock, agent, "rally-bar-1")
    incidents.evaluate()
    assert all_tickets(engine) == []
    assert "expired on 2026-11-01" in incidents.last.held[("hq", "room-101-pc", "rally-bar-1")]


def test_an_active_contract_opens_the_ticket(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    register(engine, RALLY_BAR["contract"], date(2026, 1, 1), 1)
    confirm_down(ingest, clock, agent, "rally-bar-1")
    incidents.evaluate()
    assert causes(engine) == [(CAUSE_DEVICE_DOWN, "rally-bar-1", "critical")]


def test_a_device_without_a_contract_number_gets_no_ticket(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, engine: Engine
) -> None:
    agent = FakeAgent(devices=[{**RALLY_BAR, "contract": None}])
    go(ingest, clock, agent.birth(at=clock()))
    confirm_down(ingest, clock, agent, "rally-bar-1")
    incidents.evaluate()
    assert all_tickets(engine) == []


def test_an_unregistered_contract_is_held_when_configured_so(
    ingest: Ingest, engine: Engine, clock: Clock, agent: FakeAgent
) -> None:
    incidents = IncidentEngine(
        engine, confirm_window=CONFIRM, rules=rules(unregistered_contract="hold"), now=clock
    )
    confirm_down(ingest, clock, agent, "rally-bar-1")
    incidents.evaluate()
    assert all_tickets(engine) == []


def test_a_contract_covers_a_device_by_serial_when_the_agent_sends_no_number(engine: Engine) -> None:
    registry = contracts.Registry([contracts.Contract("HZ-9", date(2026, 1, 1), 2, None, ("SER1",))])
    cover = registry.coverage(None, "SER1", date(2026, 11, 24), 60)
    assert (cover.state, cover.number) == (contracts.ACTIVE, "HZ-9")


@pytest.mark.parametrize(
    ("today", "state"),
    [
        (date(2025, 12, 31), contracts.NOT_STARTED),
        (date(2026, 1, 1), contracts.ACTIVE),
        (date(2027, 11, 2), contracts.EXPIRING),  # 60 days before 2028-01-01
        (date(2027, 12, 31), contracts.EXPIRING),
        (date(2028, 1, 1), contracts.EXPIRED),
    ],
)
def test_coverage_follows_the_term(today: date, state: str) -> None:
    registry = contracts.Registry([contracts.Contract("HZ-9", date(2026, 1, 1), 2, None, ())])
    assert registry.coverage("HZ-9", None, today, 60).state == state


# -- unstable devices -----------------------------------------------------------------------------


def test_a_lost_peripheral_opens_a_high_ticket_once_it_lasts(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("degraded", at=clock()))
    incidents.evaluate()
    clock.advance(60)
    incidents.evaluate()
    assert all_tickets(engine) == []
    clock.advance(61)
    incidents.evaluate()
    assert causes(engine) == [(CAUSE_DEVICE_UNSTABLE, "rally-bar-1", "high")]


def test_a_flapping_device_gets_one_high_ticket_not_one_per_drop(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    for _ in range(6):
        go(ingest, clock, agent.state("down", at=clock.advance(10)))
        incidents.evaluate()
        go(ingest, clock, agent.state("up", at=clock.advance(10)))
        incidents.evaluate()
    assert causes(engine) == [(CAUSE_DEVICE_UNSTABLE, "rally-bar-1", "high")]
    assert "flapping: down 3 times" in all_tickets(engine)[0]["entries"][0]["text"]


def test_two_drops_are_not_flapping(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    for _ in range(2):
        go(ingest, clock, agent.state("down", at=clock.advance(10)))
        go(ingest, clock, agent.state("up", at=clock.advance(10)))
    incidents.evaluate()
    assert all_tickets(engine) == []


def test_repeated_reboots_open_a_high_ticket(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("up", at=clock()))
    with engine.begin() as conn:
        for seq in range(3):
            moment = clock.advance(60)
            conn.execute(
                insert(events).values(
                    site="hq",
                    agent="room-101-pc",
                    boot=boot_id(1),
                    seq=1000 + seq,
                    ts=moment,
                    received_at=moment,
                    device="rally-bar-1",
                    type="reboot",
                    body={"type": "reboot", "device": "rally-bar-1", "reason": "switch port restarted"},
                )
            )
    incidents.evaluate()
    [ticket] = all_tickets(engine)
    assert ticket["priority"] == "high"
    assert "rebooted 3 times" in ticket["entries"][0]["text"]


def test_sustained_packet_loss_opens_a_high_ticket(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    lossy = [
        {**FAILED_CHECK, "driver": "icmp", "ok": True, "detail": "40% loss", "metrics": {"loss_pct": 40}}
    ]
    go(ingest, clock, agent.state("up", at=clock(), checks=lossy))
    incidents.evaluate()
    clock.advance(121)
    incidents.evaluate()
    [ticket] = all_tickets(engine)
    assert "packet loss 40 %" in ticket["entries"][0]["text"]


def test_an_unstable_device_with_a_critical_ticket_gets_no_second_one(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    confirm_down(ingest, clock, agent, "rally-bar-1")
    incidents.evaluate()
    for _ in range(3):
        go(ingest, clock, agent.state("up", at=clock.advance(5)))
        go(ingest, clock, agent.state("down", at=clock.advance(5)))
    incidents.evaluate()
    assert causes(engine) == [(CAUSE_DEVICE_DOWN, "rally-bar-1", "critical")]


# -- SLA through the engine -----------------------------------------------------------------------


def test_a_missed_response_is_recorded_once_counted_and_shown(
    ingest: Ingest,
    incidents: IncidentEngine,
    clock: Clock,
    agent: FakeAgent,
    engine: Engine,
    metrics: Metrics,
) -> None:
    confirm_down(ingest, clock, agent, "rally-bar-1")
    incidents.evaluate()
    clock.advance(50 * 60)
    incidents.evaluate()
    assert all_tickets(engine)[0]["sla_state"] == "warning"
    clock.advance(11 * 60)
    incidents.evaluate()
    incidents.evaluate()
    [ticket] = all_tickets(engine)
    assert ticket["sla_state"] == "breached"
    assert [breach["deadline"] for breach in ticket["breaches"]] == ["response"]
    assert [entry["kind"] for entry in ticket["entries"]] == ["opened", "sla-warning", "sla-breach"]
    value = metrics.registry.get_sample_value(
        "hezo_sla_breaches", {"priority": "critical", "deadline": "response"}
    )
    assert value == 1


def test_a_high_ticket_opened_at_night_is_due_the_next_working_morning(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("degraded", at=clock()))
    incidents.evaluate()
    clock.advance(121)
    incidents.evaluate()
    [ticket] = all_tickets(engine)
    assert ticket["response_due"] == T0 + timedelta(hours=11)  # Wednesday 09:00 in Warsaw = 08:00 UTC


# -- the lifecycle ------------------------------------------------------------------------------


@pytest.fixture
def critical(ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent) -> str:
    confirm_down(ingest, clock, agent, "rally-bar-1")
    [number] = incidents.evaluate()
    return number


def take(engine: Engine, clock: Clock, number: str, action: str, **options: Any) -> None:
    with engine.begin() as conn:
        tickets.step(conn, number, action, by="eng", now=clock(), context=SlaContext.default(), **options)


def test_a_replacement_goes_through_every_step_with_its_deadlines(
    engine: Engine, clock: Clock, critical: str
) -> None:
    take(engine, clock, critical, "respond")
    confirmed = clock.advance(600)
    take(engine, clock, critical, "confirm")
    with engine.connect() as conn:
        ticket = tickets.get_ticket(conn, critical)
    assert ticket is not None
    assert ticket["delivery_due"] == confirmed + timedelta(hours=8)
    take(engine, clock, critical, "ship")
    delivered = clock.advance(3600)
    take(engine, clock, critical, "deliver")
    with engine.connect() as conn:
        ticket = tickets.get_ticket(conn, critical)
    assert ticket is not None
    assert ticket["return_due"] > delivered + timedelta(days=7)
    take(engine, clock, critical, "return")
    take(engine, clock, critical, "close")
    with engine.connect() as conn:
        ticket = tickets.get_ticket(conn, critical)
    assert ticket is not None
    assert ticket["status"] == "closed"
    assert [e["kind"] for e in ticket["entries"]] == [
        "opened",
        "respond",
        "confirm",
        "ship",
        "deliver",
        "return",
        "close",
    ]
    assert {e["by"] for e in ticket["entries"][1:]} == {"eng"}


@pytest.mark.parametrize(
    ("steps", "refused", "message"),
    [
        ([], "ship", "is open: 'ship' is allowed only when it is confirmed"),
        ([], "close", "is open: 'close' is allowed only when it is recovered, resolved, returned"),
        (["respond"], "respond", "responded to already"),
        (["respond", "confirm"], "resolve", "is confirmed: 'resolve' is allowed only"),
        (["respond", "resolve", "close"], "confirm", "is closed"),
    ],
)
def test_an_illegal_step_is_refused_with_the_reason(
    engine: Engine, clock: Clock, critical: str, steps: list[str], refused: str, message: str
) -> None:
    for action in steps:
        take(engine, clock, critical, action)
    with pytest.raises(tickets.IllegalTransitionError, match=message):
        take(engine, clock, critical, refused)


def test_an_unknown_ticket_is_refused(engine: Engine, clock: Clock) -> None:
    with pytest.raises(tickets.NoSuchTicketError, match="HZ-999999"):
        take(engine, clock, "HZ-999999", "respond")


def test_a_late_response_is_recorded_as_a_breach(engine: Engine, clock: Clock, critical: str) -> None:
    clock.advance(2 * 3600)
    take(engine, clock, critical, "respond")
    with engine.connect() as conn:
        ticket = tickets.get_ticket(conn, critical)
    assert ticket is not None
    assert [b["deadline"] for b in ticket["breaches"]] == ["response"]
    assert ticket["entries"][-1]["sla_state"] == "breached"


def test_an_update_note_resets_the_update_clock(engine: Engine, clock: Clock, critical: str) -> None:
    take(engine, clock, critical, "respond")
    noted = clock.advance(1800)
    with engine.begin() as conn:
        tickets.note(
            conn, critical, "Still testing", by="eng", now=noted, context=SlaContext.default(), is_update=True
        )
        ticket = tickets.get_ticket(conn, critical)
    assert ticket is not None
    assert ticket["update_due"] == noted + timedelta(hours=1)


def test_transitions_too_old_for_the_flapping_rule_are_forgotten(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    from sqlalchemy import func, select

    from collector.store.schema import device_transitions

    go(ingest, clock, agent.state("down", at=clock()))
    go(ingest, clock, agent.state("up", at=clock.advance(1)))
    incidents.evaluate()
    clock.advance(2 * 600 + 3600)
    incidents.evaluate()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(device_transitions)).scalar_one() == 0


def test_a_firmware_change_is_noted_on_the_devices_active_ticket(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    confirm_down(ingest, clock, agent, "rally-bar-1")
    [number] = incidents.evaluate()
    with engine.begin() as conn:
        conn.execute(
            insert(events).values(
                site="hq",
                agent="room-101-pc",
                boot=boot_id(1),
                seq=999,
                ts=clock(),
                received_at=clock(),
                device="rally-bar-1",
                type="firmware-changed",
                body={"type": "firmware-changed", "device": "rally-bar-1", "reason": "1.10.3 -> 1.11.0"},
            )
        )
    incidents.evaluate()
    with engine.connect() as conn:
        ticket = tickets.get_ticket(conn, number)
    assert ticket is not None
    assert ticket["entries"][-1]["text"] == "Event firmware-changed of device rally-bar-1: 1.10.3 -> 1.11.0"


def test_a_site_incident_closed_by_hand_is_not_reopened_for_the_same_silence(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.will())
    clock.advance(300)
    [number] = incidents.evaluate()
    for action in ("resolve", "close"):
        take(engine, clock, number, action)
    clock.advance(3600)
    assert incidents.evaluate() == []
    agent.restart()
    go(ingest, clock, agent.birth(at=clock()))
    go(ingest, clock, agent.will())  # silent again: a new silence, a new incident
    clock.advance(300)
    assert len(incidents.evaluate()) == 1


def test_a_lost_peripheral_closed_by_hand_opens_nothing_until_it_recurs(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    go(ingest, clock, agent.state("degraded", at=clock()))
    incidents.evaluate()
    clock.advance(121)
    [number] = incidents.evaluate()
    for action in ("resolve", "close"):
        take(engine, clock, number, action)
    clock.advance(600)
    assert incidents.evaluate() == []
    go(ingest, clock, agent.state("up", at=clock()))
    incidents.evaluate()
    go(ingest, clock, agent.state("degraded", at=clock.advance(10)))
    incidents.evaluate()
    clock.advance(121)
    assert len(incidents.evaluate()) == 1


def test_drops_before_a_flapping_ticket_was_closed_do_not_count_again(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine
) -> None:
    for _ in range(3):
        go(ingest, clock, agent.state("down", at=clock.advance(10)))
        go(ingest, clock, agent.state("up", at=clock.advance(10)))
    [number] = incidents.evaluate()
    for action in ("resolve", "close"):
        take(engine, clock, number, action)
    clock.advance(10)
    assert incidents.evaluate() == []
    for _ in range(3):
        go(ingest, clock, agent.state("down", at=clock.advance(10)))
        go(ingest, clock, agent.state("up", at=clock.advance(10)))
    assert len(incidents.evaluate()) == 1


def test_a_down_ticket_closed_by_hand_is_not_opened_again_for_the_same_outage(
    ingest: Ingest, incidents: IncidentEngine, clock: Clock, agent: FakeAgent, engine: Engine, critical: str
) -> None:
    for action in ("respond", "resolve", "close"):
        take(engine, clock, critical, action)
    clock.advance(600)
    assert incidents.evaluate() == []
    go(ingest, clock, agent.state("up", at=clock()))
    go(ingest, clock, agent.state("down", at=clock.advance(10)))
    clock.advance(CONFIRM + 1)
    assert len(incidents.evaluate()) == 1


def test_a_backlog_of_hourly_drops_delivered_at_once_is_not_flapping(engine: Engine) -> None:
    # A broker outage: the device went down once an hour for three hours (never "3 drops in 15 minutes"), and
    # the agent's spool delivers it all in one batch when the link returns.
    from protocol import Envelope, Topics, encode, format_ts

    now = T0 + timedelta(hours=3)
    topics = Topics()
    birth = {
        "state": "online",
        "version": "1",
        "will_seq": 1,
        "devices": [{"id": "bar", "model": "rally-bar", "contract": "HZ-1"}],
    }
    items = [(topics.status("s", "a"), encode(Envelope("s", "a", "b0", 2, format_ts(T0), "birth", birth)))]
    for i in range(6):
        at = T0 + timedelta(minutes=30 * i)
        body = {"device": "bar", "state": "up" if i % 2 else "down", "since": format_ts(at), "reason": "x"}
        envelope = Envelope("s", "a", "b0", 3 + i, format_ts(at), "state", {**body, "checks": []})
        items.append((topics.state("s", "a", "bar"), encode(envelope)))
    Ingest(engine, Metrics(), "hezo/v1").handle_batch([(t, p, now, False) for t, p in items])
    IncidentEngine(engine, confirm_window=60, now=lambda: now + timedelta(seconds=1)).evaluate()
    assert all_tickets(engine) == []
