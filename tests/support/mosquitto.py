"""Start a private Mosquitto on a free loopback port, with the project's broker settings."""

import getpass
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


@dataclass
class Mosquitto:
    """A running broker; ``stop()`` and ``start()`` let a test take it down and bring it back."""

    host: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        base = (ROOT / "config" / "mosquitto.conf").read_text()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            base.replace("listener 1883 127.0.0.1", f"listener {self.port} {self.host}")
            + f"\npersistence_location {self.workdir}/\n"
            # Started as root, Mosquitto would drop to the 'mosquitto' user and could not write workdir.
            + f"user {getpass.getuser()}\n"
        )
        with (self.workdir / "mosquitto.log").open("ab") as log:
            self.process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        wait_port(self.host, self.port)

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None
