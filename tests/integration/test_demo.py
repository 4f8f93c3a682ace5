"""`make demo` works as the README says: it starts, shows a ticket when a plug is pulled, stops on Ctrl-C.

Run with both brokers it can use: Mosquitto, and the embedded amqtt broker for machines without Mosquitto.
"""

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from simulator.net import listening
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


class Output:
    """The demo's standard output, read line by line in the background."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        self.reader = threading.Thread(target=lambda: [self.lines.put(line) for line in stream], daemon=True)
        self.reader.start()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no line matching {pattern!r}; output so far:\n{''.join(self.seen)}"
                ) from None
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match


def drain(output: "Output") -> list[str]:
    output.reader.join(timeout=10)
    lines = []
    while not output.lines.empty():
        lines.append(output.lines.get_nowait())
    return lines


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_the_demo_shows_a_ticket_when_the_plug_is_pulled_and_stops_cleanly(
    broker: str, tmp_path: Path
) -> None:
    data = tmp_path / "demo"
    argv = [
        sys.executable,
        "-m",
        "simulator.demo",
        "--data",
        str(data),
        "--broker",
        broker,
        "--web-port",
        "0",
    ]
    # A session of its own, like a terminal's job, so Ctrl-C can go to the whole group as a terminal sends it.
    demo = subprocess.Popen(
        [*argv, "--confirm-window", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(demo)
    try:
        broker_port = int(output.wait_for(r"broker .* on mqtt://127\.0\.0\.1:(\d+)", timeout=60).group(1))
        web_port = int(output.wait_for(r"Open http://127\.0\.0\.1:(\d+)/", timeout=60).group(1))

        subprocess.run(
            [
                sys.executable,
                "-m",
                "simulator",
                "power",
                "rally-bar",
                "off",
                "--state-dir",
                str(data / "site"),
            ],
            check=True,
            capture_output=True,
        )
        line = output.wait_for(r"ticket HZ-\d+: CRITICAL open", timeout=60).string
        assert "serial 2034FH1002R2" in line
        assert "contract HZ-2026-0042" in line

        # The demo made an admin, a viewer and a customer's user, and printed their logins and a token.
        printed = "".join(output.seen)
        assert re.findall(r"(\w+) / \S+  \(", printed) == ["admin", "viewer", "customer"]
        token = re.findall(r"HEZO_TOKEN=(hezo_\S+)", printed)[0]
        headers = {"Authorization": f"Bearer {token}"}
        page_request = urllib.request.Request(f"http://127.0.0.1:{web_port}/", headers=headers)
        with urllib.request.urlopen(page_request, timeout=10) as page:
            html = page.read().decode()
        assert "2034FH1002R2" in html
        assert "HZ-2026-0042" in html
        assert "not in the collector's registry" not in html  # the demo registers its contract

        # The ticket fetches its evidence by itself: service tests and a log bundle from the agent.
        number = re.search(r"ticket (HZ-\d+)", line).group(1)  # type: ignore[union-attr]

        def evidence() -> dict[str, Any]:
            url = f"http://127.0.0.1:{web_port}/api/tickets/{number}/diagnostics"
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
                return json.loads(answer.read())  # type: ignore[no-any-return]

        eventually("the ticket's evidence", lambda: bool(evidence()["bundles"]), timeout=60)
        assert {c["action"] for c in evidence()["commands"]} == {"service-tests", "collect-logs"}

        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C: every process of the group gets it...
        output.wait_for(r"hezo demo: stopping", timeout=30)
        os.killpg(demo.pid, signal.SIGINT)  # ...and an impatient second one while it cleans up
        assert demo.wait(timeout=60) == 0
        assert "Traceback" not in "".join(output.seen) + "".join(drain(output))
        assert not listening("127.0.0.1", web_port)
        assert not listening("127.0.0.1", broker_port)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        output.reader.join(timeout=10)
        assert demo.stdout is not None
        demo.stdout.close()
