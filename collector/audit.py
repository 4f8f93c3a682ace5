"""The audit log: who did what, when. Every command, answer and refusal of remote diagnostics, and every
change people make (ticket steps and notes, contracts, maintenance windows, notifications sent again, users,
tokens, logins), with the authenticated user as ``actor`` (``local:<OS user>`` for the local command line).

It sits below the tickets and the registry, so the function that makes a change records it, in the same
transaction, whoever called it (the API or the CLI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from collector.store.schema import audit


def record(
    conn: Connection,
    at: datetime,
    event: str,
    detail: str,
    *,
    actor: str,
    site: str | None = None,
    agent: str | None = None,
    command_id: str | None = None,
    action: str | None = None,
    subject: str | None = None,
) -> None:
    """Append one line; call inside the transaction that does what it records."""
    conn.execute(
        insert(audit).values(
            at=at,
            event=event,
            detail=detail[:4000],
            actor=actor[:64],
            site=site,
            agent=agent,
            command_id=command_id,
            action=(action or "")[:64] or None,
            subject=(subject or "")[:128] or None,
        )
    )


def list_audit(
    conn: Connection, limit: int = 200, command_id: str | None = None, subject: str | None = None
) -> list[dict[str, Any]]:
    """The newest ``limit`` lines (of one command, or about one subject, if given), newest first."""
    query = select(audit).order_by(audit.c.at.desc(), audit.c.id.desc()).limit(limit)
    if command_id is not None:
        query = query.where(audit.c.command_id == command_id)
    if subject is not None:
        query = query.where(audit.c.subject == subject)
    return [dict(row._mapping) for row in conn.execute(query)]
