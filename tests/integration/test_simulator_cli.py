"""``hezo-sim`` drives a room run by ``python -m simulator run`` in another process."""

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.cli import main
from tests.support.mosquitto import free_port
from tests.support.simulator import tls_get

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


class RunningSimulator:
    def __init__(self, process: "subprocess.Popen[str]", state_dir: Path, https_port: int) -> None:
        self.process = process
        self.state_dir = state_dir
        self.https_port = https_port
        self.stdout = self.stderr = ""

    def stop(self) -> int:
        """SIGTERM, then the exit code; what it printed goes to ``stdout`` and ``stderr``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        self.stdout += out or ""
        self.stderr += err or ""
        return self.process.returncode


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[RunningSimulator]:
    state_dir = tmp_path / "state"
    for _ in range(3):  # another test may take a free port before the simulator binds it: take others
        https_port = free_port()
        command = [sys.executable, "-m", "simulator", "run", "--state-dir", str(state_dir)]
        command += ["--https-port", str(https_port), "--control-port", str(free_port())]
        process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        running = RunningSimulator(process, state_dir, https_port)
        deadline = time.monotonic() + 30
        while not (state_dir / "site.json").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                running.stop()
                break
            time.sleep(0.05)
        else:
            break
        if "Address already in use" not in running.stderr:
            pytest.fail(f"the simulator did not start: {running.stderr}")
    else:
        pytest.fail(f"the simulator found no free ports in 3 tries: {running.stderr}")
    try:
        yield running
    finally:
        running.stop()


def test_power_off_and_on_through_the_cli(
    simulator: RunningSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(simulator.state_dir)
    site = json.loads((simulator.state_dir / "site.json").read_text())
    cert_file = site["devices"][0]["cert_file"]

    off_code = main(["power", "rally-bar", "off", "--state-dir", state])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", simulator.https_port), timeout=30).close()
    on_code = main(["power", "rally-bar", "on", "--control", site["control_url"]])
    status, _, _ = tls_get("127.0.0.1", simulator.https_port, cert_file)

    assert (off_code, on_code, status) == (0, 0, 200)
    assert capsys.readouterr().out == "rally-bar: powered off\nrally-bar: powered on\n"


def test_run_prints_where_to_find_it_and_exits_0_on_sigterm(simulator: RunningSimulator) -> None:
    code = simulator.stop()
    out = simulator.stdout

    assert code == 0
    assert "control: http://127.0.0.1:" in out
    assert f"site: {(simulator.state_dir / 'site.json').resolve()}" in out
    assert not (simulator.state_dir / "site.json").exists()


def test_unknown_device_exits_1_naming_the_known_ones(
    simulator: RunningSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["fault", "tap", "restore", "--state-dir", str(simulator.state_dir)])

    assert code == 1
    assert "unknown device 'tap': the site has rally-bar, meetup, rally, sync-api" in capsys.readouterr().err


def test_no_site_json_exits_1_asking_whether_the_simulator_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["status", "--state-dir", str(tmp_path)])

    assert code == 1
    assert "is `hezo-sim run --state-dir" in capsys.readouterr().err


def test_nothing_listening_exits_1_saying_the_simulator_is_not_running(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    code = main(["status", "--control", url])

    assert code == 1
    assert f"the simulator is not running at {url}" in capsys.readouterr().err
