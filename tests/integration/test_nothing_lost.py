"""Nothing lost, nothing twice: real Mosquitto, real agents and collectors, killed and restarted.

Every message is counted by its identity (agent, boot, seq). The agent's ground truth is its debug log: it
writes ``spooled BOOT SEQ KIND`` for each message once the spool has committed it, so each such message must
reach the collector's store (the broker's wills are the only messages that are not the agent's to spool).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, func, select

from agent.spool import Spool
from collector.service import CollectorService
from collector.store.database import make_engine
from collector.store.schema import agent_boots, messages, samples
from tests.support.collector import get, running_collector, serve
from tests.support.mosquitto import Mosquitto, free_port, wait_port
from tests.support.stream import SITE, publish_all, telemetry_stream
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SPOOLED = re.compile(rb"spooled (\S+) (\d+) (\w+)")


def present_meetup(sysfs: Path) -> None:
    for name, product in (("1-2", "0866"), ("1-3", "0867")):
        (sysfs / name).mkdir(parents=True, exist_ok=True)
        (sysfs / name / "idVendor").write_text("046d\n")
        (sysfs / name / "idProduct").write_text(f"{product}\n")


class Agent:
    """``hezo-agent`` as a process polling one MeetUp every 0.1 s (telemetry at that pace), debug log on."""

    def __init__(self, tmp_path: Path, broker: Mosquitto, *, spool_bytes: int = 100 * 1024 * 1024) -> None:
        self.sysfs = tmp_path / "sysfs"
        present_meetup(self.sysfs)
        self.config = tmp_path / "agent.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "site": "test-site",
                    "agent": "room-1",
                    "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5},
                    "spool": {"max_bytes": spool_bytes, "commit_interval": 0.02},
                    "poll": {"interval": 0.1, "recheck_count": 0},
                    "devices": [
                        {
                            "id": "meetup",
                            "model": "meetup",
                            "checks": [{"driver": "usb", "sysfs_root": str(self.sysfs), "settle": 0}],
                        }
                    ],
                }
            )
        )
        self.log = tmp_path / "agent.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent", "--config", str(self.config), "--log-level", "DEBUG"],
                stdout=log,
                stderr=log,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def spooled(self) -> dict[tuple[str, int], str]:
        """Every message the agent committed to its spool: (boot, seq) -> kind."""
        return {(m[1].decode(), int(m[2])): m[3].decode() for m in SPOOLED.finditer(self.log.read_bytes())}

    def in_spool(self) -> dict[tuple[str, int], str]:
        """What the stopped agent's spool file holds: committed, even where a kill beat the log line."""
        assert self.process is not None
        assert self.process.poll() is not None
        spool = Spool(Path(str(self.config) + ".spool.db"), 100 * 1024 * 1024)
        try:
            return {(m.boot, m.seq): m.kind for m in spool.next_after(None, 1_000_000)}
        finally:
            spool.close()


def stored(engine: Engine) -> dict[tuple[str, int], str]:
    with engine.connect() as conn:
        rows = conn.execute(select(messages.c.boot, messages.c.seq, messages.c.kind)).all()
    return {(row.boot, row.seq): row.kind for row in rows}


@pytest.fixture
def agent(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Agent]:
    agent = Agent(tmp_path, mosquitto)
    yield agent
    agent.close()


@pytest.fixture
def collector(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[CollectorService]:
    with running_collector(mosquitto, tmp_path, "collector-nothing-lost") as service:
        yield service


def all_stored(engine: Engine, expected: dict[tuple[str, int], str]) -> bool:
    return set(expected) <= set(stored(engine))


def test_a_broker_outage_with_the_agent_killed_and_restarted_loses_and_doubles_nothing(
    mosquitto: Mosquitto, agent: Agent, collector: CollectorService
) -> None:
    agent.start()
    eventually("the collector stores the agent's first messages", lambda: len(stored(collector.engine)) >= 10)
    mosquitto.stop()
    time.sleep(1.5)  # the agent spools telemetry with nowhere to send it
    agent.kill()
    # The kill may fall between a commit and its log line: what the spool file holds counts as spooled too.
    committed = agent.in_spool()
    agent.start()  # a new boot, with the previous boot's unacknowledged messages in its spool
    time.sleep(1.5)
    mosquitto.start()
    first_boot = next(iter(agent.spooled()))[0]

    def new_boot_stored() -> bool:
        return any(boot != first_boot for boot, _ in stored(collector.engine))

    eventually("the restarted agent's messages reach the store", new_boot_stored, timeout=60)
    agent.stop()  # a clean goodbye: everything spooled has been acknowledged by the broker or is sent now
    spooled = committed | agent.spooled()
    eventually(
        "every spooled message in the store", lambda: all_stored(collector.engine, spooled), timeout=60
    )
    kept = stored(collector.engine)
    assert len({boot for boot, _ in spooled}) == 2
    assert set(spooled) <= set(kept)  # 0 lost
    assert {kind for key, kind in kept.items() if key not in spooled} <= {"death"}  # only the broker's wills
    with collector.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(samples)).scalar_one()
        distinct = conn.execute(
            select(func.count()).select_from(
                select(samples.c.boot, samples.c.seq, samples.c.idx).distinct().subquery()
            )
        ).scalar_one()
        messages_with_samples = conn.execute(
            select(func.count()).select_from(select(samples.c.boot, samples.c.seq).distinct().subquery())
        ).scalar_one()
        new_start = conn.execute(
            select(agent_boots.c.max_seq, agent_boots.c.gaps).where(agent_boots.c.boot != first_boot)
        ).one()
    telemetry = sum(1 for kind in kept.values() if kind == "telemetry")
    assert rows == distinct  # 0 duplicated samples
    assert messages_with_samples == telemetry  # every telemetry message stored has its samples
    # The restarted agent is one the collector followed: its new start is followed from seq 1, and as nothing
    # of it was lost, no gap.
    assert new_start.gaps == 0
    assert new_start.max_seq > 1


