"""Helpers for remote diagnostics tests: key pairs, signed commands, and a proxy that breaks a connection."""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.remote.keys import keygen
from protocol.commands import Command, canonical, encode_signed


def key_pair(folder: Path, name: str = "collector.key") -> tuple[Path, Path]:
    """A fresh private key (0600) and its public key in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / name
    return private, keygen(private)


def load_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def signed(
    key: Ed25519PrivateKey,
    *,
    command_id: str = "cmd-00000001",
    site: str = "test-site",
    agent: str = "room-1",
    action: str = "report-config",
    args: dict[str, Any] | None = None,
    issued: datetime | None = None,
    lifetime: float = 300.0,
) -> bytes:
    """A cmd payload signed with ``key`` (no field checks: tests build bad ones on purpose)."""
    from protocol import format_ts

    issued = issued or datetime.now(UTC)
    command = Command(
        command_id,
        site,
        agent,
        action,
        format_ts(issued),
        format_ts(issued + timedelta(seconds=lifetime)),
        args or {},
    )
    return encode_signed(command, key.sign(canonical(command)))


class CuttingProxy:
    """A TCP proxy to ``target`` that cuts the first connection after ``cut_after`` bytes from the client.

    Later connections pass through untouched, so a client that resumes gets through.
    """

    def __init__(self, target: tuple[str, int], cut_after: int) -> None:
        self.target = target
        self.cut_after = cut_after
        self.connections = 0
        self.forwarded = 0  # bytes from clients to the target, over every connection
        self.cut = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._server.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.cut_after if not self.cut.is_set() else None
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, limit, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, limit: int | None, count: bool) -> None:
        moved = 0
        try:
            while chunk := source.recv(65536):
                if limit is not None and moved + len(chunk) >= limit:
                    sink.sendall(chunk[: limit - moved])
                    self.forwarded += limit - moved
                    self.cut.set()
                    break
                sink.sendall(chunk)
                moved += len(chunk)
                if count:
                    self.forwarded += len(chunk)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
