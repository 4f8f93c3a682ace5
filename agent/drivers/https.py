"""``https``: the device's local web admin page. A TLS handshake and an HTTP answer mean the device is alive.

Rally Bar, Rally Bar Mini and Tap IP serve their admin page over HTTPS with a self-signed certificate, so by
default the certificate is not verified (``verify: false``); ``ca_file`` pins the device's own certificate.
Any HTTP status counts as alive (the admin page answers 200, 302 or 401 depending on its set-up) unless
``expect_status`` lists the acceptable ones.

The certificate's expiry is read from the handshake whether or not it is verified: a self-signed or pinned
certificate still expires, and a device whose admin page serves an expired one is ``degraded`` (it answers,
but browsers and a pinning agent refuse it). Under ``cert_warn_days`` days left is ``degraded`` too. The days
left are counted on the probe's ``clock`` (default: the system's, in UTC).
"""

import asyncio
import errno
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, FilePath, field_validator

from agent.drivers.base import CheckResult, Stopwatch
from agent.drivers.x509lite import CertificateDates, CertificateError, certificate_dates

MAX_HEADER_BYTES = 16384
#: Errors of this PC, not of the device: no network here, no file descriptors or buffers left, a local
#: firewall. The check could not tell (inconclusive); a device that does not answer is a timeout, a refusal,
#: or "no route to host" (its address does not answer ARP).
LOCAL_ERRORS = frozenset(
    {
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EADDRNOTAVAIL,
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOBUFS,
        errno.ENOMEM,
        errno.EACCES,
        errno.EPERM,
    }
)


class HttpsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver: Literal["https"]
    url: str = Field(description="https://host[:port][/path] of the admin page")
    timeout: float = Field(5.0, gt=0, le=120)
    verify: bool = False
    ca_file: FilePath | None = None
    expect_status: list[int] | None = None
    cert_warn_days: float = Field(
        14.0, ge=0, le=3650, description="fewer days than this before the certificate expires is degraded"
    )

    @field_validator("url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("expected an https:// URL with a host, e.g. https://192.0.2.10/")
        try:
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return value

    @field_validator("ca_file")
    @classmethod
    def _loadable_ca(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                ssl.create_default_context(cafile=str(value))
            except (ssl.SSLError, ValueError) as exc:
                raise ValueError(f"{value} is not a PEM certificate file ({exc})") from None
        return value


#: The TLS client contexts made so far, by what they verify against: one per distinct setting, shared by
#: every probe that has it (a context is made for many connections). A context that loads the system's CA
#: store holds every certificate in it, close to 1 MB: made per probe, 50 devices paid 40 MB for it.
_CONTEXTS: dict[tuple[object, ...], ssl.SSLContext] = {}


def tls_context(verify: bool, ca_file: Path | None) -> ssl.SSLContext:
    """The client context of a check with ``verify`` and ``ca_file``, made once per distinct setting.

    ``ca_file`` pins the device's certificate: only that file is trusted (host names are checked). ``verify``
    without it trusts the system's CA store. Neither (the default, for the devices' self-signed
    certificates) verifies nothing, so no CA store is loaded at all; TLS itself is as strict as
    ``ssl.create_default_context`` makes it. A ``ca_file`` replaced on disk gets a new context.
    """
    if ca_file is not None:
        stat = ca_file.stat()
        key: tuple[object, ...] = ("pinned", str(ca_file), stat.st_mtime_ns, stat.st_size)
    else:
        key = ("system",) if verify else ("unverified",)
    context = _CONTEXTS.get(key)
    if context is None:
        if ca_file is not None:
            context = ssl.create_default_context(cafile=str(ca_file))
        elif verify:
            context = ssl.create_default_context()
        else:
            # What create_default_context() makes, without loading the CA store nothing would consult.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        _CONTEXTS[key] = context
    return context


class HttpsProbe:
    driver = "https"

    def __init__(
        self, options: HttpsOptions, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.options = options
        self._clock = clock
        self.target = options.url
        parts = urlsplit(options.url)
        self._host = parts.hostname or ""
        self._port = parts.port or 443
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._context = tls_context(options.verify, options.ca_file)

    def _result(self, ok: bool, detail: str, watch: Stopwatch, *, inconclusive: bool = False) -> CheckResult:
        elapsed = watch.ms()
        metrics = {"https.duration_ms": elapsed} if ok else {}
        return CheckResult(
            self.driver,
            self.target,
            ok,
            detail,
            duration_ms=elapsed,
            metrics=metrics,
            inconclusive=inconclusive,
        )

    async def poll(self) -> CheckResult:
        watch = Stopwatch()
        try:
            async with asyncio.timeout(self.options.timeout):
                status, der = await self._exchange()
        except TimeoutError:
            return self._result(False, f"no answer within {self.options.timeout:g} s", watch)
        except ssl.SSLCertVerificationError as exc:
            why = f" ({exc.verify_message})" if exc.verify_message else ""
            return self._result(False, f"TLS handshake failed: {exc.reason or exc}{why}", watch)
        except ssl.SSLError as exc:
            return self._result(False, f"TLS handshake failed: {exc.reason or exc}", watch)
        except ConnectionRefusedError:
            return self._result(False, "connection refused", watch)
        except socket.gaierror as exc:
            # The name did not resolve: this PC's resolver failed, the device was never asked.
            detail = f"cannot resolve {self._host}: {exc.strerror or exc}"
            return self._result(False, detail, watch, inconclusive=True)
        except OSError as exc:
            if exc.errno in LOCAL_ERRORS:  # this PC could not send at all: nothing learnt of the device
                detail = f"cannot connect from this PC: {exc.strerror or exc}"
                return self._result(False, detail, watch, inconclusive=True)
            return self._result(False, f"cannot connect: {exc.strerror or exc}", watch)
        except ValueError as exc:
            return self._result(False, f"not an HTTP answer: {exc}", watch)
        elapsed = watch.ms()
        metrics = {"https.duration_ms": elapsed, "https.status": float(status)}
        if self.options.expect_status is not None and status not in self.options.expect_status:
            detail = f"HTTP {status}, expected one of {self.options.expect_status}"
            return CheckResult(self.driver, self.target, False, detail, duration_ms=elapsed, metrics=metrics)
        facts: dict[str, str] = {}
        problem = None
        try:
            dates = certificate_dates(der) if der else None
        except CertificateError as exc:
            dates = None
            facts["cert"] = f"unreadable: {exc}"
        if dates is not None:
            now = self._clock()
            days_left = (dates.not_after - now).total_seconds() / 86400.0
            metrics["cert_days_left"] = round(days_left, 3)
            facts["cert_not_after"] = dates.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
            facts["cert_self_signed"] = "yes" if dates.self_signed else "no"
            problem = self._certificate_problem(dates, days_left, now)
        detail = f"HTTP {status}" + (f"; {problem}" if problem else "")
        return CheckResult(
            self.driver,
            self.target,
            True,
            detail,
            duration_ms=elapsed,
            degraded=problem is not None,
            metrics=metrics,
            facts=facts,
        )

    def _certificate_problem(self, dates: CertificateDates, days_left: float, now: datetime) -> str | None:
        expiry = dates.not_after.strftime("%Y-%m-%d %H:%M UTC")
        if days_left < 0:
            return f"certificate expired {-days_left:.1f} days ago ({expiry})"
        if dates.not_before > now:
            return f"certificate not valid before {dates.not_before.strftime('%Y-%m-%d %H:%M UTC')}"
        if days_left < self.options.cert_warn_days:
            return (
                f"certificate expires in {days_left:.1f} days ({expiry}), "
                f"under the {self.options.cert_warn_days:g} days warned of"
            )
        return None

    async def _exchange(self) -> tuple[int, bytes | None]:
        """The HTTP status and the peer's certificate (DER, read even when not verified)."""
        reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            tls = TlsStream(self._context, self._host, reader, writer)
            await tls.handshake()
            der = tls.peer_certificate()
            request = (
                f"GET {self._path} HTTP/1.1\r\nHost: {self._host}\r\nUser-Agent: hezo-agent\r\n"
                "Accept: */*\r\nConnection: close\r\n\r\n"
            )
            await tls.send(request.encode("ascii"))
            line = await tls.read_line(MAX_HEADER_BYTES)
            if not line:
                raise ValueError("connection closed before a status line")
            if len(line) >= MAX_HEADER_BYTES and not line.endswith(b"\n"):
                raise ValueError("status line too long")
            version, _, rest = line.decode("latin-1").partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/") or not code.isdigit():
                raise ValueError(f"bad status line {line[:60]!r}")
            return int(code), der
        finally:
            # Drop the connection without waiting for the peer's TLS goodbye: a device that hangs would
            # otherwise hold the poll far past its timeout.
            writer.transport.abort()


class TlsStream:
    """TLS over a plain asyncio stream through memory BIOs: the ``ssl`` module does the protocol, this only
    carries its bytes.

    asyncio's own TLS transport gives every connection a 256 KiB receive buffer: 50 devices checked at the
    same moment took 12 MB, which the allocator kept afterwards. A check reads one status line, so records
    are read ``READ_BYTES`` at a time (a TLS record is at most 16 KiB plus its header).
    """

    READ_BYTES = 17 * 1024

    def __init__(
        self, context: ssl.SSLContext, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=host)
        self._reader, self._writer = reader, writer

    async def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._writer.write(pending)
            await self._writer.drain()

    async def _receive(self) -> None:
        data = await self._reader.read(self.READ_BYTES)
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()  # the next TLS call says what the peer's close means

    async def handshake(self) -> None:
        """Handshake (and verify, as the context says); ``ssl.SSLError`` if it fails."""
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                await self._receive()
                continue
            await self._flush()
            return

    def peer_certificate(self) -> bytes | None:
        return self._tls.getpeercert(binary_form=True)

    async def send(self, data: bytes) -> None:
        self._tls.write(data)
        await self._flush()

    async def read_line(self, limit: int) -> bytes:
        """Up to and including the first newline, at most ``limit`` bytes; fewer, without one, if the peer
        closed first or the line is longer."""
        line = b""
        while b"\n" not in line and len(line) < limit:
            try:
                chunk = self._tls.read(limit - len(line))
            except ssl.SSLWantReadError:
                await self._flush()
                await self._receive()
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break  # closed, cleanly or not: what came is all there is
            if not chunk:
                break  # the peer's close_notify
            line += chunk
        end = line.find(b"\n")
        return line if end < 0 else line[: end + 1]


def build(options: HttpsOptions) -> HttpsProbe:
    return HttpsProbe(options)
