"""The system journal goes into a bundle as asked, or its absence is recorded with the reason."""

from datetime import UTC, datetime

from diagnostics.bundle import BundleBuilder
from diagnostics.logs import add_journal, journal_argv


def test_the_journal_is_skipped_with_a_reason_where_journalctl_is_absent() -> None:
    builder = BundleBuilder({})
    add_journal(builder, None, None, [], which=lambda _name: None)
    assert builder.skipped == [{"source": "journal", "reason": "journalctl not found on this machine"}]


def test_the_journal_is_asked_for_a_time_range_and_units_as_an_argv() -> None:
    since = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    argv = journal_argv("/usr/bin/journalctl", since, None, ["hezo-agent.service"])
    assert argv == [
        "/usr/bin/journalctl",
        "--no-pager",
        "--output=short-iso-precise",
        "--quiet",
        f"--since=@{int(since.timestamp())}",
        "--unit=hezo-agent.service",
    ]
