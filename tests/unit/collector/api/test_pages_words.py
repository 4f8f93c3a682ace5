"""A ticket's cause as the board says it: the device, then what is wrong with it, in few words."""

from __future__ import annotations

import pytest

from collector.api.pages.words import cause_words, sign_words


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        (
            "degraded since 2026-11-24T20:00:00+00:00: Rally system incomplete: missing table-hub 046d:088f",
            "missing table-hub",
        ),
        (
            "degraded since 2026-11-24T20:00:00+00:00: Rally system incomplete: "
            "missing mic pod 046d:0891, mic pod 046d:0891, display 046d:0892",
            "missing 2 mic pods, display",
        ),
        ("packet loss 12 % since 2026-11-24T20:00:00+00:00", "packet loss 12 %"),
        ("flapping: down 4 times in 600 s", "flapping: down 4 times in 10 min"),
        ("rebooted 3 times in 3600 s", "rebooted 3 times in 1 h"),
        ("degraded since 2026-11-24T20:00:00+00:00: fan loud", "degraded: fan loud"),
    ],
)
def test_each_sign_of_instability_is_said_shortly(reason: str, said: str) -> None:
    assert sign_words(reason) == said


def test_an_unstable_device_is_named_with_its_signs() -> None:
    ticket = {
        "cause": "device-unstable",
        "name": "Rally system",
        "evidence": {"reasons": ["packet loss 12 % since x", "rebooted 3 times in 3600 s"]},
    }
    assert cause_words(ticket) == "Rally system: packet loss 12 %; rebooted 3 times in 1 h"


def test_a_dead_device_is_named_with_its_first_failed_check() -> None:
    checks = [
        {"driver": "usb", "ok": True, "detail": "present"},
        {"driver": "icmp", "ok": False, "detail": "no reply"},
    ]
    ticket = {"cause": "device-down", "model": "rally-bar", "evidence": checks}
    assert cause_words(ticket) == "Rally bar: not responding (icmp: no reply)"


def test_a_hand_opened_ticket_says_its_summary_shortened() -> None:
    ticket = {"cause": "manual:1a2b", "summary": "How do we pair a Tap?\nMore lines" + "x" * 300}
    assert cause_words(ticket) == "How do we pair a Tap?"
    long = {"cause": "manual:1a2b", "summary": "y" * 500}
    assert cause_words(long) == "y" * 159 + "…"
