"""The MQTT session in a process of its own, against a real Mosquitto: replaced if it dies, gone with the
collector.

Every message is counted by its identity (agent, boot, seq) and every sample by its place in its message.
"""

import json
import os
import re
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from collector.ingest.receiver import Receiver
from collector.service import CollectorService
from collector.store.schema import messages, samples
from tests.support.collector import running_collector, serve
from tests.support.mosquitto import Mosquitto, free_port, wait_port
from tests.support.stream import publish_all, telemetry_stream
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

STARTED = re.compile(rb"receiver process (\d+) started")


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[CollectorService]:
    with running_collector(mosquitto, tmp_path, "collector-receiver") as service:
        yield service


def counts(engine: Engine) -> tuple[int, int, int, int]:
    """Messages, distinct identities, sample rows, distinct samples."""
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(messages)).scalar_one()
        identities = conn.execute(
            select(func.count()).select_from(
                select(messages.c.agent, messages.c.boot, messages.c.seq).distinct().subquery()
            )
        ).scalar_one()
        rows = conn.execute(select(func.count()).select_from(samples)).scalar_one()
        distinct = conn.execute(
            select(func.count()).select_from(
                select(samples.c.agent, samples.c.boot, samples.c.seq, samples.c.idx).distinct().subquery()
            )
        ).scalar_one()
    return stored, identities, rows, distinct


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is gone for our purpose
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_session_runs_in_a_process_of_its_own_by_default(service: CollectorService) -> None:
    assert isinstance(service.subscriber, Receiver)
    pid = service.subscriber.pid
    assert pid is not None
    assert pid != os.getpid()
    assert alive(pid)
    assert service.health() is None


def test_a_receiver_process_that_dies_is_replaced_and_nothing_is_lost_or_doubled(
    mosquitto: Mosquitto, tmp_path: Path, service: CollectorService
) -> None:
    assert isinstance(service.subscriber, Receiver)
    first = service.subscriber.pid
    assert first is not None
    count = 2_000
    # The database is busy: the collector receives messages but can neither store nor acknowledge them.
    lock = sqlite3.connect(tmp_path / "collector.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        publish_all(mosquitto.host, mosquitto.port, telemetry_stream(count, agents=4, samples=3))
        eventually(
            "the collector holds unacknowledged messages",
            lambda: (service.metrics.registry.get_sample_value("hezo_ingest_queue_depth") or 0) >= 100,
        )
        os.kill(first, signal.SIGKILL)
        eventually("the collector sees its receiver gone", lambda: service.health() is not None)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    # What the first receiver delivered is stored now, but its acks have nowhere to go: the broker delivers
    # those messages again to the next receiver, and their identities make that harmless.
    eventually("a new receiver process", lambda: service.subscriber.pid not in (None, first), timeout=15)
    eventually("every message stored", lambda: counts(service.engine)[0] >= count, timeout=60)
    eventually("the redelivered ones recognised", lambda: service.health() is None, timeout=15)
    duplicates = service.metrics.registry.get_sample_value("hezo_messages_duplicate_total") or 0
    assert service.metrics.registry.get_sample_value("hezo_receiver_restarts_total") == 1
    assert counts(service.engine) == (count, count, 3 * count, 3 * count)
    assert duplicates > 0  # the kill did leave stored messages unacknowledged
    assert not alive(first)


def test_the_receiver_process_leaves_with_a_killed_collector_and_never_holds_the_password(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    port = free_port()
    secret = "s3cret-receiver-password"
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}, client_id: collector-orphan,"
        f" username: hezo, password: {secret}}}\n"
        f"store: {{url: 'sqlite:///{tmp_path / 'collector.db'}'}}\n"
        f"web: {{host: 127.0.0.1, port: {port}}}\n"
    )
    collector = serve(config, tmp_path)
    try:
        wait_port("127.0.0.1", port, timeout=30)
        match = eventually(
            "the receiver started", lambda: STARTED.search((tmp_path / "collector.log").read_bytes())
        )
        child = int(match.group(1))
        assert alive(child)
        # Not on its command line, nor in its environment: the password goes over the socket pair.
        assert secret.encode() not in Path(f"/proc/{child}/cmdline").read_bytes()
        assert secret.encode() not in Path(f"/proc/{child}/environ").read_bytes()
        health = json.loads(urlopen_text(f"http://127.0.0.1:{port}/healthz"))
        assert health["status"] == "ok"
        collector.send_signal(signal.SIGKILL)
        collector.wait(timeout=10)
        # With its collector gone, an orphan would go on holding the session's client id, and a restarted
        # collector would have the broker throw each of them out in turn.
        eventually("the receiver process gone too", lambda: not alive(child), timeout=10)
    finally:
        if collector.poll() is None:
            collector.kill()
            collector.wait()
    assert secret.encode() not in (tmp_path / "collector.log").read_bytes()


def urlopen_text(url: str) -> str:
    import urllib.request

    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return str(answer.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_stop_while_waiting_for_the_broker_is_a_clean_stop(tmp_path: Path) -> None:
    # No broker: serve waits for the subscription before it opens the page, and a SIGTERM then still stops the
    # collector and its receiver cleanly, with status 0, not death by signal.
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {free_port()}, client_id: collector-no-broker}}\n"
        f"store: {{url: 'sqlite:///{tmp_path / 'collector.db'}'}}\n"
        f"web: {{host: 127.0.0.1, port: {free_port()}}}\n"
    )
    collector = serve(config, tmp_path)
    try:
        log = tmp_path / "collector.log"
        match = eventually("the receiver started", lambda: STARTED.search(log.read_bytes()))
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(timeout=30) == 0
    finally:
        if collector.poll() is None:
            collector.kill()
            collector.wait()
    assert b"asked to stop before serving the page" in log.read_bytes()
    eventually("the receiver process gone too", lambda: not alive(int(match.group(1))), timeout=10)
