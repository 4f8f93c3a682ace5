"""``icmp``: is the device's address answering pings, how many are lost, and how long do they take.

Three ways to ping, chosen at start-up (``method: auto``) in this order:

- ``unprivileged``: ICMP datagram sockets (icmplib ``privileged=False``), when the kernel lets this process's
  group use them (``net.ipv4.ping_group_range``). No privilege needed; the systemd unit's default.
- ``raw``: raw ICMP sockets (icmplib ``privileged=True``), when the process is root or has ``CAP_NET_RAW``.
- ``ping``: the system ``ping`` (iputils), run with an argv list and ``LC_ALL=C``; its summary is parsed.

Which one works is found by opening the socket, not by guessing. When none does, the agent says so at start-up
and every check reports it as its reason. All replies lost is ``down``; some lost above ``loss_pct`` is
``degraded``; so is an average round trip above ``rtt_ms``, if set.
"""

import asyncio
import logging
import os
import re
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.drivers.base import CheckResult, Stopwatch, TimedResults
from agent.errors import AgentError

log = logging.getLogger(__name__)

Method = Literal["unprivileged", "raw", "ping"]
_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_RTT = re.compile(r"= [\d.]+/([\d.]+)/([\d.]+)/[\d.]+ ms")


class IcmpOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver: Literal["icmp"]
    host: str = Field(min_length=1, max_length=253, description="IP address or host name of the device")
    count: int = Field(5, ge=1, le=100, description="echo requests per check")
    interval: float = Field(0.2, ge=0.2, le=10, description="seconds between echo requests")
    timeout: float = Field(1.0, gt=0, le=30, description="seconds to wait for the last reply")
    loss_pct: float = Field(20.0, ge=0, lt=100, description="more loss than this (some replies) is degraded")
    rtt_ms: float | None = Field(None, gt=0, description="an average round trip above this is degraded")
    method: Literal["auto", "unprivileged", "raw", "ping"] = "auto"


@dataclass(frozen=True)
class PingSummary:
    sent: int
    received: int
    rtt_avg_ms: float | None
    rtt_max_ms: float | None


class PingError(AgentError):
    """The ping could not be made at all (a name that does not resolve, no route); the message says why."""


def _opens(family: int, kind: int, protocol: int) -> bool:
    try:
        socket.socket(family, kind, protocol).close()
    except OSError:
        return False
    return True


def available_methods() -> list[Method]:
    """The ways to ping that work for this process, best first, found by opening the sockets."""
    found: list[Method] = []
    if _opens(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP):
        found.append("unprivileged")
    if _opens(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP):
        found.append("raw")
    if shutil.which("ping"):
        found.append("ping")
    return found


NO_METHOD = (
    "cannot send ICMP: unprivileged ICMP sockets are not allowed for this group "
    "(sysctl net.ipv4.ping_group_range), raw sockets need root or CAP_NET_RAW, "
    "and no 'ping' command was found"
)


def choose_method(wanted: str, available: list[Method]) -> tuple[Method | None, str | None]:
    """The method to use and, when there is none, why."""
    if wanted == "auto":
        return (available[0], None) if available else (None, NO_METHOD)
    if wanted in available:
        return wanted, None
    reasons = {
        "unprivileged": (
            "unprivileged ICMP sockets are not allowed for this group (net.ipv4.ping_group_range)"
        ),
        "raw": "raw ICMP sockets need root or CAP_NET_RAW",
        "ping": "no 'ping' command on the PATH",
    }
    return None, f"cannot send ICMP with method {wanted}: {reasons[wanted]}"


def parse_ping_output(text: str) -> PingSummary:
    """The summary of iputils ``ping`` (``LC_ALL=C``); ``PingError`` with its message when there is none."""
    summary = _SUMMARY.search(text)
    if summary is None:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        raise PingError(lines[-1] if lines else "ping printed nothing")
    rtt = _RTT.search(text)
    return PingSummary(
        int(summary.group(1)),
        int(summary.group(2)),
        float(rtt.group(1)) if rtt else None,
        float(rtt.group(2)) if rtt else None,
    )


