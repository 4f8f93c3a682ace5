"""The systemd notify protocol, outside systemd and with a watchdog set."""

from agent.sdnotify import notify, watchdog_interval


def test_notify_does_nothing_outside_systemd() -> None:
    assert notify("READY=1", environ={}) is False


def test_the_watchdog_interval_is_half_of_watchdogsec_for_this_process_only() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