def test_at_its_cap_the_spool_evicts_telemetry_and_keeps_every_state_and_event(
    mosquitto: Mosquitto, tmp_path: Path, collector: CollectorService
) -> None:
    agent = Agent(tmp_path, mosquitto, spool_bytes=8192)
    try:
        agent.start()
        eventually("the agent's first messages", lambda: len(stored(collector.engine)) >= 5)
        mosquitto.stop()
        for _ in range(4):  # while the broker is away, the device comes and goes: states and events
            for name in ("1-2", "1-3"):
                for child in (agent.sysfs / name).iterdir():
                    child.unlink()
                (agent.sysfs / name).rmdir()
            time.sleep(0.5)
            present_meetup(agent.sysfs)
            time.sleep(0.5)
        spool_file = Path(str(agent.config) + ".spool.db")
        mosquitto.start()
        eventually(
            "the agent reconnects",
            lambda: any(k == "birth" for k in list(stored(collector.engine).values())[5:]),
            timeout=60,
        )
        agent.stop()
    finally:
        agent.close()
    spooled = agent.spooled()
    eventually(
        "every state and event in the store",
        lambda: all_stored(collector.engine, {k: v for k, v in spooled.items() if v != "telemetry"}),
        timeout=60,
    )
    kept = stored(collector.engine)
    lost = {key: kind for key, kind in spooled.items() if key not in kept}
    assert set(lost.values()) == {"telemetry"}  # evicted: telemetry only, never a state, event or status
    assert sum(1 for kind in spooled.values() if kind in ("state", "event")) >= 8
    with collector.engine.connect() as conn:
        reported = conn.execute(select(func.sum(agent_boots.c.dropped))).scalar_one()
    # Every eviction is counted: reported by a birth, or (after the last birth) waiting for the next one.
    unreported = Spool(spool_file, 8192).take_evicted()
    assert reported + unreported == len(lost)
    assert reported > 0


def test_a_collector_killed_while_ingesting_100k_messages_stores_each_once(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    count, agents = 100_000, 20
    port = free_port()
    database = tmp_path / "collector.db"
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}, client_id: collector-100k}}\n"
        f"store: {{url: 'sqlite:///{database}'}}\n"
        f"web: {{host: 127.0.0.1, port: {port}}}\n"
    )
    engine = make_engine(f"sqlite:///{database}")

    def count_stored() -> int:
        try:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(messages)).scalar_one())
        except Exception:  # not migrated yet
            return 0

    first = serve(config, tmp_path)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_port("127.0.0.1", port, timeout=30)
        eventually("subscribed", lambda: json.loads(get(port, "/healthz")).get("status") == "ok")
        # The stream goes out while the collector ingests it.
        sent: list[int] = []
        thread = threading.Thread(
            target=lambda: sent.append(
                publish_all(mosquitto.host, mosquitto.port, telemetry_stream(count, agents, samples=1))
            )
        )
        thread.start()
        eventually("the collector half-way", lambda: count_stored() >= count // 4, timeout=120)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = count_stored()
        second = serve(config, tmp_path)
        thread.join(300)
        assert sent == [count]
        eventually("every message stored", lambda: count_stored() >= count, timeout=240)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    assert killed_at < count  # the kill came during the ingest
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == count
        assert conn.execute(select(func.count()).select_from(samples)).scalar_one() == count
        per_agent = conn.execute(
            select(messages.c.agent, func.count(), func.min(messages.c.seq), func.max(messages.c.seq))
            .where(messages.c.site == SITE)
            .group_by(messages.c.agent)
        ).all()
        gaps = conn.execute(select(func.sum(agent_boots.c.gaps))).scalar_one()
    assert (
        sorted((n, lo, hi) for _, n, lo, hi in per_agent) == [(count // agents, 1, count // agents)] * agents
    )
    assert gaps == 0
    engine.dispose()