async def _ping_icmplib(options: IcmpOptions, privileged: bool) -> PingSummary:
    import icmplib  # type: ignore[import-untyped]

    try:
        host = await icmplib.async_ping(
            options.host,
            count=options.count,
            interval=options.interval,
            timeout=options.timeout,
            privileged=privileged,
        )
    except icmplib.NameLookupError:
        raise PingError(f"cannot resolve {options.host}") from None
    except icmplib.ICMPLibError as exc:
        raise PingError(str(exc) or type(exc).__name__) from None
    except OSError as exc:
        raise PingError(exc.strerror or str(exc)) from None
    if host.packets_received == 0:
        return PingSummary(host.packets_sent, 0, None, None)
    return PingSummary(host.packets_sent, host.packets_received, host.avg_rtt, host.max_rtt)


async def _ping_command(options: IcmpOptions) -> PingSummary:
    argv = [
        "ping",
        "-n",
        "-c",
        str(options.count),
        "-i",
        f"{options.interval:g}",
        "-W",
        f"{options.timeout:g}",
        "--",
        options.host,
    ]
    env = {"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
    )
    try:
        out, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return parse_ping_output(out.decode("utf-8", errors="replace"))


class IcmpProbe(TimedResults):
    driver = "icmp"

    def __init__(
        self,
        options: IcmpOptions,
        method: Method | None,
        unavailable: str | None = None,
    ) -> None:
        self.options = options
        self.method = method
        self.unavailable = unavailable
        self.target = options.host

    def _limit(self) -> float:
        """How long one check may take: every request, then the wait for the last reply, and some slack."""
        return self.options.count * self.options.interval + self.options.timeout + 5.0

    async def _ping(self) -> PingSummary:
        if self.method == "ping":
            return await _ping_command(self.options)
        return await _ping_icmplib(self.options, privileged=self.method == "raw")

    async def poll(self) -> CheckResult:
        watch = Stopwatch()
        # This PC unable to ping (no method, a name that does not resolve, no route, a ping that hangs) says
        # nothing of the device: inconclusive. Only echo requests sent and unanswered make it down.
        if self.method is None:
            detail = self.unavailable or NO_METHOD
            return CheckResult(self.driver, self.target, False, detail, inconclusive=True)
        try:
            async with asyncio.timeout(self._limit()):
                summary = await self._ping()
        except TimeoutError:
            return self._result(False, f"no summary within {self._limit():g} s", watch, inconclusive=True)
        except PingError as exc:
            return self._result(False, str(exc), watch, inconclusive=True)
        except OSError as exc:
            return self._result(False, f"cannot ping: {exc.strerror or exc}", watch, inconclusive=True)
        return self._judge(summary, watch)

    def _judge(self, summary: PingSummary, watch: Stopwatch) -> CheckResult:
        sent = max(summary.sent, 1)
        loss = 100.0 * (sent - summary.received) / sent
        metrics = {"loss_pct": round(loss, 1)}
        if summary.received == 0:
            return self._result(False, f"no reply to {summary.sent} echo requests", watch, metrics=metrics)
        assert summary.rtt_avg_ms is not None
        assert summary.rtt_max_ms is not None
        metrics["rtt_ms"] = round(summary.rtt_avg_ms, 3)
        metrics["rtt_max_ms"] = round(summary.rtt_max_ms, 3)
        said = (
            f"{summary.received}/{summary.sent} replies, "
            f"rtt avg {summary.rtt_avg_ms:.2f} ms max {summary.rtt_max_ms:.2f} ms"
        )
        problems = []
        if loss > self.options.loss_pct:
            problems.append(f"{loss:.0f}% loss, over {self.options.loss_pct:g}%")
        if self.options.rtt_ms is not None and summary.rtt_avg_ms > self.options.rtt_ms:
            problems.append(f"average round trip over {self.options.rtt_ms:g} ms")
        detail = said + (f" ({'; '.join(problems)})" if problems else "")
        return self._result(True, detail, watch, metrics=metrics, degraded=bool(problems))


def build(options: IcmpOptions, detect: Callable[[], list[Method]] = available_methods) -> IcmpProbe:
    """The probe, with its method chosen now; when none works the reason is logged at start-up."""
    method, why = choose_method(options.method, detect())
    if method is None:
        log.error("icmp check of %s: %s", options.host, why)
    else:
        log.debug("icmp check of %s: method %s", options.host, method)
    return IcmpProbe(options, method, why)
