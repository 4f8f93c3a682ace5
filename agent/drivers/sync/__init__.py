"""The ``sync`` driver: what Logitech Sync (the vendor's cloud) says of each device.

- ``account``: the agent's ``sync:`` section (organisation, client certificate, limits);
- ``budget``: the API's request budget (1 request/s, 14,400 a day per account);
- ``client``: the one client per account that fetches the place list for every sync check;
- ``driver``: a device's ``{driver: sync}`` check, and how it gets the shared client.
"""

from agent.drivers.sync.account import SyncAccountConfig
from agent.drivers.sync.driver import SyncOptions, SyncProbe, build, missing_peripherals

__all__ = ["SyncAccountConfig", "SyncOptions", "SyncProbe", "build", "missing_peripherals"]
