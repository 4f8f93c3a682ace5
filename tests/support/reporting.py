"""A poller's reporter that keeps what it is given, for tests that look at states, events and samples."""

from typing import Any


class Recorder:
    def __init__(self) -> None:
        self.states: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []

    def publish_state(self, body: dict[str, Any]) -> None:
        self.states.append(body)

    def publish_event(self, body: dict[str, Any]) -> None:
        self.events.append(body)

    def publish_telemetry(self, samples: list[dict[str, Any]]) -> None:
        self.samples.extend(samples)
