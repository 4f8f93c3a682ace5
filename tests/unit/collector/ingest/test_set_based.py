"""Births, deaths and states are written set-wise: a batch costs the same few statements whatever the
number of agents and devices in it, and the rows come out as if each message had been applied alone."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from collector.ingest.batch import Incoming
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.store.schema import agents, device_transitions, devices
from tests.support.collector import RALLY_BAR, T0, FakeAgent


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement the engine sends while the block runs (an executemany counts once)."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def storm(agents_count: int, devices_each: int, site: str = "hq") -> tuple[list[Incoming], list[FakeAgent]]:
    """A reconnect storm: each agent's birth, then a state of each of its devices."""
    fleet = [
        FakeAgent(
            site=site,
            agent=f"pc-{number:04d}",
            devices=[
                {**RALLY_BAR, "id": f"dev-{d}", "serial": f"S{number}-{d}"} for d in range(devices_each)
            ],
        )
        for number in range(agents_count)
    ]
    items: list[Incoming] = []
    for fake in fleet:
        items.append((*fake.birth(), T0, False))
    for fake in fleet:
        for d in range(devices_each):
            state = "down" if d == 0 else "up"
            items.append((*fake.state(state, at=T0, device=f"dev-{d}"), T0, False))
    return items, fleet


def test_a_storm_costs_the_same_statements_whatever_its_size(engine: Engine, metrics: Metrics) -> None:
    small, _ = storm(2, 2, site="small")
    large, fleet = storm(40, 10, site="large")
    ingest = Ingest(engine, metrics, "hezo/v1")
    with statements(engine) as few:
        ingest.handle_batch(small)
    with statements(engine) as many:
        ingest.handle_batch(large)
    assert len(many) == len(few)
    with engine.connect() as conn:
        stored = conn.execute(select(devices.c.device).where(devices.c.site == "large")).scalars().all()
    assert len(stored) == 10 * len(fleet)


def test_a_storm_stores_every_agent_device_and_transition(engine: Engine, metrics: Metrics) -> None:
    items, fleet = storm(30, 10)
    Ingest(engine, metrics, "hezo/v1").handle_batch(items)
    with engine.connect() as conn:
        online = conn.execute(select(agents.c.agent).where(agents.c.online.is_(True))).scalars().all()
        rows = conn.execute(
            select(devices.c.agent, devices.c.device, devices.c.state, devices.c.down_since)
        ).all()
        changes = conn.execute(select(device_transitions.c.to_state)).scalars().all()
    assert sorted(online) == sorted(fake.agent for fake in fleet)
    assert len(rows) == 300
    down = [row for row in rows if row.state == "down"]
    assert len(down) == 30
    assert all(row.down_since == T0 for row in down)
    assert all(row.state == "up" for row in rows if row.device != "dev-0")
    assert sorted(changes) == ["down"] * 30 + ["up"] * 270


def test_a_restart_and_its_states_in_one_batch_apply_in_order(engine: Engine, metrics: Metrics) -> None:
    """Birth, state, death, restart, birth and a state of the new start, all in one batch: the rows end as
    the last messages say, and the restart forgets the old start's state before the new one applies."""
    fake = FakeAgent(devices=[dict(RALLY_BAR), {**RALLY_BAR, "id": "rally-bar-2", "serial": "S2"}])
    later = T0 + timedelta(seconds=5)
    items: list[Incoming] = [
        (*fake.birth(), T0, False),
        (*fake.state("down", at=T0), T0, False),
        (*fake.state("down", at=T0, device="rally-bar-2"), T0, False),
        (*fake.will(), later, False),
    ]
    fake.restart()
    fake.devices = [dict(RALLY_BAR)]
    items += [(*fake.birth(at=later), later, False), (*fake.state("up", at=later), later, False)]
    Ingest(engine, metrics, "hezo/v1").handle_batch(items)
    with engine.connect() as conn:
        agent = conn.execute(select(agents)).one()
        rows = {row.device: row for row in conn.execute(select(devices))}
    assert agent.online is True
    assert agent.boot == fake.boot
    assert rows["rally-bar-1"].state == "up"
    assert rows["rally-bar-2"].state == "unknown"
    assert rows["rally-bar-2"].retired_at == later
    assert rows["rally-bar-2"].down_since is None


@pytest.mark.parametrize("repeat", [1, 2])
def test_a_storm_delivered_again_changes_nothing(engine: Engine, metrics: Metrics, repeat: int) -> None:
    items, _ = storm(5, 3)
    ingest = Ingest(engine, metrics, "hezo/v1")
    ingest.handle_batch(items)
    for _ in range(repeat):
        ingest.handle_batch(items)
    with engine.connect() as conn:
        changes = conn.execute(select(device_transitions.c.to_state)).scalars().all()
    assert len(changes) == 15
