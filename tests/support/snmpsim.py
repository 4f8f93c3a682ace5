"""snmpsim serving recordings of real switches (``snmpsim-data-lextudio``), started by a test.

``scripts/snmpsim.sh`` (run by ``make test``) puts snmpsim in a venv of its own, ``.snmpsim``, and unpacks the
recordings the tests use into ``.snmpsim/data``. The responder answers SNMPv2c with the recording's name as
the community (``cisco-c3750``), and SNMPv3 with the recording's name as the context name. Run as root it
drops to ``nobody``, so its data and cache are staged in world-readable temporary directories.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from simulator.snmpswitch import free_udp_port

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".snmpsim"
RESPONDER = VENV / "bin" / "snmpsim-command-responder"
DATA = VENV / "data"
V3_USER, V3_AUTH_KEY, V3_PRIV_KEY = "hezo", "hezo-auth-key", "hezo-priv-key"


def missing() -> str | None:
    """Why the recordings cannot be served here, or None."""
    if not (VENV / ".installed").exists() or not RESPONDER.exists():
        return "snmpsim is not set up: run sh scripts/snmpsim.sh (make test does)"
    return None


def _nobody_can_read(path: Path) -> bool:
    return all(os.stat(parent).st_mode & 0o001 for parent in [path, *path.parents])


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag, len(value)]) + value


def _answers(port: int, community: str) -> bool:
    """Whether the responder answers a v2c GET of sysUpTime.0 (hand-encoded)."""
    varbind = _tlv(0x30, _tlv(0x06, bytes([0x2B, 6, 1, 2, 1, 1, 3, 0])) + b"\x05\x00")
    pdu = _tlv(0xA0, _tlv(0x02, b"\x01") + _tlv(0x02, b"\x00") + _tlv(0x02, b"\x00") + _tlv(0x30, varbind))
    message = _tlv(0x30, _tlv(0x02, b"\x01") + _tlv(0x04, community.encode()) + pdu)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.sendto(message, ("127.0.0.1", port))
            return bool(sock.recv(4096))
        except OSError:
            return False


class Snmpsim:
    """One responder on a free loopback port serving every recording in ``.snmpsim/data``."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_udp_port(self.host)
        self._dir = Path(tempfile.mkdtemp(prefix="hezo-snmpsim-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        data, cache = self._dir / "data", self._dir / "cache"
        shutil.copytree(DATA, data)
        cache.mkdir()
        self._dir.chmod(0o755)
        cache.chmod(0o777)  # the responder, as nobody, indexes the recordings there
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self._dir)}
        if os.getuid() == 0 and not _nobody_can_read(RESPONDER):
            env["SNMPSIM_ALLOW_ROOT"] = "true"  # it could not read its own venv as nobody
        argv = [
            str(RESPONDER),
            f"--data-dir={data}",
            f"--cache-dir={cache}",
            f"--agent-udpv4-endpoint={self.host}:{self.port}",
            f"--v3-user={V3_USER}",
            "--v3-auth-proto=SHA",
            f"--v3-auth-key={V3_AUTH_KEY}",
            "--v3-priv-proto=AES",
            f"--v3-priv-key={V3_PRIV_KEY}",
        ]
        if os.getuid() == 0 and "SNMPSIM_ALLOW_ROOT" not in env:
            argv += ["--process-user=nobody", "--process-group=nogroup"]
        with (self._dir / "responder.log").open("wb") as log:
            self._process = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not _answers(self.port, "cisco-c3750"):
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = self._dir / "responder.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else "no log"
                self.stop()
                raise RuntimeError(f"snmpsim did not start on udp {self.host}:{self.port}: {tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)
