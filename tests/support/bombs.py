"""Bundle bombs for tests and benchmarks: a small tar.gz whose one member unpacks to many zeros, built as a
stream (the zeros are never held in memory)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

MEMBER = "agent/agent.log"


class Zeros(io.RawIOBase):
    """``size`` zero bytes, read without ever holding them: what a bomb's member unpacks to."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def bomb(out: Path, unpacked: int) -> Path:
    """Write to ``out`` a tar.gz whose member ``MEMBER`` unpacks to ``unpacked`` zero bytes."""
    with tarfile.open(out, "w:gz", compresslevel=9) as tar:
        manifest = json.dumps({"files": [{"path": MEMBER, "sha256": "0" * 64}]}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        member = tarfile.TarInfo(MEMBER)
        member.size = unpacked
        tar.addfile(member, io.BufferedReader(Zeros(unpacked), buffer_size=1024 * 1024))
    return out
