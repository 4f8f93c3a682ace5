"""Commands read back for people: one with its status as it stands now (``expired`` once past its lifetime
unanswered) and its bundle, or the latest ones, of a ticket if asked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from collector.store.schema import bundles
from collector.store.schema import commands as command_table
from protocol.commands import FINAL_STATUSES


def get_command(engine: Engine, command_id: str, now: datetime) -> dict[str, Any] | None:
    """The command ``command_id`` as it stands at ``now``, with the id of its bundle; None if unknown."""
    with engine.connect() as conn:
        row = conn.execute(select(command_table).where(command_table.c.id == command_id)).first()
        if row is None:
            return None
        item = _command_dict(row)
        bundle = conn.execute(select(bundles.c.id).where(bundles.c.command_id == command_id)).scalar()
        item["bundle"] = bundle
        if now > row.expires_at and row.status not in FINAL_STATUSES:
            item["status"] = "expired"
    return item


def list_commands(engine: Engine, *, ticket: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The latest ``limit`` commands, newest first; only those of ``ticket`` if given."""
    query = select(command_table).order_by(command_table.c.issued_at.desc()).limit(limit)
    if ticket is not None:
        query = query.where(command_table.c.ticket == ticket)
    with engine.connect() as conn:
        return [_command_dict(row) for row in conn.execute(query)]


def _command_dict(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    for name in ("upload_token_sha256", "upload_length", "upload_sha256"):
        item.pop(name, None)
    return item
