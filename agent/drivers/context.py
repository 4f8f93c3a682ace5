"""What a probe may need beyond its own options: the device it checks and resources the agent shares.

Most drivers need only their options; a ``sync`` check also needs the device's serial and the one Sync client
all such checks share (the API allows one request a second per account, so each device must not fetch alone).
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.drivers.sync import SyncAccountConfig
    from agent.drivers.syncclient import SyncClient


class SharedResources:
    """Resources every probe of one agent shares, each created once, on first use."""

    def __init__(self, sync: "SyncAccountConfig | None" = None, poll_interval: float = 30.0) -> None:
        self.sync = sync
        self.poll_interval = poll_interval
        self._sync_client: SyncClient | None = None

    def sync_client(self) -> "SyncClient":
        """The client of the agent's Sync account; ``ValueError`` if the config has no ``sync:`` section."""
        if self._sync_client is None:
            if self.sync is None:
                raise ValueError("a sync check needs the agent's sync: section (org_id, cert_file, key_file)")
            from agent.drivers.syncclient import SyncClient

            self._sync_client = SyncClient(self.sync, self.poll_interval)
        return self._sync_client

    def close(self) -> None:
        if self._sync_client is not None:
            self._sync_client.close()


@dataclass(frozen=True)
class ProbeContext:
    device_id: str
    serial: str | None = None
    shared: SharedResources = field(default_factory=SharedResources)
