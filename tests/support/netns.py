"""A network namespace of a test's own, joined to this one by a veth pair: a peer to ping, break and lose.

``Netns`` makes ``hezo-<random>`` with the peer end of a veth pair, addresses in 198.18.0.0/15 (the
benchmarking range, never routed), and removes both on exit. ``down()`` takes the peer's link down (a device
switched off); ``lossy(answer_every=2)`` makes the peer's kernel ignore echo requests and runs a small
responder in the namespace that answers one in ``answer_every`` (a kernel may lack sch_netem, so
``tc ... netem loss`` is not relied on). Needs root and ``ip`` (iproute2); ``require_netns()`` skips a
test that cannot have them.
"""

import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from types import TracebackType

import pytest

REPO = Path(__file__).resolve().parents[2]
RANGE = ipaddress.ip_network("198.18.0.0/15")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def require_netns() -> None:
    """Skip unless this process can make network namespaces (root and iproute2)."""
    if shutil.which("ip") is None:
        pytest.skip("needs 'ip' (iproute2): scripts/system-deps.sh installs it")
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")


class Netns:
    def __init__(self) -> None:
        tag = secrets.token_hex(4)
        self.name = f"hezo-{tag}"
        self.host_link, self.peer_link = f"hz{tag}a", f"hz{tag}b"
        taken = _ip("-o", "addr", "show").stdout
        while True:
            subnet = ipaddress.ip_network((int(RANGE.network_address) + 4 * secrets.randbelow(32768), 30))
            self.host_address, self.peer_address = (str(a) for a in list(subnet.hosts())[:2])
            if f" {self.host_address}/" not in taken:
                break
        self._responder: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Netns":
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.peer_link)
            _ip("link", "set", self.peer_link, "netns", self.name)
            _ip("addr", "add", f"{self.host_address}/30", "dev", self.host_link)
            _ip("link", "set", self.host_link, "up")
            self.run("ip", "addr", "add", f"{self.peer_address}/30", "dev", self.peer_link)
            self.run("ip", "link", "set", self.peer_link, "up")
            self.run("ip", "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._responder is not None:
            self._responder.kill()
            self._responder.wait()
            if self._responder.stdout is not None:
                self._responder.stdout.close()
        _ip("link", "del", self.host_link, check=False)
        _ip("netns", "del", self.name, check=False)

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace."""
        return _ip("netns", "exec", self.name, *argv)

    def down(self) -> None:
        self.run("ip", "link", "set", self.peer_link, "down")

    def lossy(self, answer_every: int) -> None:
        """From now on the peer answers one echo request in ``answer_every``."""
        self.run("sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1")
        argv = ["ip", "netns", "exec", self.name, sys.executable, "-m", "tests.support.icmpresponder"]
        self._responder = subprocess.Popen(
            [*argv, str(answer_every)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert self._responder.stdout is not None
        ready = self._responder.stdout.readline()  # the responder says "ready" once its socket is open
        if ready.strip() != b"ready":
            raise AssertionError(f"the ICMP responder did not start: {ready!r}")

    def allow_unprivileged_ping(self, allow: bool = True) -> None:
        """Let every group (or none) use ICMP datagram sockets in the namespace (a per-namespace sysctl)."""
        value = "0 2147483647" if allow else "1 0"
        self.run("sysctl", "-q", "-w", f"net.ipv4.ping_group_range={value}")
