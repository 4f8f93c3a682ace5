"""How hezo's programs log: one line per record on standard error, as text or as JSON, in UTC with its zone.

``configure_logging(level, "text")``: ``2026-11-24T21:00:00.123Z INFO agent: started``.
``configure_logging(level, "json")``: one JSON object a line, ``{"time": "2026-11-24T21:00:00.123000+00:00",
"level": "INFO", "logger": "agent", "message": "started"}``, with ``exception`` (the traceback) when there is
one; made by python-json-logger, imported only when asked for.

Under systemd (``JOURNAL_STREAM`` names standard error) each line starts with its syslog priority (``<6>``
for INFO, ``<4>`` WARNING, ``<3>`` ERROR), which journald strips and keeps as the entry's level, and text
lines leave the time to journald.

Secrets stay out of the log by construction: configuration secrets are ``SecretStr`` (shown as
``**********``), and error messages never repeat a secret's value (CONTRIBUTING.md, "Errors").
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

#: syslog priorities of Python's levels (sd-daemon(3)): what journald files each line under.
SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a Python level; levels between two take the more urgent one's."""
    for level in sorted(SYSLOG_PRIORITY, reverse=True):
        if levelno >= level:
            return SYSLOG_PRIORITY[level]
    return SYSLOG_PRIORITY[logging.DEBUG]


def under_journald(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """True when ``stream`` is the one systemd connected to the journal (``JOURNAL_STREAM=dev:inode``)."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not device.isdigit() or not inode.isdigit():
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


class UtcFormatter(logging.Formatter):
    """Text lines with an ISO 8601 UTC time (``Z``); without the time when journald stamps the line."""

    def converter(self, seconds: float | None) -> time.struct_time:
        return time.gmtime(seconds)

    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


class JournalPrefix(logging.Formatter):
    """Puts ``<N>``, the record's syslog priority, before every line another formatter makes."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        priority = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(priority + line for line in self._inner.format(record).splitlines())


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={
            "levelname": "level",
            "name": "logger",
            "exc_info": "exception",
            "stack_info": "stack",
        },
        timestamp="time",
    )


def make_formatter(log_format: LogFormat, *, journald: bool) -> logging.Formatter:
    if log_format == "json":
        formatter = json_formatter()
    elif journald:
        formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    else:
        formatter = UtcFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    return JournalPrefix(formatter) if journald else formatter


_current: LogFormat = "text"


def current_format() -> LogFormat:
    """The format the last ``configure_logging`` chose: what a child process is told to use too."""
    return _current


def configure_logging(level: str | int, log_format: LogFormat = "text", stream: Any = None) -> None:
    """Send every record at ``level`` and above to ``stream`` (standard error) in ``log_format``; replaces
    what an earlier call set, so a program may call it again once its config file names the format."""
    out = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(out)
    handler.setFormatter(make_formatter(log_format, journald=under_journald(out)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    global _current  # noqa: PLW0603 (one process, one logging set-up)
    _current = log_format
