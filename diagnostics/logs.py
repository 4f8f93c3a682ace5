"""What goes into a log bundle: the agent's log, the system journal, the room software's log folders and
what each device's HTTPS admin page answers. Every source that is missing is recorded with the reason.

The caller says which devices' pages to fetch (``DevicePage``) and who built the bundle (``origin``); this
module knows nothing of the agent's configuration.
"""

import http.client
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from diagnostics.bundle import BundleBuilder
from diagnostics.config import LogsConfig
from diagnostics.redact import PersonalData, Redactor, stricter
from protocol import format_ts

JOURNAL_TIMEOUT = 120.0
DEVICE_BODY_BYTES = 1024 * 1024


def journal_argv(
    journalctl: str, since: datetime | None, until: datetime | None, units: list[str]
) -> list[str]:
    """The journalctl argv for a time range and units (epoch times: no local-time ambiguity)."""
    argv = [journalctl, "--no-pager", "--output=short-iso-precise", "--quiet"]
    if since is not None:
        argv.append(f"--since=@{int(since.timestamp())}")
    if until is not None:
        argv.append(f"--until=@{int(until.timestamp()) + 1}")
    for unit in units:
        argv.append(f"--unit={unit}")
    return argv


def add_journal(
    builder: BundleBuilder,
    since: datetime | None,
    until: datetime | None,
    units: list[str],
    *,
    which: Callable[[str], str | None] = shutil.which,
) -> None:
    """The system journal as ``journal/journal.txt``; skipped with a reason where journalctl is absent."""
    journalctl = which("journalctl")
    if journalctl is None:
        builder.skip("journal", "journalctl not found on this machine")
        return
    argv = journal_argv(journalctl, since, until, units)
    with tempfile.TemporaryFile() as out:
        try:
            done = subprocess.run(
                argv, stdout=out, stderr=subprocess.PIPE, timeout=JOURNAL_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            builder.skip("journal", f"journalctl failed: {exc}")
            return
        if done.returncode != 0 and out.tell() == 0:
            error = done.stderr.decode(errors="replace").strip()[:300]
            builder.skip("journal", f"journalctl exited with {done.returncode}: {error}")
            return
        size = out.tell()
        out.seek(max(0, size - builder.max_file_bytes))
        data = out.read()
    builder.add_bytes("journal/journal.txt", data, source=" ".join(argv), cut_front=size > len(data))


def _fetch_https(url: str, verify: bool, ca_file: Path | None, timeout: float) -> bytes:
    parts = urlsplit(url)
    if ca_file is not None:
        context = ssl.create_default_context(cafile=str(ca_file))
    else:
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(
        parts.hostname or "", parts.port or 443, timeout=timeout, context=context
    )
    try:
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        answer = connection.getresponse()
        head = f"GET {url}\nHTTP {answer.status} {answer.reason}\n"
        head += "".join(f"{name}: {value}\n" for name, value in answer.getheaders())
        sock = connection.sock
        peer = ""
        if isinstance(sock, ssl.SSLSocket):
            peer = f"TLS {sock.version()} {sock.cipher()}\n"
        body = answer.read(DEVICE_BODY_BYTES)
        return (head + peer + "\n").encode() + body
    finally:
        connection.close()


@dataclass(frozen=True)
class DevicePage:
    """A device's HTTPS admin page to put in the bundle as ``device/DEVICE/NAME.txt``, and how to fetch it."""

    device: str
    name: str
    url: str
    verify: bool = False
    ca_file: Path | None = None
    timeout: float = 5.0


def add_device_pages(builder: BundleBuilder, pages: Iterable[DevicePage]) -> None:
    """What each page answers; a device that does not answer is skipped with the reason."""
    for page in pages:
        try:
            data = _fetch_https(page.url, page.verify, page.ca_file, page.timeout)
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            builder.skip(page.url, f"device {page.device} did not answer: {exc}")
            continue
        builder.add_bytes(f"device/{page.device}/{page.name}.txt", data, source=page.url)


def new_builder(
    logs: LogsConfig, origin: dict[str, Any], personal_data: PersonalData | None = None
) -> BundleBuilder:
    """A builder with the caps and redaction of ``logs``; ``personal_data`` (a command's, say) can only make
    the handling of personal data stricter than the config's."""
    return BundleBuilder(
        origin,
        max_file_bytes=logs.max_file_bytes,
        max_total_bytes=logs.max_total_bytes,
        redactor=Redactor(list(logs.redact), personal=stricter(logs.personal_data, personal_data)),
    )


def build_log_bundle(
    logs: LogsConfig,
    out: Path,
    *,
    origin: Mapping[str, Any],
    pages: Iterable[DevicePage] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    units: list[str] | None = None,
    extra: dict[str, bytes] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    personal_data: PersonalData | None = None,
) -> dict[str, Any]:
    """Build the bundle into ``out`` and return its manifest.

    ``origin`` says where the bundle comes from and why (site, agent, device, command...); the manifest adds
    the host name, unless ``origin`` gives one, and the journal's time range.
    """
    where: dict[str, Any] = {"hostname": socket.gethostname(), **origin}
    where["since"] = format_ts(since) if since else None
    where["until"] = format_ts(until) if until else None
    builder = new_builder(logs, where, personal_data)
    try:
        for name, data in (extra or {}).items():
            builder.add_bytes(name, data, source="agent")
        for path in logs.agent_log:
            builder.add_file(f"agent/{path.name}", path)
        if logs.journal:
            add_journal(builder, since, until, units if units is not None else list(logs.units), which=which)
        for index, folder in enumerate(logs.folders):
            builder.add_folder(f"app/{index}-{folder.name or 'root'}", folder)
        add_device_pages(builder, pages)
        return builder.write(out)
    finally:
        builder.close()
