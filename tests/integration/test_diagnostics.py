"""Remote diagnostics end to end: simulated room, agent, real Mosquitto and collector, all as processes.

Pull a log bundle with ``hezo-collector logs pull`` over a connection that breaks half-way through the upload;
send forged, expired, replayed and forbidden commands; and switch a device off to see its Critical ticket
collect service tests and a bundle by itself.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from diagnostics.bundle import file_sha256, inspect_bundle
from tests.support.browser import log_in
from tests.support.collector import add_user
from tests.support.diagnostics import CuttingProxy, key_pair, load_key, signed
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import close_client
from tests.support.room import Room
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SECRET = "Sup3r-S3cret-Passw0rd"
PASSWORD = "engineer-password-1"
FILLER_BYTES = 3 * 1024 * 1024
#: Automatic evidence must be on the ticket within two minutes of it opening.
EVIDENCE_BUDGET = 120.0


@pytest.fixture
def room(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[Room, CuttingProxy]]:
    private, public = key_pair(tmp_path / "keys")
    app_logs = tmp_path / "sync-logs"
    app_logs.mkdir()
    (app_logs / "LogiSync.log").write_text(f"21:00:01 connecting with password={SECRET}\n21:00:02 ok\n")
    # Incompressible, so the bundle is large enough for the upload to be cut half-way.
    (app_logs / "capture.bin").write_bytes(os.urandom(FILLER_BYTES))
    workdir = tmp_path / "room"
    workdir.mkdir()
    agent_extra = {
        "commands": {
            "public_key": str(public),
            "state_dir": str(tmp_path / "agent-state"),
            "upload": {"chunk_bytes": 64 * 1024 * 1024, "timeout": 30},
            "logs": {
                "agent_log": [str(workdir / "agent.log")],
                "folders": [str(app_logs)],
                "journal": False,
            },
        }
    }
    running = Room(mosquitto, workdir, agent_extra=agent_extra)
    proxy = CuttingProxy(("127.0.0.1", running.web_port), cut_after=FILLER_BYTES // 2)
    proxy.start()
    running.collector_extra["diagnostics"] = {
        "key_file": str(private),
        "bundle_dir": str(tmp_path / "bundles"),
        "public_url": f"http://127.0.0.1:{proxy.port}",
    }
    try:
        running.start()
        eventually("agent online", running.agent_online, timeout=30)
        running.wait_device_state("rally-bar", "up", timeout=30)
        yield running, proxy
    finally:
        running.stop()
        proxy.stop()


def test_a_pulled_bundle_resumes_after_a_broken_upload_and_matches_its_manifest(
    room: tuple[Room, CuttingProxy], tmp_path: Path
) -> None:
    site, proxy = room
    out = tmp_path / "pulled"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "collector",
            "--config",
            str(site.collector_config),
            "logs",
            "pull",
            "rally-bar",
            "--since",
            "1h",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr + site.log("agent")
    [bundle] = list(out.glob("*.tar.gz"))
    manifest = inspect_bundle(bundle)  # every member's sha256 matches the manifest, no unsafe names
    paths = {f["path"] for f in manifest["files"]}
    assert {"agent/agent.log", "app/0-sync-logs/LogiSync.log", "app/0-sync-logs/capture.bin"} <= paths
    assert "device/rally-bar/https-0.txt" in paths
    assert manifest["origin"]["site"] == "test-site"
    assert (
        SECRET.encode() not in subprocess.run(["zcat", str(bundle)], capture_output=True, check=True).stdout
    )
    # The connection was cut, and the agent resumed from what the collector held, not from zero.
    assert proxy.cut.is_set()
    size = bundle.stat().st_size
    assert proxy.forwarded < size * 1.25, (proxy.forwarded, size)
    [command] = [c for c in site.api("/api/commands") if c["action"] == "collect-logs"]
    assert command["result"]["resumed"] >= 1
    stored = site.api(f"/api/bundles/{command['result']['bundle']}")
    assert stored["sha256"] == file_sha256(bundle)


def _publish(room: Room, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect(room.broker.host, room.broker.port)
    client.loop_start()
    try:
        client.publish("hezo/v1/test-site/room-1/cmd", payload, qos=1).wait_for_publish(10)
    finally:
        close_client(client)


def _refusals(room: Room) -> dict[str, str]:
    return {
        row["command_id"]: row["detail"]
        for row in room.api("/api/audit")
        if row["event"].startswith("refused")
    }


def test_forged_expired_replayed_and_forbidden_commands_are_refused_and_audited(
    room: tuple[Room, CuttingProxy], tmp_path: Path
) -> None:
    site, _proxy = room
    right = load_key(tmp_path / "keys" / "collector.key")
    wrong = load_key(key_pair(tmp_path / "intruder")[0])
    old = datetime.now(UTC) - timedelta(hours=1)
    _publish(site, signed(wrong, command_id="forged-0001"))
    _publish(site, signed(right, command_id="expired-0001", issued=old, lifetime=60))
    _publish(site, signed(right, command_id="shell-00001", action="shell", args={"cmd": "reboot"}))
    _publish(site, signed(right, command_id="replay-0001"))
    eventually(
        "the first copy ran",
        lambda: any(
            row["command_id"] == "replay-0001" and row["event"] == "done-unknown"
            for row in site.api("/api/audit")
        ),
    )
    _publish(site, signed(right, command_id="replay-0001"))
    expected = {
        "forged-0001": "bad-signature",
        "expired-0001": "expired",
        "shell-00001": "not-allowed",
        "replay-0001": "replayed",
    }

    def all_refused() -> dict[str, str] | None:
        found = _refusals(site)
        return found if set(expected) <= set(found) else None

    refusals = eventually("four refusals in the audit log", all_refused)
    for command_id, reason in expected.items():
        assert refusals[command_id].startswith(f"{reason}:"), refusals


def test_a_critical_ticket_from_a_power_off_carries_service_tests_and_a_bundle(
    room: tuple[Room, CuttingProxy],
) -> None:
    site, _proxy = room
    site.power("rally-bar", on=False)
    [ticket] = eventually("a ticket for the rally bar", lambda: site.tickets("rally-bar"), timeout=60)

    def evidence() -> dict[str, Any] | None:
        found = site.api(f"/api/tickets/{ticket['number']}")
        kinds = {entry["kind"] for entry in found["entries"]}
        return found if {"service-tests", "log-bundle"} <= kinds else None

    found = eventually("service tests and a bundle on the ticket", evidence, timeout=2 * EVIDENCE_BUDGET)
    # By the collector's own clock: each piece of evidence joined the ticket within the budget of its opening.
    opened = datetime.fromisoformat(found["opened_at"])
    arrived = {e["kind"]: datetime.fromisoformat(e["at"]) for e in found["entries"]}
    for kind in ("service-tests", "log-bundle"):
        assert arrived[kind] - opened < timedelta(seconds=EVIDENCE_BUDGET), (kind, arrived[kind], opened)
    tests = next(e for e in found["entries"] if e["kind"] == "service-tests")
    assert "FAIL" in tests["text"]
    diagnostics = site.api(f"/api/tickets/{ticket['number']}/diagnostics")
    assert {c["requested_by"] for c in diagnostics["commands"]} == {"auto-evidence"}
    [bundle] = diagnostics["bundles"]
    assert bundle["device"] == "rally-bar"
    assert bundle["manifest"]["origin"]["ticket"] == ticket["number"]


def test_diag_run_prints_each_checks_loss_and_the_devices_tls_details(
    room: tuple[Room, CuttingProxy],
) -> None:
    site, _proxy = room
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "collector",
            "--config",
            str(site.collector_config),
            "diag",
            "run",
            "rally-bar",
            "--repeat",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rally-bar: done PASS" in done.stdout
    assert "3/3 answered (0.0% loss" in done.stdout
    assert "ok https://127.0.0.1" in done.stdout
    assert "TLSv1." in done.stdout
    [line] = [a for a in site.api("/api/audit") if a["event"] == "issued"]
    assert (line["actor"], line["action"]) == ("test-admin", "service-tests")  # the token's user


def test_diag_config_and_republish_reach_the_agent_itself(room: tuple[Room, CuttingProxy]) -> None:
    site, _proxy = room

    def diag(*args: str) -> subprocess.CompletedProcess[str]:
        config = str(site.collector_config)
        argv = [sys.executable, "-m", "collector", "--config", config, "diag", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

    shown = diag("config", "test-site/room-1")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert '"agent": "room-1"' in shown.stdout
    republished = diag("republish", "test-site/room-1")
    assert republished.returncode == 0, republished.stderr
    assert '"states"' in republished.stdout


def test_the_web_buttons_run_tests_and_pull_logs_with_live_progress(room: tuple[Room, CuttingProxy]) -> None:
    from tests.support.browser import Browser

    site, _proxy = room
    add_user(f"sqlite:///{site.workdir / 'collector.db'}", "eng", "engineer", PASSWORD)
    browser = Browser()
    try:
        browser.open(f"http://127.0.0.1:{site.web_port}/diagnostics")  # to the login form, and back after it
        log_in(browser, "eng", PASSWORD)
        row = "document.querySelector('tr[data-device=\"test-site/room-1/rally-bar\"]')"
        eventually("the page shows the rally bar", lambda: browser.evaluate(f"{row} !== null"))
        browser.evaluate(f"{row}.querySelector('button[data-action=\"service-tests\"]').click()")
        status = f"{row}.querySelector('.status').textContent"
        eventually(
            "the service tests end on the page", lambda: browser.evaluate(f"{status}.startsWith('done')")
        )
        assert browser.evaluate(f"{row}.querySelector('progress').value") == 1
        browser.evaluate(f"{row}.querySelector('button[data-action=\"collect-logs\"]').click()")
        anchor = f"{row}.querySelector('.status a[href$=\"/download\"]')"
        link = f"{anchor} && {anchor}.href"
        href = eventually("a download link for the bundle", lambda: browser.evaluate(link), timeout=60)
    finally:
        browser.close()
    import urllib.request

    request = urllib.request.Request(href, headers={"Authorization": f"Bearer {site.token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.headers["Content-Type"] == "application/gzip"
        assert answer.read(2) == b"\x1f\x8b"
