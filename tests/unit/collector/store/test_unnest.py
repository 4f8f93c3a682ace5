"""Many rows in one PostgreSQL statement: array literals refuse what is not an id, a number or a time, and
``update_many`` / ``delete_many`` touch exactly the rows their keys name."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert, select

from collector.store.incident_queue import incident_queue
from collector.store.schema import agents
from collector.store.unnest import delete_many, literal, update_many
from tests.support.collector import T0
from tests.support.postgres import postgres_schema


@pytest.fixture
def postgres() -> Iterator[Engine]:
    with postgres_schema() as engine:
        yield engine


def test_literals_quote_ids_and_write_numbers_and_times() -> None:
    assert literal(["hq", "null"], "varchar") == '{"hq","null"}'
    assert literal([1, 22], "bigint") == "{1,22}"
    assert literal([T0, T0], "timestamptz") == f'{{"{T0.isoformat()}","{T0.isoformat()}"}}'
    assert literal([], "varchar") == "{}"


@pytest.mark.parametrize(
    ("values", "kind", "error"),
    [
        (['a"b'], "varchar", ValueError),
        (["a\\b"], "varchar", ValueError),
        ([1.5], "bigint", TypeError),
        ([True], "bigint", TypeError),
        ([T0.replace(tzinfo=None)], "timestamptz", TypeError),
        (["x"], "jsonb", ValueError),
    ],
)
def test_a_literal_refuses_what_it_cannot_write_safely(values: list[object], kind: str, error: type) -> None:
    with pytest.raises(error):
        literal(values, kind)


def test_update_many_sets_each_named_row_and_no_other(postgres: Engine) -> None:
    names = ["null", "pc-1", "pc-2"]
    with postgres.begin() as conn:
        conn.execute(insert(agents), [{"site": "hq", "agent": name, "online": True} for name in names])
        update_many(
            conn,
            "agents",
            columns=(("site", "varchar"), ("agent", "varchar"), ("last_seen", "timestamptz")),
            keys=("site", "agent"),
            sets={"last_seen": "v.last_seen"},
            rows=[("hq", "null", T0), ("hq", "pc-2", T0 + timedelta(seconds=5))],
        )
        seen = {row.agent: row.last_seen for row in conn.execute(select(agents.c.agent, agents.c.last_seen))}
    assert seen == {"null": T0, "pc-1": None, "pc-2": T0 + timedelta(seconds=5)}


def test_delete_many_deletes_rows_matching_every_column(postgres: Engine) -> None:
    rows = [("hq", "pc", device, 3) for device in ("bar", "tap", "cam")]
    with postgres.begin() as conn:
        conn.execute(
            insert(incident_queue),
            [{"site": s, "agent": a, "device": d, "changes": c, "due_at": T0} for s, a, d, c in rows],
        )
        columns = (("site", "varchar"), ("agent", "varchar"), ("device", "varchar"), ("changes", "bigint"))
        delete_many(conn, "incident_queue", columns, [("hq", "pc", "bar", 3), ("hq", "pc", "tap", 2)])
        left = sorted(conn.execute(select(incident_queue.c.device)).scalars())
    assert left == ["cam", "tap"]  # tap was touched again (changes 3, not 2): it stays
