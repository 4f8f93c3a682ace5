"""Log lines: text or JSON, UTC with its zone, and syslog priorities when journald reads them."""

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from common.logs import configure_logging, under_journald


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def boom(log: logging.Logger) -> None:
    try:
        raise ValueError("the spool file is gone")
    except ValueError:
        log.exception("cannot spool")


def test_json_lines_carry_utc_time_with_zone_level_logger_message_and_exception() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    log = logging.getLogger("agent.link")
    log.info("connected to broker %s:%d", "127.0.0.1", 1883)
    boom(log)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "agent.link",
        "connected to broker 127.0.0.1:1883",
    )
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR"
    assert "ValueError: the spool file is gone" in second["exception"]


def test_text_lines_start_with_an_iso_utc_time() -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", out)
    logging.getLogger("collector").warning("not subscribed")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING collector: not subscribed\n", out.getvalue()
    )


def test_a_level_below_the_configured_one_is_not_written() -> None:
    out = io.StringIO()
    configure_logging("WARNING", "json", out)
    logging.getLogger("agent").info("polling")
    logging.getLogger("agent").error("stopped")
    assert [json.loads(line)["message"] for line in out.getvalue().splitlines()] == ["stopped"]


def journal_stream(path: Path, monkeypatch: pytest.MonkeyPatch) -> TextIO:
    stream = path.open("w")
    stat = os.fstat(stream.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
    return stream


def test_under_journald_every_line_starts_with_its_syslog_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with journal_stream(tmp_path / "journal", monkeypatch) as stream:
        configure_logging("DEBUG", "text", stream)
        log = logging.getLogger("agent")
        log.debug("polled")
        log.info("started")
        log.warning("lost the broker")
        boom(log)
    lines = (tmp_path / "journal").read_text().splitlines()
    assert lines[:3] == [
        "<7>DEBUG agent: polled",
        "<6>INFO agent: started",
        "<4>WARNING agent: lost the broker",
    ]
    # The traceback's lines are the same entry's: each keeps the error's priority.
    assert lines[3] == "<3>ERROR agent: cannot spool"
    assert all(line.startswith("<3>") for line in lines[4:])
    assert lines[-1] == "<3>ValueError: the spool file is gone"


def test_json_under_journald_keeps_the_priority_before_the_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with journal_stream(tmp_path / "journal", monkeypatch) as stream:
        configure_logging("INFO", "json", stream)
        logging.getLogger("collector").error("store unavailable")
    line = (tmp_path / "journal").read_text()
    assert line.startswith("<3>{")
    assert json.loads(line[3:])["message"] == "store unavailable"


def test_another_stream_than_journal_streams_is_not_journald(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with journal_stream(tmp_path / "journal", monkeypatch), (tmp_path / "other").open("w") as other:
        assert not under_journald(other)
    assert not under_journald(io.StringIO(), {"JOURNAL_STREAM": "1:2"})
    assert not under_journald(io.StringIO(), {"JOURNAL_STREAM": "garbage"})
