"""The agent's log bundle: what its config says to collect, handed to the ``diagnostics`` library.

The library knows no agent: this module tells it who built the bundle (site, agent, device) and which
device pages to fetch (the admin page of every ``https`` check of the chosen devices).
"""

from datetime import datetime
from pathlib import Path
from typing import Any

from agent.config import AgentConfig
from agent.drivers.https import HttpsOptions
from diagnostics.config import LogsConfig
from diagnostics.logs import DevicePage, build_log_bundle
from diagnostics.redact import PersonalData


def device_pages(config: AgentConfig, device: str | None = None) -> list[DevicePage]:
    """The admin page of every ``https`` check, of every device or of ``device``, as ``https-N``."""
    return [
        DevicePage(conf.id, f"https-{index}", check.url, check.verify, check.ca_file, check.timeout)
        for conf in config.devices
        if device is None or conf.id == device
        for index, check in enumerate(conf.checks)
        if isinstance(check, HttpsOptions)
    ]


def collect_logs(
    config: AgentConfig,
    logs: LogsConfig,
    out: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    units: list[str] | None = None,
    device: str | None = None,
    origin: dict[str, Any] | None = None,
    personal_data: PersonalData | None = None,
) -> dict[str, Any]:
    """Build the agent's log bundle into ``out`` and return its manifest; ``personal_data`` (the command's)
    can only make the config's handling of personal data stricter."""
    return build_log_bundle(
        logs,
        out,
        origin={"site": config.site, "agent": config.agent, "device": device, **(origin or {})},
        pages=device_pages(config, device),
        since=since,
        until=until,
        units=units,
        personal_data=personal_data,
    )
