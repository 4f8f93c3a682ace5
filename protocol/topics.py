"""MQTT topic names: building them from ids and parsing them back.

Layout, under a configurable prefix (default ``hezo/v1``)::

    {prefix}/{site}/{agent}/status                    birth and death, retained
    {prefix}/{site}/{agent}/device/{device}/state     device state, retained
    {prefix}/{site}/{agent}/telemetry                 batches of samples
    {prefix}/{site}/{agent}/event                     state transitions and other events
    {prefix}/{site}/{agent}/cmd                       commands to the agent
    {prefix}/{site}/{agent}/reply                     the agent's answers to commands
"""

from dataclasses import dataclass
from enum import StrEnum

from protocol.errors import ProtocolError
from protocol.ids import validate_id

DEFAULT_PREFIX = "hezo/v1"


class TopicKind(StrEnum):
    STATUS = "status"
    STATE = "state"
    TELEMETRY = "telemetry"
    EVENT = "event"
    CMD = "cmd"
    REPLY = "reply"


@dataclass(frozen=True)
class Topic:
    """A parsed topic: what it is and whose it is."""

    kind: TopicKind
    site: str
    agent: str
    device: str | None = None


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if usable as a topic prefix, else raise ``ProtocolError``."""
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise ProtocolError(f"topic prefix {prefix!r} must be non-empty and not start or end with '/'")
    if any(ch in prefix for ch in "+#\x00"):
        raise ProtocolError(f"topic prefix {prefix!r} may not contain '+', '#' or NUL")
    if any(level == "" for level in prefix.split("/")):
        raise ProtocolError(f"topic prefix {prefix!r} has an empty level")
    return prefix


class Topics:
    """Topic names under one prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = validate_prefix(prefix)
        self._depth = len(self.prefix.split("/"))

    def _base(self, site: str, agent: str) -> str:
        return f"{self.prefix}/{validate_id('site', site)}/{validate_id('agent', agent)}"

    def status(self, site: str, agent: str) -> str:
        return f"{self._base(site, agent)}/status"

    def state(self, site: str, agent: str, device: str) -> str:
        return f"{self._base(site, agent)}/device/{validate_id('device', device)}/state"

    def telemetry(self, site: str, agent: str) -> str:
        return f"{self._base(site, agent)}/telemetry"

    def event(self, site: str, agent: str) -> str:
        return f"{self._base(site, agent)}/event"

    def cmd(self, site: str, agent: str) -> str:
        return f"{self._base(site, agent)}/cmd"

    def reply(self, site: str, agent: str) -> str:
        return f"{self._base(site, agent)}/reply"

    def agent_publishes(self, site: str, agent: str) -> list[str]:
        """The topics (as filters) agent ``site/agent`` publishes on: all it owns, which is not its cmd topic.

        The broker's access rules for an agent are made from these (``collector/broker``), so the rules and
        the wire contract cannot disagree.
        """
        base = self._base(site, agent)
        return [f"{base}/{end}" for end in ("status", "device/+/state", "telemetry", "event", "reply")]

    def collector_filters(self) -> list[str]:
        """The subscriptions a collector needs to see everything agents publish."""
        p = self.prefix
        return [
            f"{p}/+/+/status",
            f"{p}/+/+/device/+/state",
            f"{p}/+/+/telemetry",
            f"{p}/+/+/event",
            f"{p}/+/+/reply",
        ]

    def parse(self, topic: str) -> Topic:
        """Parse a topic under this prefix, or raise ``ProtocolError`` saying what is wrong."""
        levels = topic.split("/")
        if levels[: self._depth] != self.prefix.split("/"):
            raise ProtocolError(f"topic {topic!r} is not under prefix {self.prefix!r}")
        rest = levels[self._depth :]
        if len(rest) < 3:
            raise ProtocolError(f"topic {topic!r} is too short: expected {self.prefix}/SITE/AGENT/...")
        site = validate_id("site", rest[0])
        agent = validate_id("agent", rest[1])
        tail = rest[2:]
        if len(tail) == 1:
            try:
                kind = TopicKind(tail[0])
            except ValueError:
                raise ProtocolError(f"topic {topic!r} has unknown kind {tail[0]!r}") from None
            if kind is TopicKind.STATE:
                raise ProtocolError(f"topic {topic!r}: state topics are .../device/DEVICE/state")
            return Topic(kind, site, agent)
        if len(tail) == 3 and tail[0] == "device" and tail[2] == "state":
            return Topic(TopicKind.STATE, site, agent, validate_id("device", tail[1]))
        raise ProtocolError(f"topic {topic!r} does not match any hezo topic")
