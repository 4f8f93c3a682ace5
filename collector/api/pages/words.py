"""What the pages say in words: a ticket's cause as an engineer would say it ("Rally system: missing
table-hub"), and a time in the site's own zone with UTC on hover."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

from collector.sla.calendar import SiteCalendar
from collector.store.schema import CAUSE_AGENT_SILENT, CAUSE_DEVICE_DOWN, CAUSE_DEVICE_UNSTABLE

#: How long a cause in words may be on the board; the ticket page has the whole text.
MAX_WORDS = 160

_MISSING = re.compile(r"missing (?P<parts>.+)$")
_USB_ID = re.compile(r"\s+[0-9a-f]{4}:[0-9a-f]{4}\b")
_SINCE = re.compile(r" since \S+")
_SECONDS = re.compile(r"in (?P<seconds>\d+(?:\.\d+)?) s\b")


def model_name(ticket: Mapping[str, Any]) -> str:
    """The device's name as its agent reports it ("Rally system"), else its model id made readable."""
    name = ticket.get("name")
    if name:
        return str(name)
    model = ticket.get("model")
    if model:
        return str(model).replace("-", " ").capitalize()
    return str(ticket.get("device") or ticket.get("site") or "device")


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _parts(text: str) -> str:
    """``audio 046d:0885, table-hub 046d:088f`` -> ``audio, table-hub``; a part missing twice is counted."""
    counted: dict[str, int] = {}
    for part in _USB_ID.sub("", text).split(","):
        name = part.strip()
        if name:
            counted[name] = counted.get(name, 0) + 1
    return ", ".join(name if count == 1 else f"{count} {name}s" for name, count in counted.items())


def sign_words(reason: str) -> str:
    """One sign of instability (``collector/incidents/signs.py``) said shortly."""
    missing = _MISSING.search(reason)
    if missing is not None:
        return "missing " + _parts(missing.group("parts").rstrip(")"))
    if reason.startswith("degraded since"):
        _, _, why = reason.partition(": ")
        return f"degraded: {why}" if why else "degraded"
    shorter = _SINCE.sub("", reason)
    return _SECONDS.sub(lambda found: "in " + _duration(float(found.group("seconds"))), shorter)


def _failed_check(evidence: Any) -> str | None:
    checks = evidence if isinstance(evidence, list) else []
    for check in checks:
        if isinstance(check, dict) and check.get("ok") is False:
            return f"{check.get('driver', 'check')}: {check.get('detail', 'failed')}"
    return None


def cause_words(ticket: Mapping[str, Any]) -> str:
    """The ticket's cause as the board shows it: the device, then what is wrong with it."""
    cause = ticket.get("cause")
    evidence = ticket.get("evidence")
    if cause == CAUSE_DEVICE_DOWN:
        failed = _failed_check(evidence)
        said = f"{model_name(ticket)}: not responding" + (f" ({failed})" if failed else "")
    elif cause == CAUSE_DEVICE_UNSTABLE:
        reasons = evidence.get("reasons") if isinstance(evidence, dict) else None
        if not reasons:
            reasons = [str(ticket.get("summary") or "unstable")]
        said = f"{model_name(ticket)}: " + "; ".join(sign_words(str(reason)) for reason in reasons)
    elif cause == CAUSE_AGENT_SILENT:
        said = f"site {ticket.get('site')}: agents silent"
    else:
        summary = str(ticket.get("summary") or cause or "").strip().splitlines()
        said = summary[0] if summary else str(cause)
    return said if len(said) <= MAX_WORDS else said[: MAX_WORDS - 1] + "…"


def moment(value: datetime | None, calendar: SiteCalendar, *, countdown: bool = False) -> Markup:
    """A ``<time>`` in the site's zone (``2026-11-24 22:01 CET``), UTC in its title; empty for None.
    With ``countdown`` the page's script keeps "in 12 min" / "overdue 3 min" beside it up to date."""
    if value is None:
        return Markup("")
    stamp = utc_iso(value)
    shown = calendar.local(value).strftime("%Y-%m-%d %H:%M %Z")
    title = stamp.replace("T", " ").replace("Z", " UTC")
    extra = Markup(' data-countdown=""') if countdown else Markup("")
    return Markup('<time datetime="{}" title="{}"{}>{}</time>').format(stamp, title, extra, escape(shown))


def utc_iso(value: datetime) -> str:
    """``value`` as RFC 3339 UTC to the second (a stored naive value is UTC already)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
