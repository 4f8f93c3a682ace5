"""Resumable upload of a bundle to the collector (docs/diagnostics.md, "Upload protocol").

``HEAD url`` answers ``Upload-Offset``, the bytes the collector holds (with ``Hezo-Bundle`` once complete).
``PATCH url`` with ``Upload-Offset``, ``Upload-Length`` and ``Upload-Sha256`` appends the body at that
offset; the collector keeps whatever arrived before a broken connection, so the next try asks ``HEAD``
again and sends only the rest. When the last byte arrives the collector checks the sha256 of the whole
bundle and answers 201. Every request carries the command's one-time token as ``Authorization: Bearer``.
"""

from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from diagnostics.bundle import file_sha256
from diagnostics.errors import DiagnosticsError


class UploadError(DiagnosticsError):
    """The collector refused the bundle or could not be reached after every retry."""


class _Slice:
    """``length`` bytes of an open file from its current position, streamed by requests in blocks."""

    def __init__(self, handle: IO[bytes], length: int, progress: Callable[[int], None] | None) -> None:
        self._handle = handle
        self._left = length
        self._length = length
        self._progress = progress

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._handle.read(size)
        self._left -= len(data)
        if self._progress is not None and data:
            self._progress(len(data))
        return data


def upload(
    path: Path,
    url: str,
    token: str,
    *,
    ca_file: Path | None = None,
    timeout: float = 30.0,
    retries: int = 5,
    chunk_bytes: int = 64 * 1024 * 1024,
    progress: Callable[[int, int], None] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Send ``path`` to ``url``, resuming after broken connections; return the collector's answer."""
    import time

    import requests

    pause = sleep or time.sleep
    total = path.stat().st_size
    digest = file_sha256(path)
    headers = {"Authorization": f"Bearer {token}", "Upload-Length": str(total), "Upload-Sha256": digest}
    verify: bool | str = str(ca_file) if ca_file is not None else True
    failures = 0
    sent = 0

    def moved(count: int) -> None:
        nonlocal sent
        sent += count
        if progress is not None:
            progress(min(sent, total), total)

    with requests.Session() as session, path.open("rb") as handle:
        while True:
            try:
                head = session.head(url, headers=headers, timeout=timeout, verify=verify)
                if head.status_code != 200:
                    raise UploadError(
                        f"collector refused the upload: HTTP {head.status_code} {head.text[:200]}"
                    )
                offset = int(head.headers.get("Upload-Offset", "0"))
                if "Hezo-Bundle" in head.headers:  # it all arrived before the connection broke
                    if head.headers.get("Upload-Sha256") != digest:
                        raise UploadError("the collector holds a different bundle for this command")
                    bundle = int(head.headers["Hezo-Bundle"])
                    return {"bundle": bundle, "sha256": digest, "size": total, "resumed": failures}
                sent = offset
                while True:
                    length = min(chunk_bytes, total - offset)
                    handle.seek(offset)
                    answer = session.patch(
                        url,
                        data=_Slice(handle, length, moved),
                        headers={
                            **headers,
                            "Upload-Offset": str(offset),
                            "Content-Type": "application/offset+octet-stream",
                        },
                        timeout=timeout,
                        verify=verify,
                    )
                    if answer.status_code == 201:
                        result: dict[str, Any] = answer.json()
                        result["resumed"] = failures
                        return result
                    if answer.status_code == 409:
                        break  # the collector holds another offset: ask again
                    if answer.status_code != 204:
                        raise UploadError(
                            f"collector refused the upload: HTTP {answer.status_code} {answer.text[:200]}"
                        )
                    offset = int(answer.headers["Upload-Offset"])
            except requests.RequestException as exc:
                failures += 1
                if failures > retries:
                    raise UploadError(f"upload failed after {retries} retries: {exc}") from None
                pause(min(2.0 ** (failures - 1), 30.0))
