"""Start a private Mosquitto on a free loopback port, with the project's broker settings."""

import getpass
import os
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from simulator import net
from simulator.net import listening

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["ROOT", "Mosquitto", "free_port", "listening", "wait_port"]

#: How many ports below the kernel's ephemeral range ``free_port`` draws from.
_FIXED_PORTS = 12_000


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now, for a server a test starts, drawn below the kernel's ephemeral range.

    A port the kernel handed out as free (bind to 0) comes from the ephemeral range, from which it also hands
    ports to every other bind to 0 and to every outgoing connection: between this call and the server's bind,
    a simulator's listener or a client's source port could take it (a request to the collector then reached
    a TLS listener, and the connection was reset). Below that range only other calls of this one compete.
    """
    start = _ephemeral_start()
    for _ in range(100):
        port = random.randrange(max(1024, start - _FIXED_PORTS), start)
        with socket.socket(net.loopback_family(host)) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    return net.free_port(host)


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening(host, port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


def listening_pid_owns(pid: int, port: int) -> bool:
    """True if process ``pid`` has a TCP socket listening on ``port`` (read from /proc, Linux only)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{inode}]")
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) in inodes:
                return True
        except OSError:
            continue
    return False


@dataclass
class Mosquitto:
    """A running broker; ``stop()`` and ``start()`` let a test take it down and bring it back."""

    host: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    extra: str = ""  # more settings for the listener, e.g. certfile/keyfile for TLS

    def start(self) -> None:
        """Start on ``self.port``; on the first start, move to another free port if that one was taken."""
        first = self.process is None and not (self.workdir / "mosquitto.conf").exists()
        for _ in range(5 if first else 1):
            if self._launch():
                return
            self.port = free_port(self.host)
        raise RuntimeError(f"mosquitto could not listen; see {self.workdir / 'mosquitto.log'}")

    def config_text(self) -> str:
        """config/mosquitto.conf on this broker's port, keeping its files in ``workdir``."""
        base = (ROOT / "config" / "mosquitto.conf").read_text()
        return (
            base.replace("listener 1883 127.0.0.1", f"listener {self.port} {self.host}")
            + f"\npersistence_location {self.workdir}/\n"
            # Started as root, Mosquitto would drop to the 'mosquitto' user and could not write workdir.
            + f"user {getpass.getuser()}\n"
            + self.extra
        )

    def _launch(self) -> bool:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config_text())
        with (self.workdir / "mosquitto.log").open("ab") as log:
            process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False  # the port was taken between free_port() and the bind
            # Another test's broker may hold the port: only a socket of our own process counts.
            if listening_pid_owns(process.pid, self.port):
                self.process = process
                return True
            time.sleep(0.05)
        process.kill()
        process.wait()
        return False

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None
