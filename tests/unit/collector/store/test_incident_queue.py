"""The incident queue in the store: migration 0010 makes every device of an existing store due once, 0014
gives queued devices their site's hash (for partitions), and a device touched while it was being evaluated
stays due."""

from datetime import timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import Engine, column, insert, select, table

from collector.cluster.partitions import partition_of
from collector.store import incident_queue
from collector.store.database import alembic_config, make_engine
from collector.store.incident_queue import incident_queue as queue_table
from collector.store.schema import devices
from common.fnv import site_hash
from tests.support.collector import T0


def test_the_upgrade_makes_every_device_not_retired_due_once(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config(engine)
    command.upgrade(config, "0009_people")
    with engine.begin() as conn:
        conn.execute(
            insert(devices),
            [
                {
                    "site": "hq",
                    "agent": "pc",
                    "device": "bar",
                    "state": "down",
                    "updated_at": T0,
                    "retired_at": None,
                },
                {
                    "site": "hq",
                    "agent": "pc",
                    "device": "tap",
                    "state": "up",
                    "updated_at": T0,
                    "retired_at": None,
                },
                {
                    "site": "hq",
                    "agent": "pc",
                    "device": "old",
                    "state": "up",
                    "updated_at": T0,
                    "retired_at": T0,
                },
            ],
        )
    command.upgrade(config, "0010_incident_queue")
    with engine.connect() as conn:
        due = incident_queue.due(conn, T0, 100)
    engine.dispose()
    assert sorted(item.key for item in due) == [("hq", "pc", "bar"), ("hq", "pc", "tap")]


def test_a_device_touched_during_its_evaluation_stays_due(engine: Engine) -> None:
    key = ("hq", "pc", "bar")
    with engine.begin() as conn:
        incident_queue.touch(conn, [key])
    with engine.begin() as conn:
        (read,) = incident_queue.due(conn, T0, 10)
    with engine.begin() as conn:
        incident_queue.touch(conn, [key])  # a state stored meanwhile
    with engine.begin() as conn:
        incident_queue.settle(conn, [read], {})
    with engine.connect() as conn:
        assert [item.key for item in incident_queue.due(conn, T0, 10)] == [key]


def test_a_device_evaluated_waits_for_its_wake_or_leaves(engine: Engine) -> None:
    waiting, done = ("hq", "pc", "bar"), ("hq", "pc", "tap")
    with engine.begin() as conn:
        incident_queue.touch(conn, [waiting, done])
        read = incident_queue.due(conn, T0, 10)
        incident_queue.settle(conn, read, {waiting: T0 + timedelta(seconds=60)})
    with engine.connect() as conn:
        assert incident_queue.due(conn, T0 + timedelta(seconds=59), 10) == []
        assert [item.key for item in incident_queue.due(conn, T0 + timedelta(seconds=60), 10)] == [waiting]
        assert conn.execute(select(queue_table.c.device)).scalars().all() == ["bar"]


def test_the_upgrade_gives_queued_devices_their_sites_hash_for_partitions(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config(engine)
    command.upgrade(config, "0013_entry_events")
    queue = table("incident_queue", *(column(name) for name in ("site", "agent", "device", "due_at")))
    with engine.begin() as conn:
        conn.execute(
            insert(queue),
            [{"site": site, "agent": "pc", "device": "bar", "due_at": T0} for site in ("hq", "berlin")],
        )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        hashes = {
            row.site: row.site_hash
            for row in conn.execute(select(queue_table.c.site, queue_table.c.site_hash))
        }
        ours = incident_queue.due(conn, T0, 100, partitions=(4, [partition_of("berlin", 4)]))
    engine.dispose()
    assert hashes == {"hq": site_hash("hq"), "berlin": site_hash("berlin")}
    assert partition_of("hq", 4) != partition_of("berlin", 4)  # else the next line would say nothing
    assert [item.key for item in ours] == [("berlin", "pc", "bar")]
