"""The collector-side registry of contracts and maintenance windows: the configuration file's entries are
written to the store at every start (source ``config``); the CLI and API add their own (source ``api``)."""

from __future__ import annotations

from sqlalchemy import Connection

from collector import contracts, maintenance
from collector.config import CollectorConfig


def apply_registry(conn: Connection, config: CollectorConfig) -> None:
    """Replace the configured contracts and maintenance windows in the store by those of ``config``."""
    contracts.replace_configured(
        conn,
        [
            contracts.values(
                number=item.number,
                start=item.start,
                years=item.years,
                customer=item.customer,
                serials=item.serials,
            )
            for item in config.contracts
        ],
    )
    maintenance.replace_configured(
        conn,
        [
            maintenance.values(
                name=item.name,
                site=item.site,
                agent=item.agent,
                device=item.device,
                days=list(item.days) if item.days else None,
                start=item.start,
                end=item.end,
                starts_at=item.starts_at,
                ends_at=item.ends_at,
                reason=item.reason,
            )
            for item in config.maintenance
        ],
    )
