"""The agent's spool: durable across a reopen, ordered by (boot, seq), bounded by evicting old telemetry."""

from pathlib import Path

import pytest

from agent.spool import Spool, SpoolError

TOPIC = "hezo/v1/hq/a/telemetry"


def fill(spool: Spool, boot: str, kinds: list[str], size: int = 100) -> None:
    for seq, kind in enumerate(kinds, start=1):
        spool.add(boot, seq, kind, TOPIC, bytes([seq % 256]) * size, retain=kind == "state")
    spool.commit()


def keys(spool: Spool) -> list[tuple[str, int, str]]:
    return [(m.boot, m.seq, m.kind) for m in spool.next_after(None, 1000)]


def test_committed_messages_survive_a_reopen_with_their_bytes(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 10**6)
    spool.add("b1", 1, "state", TOPIC, b'{"x": 1}', retain=True)
    spool.commit()
    spool.close()
    again = Spool(tmp_path / "s.db", 10**6)
    [message] = again.next_after(None, 10)
    assert (message.boot, message.seq, message.payload, message.retain) == ("b1", 1, b'{"x": 1}', True)


def test_uncommitted_messages_are_not_on_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 10**6)
    spool.add("b1", 1, "state", TOPIC, b"{}", retain=True)
    assert Spool(tmp_path / "s.db", 10**6).count == 0


def test_messages_come_out_in_boot_then_seq_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 10**6)
    spool.add("b2", 1, "birth", TOPIC, b"{}", retain=True)
    spool.add("b1", 7, "event", TOPIC, b"{}", retain=False)
    spool.add("b2", 3, "event", TOPIC, b"{}", retain=False)
    spool.add("b2", 2, "birth", TOPIC, b"{}", retain=False)
    spool.commit()
    assert [(m.boot, m.seq) for m in spool.next_after(None, 10)] == [
        ("b1", 7),
        ("b2", 1),
        ("b2", 2),
        ("b2", 3),
    ]
    assert [(m.boot, m.seq) for m in spool.next_after(("b2", 1), 10)] == [("b2", 2), ("b2", 3)]


def test_acknowledged_messages_leave_and_free_their_bytes(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 10**6)
    fill(spool, "b1", ["event", "event"])
    first = spool.next_after(None, 1)[0]
    spool.remove([first.id])
    spool.commit()
    reopened = Spool(tmp_path / "s.db", 10**6)
    assert (keys(reopened), reopened.size) == ([("b1", 2, "event")], spool.size)


def test_at_its_cap_the_spool_evicts_the_oldest_telemetry_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 5 * (100 + len(TOPIC)))
    fill(spool, "b1", ["telemetry", "state", "telemetry", "event", "telemetry", "telemetry", "telemetry"])
    assert spool.size <= spool.max_bytes
    assert keys(spool) == [
        ("b1", 2, "state"),
        ("b1", 4, "event"),
        ("b1", 5, "telemetry"),
        ("b1", 6, "telemetry"),
        ("b1", 7, "telemetry"),
    ]


def test_states_events_and_status_are_never_evicted_even_past_the_cap(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 4096)
    kinds = ["birth", "telemetry", "state", "event", "death"] * 20
    fill(spool, "b1", kinds)
    left = keys(spool)
    assert [k for k in left if k[2] != "telemetry"] == [
        ("b1", seq, kind) for seq, kind in enumerate(kinds, start=1) if kind != "telemetry"
    ]
    assert not any(k[2] == "telemetry" for k in left)


def test_evicted_telemetry_is_counted_once_for_the_next_birth_across_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 3 * (100 + len(TOPIC)))
    fill(spool, "b1", ["telemetry"] * 5)
    spool.close()
    reopened = Spool(tmp_path / "s.db", 3 * (100 + len(TOPIC)))
    assert reopened.take_evicted() == 2
    reopened.commit()
    assert reopened.take_evicted() == 0
    assert reopened.counter("evicted_total") == 2


def test_telemetry_already_handed_to_the_broker_is_not_evicted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 3 * (100 + len(TOPIC)))
    fill(spool, "b1", ["telemetry"] * 3)
    spool.add("b1", 4, "telemetry", TOPIC, b"x" * 100, retain=False, handed=("b1", 2))
    spool.commit()
    assert [k[1] for k in keys(spool)] == [1, 2, 4]


def test_a_spool_that_cannot_be_created_says_which_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(SpoolError, match=r"cannot open the spool .*file/spool\.db"):
        Spool(tmp_path / "file" / "spool.db", 10**6)
