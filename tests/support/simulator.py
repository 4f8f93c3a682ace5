"""Helpers for tests that talk to the simulator: a site of the test's own, and small HTTP clients."""

import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulator.site import SimulatedSite


@contextmanager
def running_site(state_dir: Path) -> Iterator[SimulatedSite]:
    """A started site on free loopback ports, stopped afterwards whatever happens."""
    site = SimulatedSite(state_dir)
    site.start()
    try:
        yield site
    finally:
        site.stop()


def rally_bar(site: SimulatedSite) -> dict[str, Any]:
    return next(d for d in site.status()["devices"] if d["id"] == "rally-bar")


def tls_get(url_host: str, port: int, cert_file: str) -> tuple[int, str, dict[str, Any]]:
    """GET / over TLS, trusting only ``cert_file``; returns status, body and the peer certificate."""
    context = ssl.create_default_context(cafile=cert_file)
    with (
        socket.create_connection((url_host, port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=url_host) as tls,
    ):
        peer = tls.getpeercert()
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {url_host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert peer is not None
    return status, body.decode(), dict(peer)


def control(base: str, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    """One request to the control endpoint; returns the status and the decoded JSON answer."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@contextmanager
def simulator_process(state_dir: Path) -> Iterator[dict[str, Any]]:
    """``python -m simulator run`` as a real process; yields its ``site.json``, stops it with SIGTERM."""
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "run", "--state-dir", str(state_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not (state_dir / "site.json").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the simulator did not start")
            time.sleep(0.05)
        yield json.loads((state_dir / "site.json").read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
