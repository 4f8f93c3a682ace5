"""The agents and devices one batch speaks of, read once and written back set-wise.

Births, deaths and states are applied in arrival order, as before, but to rows held in memory: ``Roster.load``
reads (and locks, in key order, so collectors sharing one database cannot deadlock) every agent the batch
names and all of their devices in two queries, the messages change those rows, and ``flush`` writes them back
with one statement per kind of change: new agents, changed agents, new devices, changed devices (grouped by
the columns that changed), transitions. A reconnect storm of thousands of births then costs a handful of
statements per batch instead of several round trips per message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from collector.store.database import among
from collector.store.schema import agents, device_transitions, devices

AgentKey = tuple[str, str]
DeviceKey = tuple[str, str, str]

#: Keys per ``IN`` list: PostgreSQL takes more, SQLite's limit on variables is the bound.
_KEYS_PER_QUERY = 400

#: What a batch may change in an agent's row (the gap counters are ``gaps``'s own).
AGENT_COLUMNS = (
    "online",
    "boot",
    "status_seq",
    "version",
    "hostname",
    "will_seq",
    "last_seen",
    "status_changed_at",
)
#: What a batch reads of a device's row to decide; the other columns it only writes.
_DEVICE_READ = ("device", "state", "state_boot", "state_seq", "down_since", "retired_at")
#: What a new device's row is inserted with; any state it gets in the same batch follows as an update.
_DEVICE_NEW = ("model", "serial", "name", "room", "contract", "state", "updated_at", "retired_at")


@dataclass
class Roster:
    """The rows of the agents a batch names, and what the batch did to them."""

    agents: dict[AgentKey, dict[str, Any]]
    devices: dict[AgentKey, dict[str, dict[str, Any]]]
    new_agents: list[AgentKey] = field(default_factory=list)
    agent_changes: dict[AgentKey, set[str]] = field(default_factory=dict)
    new_devices: list[DeviceKey] = field(default_factory=list)
    device_changes: dict[DeviceKey, set[str]] = field(default_factory=dict)
    transitions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, conn: Connection, keys: Iterable[AgentKey]) -> Roster:
        """Read and lock the rows of these agents and of all their devices, in key order."""
        ordered = sorted(set(keys))
        found: dict[AgentKey, dict[str, Any]] = {}
        owned: dict[AgentKey, dict[str, dict[str, Any]]] = {key: {} for key in ordered}
        columns = [agents.c.site, agents.c.agent, *(agents.c[name] for name in AGENT_COLUMNS)]
        device_columns = [devices.c.site, devices.c.agent, *(devices.c[name] for name in _DEVICE_READ[1:])]
        for start in range(0, len(ordered), _KEYS_PER_QUERY):
            chunk = ordered[start : start + _KEYS_PER_QUERY]
            query = (
                select(*columns)
                .where(among(conn, (agents.c.site, agents.c.agent), chunk))
                .order_by(agents.c.site, agents.c.agent)
                .with_for_update()
            )
            for row in conn.execute(query).mappings():
                found[(row["site"], row["agent"])] = dict(row)
            query = (
                select(*device_columns, devices.c.device)
                .where(among(conn, (devices.c.site, devices.c.agent), chunk))
                .order_by(devices.c.site, devices.c.agent, devices.c.device)
                .with_for_update()
            )
            for row in conn.execute(query).mappings():
                owned[(row["site"], row["agent"])][row["device"]] = dict(row)
        return cls(found, owned)

    def agent(self, key: AgentKey) -> dict[str, Any] | None:
        """The agent's row as it stands in this batch, or None when it has none yet."""
        return self.agents.get(key)

    def put_agent(self, key: AgentKey, **values: Any) -> None:
        """Create the agent's row, or change these columns of it."""
        row = self.agents.get(key)
        if row is None:
            row = self.agents[key] = {"site": key[0], "agent": key[1], **dict.fromkeys(AGENT_COLUMNS)}
            self.new_agents.append(key)
        row.update(values)
        if key not in self.new_agents:
            self.agent_changes.setdefault(key, set()).update(values)

    def devices_of(self, key: AgentKey) -> dict[str, dict[str, Any]]:
        """The agent's devices by id, retired ones too."""
        return self.devices.setdefault(key, {})

    def device(self, key: DeviceKey) -> dict[str, Any] | None:
        return self.devices_of(key[:2]).get(key[2])

    def add_device(self, key: DeviceKey, received_at: datetime, **values: Any) -> dict[str, Any]:
        """A device seen for the first time; its state is unknown until one is applied."""
        row = dict.fromkeys(_DEVICE_READ) | dict.fromkeys(_DEVICE_NEW)
        row.update(device=key[2], state="unknown", updated_at=received_at, **values)
        self.devices_of(key[:2])[key[2]] = row
        self.new_devices.append(key)
        return row

    def set_device(self, key: DeviceKey, **values: Any) -> None:
        """Change these columns of a device's row (one this batch may have added)."""
        row = self.devices_of(key[:2])[key[2]]
        row.update(values)
        self.device_changes.setdefault(key, set()).update(values)

    def transition(self, key: DeviceKey, *, before: str, after: str, at: datetime) -> None:
        """Keep a device's state change, for the flapping rule."""
        self.transitions.append(
            {
                "site": key[0],
                "agent": key[1],
                "device": key[2],
                "at": at,
                "from_state": before,
                "to_state": after,
            }
        )

    def changed(self) -> set[DeviceKey]:
        """Every device whose row this batch created or changed."""
        return set(self.new_devices) | set(self.device_changes)

    def flush(self, conn: Connection) -> None:
        """Write back what the batch did: one statement per kind of change."""
        if self.new_agents:
            conn.execute(insert(agents), [self.agents[key] for key in self.new_agents])
        _update_groups(conn, agents, ("site", "agent"), self.agent_changes, self.agent)
        if self.new_devices:
            rows = []
            for key in self.new_devices:
                row = self.devices_of(key[:2])[key[2]]
                rows.append(
                    {"site": key[0], "agent": key[1], "device": key[2]} | {c: row[c] for c in _DEVICE_NEW}
                )
            conn.execute(insert(devices), rows)
        _update_groups(conn, devices, ("site", "agent", "device"), self.device_changes, self.device)
        if self.transitions:
            conn.execute(insert(device_transitions), self.transitions)


def _update_groups(
    conn: Connection,
    table: Any,
    key_columns: tuple[str, ...],
    changes: dict[Any, set[str]],
    row_of: Any,
) -> None:
    """One executemany per set of changed columns, rows in key order."""
    groups: dict[tuple[str, ...], list[Any]] = {}
    for key in sorted(changes):
        groups.setdefault(tuple(sorted(changes[key])), []).append(key)
    for names, keys in groups.items():
        statement = (
            update(table)
            .where(*(table.c[name] == bindparam(f"k_{name}") for name in key_columns))
            .values({name: bindparam(f"v_{name}") for name in names})
        )
        params = []
        for key in keys:
            row = row_of(key)
            params.append(
                {f"k_{name}": part for name, part in zip(key_columns, key, strict=True)}
                | {f"v_{name}": row[name] for name in names}
            )
        conn.execute(statement, params)
