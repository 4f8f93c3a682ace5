"""What a probe may need beyond its options: the device it checks, and what all probes of the agent share.

Most drivers need only their options. A driver whose checks must share something (the ``sync`` checks share
one client, because the Sync API allows one request a second per account) asks ``SharedResources`` for it
with a key of its own and a factory: the first probe to ask makes it, the others get the same one, and the
agent closes it when it stops. The store knows no driver; the agent-level settings a factory needs (the
``sync:`` account) come in ``ProbeContext.sections``, by driver name.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, cast

from pydantic import BaseModel

log = logging.getLogger(__name__)


class Closable(Protocol):
    def close(self) -> None: ...


R = TypeVar("R", bound=Closable)


@dataclass(frozen=True)
class ResourceKey(Generic[R]):
    """Names one shared resource and says its type: ``ResourceKey[SyncClient]("sync.client")``."""

    name: str


class SharedResources:
    """Resources every probe of one agent shares: each made once, on first use, and closed by ``close()``."""

    def __init__(self) -> None:
        self._made: dict[str, Closable] = {}

    def get(self, key: ResourceKey[R], factory: Callable[[], R]) -> R:
        """The resource under ``key``; ``factory()`` makes it the first time it is asked for."""
        if key.name not in self._made:
            self._made[key.name] = factory()
        return cast(R, self._made[key.name])

    def close(self) -> None:
        """Close every resource made, the last first; one that fails does not keep the others open."""
        while self._made:
            name, resource = self._made.popitem()
            try:
                resource.close()
            except Exception:  # the agent is stopping: note it and close the rest
                log.exception("closing the shared %s failed", name)


@dataclass(frozen=True)
class ProbeContext:
    """The device a probe checks, and what it shares with every probe of the agent.

    ``sections`` are the agent-level config sections of drivers, by driver name (``sync`` -> the
    ``SyncAccountConfig``); ``poll_interval`` is how often each device is checked.
    """

    device_id: str
    serial: str | None = None
    shared: SharedResources = field(default_factory=SharedResources)
    sections: Mapping[str, BaseModel] = field(default_factory=dict)
    poll_interval: float = 30.0
