"""In-depth service tests: a repeated check with loss and timing for every driver, plus extras per driver.

Every configured check of a device runs ``repeat`` times, so any driver in ``agent.drivers.DRIVERS``
(present or future) gets loss and latency figures without code here. A driver offers more by giving its
probe an ``async service_tests() -> list[CheckResult]`` method; drivers that have none may get extras from
``EXTRAS`` below (keyed by driver name): TLS details for ``https``, the USB functions present for ``usb``.
"""

import asyncio
import hashlib
import ssl
import statistics
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.config import AgentConfig
from agent.drivers import SharedResources
from agent.drivers.base import CheckResult, Probe, Stopwatch
from agent.drivers.usb.sysfs import scan
from agent.poller import build_devices, check


async def _tls_details(probe: Any) -> list[CheckResult]:
    """Protocol version, cipher and the certificate the device shows (subject, expiry, fingerprint)."""
    options = probe.options
    parts = urlsplit(options.url)
    context = ssl.create_default_context(cafile=str(options.ca_file) if options.ca_file else None)
    if options.ca_file is None and not options.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    watch = Stopwatch()
    try:
        async with asyncio.timeout(options.timeout):
            _reader, writer = await asyncio.open_connection(
                parts.hostname, parts.port or 443, ssl=context, server_hostname=parts.hostname
            )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return [
            CheckResult(
                "https", f"{options.url} tls", False, f"TLS handshake failed: {exc}", duration_ms=watch.ms()
            )
        ]
    try:
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        detail = f"{tls.version() if tls else '?'}, cipher {tls.cipher()[0] if tls and tls.cipher() else '?'}"
        if der:
            detail += f", certificate sha256 {hashlib.sha256(der).hexdigest()[:16]}..."
            detail += _certificate_text(der)
    finally:
        writer.transport.abort()
    return [CheckResult("https", f"{options.url} tls", True, detail, duration_ms=watch.ms())]


def _certificate_text(der: bytes) -> str:
    try:
        from cryptography import x509
    except ImportError:
        return ""
    cert = x509.load_der_x509_certificate(der)
    return f", subject {cert.subject.rfc4514_string()}, valid until {cert.not_valid_after_utc.isoformat()}"


async def _usb_functions(probe: Any) -> list[CheckResult]:
    """Every USB device the agent sees under the sysfs root, so a missing function is easy to spot."""
    watch = Stopwatch()
    root = Path(probe.options.sysfs_root)
    try:
        found = await asyncio.to_thread(scan, root)
    except OSError as exc:
        return [CheckResult("usb", f"{root} functions", False, f"cannot list: {exc}", duration_ms=watch.ms())]
    listed = ", ".join(f"{d.vendor}:{d.product}" + (f" serial {d.serial}" if d.serial else "") for d in found)
    return [
        CheckResult(
            "usb", f"{root} functions", True, f"{len(found)} present: {listed}", duration_ms=watch.ms()
        )
    ]


EXTRAS: dict[str, Callable[[Any], Awaitable[list[CheckResult]]]] = {
    "https": _tls_details,
    "usb": _usb_functions,
}


async def _repeat(probe: Probe, repeat: int) -> dict[str, Any]:
    results = [await check(probe) for _ in range(repeat)]
    times = [r.duration_ms for r in results if r.ok and r.duration_ms is not None]
    failed = sum(1 for r in results if not r.ok)
    summary: dict[str, Any] = {
        "driver": probe.driver,
        "target": probe.target,
        "runs": repeat,
        "failed": failed,
        "loss_pct": round(100.0 * failed / repeat, 1),
        "ok": failed == 0,
        "last": results[-1].to_wire(),
    }
    if times:
        summary.update(
            min_ms=round(min(times), 3), avg_ms=round(statistics.fmean(times), 3), max_ms=round(max(times), 3)
        )
    return summary


async def _extras(probe: Probe) -> list[dict[str, Any]]:
    offered = getattr(probe, "service_tests", None)
    runner: Callable[[], Awaitable[list[CheckResult]]] | None = None
    if callable(offered):
        runner = offered
    elif probe.driver in EXTRAS:
        extra = EXTRAS[probe.driver]
        runner = lambda: extra(probe)  # noqa: E731
    if runner is None:
        return []
    try:
        return [r.to_wire() for r in await runner()]
    except Exception as exc:  # noqa: BLE001 - a broken extra is a finding, not a crash
        return [CheckResult(probe.driver, probe.target, False, f"service test error: {exc!r}").to_wire()]


async def device_service_tests(
    config: AgentConfig, device: str, repeat: int = 5, shared: SharedResources | None = None
) -> dict[str, Any]:
    """Every configured check of ``device`` ``repeat`` times, then the in-depth extras; a JSON-able dict.

    ``shared`` are the running agent's resources (its one Sync client, within the API's budget); on site,
    without an agent, a set of our own.
    """
    conf = next((d for d in config.devices if d.id == device), None)
    if conf is None:
        known = ", ".join(d.id for d in config.devices)
        return {"device": device, "ok": False, "error": f"unknown device; configured: {known}", "checks": []}
    own = shared is None
    resources = SharedResources() if shared is None else shared
    checks = []
    try:
        [built] = build_devices(config, resources, only={device})
        for probe in built.probes:
            summary = await _repeat(probe, repeat)
            summary["extras"] = await _extras(probe)
            checks.append(summary)
    finally:
        if own:
            resources.close()
    return {
        "device": device,
        "model": conf.model,
        "serial": conf.serial,
        "ok": all(c["ok"] and all(e["ok"] for e in c["extras"]) for c in checks),
        "checks": checks,
    }
